//! CORS as PostgREST v16 answers it: src/PostgREST/Cors.hs hands wai-cors a policy for every
//! request with an `Origin`, so the headers, their order and the cases where no CORS header
//! is sent at all follow wai-cors (Network/Wai/Middleware/Cors.hs) with that policy.
//!
//! The policy: origins from `pg_rest.cors_allowed_origins` (empty: any origin, answered with
//! `*` and no credentials); methods GET, POST, PATCH, PUT, DELETE, OPTIONS (wai-cors adds
//! HEAD); the headers a preflight asks for, plus `Authorization`; a day's max age; and
//! failures ignored: a request the policy does not cover gets the application's response
//! without CORS headers instead of an error.

/// The methods a preflight may ask for: PostgREST's list, then wai-cors's simple methods
/// not already in it (`union`).
const METHODS: [&str; 7] = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS", "HEAD"];

/// wai-cors's simple request headers, except `Content-Type` (a preflight must ask for it).
const SIMPLE_HEADERS: [&str; 3] = ["Accept", "Accept-Language", "Content-Language"];

/// Response headers a browser script may read (PostgREST's `corsExposedHeaders`).
const EXPOSED_HEADERS: &str = "Content-Encoding, Content-Location, Content-Range, Content-Type, \
                               Date, Location, Server, Transfer-Encoding, Range-Unit";

/// How long a browser may cache a preflight's answer, in seconds.
const MAX_AGE: &str = "86400";

/// Headers for the response, as (name, value).
pub type Headers = Vec<(&'static str, String)>;

/// What to do with a request, CORS-wise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Handle the request as usual and add these headers (possibly none) to its response.
    Ordinary(Headers),
    /// A preflight: answer 200 with an empty body and exactly these headers.
    Preflight(Headers),
}

/// The parsed `pg_rest.cors_allowed_origins`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Cors {
    /// `None`: any origin.
    origins: Option<Vec<String>>,
}

impl Cors {
    /// A comma-separated list of origins, each trimmed. Empty (PostgREST's default) or `*`
    /// allows any origin. PostgREST itself would take `*` as a literal origin that no browser
    /// sends; pg_rest reads it as the wildcard it looks like.
    pub fn parse(setting: &str) -> Cors {
        let origins: Vec<String> = setting
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(String::from)
            .collect();
        let any = origins.is_empty() || origins.iter().any(|o| o == "*");
        Cors {
            origins: (!any).then_some(origins),
        }
    }

    /// The whole decision for a request: its method and its `Origin`,
    /// `Access-Control-Request-Method` and `Access-Control-Request-Headers` headers.
    pub fn decide(
        &self,
        method: &str,
        origin: Option<&str>,
        request_method: Option<&str>,
        request_headers: Option<&str>,
    ) -> Decision {
        match origin {
            // wai-cors answers every OPTIONS with an Origin as a preflight; one it cannot
            // answer goes to the application, without CORS headers.
            Some(origin) if method == "OPTIONS" => {
                match self.preflight(origin, request_method, request_headers) {
                    Some(headers) => Decision::Preflight(headers),
                    None => Decision::Ordinary(Vec::new()),
                }
            }
            origin => Decision::Ordinary(self.response_headers(origin)),
        }
    }

    /// Headers to add to the response to an ordinary (not OPTIONS) request: none without an
    /// `Origin` or for an origin not allowed.
    pub fn response_headers(&self, origin: Option<&str>) -> Headers {
        let Some(mut headers) = origin.and_then(|o| self.origin_headers(o)) else {
            return Vec::new();
        };
        headers.push(("Access-Control-Expose-Headers", EXPOSED_HEADERS.to_string()));
        headers
    }

    /// The headers of the answer to a preflight (an OPTIONS request with this `Origin`), or
    /// `None` when wai-cors would not answer it: an origin not allowed, no or an unsupported
    /// `Access-Control-Request-Method`, or requested headers it cannot read.
    pub fn preflight(
        &self,
        origin: &str,
        request_method: Option<&str>,
        request_headers: Option<&str>,
    ) -> Option<Headers> {
        let mut headers = self.origin_headers(origin)?;
        if !METHODS.contains(&request_method?) {
            return None;
        }
        headers.push(("Access-Control-Allow-Methods", METHODS.join(", ")));
        if let Some(requested) = request_headers {
            headers.push(("Access-Control-Allow-Headers", allowed_headers(requested)?));
        }
        headers.push(("Access-Control-Max-Age", MAX_AGE.to_string()));
        Some(headers)
    }

