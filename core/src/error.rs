//! The one error type every stage returns, and PostgREST's wire shape for it:
//! `{"code","details","hint","message"}` plus an HTTP status. The SQLSTATE → status table
//! lives here and nowhere else.

use serde_json::json;

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    /// `details` is JSON (PGRST201's list of relationships), not a string.
    pub details_json: bool,
}

impl ApiError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
            details: None,
            hint: None,
            details_json: false,
        }
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    /// PGRST100: the query string could not be parsed.
    pub fn parse_error(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(400, "PGRST100", message).with_details(details)
    }

    /// PGRST107 (406): no media type of the `Accept` header can be produced.
    pub fn media_type_unavailable(accept: &str) -> Self {
        Self::new(
            406,
            "PGRST107",
            format!("None of these media types are available: {accept}"),
        )
    }

    /// PGRST106 (406): the profile names a schema that is not exposed.
    pub fn unacceptable_schema(schema: &str, exposed: &[String]) -> Self {
        ApiError {
            hint: Some(format!(
                "Only the following schemas are exposed: {}",
                exposed.join(", ")
            )),
            ..Self::new(406, "PGRST106", format!("Invalid schema: {schema}"))
        }
    }

    /// PGRST122: unknown preferences with `Prefer: handling=strict`.
    pub fn invalid_preferences(tokens: &str) -> Self {
        Self::new(
            400,
            "PGRST122",
            "Invalid preferences given with handling=strict",
        )
        .with_details(format!("Invalid preferences: {tokens}"))
    }

    /// PGRST116 (406): a singular response (`vnd.pgrst.object`) needs exactly one row.
    pub fn not_singular(rows: i64) -> Self {
        Self::new(
            406,
            "PGRST116",
            "Cannot coerce the result to a single JSON object",
        )
        .with_details(format!("The result contains {rows} rows"))
    }

    /// PGRST108: a parameter names an embedded resource the `select` does not embed.
    pub fn not_embedded(label: &str) -> Self {
        ApiError {
            hint: Some(format!(
                "Verify that '{label}' is included in the 'select' query parameter."
            )),
            ..Self::new(
                400,
                "PGRST108",
                format!("'{label}' is not an embedded resource in this request"),
            )
        }
    }

    /// PGRST118: ordering by a column of an embedded resource that is not to-one.
    pub fn related_order_not_to_one(origin: &str, target: &str) -> Self {
        Self::new(
            400,
            "PGRST118",
            format!("A related order on '{target}' is not possible"),
        )
        .with_details(format!(
            "'{origin}' and '{target}' do not form a many-to-one or one-to-one relationship"
        ))
    }

    /// PGRST200: no relationship between the two relations (with the hint, if given).
    pub fn no_relationship(origin: &str, target: &str, hint: Option<&str>, schema: &str) -> Self {
        let using = hint.map_or(String::new(), |h| format!(" using the hint '{h}'"));
        ApiError {
            hint: None,
            ..Self::new(
                400,
                "PGRST200",
                format!(
                    "Could not find a relationship between '{origin}' and '{target}' in the schema cache"
                ),
            )
            .with_details(format!(
                "Searched for a foreign key relationship between '{origin}' and '{target}'{using} in the schema '{schema}', but no matches were found."
            ))
        }
    }

    /// PGRST201 (300): more than one relationship fits; `details` is the JSON list of them.
    pub fn ambiguous_relationship(
        origin: &str,
        target: &str,
        hints: &[String],
        details: String,
    ) -> Self {
        let choices: Vec<String> = hints.iter().map(|h| format!("'{target}!{h}'")).collect();
        ApiError {
            hint: Some(format!(
                "Try changing '{target}' to one of the following: {}. Find the desired relationship in the 'details' key.",
                choices.join(", ")
            )),
            details_json: true,
            ..Self::new(
                300,
                "PGRST201",
                format!(
                    "Could not embed because more than one relationship was found for '{origin}' and '{target}'"
                ),
            )
            .with_details(details)
        }
    }

    /// PGRST123: aggregates in `select` while `pg_rest.aggregates_enabled` is off.
    pub fn aggregates_disabled() -> Self {
        Self::new(400, "PGRST123", "Use of aggregate functions is not allowed")
    }

    /// PGRST117: a method the endpoint does not support.
    pub fn unsupported_method(method: &str) -> Self {
        Self::new(
            405,
            "PGRST117",
            format!("Unsupported HTTP method: {method}"),
        )
    }

    /// PGRST205: the table or view is not in the schema cache.
    pub fn table_not_found(schema: &str, name: &str) -> Self {
        Self::new(
            404,
            "PGRST205",
            format!("Could not find the table '{schema}.{name}' in the schema cache"),
        )
    }

    /// PGRST103 (416): the rows asked for (limit, offset, `Range`) cannot be given.
    pub fn range_not_satisfiable(details: &str) -> Self {
        Self::new(416, "PGRST103", "Requested range not satisfiable").with_details(details)
    }

    /// PGRST125: a path pg_rest does not serve.
    pub fn invalid_path() -> Self {
        Self::new(404, "PGRST125", "Invalid path specified in request URL")
    }

    /// PGRST302: no token and no `pg_rest.anon_role`.
    pub fn anonymous_disabled() -> Self {
        Self::new(401, "PGRST302", "Anonymous access is disabled")
    }

    /// PGRST300 (500): a token arrived but `pg_rest.jwt_secret` is empty or unusable.
    pub fn jwt_secret_missing() -> Self {
        Self::new(500, "PGRST300", "Server lacks JWT secret")
    }

    /// PGRST301 (401): the token could not be decoded or verified.
    pub fn jwt_decode(message: &str, details: Option<&str>) -> Self {
        ApiError {
            details: details.map(str::to_string),
            ..Self::new(401, "PGRST301", message)
        }
    }

    /// PGRST303 (401): the token's claims are malformed or not valid now / here.
    pub fn jwt_claims(message: &str) -> Self {
        Self::new(401, "PGRST303", message)
    }

    /// The `WWW-Authenticate` header PostgREST sends with this error (RFC 6750): the token's
    /// fault for PGRST301/PGRST303, a plain `Bearer` challenge for any other 401.
    pub fn www_authenticate(&self) -> Option<String> {
        match (self.code.as_str(), self.status) {
            ("PGRST301" | "PGRST303", _) => Some(format!(
                "Bearer error=\"invalid_token\", error_description={}",
                serde_json::Value::String(self.message.clone())
            )),
            (_, 401) => Some("Bearer".to_string()),
            _ => None,
        }
    }

    /// 42703 raised before any SQL runs, worded as PostgreSQL words it.
    pub fn undefined_column(relation: &str, column: &str) -> Self {
        Self::new(
            400,
            "42703",
            format!("column {relation}.{column} does not exist"),
        )
    }

    /// A malformed or over-limit HTTP message, answered before the connection closes.
    /// Its code is `HTTP<status>`: PostgREST has no codes for these (its web server answers
    /// them), and clients branch on the status anyway.
    pub fn protocol(status: u16, message: &str) -> Self {
        Self::new(status, &format!("HTTP{status}"), message)
    }

    /// 408: a client started a request and did not finish it within pg_rest.request_timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            408,
            "HTTP408",
            "Request timeout: the request did not arrive within pg_rest.request_timeout",
        )
    }

    /// 503: the worker already serves pg_rest.max_connections clients.
    pub fn too_many_connections() -> Self {
        Self::new(
            503,
            "HTTP503",
            "Too many connections: this server is at pg_rest.max_connections; retry later",
        )
    }

    /// 503 57P01: the worker stopped this request because it is shutting down; a retry reaches
    /// another worker.
    pub fn shutting_down() -> Self {
        Self::new(
            503,
            "57P01",
            "pg_rest worker shutting down; the request was rolled back, retry it",
        )
    }

    /// 503 PGRST000: no http worker can serve, because of the database (`why` says what);
    /// PostgREST answers so while it cannot reach its database.
    pub fn database_unavailable(why: &str) -> Self {
        Self::new(503, "PGRST000", why)
    }

    /// PGRSTX00: a fault inside pg_rest itself (a caught panic); the request was rolled back.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, "PGRSTX00", message)
    }

    /// 22021, worded as PostgreSQL words it: a request name or value that PostgreSQL text
    /// cannot hold (a NUL byte, or bytes that are not UTF-8); `bytes` is the offending sequence.
    pub fn invalid_byte_sequence(bytes: &[u8]) -> Self {
        let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("0x{b:02x}")).collect();
        Self::new(
            400,
            "22021",
            format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                shown.join(" ")
            ),
        )
    }

    /// A capability of the PostgREST dialect that pg_rest does not implement yet.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(501, "PGRST127", format!("Feature not implemented: {what}"))
    }

    /// An error PostgreSQL raised while running the request's SQL.
    pub fn from_postgres(
        sqlstate: &str,
        message: &str,
        details: Option<&str>,
        hint: Option<&str>,
        authenticated: bool,
    ) -> Self {
        // Switching to a role that does not exist: the token named it, so 401 (PostgREST).
        let unknown_role = sqlstate == "22023"
            && message.starts_with("role ")
            && message.ends_with("does not exist");
        ApiError {
            status: if unknown_role {
                401
            } else {
                sqlstate_status(sqlstate, authenticated)
            },
            code: sqlstate.to_string(),
            message: message.to_string(),
            details: details.map(str::to_string),
            hint: hint.map(str::to_string),
            details_json: false,
        }
    }

    /// The JSON body PostgREST clients parse.
    pub fn to_json(&self) -> String {
        let details = match (&self.details, self.details_json) {
            (Some(d), true) => serde_json::from_str(d).unwrap_or(serde_json::Value::Null),
            (d, _) => json!(d),
        };
        json!({
            "code": self.code,
            "details": details,
            "hint": self.hint,
            "message": self.message,
        })
        .to_string()
    }
}

