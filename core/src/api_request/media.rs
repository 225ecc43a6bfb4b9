//! Content negotiation: the `Accept` header's media types in the client's order of preference
//! (q-values, then position), matched against what the resource can produce.

use crate::error::ApiError;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    /// `application/json` (also what `*/*` gets).
    Json,
    /// `application/vnd.pgrst.array+json`, optionally with `nulls=stripped`.
    ArrayJson {
        nulls_stripped: bool,
    },
    /// `application/vnd.pgrst.object+json`: exactly one row, as an object.
    Object {
        nulls_stripped: bool,
    },
    Csv,
    GeoJson,
    /// `application/openapi+json` (the API description at `/`).
    OpenApi,
    /// `application/vnd.pgrst.plan`: the statement's EXPLAIN.
    Plan {
        text: bool,
    },
}

impl MediaType {
    /// The `Content-Type` of a response in this type.
    pub fn content_type(self) -> &'static str {
        match self {
            // PostgREST answers a plain array request as JSON.
            MediaType::Json
            | MediaType::ArrayJson {
                nulls_stripped: false,
            } => "application/json; charset=utf-8",
            MediaType::ArrayJson {
                nulls_stripped: true,
            } => "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8",
            MediaType::Object {
                nulls_stripped: false,
            } => "application/vnd.pgrst.object+json; charset=utf-8",
            MediaType::Object {
                nulls_stripped: true,
            } => "application/vnd.pgrst.object+json;nulls=stripped; charset=utf-8",
            MediaType::Csv => "text/csv; charset=utf-8",
            MediaType::GeoJson => "application/geo+json; charset=utf-8",
            MediaType::OpenApi => "application/openapi+json; charset=utf-8",
            MediaType::Plan { text: false } => "application/vnd.pgrst.plan+json; charset=utf-8",
            MediaType::Plan { text: true } => "application/vnd.pgrst.plan+text; charset=utf-8",
        }
    }

    pub fn nulls_stripped(self) -> bool {
        matches!(
            self,
            MediaType::ArrayJson {
                nulls_stripped: true
            } | MediaType::Object {
                nulls_stripped: true
            }
        )
    }
}

/// What is being answered: a relation's rows or the API description.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Produces {
    Rows,
    Description,
}

/// The media type to answer in, from the `Accept` header (absent: JSON). 406 PGRST107 when
/// none of the client's types can be produced.
pub fn negotiate(accept: Option<&str>, produces: Produces) -> Result<MediaType, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(default_for(produces));
    };
    let mut ranges: Vec<(f32, usize, &str)> = accept
        .split(',')
        .enumerate()
        .filter_map(|(i, r)| {
            let r = r.trim();
            let q = r
                .split(';')
                .skip(1)
                .find_map(|p| p.trim().strip_prefix("q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            (q > 0.0 && !r.is_empty()).then_some((q, i, r))
        })
        .collect();
    ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    ranges
        .iter()
        .find_map(|(_, _, r)| recognise(r, produces))
        .ok_or_else(|| ApiError::media_type_unavailable(accept))
}

fn default_for(produces: Produces) -> MediaType {
    match produces {
        Produces::Rows => MediaType::Json,
        Produces::Description => MediaType::OpenApi,
    }
}

/// One media range of the header, if this resource can answer in it.
fn recognise(range: &str, produces: Produces) -> Option<MediaType> {
    let mut parts = range.split(';').map(str::trim);
    let essence = parts.next()?.to_ascii_lowercase();
    let params: Vec<(String, String)> = parts
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            (
                k.trim().to_ascii_lowercase(),
                v.trim().trim_matches('"').to_ascii_lowercase(),
            )
        })
        .collect();
    let stripped = params.iter().any(|(k, v)| k == "nulls" && v == "stripped");
    match (essence.as_str(), produces) {
        ("*/*" | "application/*", p) => Some(default_for(p)),
        ("application/json", _) => Some(MediaType::Json),
        ("application/openapi+json", Produces::Description) => Some(MediaType::OpenApi),
        (_, Produces::Description) => None,
        ("application/vnd.pgrst.array+json" | "application/vnd.pgrst.array", _) => {
            Some(MediaType::ArrayJson {
                nulls_stripped: stripped,
            })
        }
        ("application/vnd.pgrst.object+json" | "application/vnd.pgrst.object", _) => {
            Some(MediaType::Object {
                nulls_stripped: stripped,
            })
        }
        ("text/csv", _) => Some(MediaType::Csv),
        ("application/geo+json", _) => Some(MediaType::GeoJson),
        ("application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+json", _) => {
            Some(MediaType::Plan { text: false })
        }
        ("application/vnd.pgrst.plan+text", _) => Some(MediaType::Plan { text: true }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(accept: &str) -> Result<MediaType, ApiError> {
        negotiate(Some(accept), Produces::Rows)
    }

    #[test]
    fn defaults_wildcards_and_order() {
        assert_eq!(negotiate(None, Produces::Rows).unwrap(), MediaType::Json);
        assert_eq!(
            negotiate(None, Produces::Description).unwrap(),
            MediaType::OpenApi
        );
        assert_eq!(rows("text/unknowntype, */*").unwrap(), MediaType::Json);
        assert_eq!(rows("text/csv, */*").unwrap(), MediaType::Csv);
        assert_eq!(rows("text/csv, application/json").unwrap(), MediaType::Csv);
        assert_eq!(
            rows("application/json;q=0.5, text/csv").unwrap(),
            MediaType::Csv
        );
        assert_eq!(
            rows("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8").unwrap(),
            MediaType::Json
        );
        assert_eq!(rows("text/csv; version=1").unwrap(), MediaType::Csv);
    }

    #[test]
    fn pgrst_types_and_nulls_stripped() {
        assert_eq!(
            rows("application/vnd.pgrst.object").unwrap(),
            MediaType::Object {
                nulls_stripped: false
            }
        );
        let m = rows("application/vnd.pgrst.array+json;nulls=stripped").unwrap();
        assert!(m.nulls_stripped());
        assert_eq!(
            m.content_type(),
            "application/vnd.pgrst.array+json;nulls=stripped; charset=utf-8"
        );
    }

    #[test]
    fn unavailable_is_406() {
        let e = rows("text/unknowntype").unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
        assert_eq!(
            e.message,
            "None of these media types are available: text/unknowntype"
        );
        assert!(rows("application/openapi+json").is_err());
        assert!(negotiate(Some("text/csv"), Produces::Description).is_err());
    }
}