    /// `Access-Control-Allow-Origin` (and credentials for a listed origin), or `None` for an
    /// origin not allowed.
    fn origin_headers(&self, origin: &str) -> Option<Headers> {
        match &self.origins {
            None => Some(vec![("Access-Control-Allow-Origin", "*".to_string())]),
            Some(list) if list.iter().any(|o| o == origin) => Some(vec![
                ("Access-Control-Allow-Origin", origin.to_string()),
                ("Access-Control-Allow-Credentials", "true".to_string()),
            ]),
            Some(_) => None,
        }
    }
}

/// `Access-Control-Allow-Headers` for a preflight asking for `requested`: `Authorization`,
/// the requested names as sent, then the simple headers not among them (Haskell's `union`,
/// case-insensitive). `None` when wai-cors's parse of the list finds a name PostgREST's
/// plain comma split does not (a name with a space or separator inside).
fn allowed_headers(requested: &str) -> Option<String> {
    let mut allowed: Vec<&str> = vec!["Authorization"];
    // Haskell's `split` gives no element for an empty string.
    if !requested.is_empty() {
        allowed.extend(requested.split(',').map(|h| h.trim_matches(is_space)));
    }
    let covered = |name: &str, list: &[&str]| list.iter().any(|a| a.eq_ignore_ascii_case(name));
    if !parsed_names(requested).iter().all(|n| covered(n, &allowed)) {
        return None;
    }
    for simple in SIMPLE_HEADERS {
        if !covered(simple, &allowed) {
            allowed.push(simple);
        }
    }
    Some(allowed.join(", "))
}