/// PostgREST's translation of a SQLSTATE into an HTTP status (its "HTTP Status Codes" table).
/// `42501` (insufficient privilege) is 401 for an anonymous caller, so a client knows a token
/// would help, and 403 for an authenticated one.
pub fn sqlstate_status(code: &str, authenticated: bool) -> u16 {
    match code {
        "23503" | "23505" => return 409,
        "21000" => return 500,
        "25006" => return 405,
        "53400" => return 500,
        "P0001" => return 400,
        "42883" | "42P01" => return 404,
        "42P17" => return 500,
        "42501" => return if authenticated { 403 } else { 401 },
        _ => {}
    }
    match code.get(..2).unwrap_or("") {
        "08" | "53" => 503,
        "0L" | "0P" | "28" => 403,
        "09" | "25" | "2D" | "38" | "39" | "3B" | "40" | "54" | "55" | "57" | "58" | "F0"
        | "HV" | "P0" | "XX" => 500,
        _ => 400,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_table_exact_codes_win_over_classes() {
        assert_eq!(sqlstate_status("23505", false), 409);
        assert_eq!(sqlstate_status("23502", false), 400);
        assert_eq!(sqlstate_status("25006", false), 405);
        assert_eq!(sqlstate_status("25001", false), 500);
        assert_eq!(sqlstate_status("53400", false), 500);
        assert_eq!(sqlstate_status("53100", false), 503);
        assert_eq!(sqlstate_status("P0001", false), 400);
        assert_eq!(sqlstate_status("P0002", false), 500);
        assert_eq!(sqlstate_status("42P01", false), 404);
        assert_eq!(sqlstate_status("42703", false), 400);
    }

    #[test]
    fn status_table_classes() {
        assert_eq!(sqlstate_status("08006", false), 503);
        assert_eq!(sqlstate_status("28000", false), 403);
        assert_eq!(sqlstate_status("57014", false), 500);
        assert_eq!(sqlstate_status("22012", false), 400);
        assert_eq!(sqlstate_status("XX000", false), 500);
        assert_eq!(sqlstate_status("", false), 400);
    }

    #[test]
    fn insufficient_privilege_depends_on_authentication() {
        assert_eq!(sqlstate_status("42501", false), 401);
        assert_eq!(sqlstate_status("42501", true), 403);
    }

    #[test]
    fn json_shape_has_exactly_four_keys() {
        let e = ApiError::table_not_found("public", "nope");
        let v: serde_json::Value = serde_json::from_str(&e.to_json()).unwrap();
        let obj = v.as_object().unwrap();
        let mut keys: Vec<_> = obj.keys().cloned().collect();
        keys.sort();
        assert_eq!(keys, ["code", "details", "hint", "message"]);
        assert_eq!(obj["code"], "PGRST205");
        assert_eq!(
            obj["message"],
            "Could not find the table 'public.nope' in the schema cache"
        );
        assert!(obj["details"].is_null() && obj["hint"].is_null());
        assert_eq!(e.status, 404);
    }

    #[test]
    fn postgres_error_keeps_fields() {
        let e = ApiError::from_postgres("22012", "division by zero", Some("d"), None, false);
        assert_eq!(
            (e.status, e.code.as_str(), e.details.as_deref()),
            (400, "22012", Some("d"))
        );
        assert!(e.to_json().contains("\"message\":\"division by zero\""));
    }
}

/// A SQLSTATE's five characters from PostgreSQL's packed form (MAKE_SQLSTATE: 6 bits each,
/// first character lowest).
pub fn unpack_sqlstate(mut packed: i32) -> String {
    (0..5)
        .map(|_| {
            let ch = ((packed & 0x3F) as u8 + b'0') as char;
            packed >>= 6;
            ch
        })
        .collect()
}

#[cfg(test)]
mod sqlstate_tests {
    #[test]
    fn unpacks_postgres_codes() {
        // MAKE_SQLSTATE('2','2','0','1','2') as PostgreSQL computes it.
        let pack = |s: &str| {
            s.bytes()
                .enumerate()
                .map(|(i, b)| ((b - b'0') as i32 & 0x3F) << (6 * i))
                .sum::<i32>()
        };
        for code in ["22012", "57014", "42P01", "XX000", "00000"] {
            assert_eq!(super::unpack_sqlstate(pack(code)), code);
        }
    }
}
