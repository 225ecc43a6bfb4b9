//! The one error type every stage returns, and PostgREST's wire shape for it:
//! `{"code","details","hint","message"}` plus an HTTP status. The SQLSTATE → status table
//! lives here and nowhere else.

use serde_json::json;

/// What went wrong, as PostgREST names it. `entry` is the one table of wire codes and HTTP
/// statuses; errors raised by PostgreSQL keep their SQLSTATE, whose status is
/// [`sqlstate_status`]'s.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    /// PGRST101 (405): a method /rpc does not take.
    InvalidRpcMethod,
    /// PGRST102 (400): a body that is not valid JSON or CSV, or of the wrong shape.
    InvalidBody,
    /// PGRST105 (405): PUT whose filters are not exactly the primary key with `eq`.
    PutFilters,
    /// PGRST114 (400): `limit`/`offset` on PUT.
    PutRange,
    /// PGRST109 (400): `limit`/`offset` on PATCH or DELETE without an `order`.
    LimitWithoutOrder,
    /// PGRST115 (400): a PUT body whose primary key differs from the filters'.
    PutMismatch,
    /// PGRST124 (400): more rows affected than `Prefer: max-affected` allows.
    MaxAffected,
    /// PGRST111 (500): `response.headers` set to something that is not PostgREST's shape.
    InvalidResponseHeaders,
    /// PGRST112 (500): `response.status` set to something that is not a status.
    InvalidResponseStatus,
    /// PGRST121 (500): `RAISE SQLSTATE 'PGRST'` whose message or detail is not valid JSON.
    InvalidRaise,
    /// PGRST202 (404): no function with these parameters.
    FunctionNotFound,
    /// PGRST204 (400): a body or `columns=` key that is no column.
    ColumnNotFound,
    /// PGRST000 (503): no http worker can serve, because of the database.
    DatabaseUnavailable,
    /// PGRST100 (400): the query string could not be parsed.
    ParseError,
    /// PGRST103 (416): the rows asked for cannot be given.
    RangeNotSatisfiable,
    /// PGRST106 (406): a profile names a schema that is not exposed.
    UnacceptableSchema,
    /// PGRST107 (406): no media type of `Accept` can be produced.
    MediaTypeUnavailable,
    /// PGRST108 (400): a parameter names a resource the select does not embed.
    NotEmbedded,
    /// PGRST116 (406): a singular response needs exactly one row.
    NotSingular,
    /// PGRST117 (405): a method the endpoint does not support.
    UnsupportedMethod,
    /// PGRST118 (400): ordering by a to-many embed.
    RelatedOrderNotToOne,
    /// PGRST122 (400): unknown preferences with handling=strict.
    InvalidPreferences,
    /// PGRST123 (400): aggregates while pg_rest.aggregates_enabled is off.
    AggregatesDisabled,
    /// PGRST125 (404): a path pg_rest does not serve.
    InvalidPath,
    /// PGRST127 (501): a feature pg_rest does not implement yet.
    NotImplemented,
    /// PGRST200 (400): no relationship between two relations.
    NoRelationship,
    /// PGRST201 (300): several relationships fit an embed.
    AmbiguousRelationship,
    /// PGRST205 (404): the relation is not in the schema cache.
    TableNotFound,
    /// PGRST300 (500): a token arrived but no key can check it.
    JwtSecretMissing,
    /// PGRST301 (401): the token could not be decoded or verified.
    JwtDecode,
    /// PGRST302 (401): no token and no anonymous role.
    AnonymousDisabled,
    /// PGRST303 (401): the token's claims are not valid.
    JwtClaims,
    /// PGRSTX00 (500): a fault inside pg_rest (a caught panic).
    Internal,
    /// 57P01 (503): the worker stopped the request because it is shutting down.
    ShuttingDown,
    /// A malformed or over-limit HTTP message (`HTTP<status>`): PostgREST has no codes for
    /// these (its web server answers them), and clients branch on the status anyway.
    Http(u16),
    /// An error PostgreSQL raised (or one worded as PostgreSQL words it): its SQLSTATE.
    Sql(String),
}

