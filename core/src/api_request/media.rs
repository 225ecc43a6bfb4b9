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
    Plan(Plan),
}

/// What a plan request asks to explain, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Plan {
    pub json: bool,
    pub target: PlanTarget,
    pub options: PlanOptions,
}

/// The media type whose statement is explained (`for="…"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlanTarget {
    Json,
    Object,
    Csv,
    GeoJson,
}

impl PlanTarget {
    fn media(self) -> MediaType {
        match self {
            PlanTarget::Json => MediaType::Json,
            PlanTarget::Object => MediaType::Object {
                nulls_stripped: false,
            },
            PlanTarget::Csv => MediaType::Csv,
            PlanTarget::GeoJson => MediaType::GeoJson,
        }
    }

    fn name(self) -> &'static str {
        match self {
            PlanTarget::Json => "application/json",
            PlanTarget::Object => "application/vnd.pgrst.object+json",
            PlanTarget::Csv => "text/csv",
            PlanTarget::GeoJson => "application/geo+json",
        }
    }
}

/// EXPLAIN's options a plan request may ask for (`options=analyze|verbose|…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanOptions {
    pub analyze: bool,
    pub verbose: bool,
    pub settings: bool,
    pub buffers: bool,
    pub wal: bool,
}

impl PlanOptions {
    /// The options set, in PostgREST's order, with their EXPLAIN names.
    pub fn names(self) -> Vec<&'static str> {
        [
            (self.analyze, "analyze"),
            (self.verbose, "verbose"),
            (self.settings, "settings"),
            (self.buffers, "buffers"),
            (self.wal, "wal"),
        ]
        .into_iter()
        .filter_map(|(on, name)| on.then_some(name))
        .collect()
    }

    fn parse(value: &str) -> PlanOptions {
        let mut o = PlanOptions::default();
        for name in value.split('|').map(str::trim) {
            match name {
                "analyze" => o.analyze = true,
                "verbose" => o.verbose = true,
                "settings" => o.settings = true,
                "buffers" => o.buffers = true,
                "wal" => o.wal = true,
                _ => {}
            }
        }
        o
    }
}

impl Plan {
    /// The media type of the explained statement's body.
    pub fn target_media(self) -> MediaType {
        self.target.media()
    }
}

impl MediaType {
    /// The `Content-Type` of a response in this type.
    pub fn content_type(self) -> String {
        if let MediaType::Plan(p) = self {
            let mut t = format!(
                "application/vnd.pgrst.plan+{}; for=\"{}\"",
                if p.json { "json" } else { "text" },
                p.target.name()
            );
            let options = p.options.names();
            if !options.is_empty() {
                t.push_str("; options=");
                t.push_str(&options.join("|"));
            }
            t.push_str("; charset=utf-8");
            return t;
        }
        self.static_content_type().to_string()
    }

    fn static_content_type(self) -> &'static str {
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
            MediaType::Plan(_) => "application/vnd.pgrst.plan",
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
    ranked(accept)
        .into_iter()
        .find_map(|r| recognise(r, produces))
        .ok_or_else(|| ApiError::media_type_unavailable(accept))
}

/// What the client accepts, kept for planning, where the schema's media handlers (see
/// `plan::media`) may answer a type pg_rest does not produce itself, or replace one it does.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Accepted {
    /// The media ranges asked for: `type=`, the path extension's type, or `Accept`.
    pub ranges: Option<String>,
    /// pg_rest produces none of them itself: 406 PGRST107 unless a handler answers.
    pub unavailable: Option<ApiError>,
}

impl Accepted {
    /// `ranges` negotiated for rows: the media type (JSON as a placeholder when none is
    /// produced here) and what planning needs to finish the negotiation.
    pub fn negotiate(ranges: Option<&str>) -> (MediaType, Accepted) {
        let ranges = ranges.filter(|a| !a.trim().is_empty());
        let (media, unavailable) = match negotiate(ranges, Produces::Rows) {
            Ok(m) => (m, None),
            Err(e) => (MediaType::Json, Some(e)),
        };
        let accepted = Accepted {
            ranges: ranges.map(str::to_string),
            unavailable,
        };
        (media, accepted)
    }

    /// The 406 when no handler answers.
    pub fn check(&self) -> Result<(), ApiError> {
        self.unavailable.clone().map_or(Ok(()), Err)
    }
}

/// The media ranges of an `Accept` value, best first: by q-value, then position; q=0 ranges
/// are refused, so left out.
pub fn ranked(accept: &str) -> Vec<&str> {
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
    ranges.into_iter().map(|(_, _, r)| r).collect()
}

/// A range's `type/subtype`, lower case.
pub fn essence(range: &str) -> String {
    range
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// Whether a range names one of PostgREST's own `vnd.pgrst` types, which no handler replaces.
pub fn is_vendored(essence: &str) -> bool {
    essence.starts_with("application/vnd.pgrst.")
}

/// The media type pg_rest produces for rows in answer to one range, if any.
pub fn builtin(range: &str) -> Option<MediaType> {
    recognise(range, Produces::Rows)
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
        ("application/vnd.pgrst.plan" | "application/vnd.pgrst.plan+text", _) => {
            plan(false, &params)
        }
        ("application/vnd.pgrst.plan+json", _) => plan(true, &params),
        _ => None,
    }
}

/// A plan media type's `for` (a media type PostgREST can explain) and `options`.
fn plan(json: bool, params: &[(String, String)]) -> Option<MediaType> {
    let param = |name: &str| {
        params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let target = match param("for") {
        None => PlanTarget::Json,
        Some(f) => match recognise(f, Produces::Rows)? {
            MediaType::Json | MediaType::ArrayJson { .. } => PlanTarget::Json,
            MediaType::Object { .. } => PlanTarget::Object,
            MediaType::Csv => PlanTarget::Csv,
            MediaType::GeoJson => PlanTarget::GeoJson,
            _ => return None,
        },
    };
    Some(MediaType::Plan(Plan {
        json,
        target,
        options: param("options").map(PlanOptions::parse).unwrap_or_default(),
    }))
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
    fn plans_name_their_target_and_options() {
        let m = rows("application/vnd.pgrst.plan").unwrap();
        assert_eq!(
            m.content_type(),
            "application/vnd.pgrst.plan+text; for=\"application/json\"; charset=utf-8"
        );
        let m = rows("application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object\"; options=verbose|analyze").unwrap();
        assert_eq!(
            m.content_type(),
            "application/vnd.pgrst.plan+json; for=\"application/vnd.pgrst.object+json\"; options=analyze|verbose; charset=utf-8"
        );
        let MediaType::Plan(p) = m else { panic!() };
        assert_eq!(
            p.target_media(),
            MediaType::Object {
                nulls_stripped: false
            }
        );
        assert!(rows("application/vnd.pgrst.plan+json; for=\"image/png\"").is_err());
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
