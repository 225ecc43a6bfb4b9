//! The response's media type chosen by the request itself rather than by `Accept`: the path's
//! extension (`/books.csv`, `/books.json`) and the `type` parameter (`?type=text/csv`).
//! Precedence: `type=` over the extension over `Accept`. A `type=` pg_rest cannot produce is
//! kept for a function call (a scalar text/bytea result is then sent raw in that type, which
//! only planning can tell); anywhere else it is 406 here.

use super::media::{self, Accepted, MediaType, Produces};
use super::Resource;
use crate::error::ApiError;

/// What the request asked beyond `Accept`; empty (no allocation) without `type=` or an
/// extension.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Format {
    /// `type=` named a media type pg_rest does not produce, on a function call: sent verbatim
    /// as the `Content-Type` of a raw text/bytea value, else 406.
    pub raw_type: Option<String>,
    /// The path ended in `.csv`/`.json`, stripped from the resource's name; undone by
    /// [`super::ApiRequest::resolve_extension`] when a relation has the whole name.
    pub extension: Option<Extension>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Extension {
    /// The path's last segment as given (`books.csv`).
    pub whole_name: String,
    /// The media type without the extension (from `type=` or `Accept`).
    pub without: (MediaType, Accepted),
}

/// What a request says about its media type.
pub(super) struct Asked<'a> {
    pub type_param: Option<String>,
    /// The whole name and the media type its extension stands for.
    pub extension: Option<(String, &'static str)>,
    pub accept: Option<&'a str>,
    pub produces: Produces,
    /// A function call: a `type=` that does not negotiate may still be a raw result.
    pub call: bool,
}

/// Path extensions and the `Accept` each acts as.
const EXTENSIONS: [(&str, &str); 2] = [(".csv", "text/csv"), (".json", "application/json")];

/// Strips `.csv`/`.json` from a relation's or function's name (`books.csv` → `books`),
/// returning the whole name and the media type it asks for. A bare `.csv` is a name.
pub(super) fn strip_extension(resource: &mut Resource) -> Option<(String, &'static str)> {
    let (Resource::Relation(name) | Resource::Function(name)) = resource else {
        return None;
    };
    let (stem, media) = split_extension(name)?;
    let stem_len = stem.len();
    let whole = name.clone();
    name.truncate(stem_len);
    Some((whole, media))
}

/// `books.csv` → `books` (for OPTIONS, which negotiates nothing).
pub fn stem(name: &str) -> Option<&str> {
    split_extension(name).map(|(stem, _)| stem)
}

fn split_extension(name: &str) -> Option<(&str, &'static str)> {
    EXTENSIONS.iter().find_map(|(suffix, media)| {
        let stem = name.strip_suffix(suffix)?;
        (!stem.is_empty()).then_some((stem, *media))
    })
}

/// What negotiation chose before planning: the media type, what the request asked beyond
/// `Accept`, and what planning needs to consult the schema's media handlers.
pub(super) struct Chosen {
    pub media: MediaType,
    pub format: Format,
    pub accepted: Accepted,
}

/// The media type to answer in and what else the request asked (see the module's doc). For
/// rows, a type pg_rest does not produce is left to planning (`Accepted::unavailable`).
pub(super) fn choose(asked: Asked) -> Result<Chosen, ApiError> {
    let rows = asked.produces == Produces::Rows;
    let Some(type_param) = asked.type_param else {
        let Some((whole_name, ext_media)) = asked.extension else {
            if !rows {
                let media = media::negotiate(asked.accept, asked.produces)?;
                return Ok(chosen(media, Format::default(), Accepted::default()));
            }
            let (media, accepted) = Accepted::negotiate(asked.accept);
            return Ok(chosen(media, Format::default(), accepted));
        };
        let extension = Extension {
            whole_name,
            without: Accepted::negotiate(asked.accept),
        };
        let (media, accepted) = Accepted::negotiate(Some(ext_media));
        return Ok(chosen(media, with_extension(extension), accepted));
    };
    check_type(&type_param)?;
    let (media, accepted) = Accepted::negotiate(Some(&type_param));
    let raw_type = match &accepted.unavailable {
        None => None,
        // The placeholder media is never used: planning either sends the value raw or
        // refuses. A wildcard is no `Content-Type`.
        Some(_) if asked.call && !type_param.contains('*') => Some(type_param.clone()),
        Some(_) if rows => None,
        Some(e) => return Err(e.clone()),
    };
    let accepted = match raw_type {
        // Sent raw unless a handler answers: no 406 from planning.
        Some(_) => Accepted {
            unavailable: None,
            ..accepted
        },
        None => accepted,
    };
    let extension = asked.extension.map(|(whole_name, _)| Extension {
        whole_name,
        without: (media, accepted.clone()),
    });
    let format = Format {
        raw_type,
        extension,
    };
    Ok(chosen(media, format, accepted))
}

fn chosen(media: MediaType, format: Format, accepted: Accepted) -> Chosen {
    Chosen {
        media,
        format,
        accepted,
    }
}

fn with_extension(extension: Extension) -> Format {
    Format {
        raw_type: None,
        extension: Some(extension),
    }
}

