//! The `Prefer` request header (RFC 7240), read once per request. PostgREST's preferences are
//! `name=value` tokens, comma-separated, over any number of `Prefer` headers. A token it does
//! not know is ignored (`handling=lenient`, the default) or refused with PGRST122
//! (`handling=strict`).

use crate::error::ApiError;

/// How a request's transaction ends (`Prefer: tx=commit|rollback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxEnd {
    #[default]
    Commit,
    /// Run everything, answer with the result, then roll back: a dry run.
    Rollback,
}

/// `Prefer: count=`: how the total behind `Content-Range` is found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Count {
    Exact,
    /// The planner's row estimate.
    Planned,
    /// Exact up to `max_rows`, the planner's estimate beyond.
    Estimated,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Return {
    Minimal,
    HeadersOnly,
    Representation,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    MergeDuplicates,
    IgnoreDuplicates,
}

/// The preferences of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// `tx=`; None when the client did not ask.
    pub tx: Option<TxEnd>,
    pub count: Option<Count>,
    pub return_: Option<Return>,
    pub resolution: Option<Resolution>,
    /// `missing=default`: absent keys take the column default.
    pub missing_default: Option<bool>,
    /// `handling=strict`.
    pub strict: Option<bool>,
    pub timezone: Option<String>,
    pub max_affected: Option<i64>,
}

impl Preferences {
    /// Reads every `Prefer` header among `headers` (names lower-case). The first valid value
    /// of a preference wins, as in PostgREST.
    pub fn from_headers<'a>(
        headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, ApiError> {
        let mut prefs = Preferences::default();
        let mut invalid = Vec::new();
        for token in crate::http1::header_items(headers, "prefer", ',') {
            let (name, value) = token.split_once('=').unwrap_or((token, ""));
            let (name, value) = (name.trim(), value.trim());
            let known = match name {
                "tx" => set(
                    &mut prefs.tx,
                    match value {
                        "commit" => Some(TxEnd::Commit),
                        "rollback" => Some(TxEnd::Rollback),
                        _ => None,
                    },
                ),
                "count" => set(
                    &mut prefs.count,
                    match value {
                        "exact" => Some(Count::Exact),
                        "planned" => Some(Count::Planned),
                        "estimated" => Some(Count::Estimated),
                        _ => None,
                    },
                ),
                "return" => set(
                    &mut prefs.return_,
                    match value {
                        "minimal" => Some(Return::Minimal),
                        "headers-only" => Some(Return::HeadersOnly),
                        "representation" => Some(Return::Representation),
                        _ => None,
                    },
                ),
                "resolution" => set(
                    &mut prefs.resolution,
                    match value {
                        "merge-duplicates" => Some(Resolution::MergeDuplicates),
                        "ignore-duplicates" => Some(Resolution::IgnoreDuplicates),
                        _ => None,
                    },
                ),
                "missing" => set(
                    &mut prefs.missing_default,
                    match value {
                        "default" => Some(true),
                        "null" => Some(false),
                        _ => None,
                    },
                ),
                "handling" => set(
                    &mut prefs.strict,
                    match value {
                        "strict" => Some(true),
                        "lenient" => Some(false),
                        _ => None,
                    },
                ),
                "timezone" => set(
                    &mut prefs.timezone,
                    (!value.is_empty()).then(|| value.to_string()),
                ),
                "max-affected" => set(&mut prefs.max_affected, value.parse().ok()),
                _ => false,
            };
            if !known && !token.trim().is_empty() {
                invalid.push(token.trim().to_string());
            }
        }
        if prefs.strict == Some(true) && !invalid.is_empty() {
            return Err(ApiError::invalid_preferences(&invalid.join(", ")));
        }
        Ok(prefs)
    }

    /// The `Preference-Applied` header value for the preferences honoured, if any
    /// (PostgREST's order).
    pub fn applied(&self) -> Option<String> {
        let items: Vec<String> = [
            self.resolution.map(|r| {
                match r {
                    Resolution::MergeDuplicates => "resolution=merge-duplicates",
                    Resolution::IgnoreDuplicates => "resolution=ignore-duplicates",
                }
                .to_string()
            }),
            self.missing_default
                .map(|d| if d { "missing=default" } else { "missing=null" }.to_string()),
            self.return_.map(|r| {
                match r {
                    Return::Minimal => "return=minimal",
                    Return::HeadersOnly => "return=headers-only",
                    Return::Representation => "return=representation",
                }
                .to_string()
            }),
            self.count.map(|c| {
                match c {
                    Count::Exact => "count=exact",
                    Count::Planned => "count=planned",
                    Count::Estimated => "count=estimated",
                }
                .to_string()
            }),
            self.tx.map(|tx| {
                match tx {
                    TxEnd::Commit => "tx=commit",
                    TxEnd::Rollback => "tx=rollback",
                }
                .to_string()
            }),
            self.strict.map(|s| {
                if s {
                    "handling=strict"
                } else {
                    "handling=lenient"
                }
                .to_string()
            }),
            self.timezone.as_ref().map(|tz| format!("timezone={tz}")),
            // Honoured only with handling=strict.
            self.max_affected
                .filter(|_| self.strict == Some(true))
                .map(|n| format!("max-affected={n}")),
        ]
        .into_iter()
        .flatten()
        .collect();
        (!items.is_empty()).then(|| items.join(", "))
    }
}

/// Keeps the first valid value; true when the value was one the preference knows.
fn set<T>(slot: &mut Option<T>, value: Option<T>) -> bool {
    match value {
        Some(v) => {
            if slot.is_none() {
                *slot = Some(v);
            }
            true
        }
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(headers: &[(&'static str, &'static str)]) -> Preferences {
        Preferences::from_headers(headers.iter().copied()).unwrap()
    }

    #[test]
    fn no_header_no_preference() {
        assert_eq!(prefs(&[("accept", "*/*")]), Preferences::default());
        assert_eq!(Preferences::default().applied(), None);
    }

    #[test]
    fn tx_in_a_list_and_over_headers() {
        let p = prefs(&[("prefer", "return=minimal, tx=rollback")]);
        assert_eq!(p.tx, Some(TxEnd::Rollback));
        assert_eq!(p.applied().as_deref(), Some("return=minimal, tx=rollback"));
        let p = prefs(&[("prefer", "count=exact"), ("Prefer", " tx = commit ")]);
        assert_eq!(p.tx, Some(TxEnd::Commit));
        assert_eq!(p.count, Some(Count::Exact));
    }

    #[test]
    fn first_valid_value_wins_and_unknown_values_are_ignored() {
        let p = prefs(&[("prefer", "tx=maybe, tx=commit, tx=rollback")]);
        assert_eq!(p.tx, Some(TxEnd::Commit));
        assert_eq!(prefs(&[("prefer", "tx")]).tx, None);
        assert_eq!(prefs(&[("prefer", "count=none")]).applied(), None);
    }

    #[test]
    fn strict_handling_refuses_unknown_preferences() {
        let e = Preferences::from_headers([("prefer", "handling=strict, anything")]).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST122"));
        assert_eq!(e.details.as_deref(), Some("Invalid preferences: anything"));
        let p = prefs(&[("prefer", "handling=lenient, anything, count=planned")]);
        assert_eq!(p.count, Some(Count::Planned));
    }
}
