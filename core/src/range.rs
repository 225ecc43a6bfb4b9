//! Which rows of a read are wanted: `limit` and `offset` query parameters intersected with a
//! `Range: first-last` header (unit `items`), as PostgREST combines them, then capped by
//! `pg_rest.max_rows`. The result is an offset and an optional row count.

use crate::error::ApiError;

/// Rows `offset ..` of a read, at most `limit` of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RowRange {
    pub offset: u64,
    pub limit: Option<u64>,
}

impl RowRange {
    /// The range from the query's `limit`/`offset` texts and the `Range` header value.
    /// A negative limit or a reversed header range is PostgREST's 416 PGRST103; a negative
    /// offset means none, a `Range` header it cannot read is ignored (both as in PostgREST).
    pub fn parse(
        limit: Option<&str>,
        offset: Option<&str>,
        range_header: Option<&str>,
    ) -> Result<RowRange, ApiError> {
        let limit = limit.map(|l| integer("limit", l)).transpose()?;
        if limit.is_some_and(|l| l < 0) {
            return Err(ApiError::range_not_satisfiable(
                "Limit should be greater than or equal to zero.",
            ));
        }
        let offset = offset
            .map(|o| integer("offset", o))
            .transpose()?
            .unwrap_or(0)
            .max(0) as u64;
        let query = RowRange {
            offset,
            limit: limit.map(|l| l as u64),
        };
        match range_header.and_then(parse_range_header) {
            None => Ok(query),
            Some((first, Some(last))) if last < first => Err(ApiError::range_not_satisfiable(
                "The lower boundary must be lower than or equal to the upper boundary in the Range header.",
            )),
            Some((first, last)) => Ok(query.intersect(first, last)),
        }
    }

    /// This range within rows `first ..= last` (`last` None: unbounded).
    fn intersect(self, first: u64, last: Option<u64>) -> RowRange {
        let own_last = self.limit.map(|l| self.offset + l); // one past the end
        let start = self.offset.max(first);
        let end = match (own_last, last.map(|l| l + 1)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        RowRange {
            offset: start,
            limit: end.map(|e| e.saturating_sub(start)),
        }
    }

    /// At most `max_rows` rows (`pg_rest.max_rows`).
    pub fn capped(self, max_rows: Option<u32>) -> RowRange {
        let limit = match (self.limit, max_rows) {
            (Some(l), Some(m)) => Some(l.min(m as u64)),
            (l, m) => l.or(m.map(u64::from)),
        };
        RowRange { limit, ..self }
    }
}

fn integer(name: &str, text: &str) -> Result<i64, ApiError> {
    text.trim().parse().map_err(|_| {
        ApiError::parse_error(
            format!("\"failed to parse {name} parameter ({text})\""),
            format!("{name} must be an integer"),
        )
    })
}

/// `first-last` or `first-` (optionally after `items=`); None when it is not that.
fn parse_range_header(value: &str) -> Option<(u64, Option<u64>)> {
    let value = value.trim();
    let value = value.strip_prefix("items=").unwrap_or(value);
    let (first, last) = value.split_once('-')?;
    let first = first.trim().parse().ok()?;
    let last = match last.trim() {
        "" => None,
        l => Some(l.parse().ok()?),
    };
    Some((first, last))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn range(limit: Option<&str>, offset: Option<&str>, header: Option<&str>) -> RowRange {
        RowRange::parse(limit, offset, header).unwrap()
    }

    #[test]
    fn limit_and_offset() {
        assert_eq!(range(None, None, None), RowRange::default());
        assert_eq!(
            range(Some("3"), Some("2"), None),
            RowRange {
                offset: 2,
                limit: Some(3)
            }
        );
        assert_eq!(range(Some("0"), None, None).limit, Some(0));
        // A negative offset is no offset.
        assert_eq!(range(None, Some("-4"), None).offset, 0);
    }

    #[test]
    fn range_header_alone_and_with_limit() {
        assert_eq!(
            range(None, None, Some("0-1")),
            RowRange {
                offset: 0,
                limit: Some(2)
            }
        );
        assert_eq!(
            range(None, None, Some("10-")),
            RowRange {
                offset: 10,
                limit: None
            }
        );
        assert_eq!(
            range(None, None, Some("items=5-9")),
            RowRange {
                offset: 5,
                limit: Some(5)
            }
        );
        assert_eq!(
            range(Some("3"), None, Some("0-1")),
            RowRange {
                offset: 0,
                limit: Some(2)
            }
        );
        assert_eq!(
            range(Some("3"), Some("2"), Some("0-9")),
            RowRange {
                offset: 2,
                limit: Some(3)
            }
        );
        // Disjoint: nothing.
        assert_eq!(range(None, Some("5"), Some("0-1")).limit, Some(0));
        // Unreadable headers are ignored.
        assert_eq!(range(None, None, Some("bytes=a-b")), RowRange::default());
    }

    #[test]
    fn unsatisfiable_and_malformed() {
        let e = RowRange::parse(Some("-1"), None, None).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (416, "PGRST103"));
        assert_eq!(e.message, "Requested range not satisfiable");
        assert_eq!(
            e.details.as_deref(),
            Some("Limit should be greater than or equal to zero.")
        );
        let e = RowRange::parse(None, None, Some("1-0")).unwrap_err();
        assert_eq!(e.status, 416);
        let e = RowRange::parse(Some("ten"), None, None).unwrap_err();
        assert_eq!((e.status, e.code.as_str()), (400, "PGRST100"));
    }

    #[test]
    fn max_rows_caps_any_limit() {
        assert_eq!(RowRange::default().capped(Some(100)).limit, Some(100));
        assert_eq!(
            range(Some("3"), None, None).capped(Some(100)).limit,
            Some(3)
        );
        assert_eq!(
            range(Some("300"), None, None).capped(Some(100)).limit,
            Some(100)
        );
        assert_eq!(range(Some("3"), None, None).capped(None).limit, Some(3));
    }
}