impl Code {
    /// The wire code and the HTTP status.
    fn entry(&self) -> (&str, u16) {
        match self {
            Code::DatabaseUnavailable => ("PGRST000", 503),
            Code::InvalidRpcMethod => ("PGRST101", 405),
            Code::InvalidBody => ("PGRST102", 400),
            Code::PutFilters => ("PGRST105", 405),
            Code::PutRange => ("PGRST114", 400),
            Code::LimitWithoutOrder => ("PGRST109", 400),
            Code::PutMismatch => ("PGRST115", 400),
            Code::MaxAffected => ("PGRST124", 400),
            Code::InvalidResponseHeaders => ("PGRST111", 500),
            Code::InvalidResponseStatus => ("PGRST112", 500),
            Code::InvalidRaise => ("PGRST121", 500),
            Code::FunctionNotFound => ("PGRST202", 404),
            Code::ColumnNotFound => ("PGRST204", 400),
            Code::ParseError => ("PGRST100", 400),
            Code::RangeNotSatisfiable => ("PGRST103", 416),
            Code::UnacceptableSchema => ("PGRST106", 406),
            Code::MediaTypeUnavailable => ("PGRST107", 406),
            Code::NotEmbedded => ("PGRST108", 400),
            Code::NotSingular => ("PGRST116", 406),
            Code::UnsupportedMethod => ("PGRST117", 405),
            Code::RelatedOrderNotToOne => ("PGRST118", 400),
            Code::InvalidPreferences => ("PGRST122", 400),
            Code::AggregatesDisabled => ("PGRST123", 400),
            Code::InvalidPath => ("PGRST125", 404),
            Code::NotImplemented => ("PGRST127", 501),
            Code::NoRelationship => ("PGRST200", 400),
            Code::AmbiguousRelationship => ("PGRST201", 300),
            Code::TableNotFound => ("PGRST205", 404),
            Code::JwtSecretMissing => ("PGRST300", 500),
            Code::JwtDecode => ("PGRST301", 401),
            Code::AnonymousDisabled => ("PGRST302", 401),
            Code::JwtClaims => ("PGRST303", 401),
            Code::Internal => ("PGRSTX00", 500),
            Code::ShuttingDown => ("57P01", 503),
            Code::Http(status) => (http_code(*status), *status),
            Code::Sql(state) => (state.as_str(), sqlstate_status(state, false)),
        }
    }

    /// The `code` of the error JSON.
    pub fn as_str(&self) -> &str {
        self.entry().0
    }

    pub fn status(&self) -> u16 {
        self.entry().1
    }
}

impl PartialEq<&str> for Code {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `HTTP<status>` for the statuses pg_rest answers protocol errors with.
fn http_code(status: u16) -> &'static str {
    match status {
        400 => "HTTP400",
        408 => "HTTP408",
        411 => "HTTP411",
        413 => "HTTP413",
        414 => "HTTP414",
        417 => "HTTP417",
        431 => "HTTP431",
        501 => "HTTP501",
        503 => "HTTP503",
        505 => "HTTP505",
        _ => "HTTP500",
    }
}

/// The headers and reason phrase of a `RAISE SQLSTATE 'PGRST'` error.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Raised {
    pub headers: Vec<(String, String)>,
    pub status_text: Option<String>,
}

/// An error on its way to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: u16,
    pub code: Code,
    pub message: String,
    pub details: Option<String>,
    pub hint: Option<String>,
    /// `details` is JSON (PGRST201's list of relationships), not a string.
    pub details_json: bool,
    /// What a function asked for with `RAISE SQLSTATE 'PGRST'`; boxed, as errors are returned
    /// by value everywhere and this is rare.
    pub raised: Option<Box<Raised>>,
}

impl ApiError {
    fn new(code: Code, message: impl Into<String>) -> Self {
        ApiError {
            status: code.status(),
            code,
            message: message.into(),
            details: None,
            hint: None,
            details_json: false,
            raised: None,
        }
    }

    fn with_details(mut self, details: impl Into<String>) -> Self {
        self.details = Some(details.into());
        self
    }

    fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// PGRST100: the query string could not be parsed.
    pub fn parse_error(message: impl Into<String>, details: impl Into<String>) -> Self {
        Self::new(Code::ParseError, message).with_details(details)
    }

    /// PGRST100: `type=` is not one media type (it may become a `Content-Type` verbatim).
    pub fn invalid_type_param(value: &str) -> Self {
        Self::parse_error(
            "\"type\" must be one media type",
            format!("Got \"{value}\"; expected type/subtype with optional ;parameters, in visible ASCII"),
        )
    }

    /// PGRST100: a JSONP callback that is not a JavaScript identifier path; never echoed
    /// into a script.
    pub fn invalid_callback(param: &str, name: &str) -> Self {
        Self::parse_error(
            format!("\"{param}\" must be a JavaScript identifier path"),
            format!(
                "Got \"{name}\"; expected identifiers of letters, digits, _ and $, not starting \
                 with a digit, separated by dots (e.g. handle, app.handlers.books)"
            ),
        )
    }

    /// PGRST107 (406): no media type of the `Accept` header can be produced.
    pub fn media_type_unavailable(accept: &str) -> Self {
        Self::new(
            Code::MediaTypeUnavailable,
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
            ..Self::new(
                Code::UnacceptableSchema,
                format!("Invalid schema: {schema}"),
            )
        }
    }

    /// PGRST122: unknown preferences with `Prefer: handling=strict`.
    pub fn invalid_preferences(tokens: &str) -> Self {
        Self::new(
            Code::InvalidPreferences,
            "Invalid preferences given with handling=strict",
        )
        .with_details(format!("Invalid preferences: {tokens}"))
    }