/// wai-cors's `httpHeaderNameListParser` on a header list: leading space, then names each
/// followed by optional space, separated by commas with no space after them. Parsing stops
/// (successfully) at the first place it cannot go on, so only the names before it count.
fn parsed_names(list: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = list.trim_start_matches(is_space);
    loop {
        let len = rest.find(|c| !is_name_char(c)).unwrap_or(rest.len());
        if len == 0 {
            break;
        }
        names.push(&rest[..len]);
        rest = rest[len..].trim_start_matches(is_space);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    names
}

/// A character of an HTTP header name (RFC 2616's token).
fn is_name_char(c: char) -> bool {
    ('!'..='~').contains(&c) && !"()<>@,;:\\\"/[]?={}".contains(c)
}

/// Haskell's `isSpace` on the ASCII range.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

#[cfg(test)]
mod tests {
    use super::*;

    const METHODS_VALUE: &str = "GET, POST, PATCH, PUT, DELETE, OPTIONS, HEAD";
    const EXPOSED: &str = "Content-Encoding, Content-Location, Content-Range, Content-Type, Date, Location, Server, Transfer-Encoding, Range-Unit";

    fn h(pairs: &[(&'static str, &str)]) -> Headers {
        pairs.iter().map(|(n, v)| (*n, v.to_string())).collect()
    }

    fn two_origins() -> Cors {
        Cors::parse("http://example.com, http://example2.com")
    }

    #[test]
    fn parses_the_setting() {
        assert_eq!(Cors::parse("").origins, None);
        assert_eq!(Cors::parse(" , ").origins, None);
        assert_eq!(Cors::parse("*").origins, None);
        assert_eq!(
            two_origins().origins,
            Some(vec![
                "http://example.com".into(),
                "http://example2.com".into()
            ])
        );
    }

    #[test]
    fn naive_permissive_preflight() {
        // CorsSpec "replies naively and permissively to preflight request".
        let cors = Cors::parse("");
        let headers = cors.preflight("http://example.com", Some("POST"), Some("Foo,Bar"));
        assert_eq!(
            headers,
            Some(h(&[
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", METHODS_VALUE),
                (
                    "Access-Control-Allow-Headers",
                    "Authorization, Foo, Bar, Accept, Accept-Language, Content-Language"
                ),
                ("Access-Control-Max-Age", "86400"),
            ]))
        );
    }

    #[test]
    fn preflight_from_a_listed_origin() {
        // 1702: the origin echoed, with credentials.
        let d = two_origins().decide(
            "OPTIONS",
            Some("http://example.com"),
            Some("POST"),
            Some("Content-Type"),
        );
        assert_eq!(
            d,
            Decision::Preflight(h(&[
                ("Access-Control-Allow-Origin", "http://example.com"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Methods", METHODS_VALUE),
                (
                    "Access-Control-Allow-Headers",
                    "Authorization, Content-Type, Accept, Accept-Language, Content-Language"
                ),
                ("Access-Control-Max-Age", "86400"),
            ]))
        );
    }

    #[test]
    fn empty_setting_allows_any_origin() {
        // 1703
        let d = Cors::parse("").decide(
            "OPTIONS",
            Some("http://anyorigin.com"),
            Some("POST"),
            Some("Content-Type"),
        );
        let Decision::Preflight(headers) = d else {
            panic!("not a preflight: {d:?}")
        };
        assert_eq!(headers[0], ("Access-Control-Allow-Origin", "*".to_string()));
        assert!(headers
            .iter()
            .all(|(n, _)| *n != "Access-Control-Allow-Credentials"));
        let methods = &headers
            .iter()
            .find(|(n, _)| *n == "Access-Control-Allow-Methods")
            .unwrap()
            .1;
        assert!(methods.contains("POST"));
    }

    #[test]
    fn ordinary_requests() {
        // CorsSpec "exposes necessary response headers to regular request".
        assert_eq!(
            Cors::parse("").response_headers(Some("http://example.com")),
            h(&[
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Expose-Headers", EXPOSED)
            ])
        );
        // "GET no preflight request should return Access-Control-Allow-Origin equal to origin"
        assert_eq!(
            two_origins().decide("GET", Some("http://example2.com"), None, None),
            Decision::Ordinary(h(&[
                ("Access-Control-Allow-Origin", "http://example2.com"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Expose-Headers", EXPOSED),
            ]))
        );
        // 1704: an origin not listed gets nothing.
        assert_eq!(
            two_origins().decide("GET", Some("http://invalid.com"), None, None),
            Decision::Ordinary(vec![])
        );
        // No Origin: not a CORS request.
        assert_eq!(
            Cors::parse("").decide("GET", None, None, None),
            Decision::Ordinary(vec![])
        );
        // Origins compare exactly.
        assert!(two_origins()
            .response_headers(Some("http://EXAMPLE.com"))
            .is_empty());
    }

    #[test]
    fn options_that_are_not_answered_as_preflights() {
        let any = Cors::parse("");
        // CorsSpec "allows INFO body through": no Access-Control-Request-Method.
        assert_eq!(
            any.decide("OPTIONS", Some("http://localhost:8000"), None, None),
            Decision::Ordinary(vec![])
        );
        // No Origin at all.
        assert_eq!(
            any.decide("OPTIONS", None, Some("POST"), None),
            Decision::Ordinary(vec![])
        );
        // A method outside the policy (compared exactly, as wai-cors does).
        assert_eq!(any.preflight("http://a", Some("TRACE"), None), None);
        assert_eq!(any.preflight("http://a", Some("post"), None), None);
        // An origin not listed.
        assert_eq!(
            two_origins().preflight("http://invalid.com", Some("GET"), None),
            None
        );
    }

    #[test]
    fn preflight_without_requested_headers_has_no_allow_headers() {
        let headers = Cors::parse("")
            .preflight("http://a", Some("GET"), None)
            .unwrap();
        assert_eq!(
            headers,
            h(&[
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", METHODS_VALUE),
                ("Access-Control-Max-Age", "86400"),
            ])
        );
    }

    #[test]
    fn requested_headers() {
        // Trimmed, kept as sent, simple ones not repeated (case-insensitively).
        assert_eq!(
            allowed_headers(" x-custom ,accept").as_deref(),
            Some("Authorization, x-custom, accept, Accept-Language, Content-Language")
        );
        assert_eq!(
            allowed_headers("").as_deref(),
            Some("Authorization, Accept, Accept-Language, Content-Language")
        );
        assert_eq!(
            allowed_headers("Authorization").as_deref(),
            Some("Authorization, Authorization, Accept, Accept-Language, Content-Language")
        );
        // A name with a space inside is not one wai-cors can match: not answered.
        assert_eq!(allowed_headers("Foo Bar"), None);
        assert_eq!(
            Cors::parse("").preflight("http://a", Some("GET"), Some("Foo Bar")),
            None
        );
    }

    #[test]
    fn header_name_list_parsing() {
        assert_eq!(parsed_names("Foo,Bar"), ["Foo", "Bar"]);
        assert_eq!(parsed_names("  Foo ,Bar  "), ["Foo", "Bar"]);
        // No space allowed after a comma: parsing stops there.
        assert_eq!(parsed_names("Foo, Bar"), ["Foo"]);
        assert_eq!(parsed_names("Foo;x"), ["Foo"]);
        assert!(parsed_names("").is_empty());
    }
}
