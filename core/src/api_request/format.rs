//! The response's media type chosen by the request itself rather than by `Accept`: the path's
//! extension (`/books.csv`, `/books.json`) and the `type` parameter (`?type=text/csv`).
//! Precedence: `type=` over the extension over `Accept`. A `type=` pg_rest cannot produce is
//! kept for a function call (a scalar text/bytea result is then sent raw in that type, which
//! only planning can tell); anywhere else it is 406 here.

use super::media::{self, MediaType, Produces};
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
    /// The media type without the extension (from `type=` or `Accept`), or why there is none.
    pub without: Result<MediaType, ApiError>,
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

/// The media type to answer in and what else the request asked (see the module's doc).
pub(super) fn choose(asked: Asked) -> Result<(MediaType, Format), ApiError> {
    let Some(type_param) = asked.type_param else {
        let Some((whole_name, ext_media)) = asked.extension else {
            return Ok((
                media::negotiate(asked.accept, asked.produces)?,
                Format::default(),
            ));
        };
        let extension = Extension {
            whole_name,
            without: media::negotiate(asked.accept, asked.produces),
        };
        let chosen = media::negotiate(Some(ext_media), asked.produces)?;
        return Ok((chosen, with_extension(extension)));
    };
    check_type(&type_param)?;
    let (chosen, raw_type) = match media::negotiate(Some(&type_param), asked.produces) {
        Ok(m) => (m, None),
        // The placeholder is never used: planning either sends the value raw or refuses. A
        // wildcard is no `Content-Type`.
        Err(_) if asked.call && !type_param.contains('*') => (MediaType::Json, Some(type_param)),
        Err(e) => return Err(e),
    };
    let extension = asked.extension.map(|(whole_name, _)| Extension {
        whole_name,
        without: Ok(chosen),
    });
    Ok((
        chosen,
        Format {
            raw_type,
            extension,
        },
    ))
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
        let (m, f) = choose(asked(None, None, Some("text/csv"))).unwrap();
        assert_eq!((m, f), (MediaType::Csv, Format::default()));
        let (m, f) = choose(asked(None, Some("text/csv"), Some("application/json"))).unwrap();
        assert_eq!(m, MediaType::Csv);
        let ext = f.extension.unwrap();
        assert_eq!(ext.whole_name, "books.x");
        assert_eq!(ext.without, Ok(MediaType::Json));
        let (m, f) = choose(asked(Some("application/json"), Some("text/csv"), None)).unwrap();
        assert_eq!(m, MediaType::Json);
        assert_eq!(f.extension.unwrap().without, Ok(MediaType::Json));
        let (m, _) = choose(asked(Some("text/csv"), None, Some("application/json"))).unwrap();
        assert_eq!(m, MediaType::Csv);
    }

    #[test]
    fn an_extension_overrides_an_unacceptable_accept() {
        let (m, f) = choose(asked(None, Some("application/json"), Some("image/png"))).unwrap();
        assert_eq!(m, MediaType::Json);
        let without = f.extension.unwrap().without.unwrap_err();
        assert_eq!((without.status, without.code.as_str()), (406, "PGRST107"));
    }

    #[test]
    fn an_unproducible_type_is_406_except_for_calls() {
        let e = choose(asked(Some("text/html"), None, None)).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (406, "PGRST107"));
        assert_eq!(
            e.message,
            "None of these media types are available: text/html"
        );
        let mut call = asked(Some("text/html; charset=utf-8"), None, Some("text/csv"));
        call.call = true;
        let (m, f) = choose(call).unwrap();
        assert_eq!(m, MediaType::Json);
        assert_eq!(f.raw_type.as_deref(), Some("text/html; charset=utf-8"));
        let mut wildcard = asked(Some("text/*"), None, None);
        wildcard.call = true;
        assert_eq!(choose(wildcard).unwrap_err().code, "PGRST107");
        // A type pg_rest produces is never raw.
        let mut csv = asked(Some("text/csv"), None, None);
        csv.call = true;
        assert_eq!(choose(csv).unwrap(), (MediaType::Csv, Format::default()));
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