    /// PGRST116 (406): a singular response (`vnd.pgrst.object`) needs exactly one row.
    pub fn not_singular(rows: i64) -> Self {
        Self::new(
            Code::NotSingular,
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
                Code::NotEmbedded,
                format!("'{label}' is not an embedded resource in this request"),
            )
        }
    }

    /// PGRST118: ordering by a column of an embedded resource that is not to-one.
    pub fn related_order_not_to_one(origin: &str, target: &str) -> Self {
        Self::new(
            Code::RelatedOrderNotToOne,
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
            ..Self::new(Code::NoRelationship,
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
            ..Self::new(Code::AmbiguousRelationship,
                format!(
                    "Could not embed because more than one relationship was found for '{origin}' and '{target}'"
                ),
            )
            .with_details(details)
        }
    }

    /// PGRST123: aggregates in `select` while `pg_rest.aggregates_enabled` is off.
    pub fn aggregates_disabled() -> Self {
        Self::new(
            Code::AggregatesDisabled,
            "Use of aggregate functions is not allowed",
        )
    }

    /// PGRST101: `/rpc` takes GET, HEAD and POST only.
    pub fn invalid_rpc_method(method: &str) -> Self {
        Self::new(
            Code::InvalidRpcMethod,
            format!("Cannot use the {method} method on RPC"),
        )
    }

    /// PGRST102: a body that cannot be read.
    pub fn invalid_body(message: &str) -> Self {
        Self::new(Code::InvalidBody, message)
    }

    /// PGRST105: PUT needs exactly its primary key's columns as `eq` filters.
    pub fn put_filters() -> Self {
        Self::new(
            Code::PutFilters,
            "Filters must include all and only primary key columns with 'eq' operators",
        )
    }

    /// PGRST114: `limit`/`offset` on PUT.
    pub fn put_range() -> Self {
        Self::new(
            Code::PutRange,
            "limit/offset querystring parameters are not allowed for PUT",
        )
    }

    /// PGRST109: a limited PATCH or DELETE must say which rows come first.
    pub fn limit_without_order() -> Self {
        Self::new(
            Code::LimitWithoutOrder,
            "A 'limit' was applied without an explicit 'order'",
        )
        .with_hint("Apply an 'order' using unique column(s)")
    }

    /// PGRST115: a PUT body whose key is not the filters'.
    pub fn put_mismatch() -> Self {
        Self::new(
            Code::PutMismatch,
            "Payload values do not match URL in primary key column(s)",
        )
    }

    /// PGRST124: more rows than `max-affected`.
    pub fn max_affected(rows: i64) -> Self {
        Self::new(
            Code::MaxAffected,
            "Query result exceeds max-affected preference constraint",
        )
        .with_details(format!("The query affects {rows} rows"))
    }

    /// PGRST111.
    pub fn invalid_response_headers() -> Self {
        Self::new(
            Code::InvalidResponseHeaders,
            "response.headers guc must be a JSON array composed of objects with a single key and a string value",
        )
    }

    /// PGRST112.
    pub fn invalid_response_status() -> Self {
        Self::new(
            Code::InvalidResponseStatus,
            "response.status guc must be a valid status code",
        )
    }

    /// PGRST121: `RAISE SQLSTATE 'PGRST'` with text that is not PostgREST's JSON.
    pub fn invalid_raise(details: &str, hint: &str) -> Self {
        ApiError {
            hint: Some(hint.to_string()),
            ..Self::new(
                Code::InvalidRaise,
                "Could not parse JSON in the \"RAISE SQLSTATE 'PGRST'\" error",
            )
            .with_details(details)
        }
    }

    /// PGRST204: no such column for a write.
    pub fn column_not_found(relation: &str, column: &str) -> Self {
        Self::new(
            Code::ColumnNotFound,
            format!("Could not find the '{column}' column of '{relation}' in the schema cache"),
        )
    }

    /// PGRST202: no function `schema.name` taking these parameters (`with_body`: a POST,
    /// which could also have called one unnamed json parameter); `close` is what the caller
    /// may have meant (an overload, or a function of a similar name).
    pub fn function_not_found(
        schema: &str,
        name: &str,
        params: &[&str],
        with_body: bool,
        close: Option<String>,
    ) -> Self {
        let list = params.join(", ");
        let called = if params.is_empty() {
            format!("{schema}.{name} without parameters")
        } else {
            format!("{schema}.{name}({list})")
        };
        let mut searched = match params.len() {
            0 => " without parameters".to_string(),
            1 => format!(" with parameter {list}"),
            _ => format!(" with parameters {list}"),
        };
        if with_body {
            searched.push_str(" or with a single unnamed json/jsonb parameter");
        }
        ApiError {
            hint: close.map(|c| format!("Perhaps you meant to call the function {schema}.{c}")),
            ..Self::new(
                Code::FunctionNotFound,
                format!("Could not find the function {called} in the schema cache"),
            )
            .with_details(format!(
                "Searched for the function {schema}.{name}{searched}, but no matches were found in the schema cache."
            ))
        }
    }

    /// PGRST117: a method the endpoint does not support.
    pub fn unsupported_method(method: &str) -> Self {
        Self::new(
            Code::UnsupportedMethod,
            format!("Unsupported HTTP method: {method}"),
        )
    }

    /// PGRST205: the table or view is not in the schema cache.
    /// `close`: the schema's relation most like `name`, if one is (PostgREST's hint).
    pub fn table_not_found(schema: &str, name: &str, close: Option<&str>) -> Self {
        ApiError {
            hint: close.map(|t| format!("Perhaps you meant the table '{schema}.{t}'")),
            ..Self::new(
                Code::TableNotFound,
                format!("Could not find the table '{schema}.{name}' in the schema cache"),
            )
        }
    }

    /// PGRST103 (416): the rows asked for (limit, offset, `Range`) cannot be given.
    pub fn range_not_satisfiable(details: &str) -> Self {
        Self::new(Code::RangeNotSatisfiable, "Requested range not satisfiable")
            .with_details(details)
    }

    /// PGRST125: a path pg_rest does not serve.
    pub fn invalid_path() -> Self {
        Self::new(Code::InvalidPath, "Invalid path specified in request URL")
    }

    /// PGRST302: no token and no `pg_rest.anon_role`.
    pub fn anonymous_disabled() -> Self {
        Self::new(Code::AnonymousDisabled, "Anonymous access is disabled")
    }

    /// PGRST300 (500): a token arrived but `pg_rest.jwt_secret` is empty or unusable.
    pub fn jwt_secret_missing() -> Self {
        Self::new(Code::JwtSecretMissing, "Server lacks JWT secret")
    }

    /// PGRST301 (401): the token could not be decoded or verified.
    pub fn jwt_decode(message: &str, details: Option<&str>) -> Self {
        ApiError {
            details: details.map(str::to_string),
            ..Self::new(Code::JwtDecode, message)
        }
    }

    /// PGRST303 (401): the token's claims are malformed or not valid now / here.
    pub fn jwt_claims(message: &str) -> Self {
        Self::new(Code::JwtClaims, message)
    }

    /// The `WWW-Authenticate` header PostgREST sends with this error (RFC 6750): the token's
    /// fault for PGRST301/PGRST303, a plain `Bearer` challenge for any other 401.
    pub fn www_authenticate(&self) -> Option<String> {
        match (&self.code, self.status) {
            (Code::JwtDecode | Code::JwtClaims, _) => Some(format!(
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
            Code::Sql("42703".into()),
            format!("column {relation}.{column} does not exist"),
        )
    }

    /// A malformed or over-limit HTTP message, answered before the connection closes.
    /// Its code is `HTTP<status>`: PostgREST has no codes for these (its web server answers
    /// them), and clients branch on the status anyway.
    pub fn protocol(status: u16, message: &str) -> Self {
        Self::new(Code::Http(status), message)
    }

    /// 408: a client started a request and did not finish it within pg_rest.request_timeout.
    pub fn request_timeout() -> Self {
        Self::new(
            Code::Http(408),
            "Request timeout: the request did not arrive within pg_rest.request_timeout",
        )
    }

    /// 503: the worker already serves pg_rest.max_connections clients.
    pub fn too_many_connections() -> Self {
        Self::new(
            Code::Http(503),
            "Too many connections: this server is at pg_rest.max_connections; retry later",
        )
    }

    /// 503 57P01: the worker stopped this request because it is shutting down; a retry reaches
    /// another worker.
    pub fn shutting_down() -> Self {
        Self::new(
            Code::ShuttingDown,
            "pg_rest worker shutting down; the request was rolled back, retry it",
        )
    }

    /// 503 PGRST000: no http worker can serve, because of the database (`why` says what);
    /// PostgREST answers so while it cannot reach its database.
    pub fn database_unavailable(why: &str) -> Self {
        Self::new(Code::DatabaseUnavailable, why)
    }

    /// 503 PGRST000: a hot standby cannot run a write (or volatile call) on its primary;
    /// `why` (the details) names the primary and the cause. Reads go on being served.
    pub fn primary_unavailable(why: &str) -> Self {
        Self::new(
            Code::DatabaseUnavailable,
            "This server is a hot standby and could not run the request on its primary",
        )
        .with_details(why)
        .with_hint("Reads are served here; retry the write later, or send it to the primary")
    }

    /// PGRSTX00: a fault inside pg_rest itself (a caught panic); the request was rolled back.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Code::Internal, message)
    }

    /// 22021, worded as PostgreSQL words it: a request name or value that PostgreSQL text
    /// cannot hold (a NUL byte, or bytes that are not UTF-8); `bytes` is the offending sequence.
    pub fn invalid_byte_sequence(bytes: &[u8]) -> Self {
        let shown: Vec<String> = bytes.iter().take(8).map(|b| format!("0x{b:02x}")).collect();
        Self::new(
            Code::Sql("22021".into()),
            format!(
                "invalid byte sequence for encoding \"UTF8\": {}",
                shown.join(" ")
            ),
        )
    }

    /// A capability of the PostgREST dialect that pg_rest does not implement yet.
    pub fn not_implemented(what: &str) -> Self {
        Self::new(
            Code::NotImplemented,
            format!("Feature not implemented: {what}"),
        )
    }

    /// An error PostgreSQL raised while running the request's SQL.
    pub fn from_postgres(
        sqlstate: &str,
        message: &str,
        details: Option<&str>,
        hint: Option<&str>,
        authenticated: bool,
    ) -> Self {
        if sqlstate == "PGRST" {
            return Self::raised(message, details);
        }
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
            code: Code::Sql(sqlstate.to_string()),
            message: message.to_string(),
            details: details.map(str::to_string),
            hint: hint.map(str::to_string),
            details_json: false,
            raised: None,
        }
    }

    /// `RAISE SQLSTATE 'PGRST' USING MESSAGE = '{"code":…,"message":…,"details":…,"hint":…}',
    /// DETAIL = '{"status":…,"headers":{…}}'`: the function decides the whole answer.
    fn raised(message: &str, detail: Option<&str>) -> Self {
        use serde_json::Value;
        const MESSAGE_SHAPE: &str = "MESSAGE must be a JSON object with obligatory keys: 'code', 'message' and optional keys: 'details', 'hint'.";
        const DETAIL_SHAPE: &str = "DETAIL must be a JSON object with obligatory keys: 'status', 'headers' and optional key: 'status_text'.";
        let Ok(Value::Object(m)) = serde_json::from_str::<Value>(message) else {
            return Self::invalid_raise(
                &format!("Invalid JSON value for MESSAGE: '{message}'"),
                MESSAGE_SHAPE,
            );
        };
        let Some(detail) = detail else {
            return Self::invalid_raise("DETAIL is missing in the RAISE statement", DETAIL_SHAPE);
        };
        let Ok(Value::Object(d)) = serde_json::from_str::<Value>(detail) else {
            return Self::invalid_raise(
                &format!("Invalid JSON value for DETAIL: '{detail}'"),
                DETAIL_SHAPE,
            );
        };
        let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_string);
        let status = d
            .get("status")
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .filter(|s| (100..=599).contains(s))
            .unwrap_or(500);
        let headers = d
            .get("headers")
            .and_then(Value::as_object)
            .map(|h| {
                h.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default();
        let raised = Raised {
            headers,
            status_text: text(d.get("status_text")),
        };
        ApiError {
            status,
            code: Code::Sql(text(m.get("code")).unwrap_or_default()),
            message: text(m.get("message")).unwrap_or_default(),
            details: text(m.get("details")),
            hint: text(m.get("hint")),
            details_json: false,
            raised: Some(Box::new(raised)),
        }
    }

    /// The JSON body PostgREST clients parse.
    pub fn to_json(&self) -> String {
        let details = match (&self.details, self.details_json) {
            (Some(d), true) => serde_json::from_str(d).unwrap_or(serde_json::Value::Null),
            (d, _) => json!(d),
        };
        json!({
            "code": self.code.as_str(),
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
    // `RAISE SQLSTATE 'PT402'`: the function picks the status; a code that is not one is 500.
    if let Some(status) = code.strip_prefix("PT") {
        return status
            .parse::<u16>()
            .ok()
            .filter(|s| (100..=599).contains(s))
            .unwrap_or(500);
    }
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
        let e = ApiError::table_not_found("public", "nope", None);
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
    fn raised_pgrst_errors_choose_status_headers_and_body() {
        let e = ApiError::from_postgres(
            "PGRST",
            r#"{"code":"123","message":"ABC","details":"DEF","hint":"XYZ"}"#,
            Some(r#"{"status":332,"status_text":"My Custom Status","headers":{"X-Header":"str"}}"#),
            None,
            false,
        );
        assert_eq!(
            (e.status, e.code.as_str(), e.message.as_str()),
            (332, "123", "ABC")
        );
        let raised = e.raised.unwrap();
        assert_eq!(
            raised.headers,
            [("X-Header".to_string(), "str".to_string())]
        );
        assert_eq!(raised.status_text.as_deref(), Some("My Custom Status"));
        let bad = ApiError::from_postgres("PGRST", "INVALID", Some("{}"), None, false);
        assert_eq!((bad.status, bad.code.as_str()), (500, "PGRST121"));
        assert!(bad
            .hint
            .unwrap()
            .starts_with("MESSAGE must be a JSON object"));
        let missing =
            ApiError::from_postgres("PGRST", r#"{"code":"1","message":"m"}"#, None, None, false);
        assert_eq!(
            missing.details.as_deref(),
            Some("DETAIL is missing in the RAISE statement")
        );
        assert_eq!(sqlstate_status("PT402", false), 402);
        assert_eq!(sqlstate_status("PT40A", false), 500);
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