/// `type=` names one media type, `type/subtype` with optional `;` parameters, in visible
/// ASCII: it may become a `Content-Type` verbatim, so nothing else (no CR/LF, no list) passes.
fn check_type(value: &str) -> Result<(), ApiError> {
    let essence = value.split(';').next().unwrap_or("").trim();
    let well_formed = essence
        .split_once('/')
        .is_some_and(|(t, s)| is_token(t) && is_token(s))
        && value
            .bytes()
            .all(|b| (b == b' ' || b == b'\t' || b.is_ascii_graphic()) && b != b',');
    if well_formed {
        Ok(())
    } else {
        Err(ApiError::invalid_type_param(value))
    }
}

/// An HTTP token (RFC 9110 `tchar`s), not empty.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The choice as the request sees it once no media handler answers.
    fn pick(asked: Asked) -> Result<(MediaType, Format), ApiError> {
        let c = choose(asked)?;
        c.accepted.check()?;
        Ok((c.media, c.format))
    }

    fn asked<'a>(
        type_param: Option<&str>,
        ext: Option<&'static str>,
        accept: Option<&'a str>,
    ) -> Asked<'a> {
        Asked {
            type_param: type_param.map(str::to_string),
            extension: ext.map(|m| ("books.x".to_string(), m)),
            accept,
            produces: Produces::Rows,
            call: false,
        }
    }

    #[test]
    fn extensions_are_stripped_from_relations_and_functions() {
        let mut r = Resource::Relation("books.csv".into());
        assert_eq!(
            strip_extension(&mut r),
            Some(("books.csv".to_string(), "text/csv"))
        );
        assert_eq!(r, Resource::Relation("books".into()));
        let mut f = Resource::Function("page.json".into());
        assert_eq!(
            strip_extension(&mut f).map(|(_, m)| m),
            Some("application/json")
        );
        assert_eq!(f, Resource::Function("page".into()));
        for name in [".csv", "books", "books.CSV", "books.csv.gz", "books.xml"] {
            let mut r = Resource::Relation(name.into());
            assert_eq!(strip_extension(&mut r), None, "{name}");
            assert_eq!(r, Resource::Relation(name.into()));
        }
        assert_eq!(strip_extension(&mut Resource::Root), None);
        assert_eq!(stem("books.json"), Some("books"));
        assert_eq!(stem("books"), None);
    }

    #[test]
    fn type_over_extension_over_accept() {
        let (m, f) = pick(asked(None, None, Some("text/csv"))).unwrap();
        assert_eq!((m, f), (MediaType::Csv, Format::default()));
        let (m, f) = pick(asked(None, Some("text/csv"), Some("application/json"))).unwrap();
        assert_eq!(m, MediaType::Csv);
        let ext = f.extension.unwrap();
        assert_eq!(ext.whole_name, "books.x");
        assert_eq!(ext.without.0, MediaType::Json);
        let (m, f) = pick(asked(Some("application/json"), Some("text/csv"), None)).unwrap();
        assert_eq!(m, MediaType::Json);
        assert_eq!(f.extension.unwrap().without.0, MediaType::Json);
        let (m, _) = pick(asked(Some("text/csv"), None, Some("application/json"))).unwrap();
        assert_eq!(m, MediaType::Csv);
    }

    #[test]
    fn an_extension_overrides_an_unacceptable_accept() {
        let (m, f) = pick(asked(None, Some("application/json"), Some("image/png"))).unwrap();
        assert_eq!(m, MediaType::Json);
        let without = f.extension.unwrap().without.1.check().unwrap_err();
        assert_eq!((without.status, without.code.as_str()), (406, "PGRST107"));
    }

    #[test]
    fn an_unproducible_type_is_406_except_for_calls() {
        let e = pick(asked(Some("text/html"), None, None)).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
        assert_eq!(
            e.message,
            "None of these media types are available: text/html"
        );
        let mut call = asked(Some("text/html; charset=utf-8"), None, Some("text/csv"));
        call.call = true;
        let (m, f) = pick(call).unwrap();
        assert_eq!(m, MediaType::Json);
        assert_eq!(f.raw_type.as_deref(), Some("text/html; charset=utf-8"));
        let mut wildcard = asked(Some("text/*"), None, None);
        wildcard.call = true;
        assert_eq!(pick(wildcard).unwrap_err().code, "PGRST107");
        // A type pg_rest produces is never raw.
        let mut csv = asked(Some("text/csv"), None, None);
        csv.call = true;
        assert_eq!(pick(csv).unwrap(), (MediaType::Csv, Format::default()));
    }

    #[test]
    fn type_must_be_one_well_formed_media_type() {
        for ok in [
            "text/html",
            "image/png",
            "*/*",
            "application/vnd.pgrst.object+json",
            "text/plain; charset=utf-8",
        ] {
            assert_eq!(check_type(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "html",
            "text/",
            "/html",
            "text/html\r\nSet-Cookie: a=b",
            "text/csv, application/json",
            "text/html;\u{e9}",
            "te xt/html",
        ] {
            let e = check_type(bad).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"), "{bad:?}");
        }
    }
}
