//! The `Prefer` request header (RFC 7240), read once per request. PostgREST's preferences are
//! `name=value` tokens, comma-separated, over any number of `Prefer` headers; a token it does
//! not know is ignored, as RFC 7240 asks. Only the preferences pg_rest honours are kept.

/// How a request's transaction ends (`Prefer: tx=commit|rollback`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TxEnd {
    #[default]
    Commit,
    /// Run everything, answer with the result, then roll back: a dry run.
    Rollback,
}

/// The preferences of one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Preferences {
    /// `tx=`; None when the client did not ask.
    pub tx: Option<TxEnd>,
}

impl Preferences {
    /// Reads every `Prefer` header among `headers` (names lower-case). The first valid value
    /// of a preference wins, as in PostgREST.
    pub fn from_headers<'a>(headers: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut prefs = Preferences::default();
        for token in crate::http1::header_items(headers, "prefer", ',') {
            let (name, value) = token.split_once('=').unwrap_or((token, ""));
            match (name.trim(), value.trim()) {
                ("tx", "commit") => prefs.tx = prefs.tx.or(Some(TxEnd::Commit)),
                ("tx", "rollback") => prefs.tx = prefs.tx.or(Some(TxEnd::Rollback)),
                _ => {}
            }
        }
        prefs
    }

    /// The `Preference-Applied` header value for the preferences honoured, if any.
    pub fn applied(&self) -> Option<String> {
        self.tx.map(|tx| {
            match tx {
                TxEnd::Commit => "tx=commit",
                TxEnd::Rollback => "tx=rollback",
            }
            .to_string()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prefs(headers: &[(&'static str, &'static str)]) -> Preferences {
        Preferences::from_headers(headers.iter().copied())
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
        assert_eq!(p.applied().as_deref(), Some("tx=rollback"));
        let p = prefs(&[("prefer", "count=exact"), ("Prefer", " tx = commit ")]);
        assert_eq!(p.tx, Some(TxEnd::Commit));
    }

    #[test]
    fn first_valid_value_wins_and_unknown_values_are_ignored() {
        let p = prefs(&[("prefer", "tx=maybe, tx=commit, tx=rollback")]);
        assert_eq!(p.tx, Some(TxEnd::Commit));
        assert_eq!(prefs(&[("prefer", "tx")]).tx, None);
    }
}
