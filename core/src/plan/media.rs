//! The last step of content negotiation, which needs the schema: PostgREST's media handlers
//! (see [`crate::schema_cache::MediaHandler`]). For each range the client accepts, best
//! first: a `vnd.pgrst` type is always pg_rest's own; otherwise a handler for this resource
//! (its `*/*` handler, then one for the type — only without `select=`, since such a handler
//! takes the resource's whole rows), then one over `anyelement`, then pg_rest's own type. A
//! schema without handlers costs nothing here.

use crate::api_request::media::{self, Accepted};
use crate::api_request::{ApiRequest, SelectItem};
use crate::error::ApiError;
use crate::schema_cache::{HandlerKind, HandlerTarget, MediaHandler, QualifiedName, SchemaCache};

/// A media handler chosen for one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handler {
    pub kind: HandlerKind,
    pub domain: QualifiedName,
    pub send: QualifiedName,
    /// A handler of one relation takes its row type: the rows are cast to it.
    pub row_type: Option<QualifiedName>,
    pub content_type: String,
}

/// The handler answering a request for `schema.name` (a relation, or a function by name — a
/// set-returning function of a table's rows by the table's name), or None for pg_rest's own
/// media type; 406 PGRST107 when neither answers. Without handlers in the schema it only
/// checks the 406 (nothing is allocated on that path).
pub fn handler(
    req: &ApiRequest,
    cache: &SchemaCache,
    schema: &str,
    name: &str,
) -> Result<Option<Handler>, ApiError> {
    let accepted: &Accepted = &req.accepted;
    let ranges = match accepted.ranges.as_deref() {
        Some(r) if cache.has_media_handlers() => r,
        _ => return accepted.check().map(|()| None),
    };
    let whole_rows = matches!(req.select.as_slice(), [SelectItem::Star]);
    let target = HandlerTarget::Named(QualifiedName::new(schema, name));
    for range in media::ranked(ranges) {
        let essence = media::essence(range);
        if media::is_vendored(&essence) {
            break;
        }
        let own = whole_rows
            .then(|| {
                cache
                    .media_handler(&target, "*/*")
                    .or_else(|| cache.media_handler(&target, &essence))
            })
            .flatten();
        if let Some(h) = own {
            return Ok(Some(chosen(h, Some(&target))));
        }
        if let Some(h) = cache.media_handler(&HandlerTarget::AnyElement, &essence) {
            return Ok(Some(chosen(h, None)));
        }
        if media::builtin(range).is_some() {
            break;
        }
    }
    accepted.check().map(|()| None)
}

fn chosen(h: &MediaHandler, target: Option<&HandlerTarget>) -> Handler {
    let row_type = match (&h.kind, target) {
        (HandlerKind::Aggregate(_), Some(HandlerTarget::Named(rel))) => Some(rel.clone()),
        _ => None,
    };
    Handler {
        kind: h.kind.clone(),
        domain: h.domain.clone(),
        send: h.send.clone(),
        row_type,
        content_type: content_type(&h.media_type),
    }
}

/// PostgREST's `Content-Type` of a media type: with `charset=utf-8` for the types it knows,
/// without for `application/octet-stream` and types it does not know.
fn content_type(media_type: &str) -> String {
    const WITH_CHARSET: [&str; 7] = [
        "application/json",
        "application/geo+json",
        "text/csv",
        "text/plain",
        "text/xml",
        "application/openapi+json",
        "application/x-www-form-urlencoded",
    ];
    if WITH_CHARSET.contains(&media_type) {
        format!("{media_type}; charset=utf-8")
    } else {
        media_type.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api_request;
    use crate::schema_cache::{test_cache, CatalogRows};

    fn q(schema: &str, name: &str) -> QualifiedName {
        QualifiedName::new(schema, name)
    }

    fn handler_of(kind: HandlerKind, domain: &str, media_type: &str) -> MediaHandler {
        MediaHandler {
            kind,
            domain: q("public", domain),
            media_type: media_type.into(),
            send: q("pg_catalog", "jsonb_send"),
        }
    }

    /// `public.books` with a geo2 handler over anyelement, a JSON override and a `*/*`
    /// handler for one function.
    fn cache() -> SchemaCache {
        let books = test_cache("books").relation("public", "books").cloned();
        let agg = |name: &str| HandlerKind::Aggregate(q("public", name));
        let geo2 = "application/vnd.geo2+json";
        let rows = CatalogRows {
            media_handlers: vec![
                (
                    HandlerTarget::AnyElement,
                    geo2.into(),
                    handler_of(agg("geo2_agg"), geo2, geo2),
                ),
                (
                    HandlerTarget::Named(q("public", "books")),
                    "application/json".into(),
                    handler_of(agg("books_json"), "application/json", "application/json"),
                ),
                (
                    HandlerTarget::Named(q("public", "any_mt")),
                    "*/*".into(),
                    handler_of(HandlerKind::Value, "*/*", "application/octet-stream"),
                ),
            ],
            ..Default::default()
        };
        let mut cache = crate::schema_cache::build(rows);
        cache.insert_test_relation(books.unwrap());
        cache
    }

    fn pick(target: &str, query: &str, accept: Option<&str>) -> Result<Option<Handler>, ApiError> {
        let headers: Vec<(&str, &str)> = accept.map(|a| ("accept", a)).into_iter().collect();
        let req = api_request::parse("GET", &format!("/{target}{query}"), headers).unwrap();
        handler(&req, &cache(), "public", target)
    }

    #[test]
    fn a_type_only_a_handler_produces() {
        let h = pick("books", "", Some("application/vnd.geo2+json"))
            .unwrap()
            .unwrap();
        assert_eq!(h.kind, HandlerKind::Aggregate(q("public", "geo2_agg")));
        assert_eq!(
            (h.row_type, h.content_type.as_str()),
            (None, "application/vnd.geo2+json")
        );
        // Without a handler it stays PostgREST's 406.
        let e = pick("books", "", Some("application/vnd.other+json")).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
    }

    #[test]
    fn a_relation_handler_overrides_a_builtin_for_whole_rows_only() {
        let h = pick("books", "", Some("application/json"))
            .unwrap()
            .unwrap();
        assert_eq!(h.row_type, Some(q("public", "books")));
        assert_eq!(h.content_type, "application/json; charset=utf-8");
        assert_eq!(
            pick("books", "?select=id", Some("application/json")),
            Ok(None)
        );
        assert_eq!(pick("books", "", None), Ok(None));
        assert_eq!(pick("books", "", Some("text/csv")), Ok(None));
    }

    #[test]
    fn the_first_acceptable_range_wins_and_vendored_types_stay_builtin() {
        assert_eq!(
            pick("books", "", Some("text/csv, application/vnd.geo2+json")),
            Ok(None)
        );
        let h = pick(
            "books",
            "",
            Some("text/csv;q=0.5, application/vnd.geo2+json"),
        )
        .unwrap();
        assert_eq!(h.unwrap().content_type, "application/vnd.geo2+json");
        assert_eq!(
            pick("books", "", Some("application/vnd.pgrst.object+json")),
            Ok(None)
        );
    }

    #[test]
    fn a_star_handler_answers_any_type_as_octet_stream() {
        for accept in ["*/*", "image/boingo", "application/json"] {
            let h = pick("any_mt", "", Some(accept)).unwrap().unwrap();
            assert_eq!(h.kind, HandlerKind::Value);
            assert_eq!(h.content_type, "application/octet-stream");
        }
    }
}
