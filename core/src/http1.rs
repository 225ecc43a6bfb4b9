//! HTTP/1.1 server-side codec, sans-io.
//!
//! [`decode`] parses the first request out of a connection's read buffer, so the event loop
//! simply calls it each time bytes arrive and drops `consumed` bytes after each complete
//! request (which makes pipelining and requests split at any byte work). What is worth
//! remembering between calls over the same growing buffer is kept in a [`DecodeProgress`] by
//! [`decode_resuming`]: how much of an incomplete head was already parsed (the head is parsed
//! again only once another line of it has ended, so a head trickled byte by byte costs at most
//! one parse per line, not one per byte) and how far a chunked body was validated (so many
//! tiny chunks over many reads cost linear time).
//! [`encode_response`] appends a whole response to a write buffer.
//!
//! Framing follows RFC 9112: `Content-Length` or `Transfer-Encoding: chunked` bodies (never
//! both: that is rejected as a request-smuggling vector), leading empty lines before the
//! request-line are skipped, keep-alive defaults per HTTP version with `Connection` overrides,
//! and `Expect: 100-continue` is surfaced to the caller. Nothing here panics.

use httparse::Status;

/// Limits applied while decoding; from the pg_rest.max_header_size / max_body_size settings.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_size: usize,
    pub max_body_size: usize,
}

pub use crate::request::Request;

/// What HTTP/1.1 framing says about the connection beyond the request itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    /// 0 or 1.
    pub minor_version: u8,
    pub keep_alive: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Decoded {
    /// A whole request; `consumed` bytes of the buffer belong to it.
    Request {
        request: Request,
        framing: Framing,
        consumed: usize,
    },
    /// More bytes needed. `send_continue` is true when the head is complete, it carries
    /// `Expect: 100-continue`, and the body has not fully arrived: the caller then writes
    /// CONTINUE_RESPONSE once (it tracks that itself).
    Incomplete {
        head_complete: bool,
        send_continue: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpError {
    /// 400: malformed syntax, bad Content-Length, bad chunk, both CL and TE, etc.
    /// The str says why, for the response body.
    BadRequest(&'static str),
    /// 431: head (request line + headers) exceeds max_header_size, or more than
    /// MAX_HEADERS headers.
    HeaderTooLarge,
    /// 413: declared Content-Length, or decoded chunked size so far, exceeds max_body_size —
    /// detected as soon as known, without waiting for the body.
    PayloadTooLarge,
    /// 501: a Transfer-Encoding other than chunked.
    NotImplemented,
    /// 505: HTTP version other than 1.0/1.1 (incl. the HTTP/2 preface "PRI * HTTP/2.0").
    VersionNotSupported,
}

impl HttpError {
    /// The response status code for this error.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::BadRequest(_) => 400,
            HttpError::HeaderTooLarge => 431,
            HttpError::PayloadTooLarge => 413,
            HttpError::NotImplemented => 501,
            HttpError::VersionNotSupported => 505,
        }
    }

    /// A human-readable explanation, for the response body.
    pub fn message(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) => why,
            HttpError::HeaderTooLarge => "request header fields too large",
            HttpError::PayloadTooLarge => "request body too large",
            HttpError::NotImplemented => "transfer-encoding not implemented",
            HttpError::VersionNotSupported => "HTTP version not supported",
        }
    }
}

/// The items of every header named `name` (case-insensitive), split at `separator`, in order:
/// how list-valued headers (`Prefer`, `Cookie`) are read.
pub fn header_items<'a>(
    headers: impl IntoIterator<Item = (&'a str, &'a str)>,
    name: &'a str,
    separator: char,
) -> impl Iterator<Item = &'a str> {
    headers
        .into_iter()
        .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
        .flat_map(move |(_, value)| value.split(separator))
}

/// Most header fields accepted in one request head (and in one chunked trailer section).
pub const MAX_HEADERS: usize = 100;

/// The interim response written once when a request carries `Expect: 100-continue`.
pub const CONTINUE_RESPONSE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";

/// Longest accepted chunk-size line (size, extensions and CRLF). Chunk extensions are
/// ignored, so this only stops a client from streaming an endless extension.
const MAX_CHUNK_LINE: usize = 1024;

/// What [`decode_resuming`] remembers of an incomplete request between calls over the same
/// (grown) buffer. Reset it (`Default`) once a request is complete or failed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DecodeProgress {
    /// Length of the buffer when its head was last parsed and found incomplete; 0: not yet.
    /// Until a new line ends past it, parsing again cannot complete the head, so it is not
    /// repeated (a malformed line is then reported once it ends, or at the size limit).
    head_seen: usize,
    chunk: ChunkProgress,
    /// Parses of the head, for the tests that keep them linear.
    #[cfg(test)]
    head_parses: u32,
}

/// How far an incomplete chunked body has been validated, so the next call continues from
/// there: without it, a body of many tiny chunks arriving over many reads would be re-scanned
/// from its start each time (quadratic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ChunkProgress {
    /// Offset of the next chunk-size line, 0 when nothing was validated yet.
    pos: usize,
    /// Data bytes in the chunks before `pos`.
    total: u64,
    /// Framing bytes before `pos`.
    overhead: usize,
}

/// Parse the first request in `buf`.
pub fn decode(buf: &[u8], limits: &Limits) -> Result<Decoded, HttpError> {
    decode_resuming(buf, limits, &mut DecodeProgress::default())
}

/// [`decode`] for a connection that calls again as more bytes of the same request arrive;
/// `progress` carries what earlier calls learnt (see [`DecodeProgress`]).
pub fn decode_resuming(
    buf: &[u8],
    limits: &Limits,
    progress: &mut DecodeProgress,
) -> Result<Decoded, HttpError> {
    let head_incomplete = Decoded::Incomplete {
        head_complete: false,
        send_continue: false,
    };
    if progress.head_seen > 0
        && !buf
            .get(progress.head_seen..)
            .unwrap_or_default()
            .contains(&b'\n')
    {
        return if buf.len() > limits.max_header_size {
            Err(HttpError::HeaderTooLarge)
        } else {
            Ok(head_incomplete)
        };
    }
    #[cfg(test)]
    {
        progress.head_parses += 1;
    }
    // Uninitialised slots: httparse writes the ones it fills, so the 3 kB of empty headers
    // are not zeroed for every request.
    let mut header_slots = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut parsed = httparse::Request::new(&mut []);
    let head_len = match parsed.parse_with_uninit_headers(buf, &mut header_slots) {
        Ok(Status::Complete(n)) => n,
        Ok(Status::Partial) => {
            if buf.len() > limits.max_header_size {
                return Err(HttpError::HeaderTooLarge);
            }
            progress.head_seen = buf.len();
            return Ok(head_incomplete);
        }
        Err(e) => return Err(parse_error(e, buf)),
    };
    let progress = &mut progress.chunk;
    if head_len > limits.max_header_size {
        return Err(HttpError::HeaderTooLarge);
    }
    let (Some(method), Some(target), Some(minor_version)) =
        (parsed.method, parsed.path, parsed.version)
    else {
        // httparse sets all three on a complete parse.
        return Err(HttpError::BadRequest("invalid request line"));
    };

    let mut content_length: Option<u64> = None;
    let mut has_te = false;
    let mut chunked_count = 0usize;
    let mut other_coding = false;
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut expect_continue = false;
    for h in parsed.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            content_length = Some(parse_content_length(h.value, content_length)?);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            has_te = true;
            for coding in list_elements(h.value) {
                if coding.eq_ignore_ascii_case(b"chunked") {
                    chunked_count += 1;
                } else {
                    other_coding = true;
                }
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in list_elements(h.value) {
                if token.eq_ignore_ascii_case(b"close") {
                    conn_close = true;
                } else if token.eq_ignore_ascii_case(b"keep-alive") {
                    conn_keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("expect")
            && trim_ows(h.value).eq_ignore_ascii_case(b"100-continue")
        {
            expect_continue = true;
        }
    }

    let chunked = if has_te {
        if content_length.is_some() {
            return Err(HttpError::BadRequest(
                "both Content-Length and Transfer-Encoding",
            ));
        }
        if minor_version == 0 {
            // RFC 9112 §6.1: Transfer-Encoding in an HTTP/1.0 message means faulty framing.
            return Err(HttpError::BadRequest(
                "Transfer-Encoding in an HTTP/1.0 request",
            ));
        }
        if other_coding {
            return Err(HttpError::NotImplemented);
        }
        if chunked_count != 1 {
            return Err(HttpError::BadRequest("invalid Transfer-Encoding"));
        }
        true
    } else {
        false
    };

    let keep_alive = if minor_version == 1 {
        !conn_close
    } else {
        conn_keep_alive && !conn_close
    };
    let incomplete_body = Decoded::Incomplete {
        head_complete: true,
        send_continue: expect_continue && minor_version == 1,
    };

    let (body, consumed) = if chunked {
        if progress.pos < head_len {
            *progress = ChunkProgress {
                pos: head_len,
                total: 0,
                overhead: 0,
            };
        }
        let (end, total) = match walk_chunked(buf, limits, progress, None)? {
            Some(done) => done,
            None => return Ok(incomplete_body),
        };
        let capacity = usize::try_from(total).map_err(|_| HttpError::PayloadTooLarge)?;
        let mut body = Vec::with_capacity(capacity);
        // Second walk over bytes already validated: copies the chunk data.
        let mut from_start = ChunkProgress {
            pos: head_len,
            total: 0,
            overhead: 0,
        };
        match walk_chunked(buf, limits, &mut from_start, Some(&mut body))? {
            Some((end2, _)) if end2 == end => {}
            _ => return Err(HttpError::BadRequest("invalid chunked body")),
        }
        (body, end)
    } else if let Some(len) = content_length {
        if len > limits.max_body_size as u64 {
            return Err(HttpError::PayloadTooLarge);
        }
        let len = usize::try_from(len).map_err(|_| HttpError::PayloadTooLarge)?;
        let end = head_len
            .checked_add(len)
            .ok_or(HttpError::PayloadTooLarge)?;
        match buf.get(head_len..end) {
            Some(bytes) => (bytes.to_vec(), end),
            None => return Ok(incomplete_body),
        }
    } else {
        (Vec::new(), head_len)
    };

    let mut headers = Vec::with_capacity(parsed.headers.len());
    for h in parsed.headers.iter() {
        let value = String::from_utf8_lossy(trim_ows(h.value)).into_owned();
        headers.push((h.name.to_ascii_lowercase(), value));
    }
    Ok(Decoded::Request {
        request: Request {
            method: method.to_owned(),
            target: target.to_owned(),
            headers,
            body,
        },
        framing: Framing {
            minor_version,
            keep_alive,
        },
        consumed,
    })
}

/// Map an httparse error to a response; a well-formed but unsupported `HTTP/x.y` is 505.
fn parse_error(e: httparse::Error, buf: &[u8]) -> HttpError {
    match e {
        httparse::Error::TooManyHeaders => HttpError::HeaderTooLarge,
        httparse::Error::Version if version_token_looks_like_http(buf) => {
            HttpError::VersionNotSupported
        }
        httparse::Error::Version => HttpError::BadRequest("invalid HTTP version"),
        httparse::Error::HeaderName => HttpError::BadRequest("invalid header name"),
        httparse::Error::HeaderValue => HttpError::BadRequest("invalid header value"),
        httparse::Error::NewLine => HttpError::BadRequest("invalid line ending"),
        httparse::Error::Status | httparse::Error::Token => {
            HttpError::BadRequest("invalid request line")
        }
    }
}

/// Whether the last token of the request line starts like an HTTP-version (`HTTP/<digit>`).
fn version_token_looks_like_http(buf: &[u8]) -> bool {
    let start = buf
        .iter()
        .position(|&b| b != b'\r' && b != b'\n')
        .unwrap_or(buf.len());
    let line = buf.get(start..).unwrap_or_default();
    let end = line
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(line.len());
    let line = line.get(..end).unwrap_or_default();
    let token = match line.iter().rposition(|&b| b == b' ') {
        Some(i) => line.get(i + 1..).unwrap_or_default(),
        None => return false,
    };
    token.starts_with(b"HTTP/") && token.get(5).is_some_and(u8::is_ascii_digit)
}

/// Parse one Content-Length field value (possibly a list of identical values, RFC 9110 §8.6)
/// and merge it with what earlier Content-Length fields said.
fn parse_content_length(value: &[u8], previous: Option<u64>) -> Result<u64, HttpError> {
    const INVALID: HttpError = HttpError::BadRequest("invalid Content-Length");
    let mut result = previous;
    let mut any = false;
    for element in value.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            return Err(INVALID);
        }
        let mut n: u64 = 0;
        for &b in element {
            if !b.is_ascii_digit() {
                return Err(INVALID);
            }
            n = n
                .checked_mul(10)
                .and_then(|n| n.checked_add(u64::from(b - b'0')))
                .ok_or(INVALID)?;
        }
        match result {
            Some(prev) if prev != n => {
                return Err(HttpError::BadRequest("conflicting Content-Length values"))
            }
            _ => result = Some(n),
        }
        any = true;
    }
    match result {
        Some(n) if any => Ok(n),
        _ => Err(INVALID),
    }
}

/// Non-empty, OWS-trimmed elements of a comma-separated field value.
fn list_elements(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|e| !e.is_empty())
}

/// Strip leading and trailing spaces and tabs.
fn trim_ows(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// Walk a chunked body starting at `start`. Returns `Ok(None)` while incomplete, or the end
/// offset of the whole message (after the trailer section) and the decoded body length.
/// With `sink`, chunk data is appended to it as it is walked.
fn walk_chunked(
    buf: &[u8],
    limits: &Limits,
    progress: &mut ChunkProgress,
    mut sink: Option<&mut Vec<u8>>,
) -> Result<Option<(usize, u64)>, HttpError> {
    const BAD_SIZE: HttpError = HttpError::BadRequest("invalid chunk size");
    // Framing bytes (size lines, CRLFs, trailers) allowed on top of the data, so a body made of
    // tiny chunks cannot make the caller buffer far more than max_body_size.
    let overhead_cap = limits.max_header_size.saturating_add(limits.max_body_size);
    let ChunkProgress {
        mut pos,
        mut total,
        mut overhead,
    } = *progress;
    loop {
        // Each loop starts at a chunk boundary: remember it for the next call.
        *progress = ChunkProgress {
            pos,
            total,
            overhead,
        };
        let rest = buf.get(pos..).unwrap_or_default();
        match rest.first() {
            None => return Ok(None),
            Some(b) if !b.is_ascii_hexdigit() => return Err(BAD_SIZE),
            Some(_) => {}
        }
        let (line_len, size) = match httparse::parse_chunk_size(rest) {
            Ok(Status::Complete(found)) => found,
            Ok(Status::Partial) => {
                if rest.len() > MAX_CHUNK_LINE {
                    return Err(HttpError::BadRequest("chunk size line too long"));
                }
                return Ok(None);
            }
            Err(_) => return Err(BAD_SIZE),
        };
        if line_len > MAX_CHUNK_LINE {
            return Err(HttpError::BadRequest("chunk size line too long"));
        }
        overhead = overhead.saturating_add(line_len);
        pos += line_len;

        if size == 0 {
            let trailer_len = match trailer_section(buf.get(pos..).unwrap_or_default(), limits)? {
                Some(n) => n,
                None => return Ok(None),
            };
            if overhead.saturating_add(trailer_len) > overhead_cap {
                return Err(HttpError::PayloadTooLarge);
            }
            return Ok(Some((pos + trailer_len, total)));
        }

        total = total.checked_add(size).ok_or(HttpError::PayloadTooLarge)?;
        if total > limits.max_body_size as u64 {
            return Err(HttpError::PayloadTooLarge);
        }
        let size = usize::try_from(size).map_err(|_| HttpError::PayloadTooLarge)?;
        let data_end = pos.checked_add(size).ok_or(HttpError::PayloadTooLarge)?;
        let Some(data) = buf.get(pos..data_end) else {
            return Ok(None);
        };
        match buf.get(data_end..) {
            Some([b'\r', b'\n', ..]) => {}
            Some([] | [b'\r']) | None => return Ok(None),
            Some(_) => return Err(HttpError::BadRequest("missing CRLF after chunk data")),
        }
        if let Some(out) = sink.as_deref_mut() {
            out.extend_from_slice(data);
        }
        overhead = overhead.saturating_add(2);
        if overhead > overhead_cap {
            return Err(HttpError::PayloadTooLarge);
        }
        pos = data_end + 2;
    }
}

/// Length of the trailer section (trailer fields and the final empty line) at the start of
/// `rest`, or `None` while incomplete. Trailer fields are validated and ignored.
fn trailer_section(rest: &[u8], limits: &Limits) -> Result<Option<usize>, HttpError> {
    // Fast path: no trailers.
    match rest {
        [b'\r', b'\n', ..] => return Ok(Some(2)),
        [] | [b'\r'] => return Ok(None),
        _ => {}
    }
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    match httparse::parse_headers(rest, &mut slots) {
        Ok(Status::Complete((n, _))) => {
            if n > limits.max_header_size {
                Err(HttpError::HeaderTooLarge)
            } else {
                Ok(Some(n))
            }
        }
        Ok(Status::Partial) => {
            if rest.len() > limits.max_header_size {
                Err(HttpError::HeaderTooLarge)
            } else {
                Ok(None)
            }
        }
        Err(httparse::Error::TooManyHeaders) => Err(HttpError::HeaderTooLarge),
        Err(_) => Err(HttpError::BadRequest("invalid chunked trailer")),
    }
}

/// Append a whole response. Writes the status line (HTTP/1.1 + reason phrase), the given
/// headers, `Content-Length: body.len()` (always, also for HEAD, so HEAD reports the GET length),
/// `Connection: close` when !keep_alive, a blank line, and the body unless `head_only`.
/// Callers never pass Content-Length or Connection themselves.
///
/// Exception required by RFC 9110 §8.6/§15.4.5: 1xx, 204 and 304 responses carry neither
/// Content-Length nor body bytes (those statuses have no content by definition).
pub fn encode_response(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
    keep_alive: bool,
) {
    encode_response_with_reason(out, status, None, headers, body, head_only, keep_alive);
}

/// [`encode_response`] with a reason phrase of the caller's (CR and LF dropped), else the
/// status's standard one.
pub fn encode_response_with_reason(
    out: &mut Vec<u8>,
    status: u16,
    reason: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
    head_only: bool,
    keep_alive: bool,
) {
    let no_content = matches!(status, 100..=199 | 204 | 304);
    let length = (!no_content).then_some(Length::Bytes(body.len()));
    encode_head(out, status, reason, headers, length, keep_alive);
    if !head_only && !no_content {
        out.extend_from_slice(body);
    }
}

/// The head of a streamed response (`Transfer-Encoding: chunked`): chunks follow as the
/// stream's pieces come (`stream::chunk`), then `stream::last_chunk`.
pub fn encode_stream_head(
    out: &mut Vec<u8>,
    status: u16,
    headers: &[(&str, &str)],
    keep_alive: bool,
) {
    encode_head(
        out,
        status,
        None,
        headers,
        Some(Length::Chunked),
        keep_alive,
    );
}

/// How a response's body is delimited.
#[derive(Clone, Copy)]
enum Length {
    Bytes(usize),
    Chunked,
}

fn encode_head(
    out: &mut Vec<u8>,
    status: u16,
    reason: Option<&str>,
    headers: &[(&str, &str)],
    length: Option<Length>,
    keep_alive: bool,
) {
    let custom: Option<String> =
        reason.map(|r| r.chars().filter(|c| *c != '\r' && *c != '\n').collect());
    let reason = custom.as_deref().unwrap_or_else(|| reason_phrase(status));
    let mut size = 9 + 5 + reason.len() + 2 + 2 + 28 + 32;
    for (name, value) in headers {
        size += name.len() + value.len() + 4;
    }
    if let Some(Length::Bytes(n)) = length {
        size += n;
    }
    out.reserve(size);

    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    // A name or value with CR or LF would split the response (header injection through a
    // value a client or a function chose): such a header is left out.
    let safe = |s: &str| !s.bytes().any(|b| b == b'\r' || b == b'\n');
    for (name, value) in headers.iter().filter(|(n, v)| safe(n) && safe(v)) {
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    match length {
        Some(Length::Bytes(n)) => {
            out.extend_from_slice(b"Content-Length: ");
            push_decimal(out, n as u64);
            out.extend_from_slice(b"\r\n");
        }
        Some(Length::Chunked) => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        None => {}
    }
    if !keep_alive {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// Append `n` in decimal without going through `fmt`.
fn push_decimal(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}

/// Standard reason phrase ("OK", "Not Found", "Request Header Fields Too Large", ...);
/// "Unknown" otherwise.
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        102 => "Processing",
        103 => "Early Hints",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        207 => "Multi-Status",
        208 => "Already Reported",
        226 => "IM Used",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        305 => "Use Proxy",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        402 => "Payment Required",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        407 => "Proxy Authentication Required",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Payload Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        418 => "I'm a teapot",
        421 => "Misdirected Request",
        422 => "Unprocessable Entity",
        423 => "Locked",
        424 => "Failed Dependency",
        425 => "Too Early",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        451 => "Unavailable For Legal Reasons",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        506 => "Variant Also Negotiates",
        507 => "Insufficient Storage",
        508 => "Loop Detected",
        510 => "Not Extended",
        511 => "Network Authentication Required",
        _ => "Unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: Limits = Limits {
        max_header_size: 8192,
        max_body_size: 1024 * 1024,
    };

    fn complete(buf: &[u8]) -> (Request, usize) {
        let (request, _, consumed) = complete_framed(buf);
        (request, consumed)
    }

    fn complete_framed(buf: &[u8]) -> (Request, Framing, usize) {
        match decode(buf, &LIMITS) {
            Ok(Decoded::Request {
                request,
                framing,
                consumed,
            }) => (request, framing, consumed),
            other => panic!("expected a complete request, got {other:?}"),
        }
    }

    fn err(buf: &[u8]) -> HttpError {
        err_with(buf, &LIMITS)
    }

    fn err_with(buf: &[u8], limits: &Limits) -> HttpError {
        match decode(buf, limits) {
            Err(e) => e,
            other => panic!("expected an error, got {other:?}"),
        }
    }

    fn incomplete(buf: &[u8]) -> (bool, bool) {
        match decode(buf, &LIMITS) {
            Ok(Decoded::Incomplete {
                head_complete,
                send_continue,
            }) => (head_complete, send_continue),
            other => panic!("expected Incomplete, got {other:?}"),
        }
    }

    fn keep_alive(buf: &[u8]) -> bool {
        complete_framed(buf).1.keep_alive
    }

    #[test]
    fn simple_get() {
        let buf = b"GET /books?id=eq.1 HTTP/1.1\r\nHost: localhost\r\n\r\n";
        let (req, consumed) = complete(buf);
        assert_eq!(consumed, buf.len());
        assert_eq!(
            req,
            Request {
                method: "GET".into(),
                target: "/books?id=eq.1".into(),
                headers: vec![("host".into(), "localhost".into())],
                body: Vec::new(),
            }
        );
    }

    #[test]
    fn headers_lower_cased_trimmed_ordered_duplicates_kept() {
        let buf = b"GET / HTTP/1.1\r\nHOST: x\r\nAccept:   application/json  \r\nX-Dup: a\r\nx-dup: b\r\nContent-Type:text/csv\r\n\r\n";
        let (req, _) = complete(buf);
        assert_eq!(
            req.headers,
            vec![
                ("host".to_string(), "x".to_string()),
                ("accept".to_string(), "application/json".to_string()),
                ("x-dup".to_string(), "a".to_string()),
                ("x-dup".to_string(), "b".to_string()),
                ("content-type".to_string(), "text/csv".to_string()),
            ]
        );
        assert_eq!(req.header("x-dup"), Some("a"));
        assert_eq!(req.header("accept"), Some("application/json"));
        assert_eq!(req.header("prefer"), None);
    }

    #[test]
    fn empty_header_value_and_non_utf8_value() {
        let (req, _) = complete(b"GET / HTTP/1.1\r\nX-Empty:\r\nX-Latin: caf\xe9\r\n\r\n");
        assert_eq!(req.header("x-empty"), Some(""));
        assert_eq!(req.header("x-latin"), Some("caf\u{fffd}"));
    }

    #[test]
    fn keep_alive_defaults() {
        assert!(keep_alive(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!keep_alive(b"GET / HTTP/1.0\r\n\r\n"));
        assert_eq!(
            complete_framed(b"GET / HTTP/1.0\r\n\r\n").1.minor_version,
            0
        );
    }

    #[test]
    fn keep_alive_connection_overrides() {
        assert!(!keep_alive(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n"));
        assert!(!keep_alive(b"GET / HTTP/1.1\r\nConnection: CLOSE\r\n\r\n"));
        assert!(!keep_alive(
            b"GET / HTTP/1.1\r\nConnection: Upgrade, Close\r\n\r\n"
        ));
        assert!(keep_alive(
            b"GET / HTTP/1.1\r\nConnection: keep-alive, Upgrade\r\n\r\n"
        ));
        assert!(keep_alive(
            b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"
        ));
        assert!(keep_alive(
            b"GET / HTTP/1.0\r\nConnection: Upgrade ,keep-alive\r\n\r\n"
        ));
        assert!(!keep_alive(
            b"GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n"
        ));
        // Across several Connection fields, close wins.
        assert!(!keep_alive(
            b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n"
        ));
        // Tokens are matched whole, not as substrings.
        assert!(keep_alive(b"GET / HTTP/1.1\r\nConnection: closed\r\n\r\n"));
        assert!(!keep_alive(
            b"GET / HTTP/1.0\r\nConnection: keep-alive-ish\r\n\r\n"
        ));
    }

    #[test]
    fn pipelining_three_requests() {
        let buf = b"POST /a HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
GET /b HTTP/1.1\r\n\r\n\
PUT /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n";
        let mut rest: &[u8] = buf;
        let mut seen = Vec::new();
        while !rest.is_empty() {
            let (req, consumed) = complete(rest);
            assert!(consumed > 0 && consumed <= rest.len());
            seen.push((req.method, req.target, req.body));
            rest = &rest[consumed..];
        }
        assert_eq!(
            seen,
            vec![
                ("POST".to_string(), "/a".to_string(), b"hello".to_vec()),
                ("GET".to_string(), "/b".to_string(), Vec::new()),
                ("PUT".to_string(), "/c".to_string(), b"abc".to_vec()),
            ]
        );
    }

    #[test]
    fn pipelined_partial_second_request() {
        let first = b"GET /a HTTP/1.1\r\n\r\n";
        let mut buf = first.to_vec();
        buf.extend_from_slice(b"GET /b HT");
        let (req, consumed) = complete(&buf);
        assert_eq!(req.target, "/a");
        assert_eq!(consumed, first.len());
        assert_eq!(incomplete(&buf[consumed..]), (false, false));
    }

    /// Every strict prefix is Incomplete (head_complete once the head is in), the whole buffer
    /// is exactly one request consuming everything.
    fn check_every_split(buf: &[u8], head_len: usize, body: &[u8]) {
        for i in 0..buf.len() {
            let (head_complete, send_continue) = incomplete(&buf[..i]);
            assert_eq!(head_complete, i >= head_len, "prefix length {i}");
            assert!(!send_continue, "prefix length {i}");
        }
        let (req, consumed) = complete(buf);
        assert_eq!(consumed, buf.len());
        assert_eq!(req.body, body);
        // Any trailing bytes (the next pipelined request) do not change the result.
        let mut more = buf.to_vec();
        more.extend_from_slice(b"GET / HTTP/1.1\r\n\r\n");
        let (req2, consumed2) = complete(&more);
        assert_eq!((req2, consumed2), (req, consumed));
    }

    #[test]
    fn every_split_point_content_length() {
        let head = b"POST /rpc/f HTTP/1.1\r\nHost: h\r\nContent-Length: 13\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(b"{\"a\": \"b c\"}");
        buf.push(b'\n');
        check_every_split(&buf, head.len(), b"{\"a\": \"b c\"}\n");
    }

    #[test]
    fn every_split_point_chunked() {
        let head = b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(
            b"5;name=val\r\nhello\r\nA\r\n, world!!!\r\n0\r\nX-Trailer: t\r\n\r\n",
        );
        check_every_split(&buf, head.len(), b"hello, world!!!");
    }

    #[test]
    fn every_split_point_chunked_without_trailers() {
        let head = b"POST /t HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        let mut buf = head.to_vec();
        buf.extend_from_slice(b"1\r\na\r\n10\r\n0123456789abcdef\r\n0\r\n\r\n");
        check_every_split(&buf, head.len(), b"a0123456789abcdef");
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let buf = b"POST / HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n\
4;ext=1;other=\"q s\"\r\nWiki\r\n\
5 ; foo\r\npedia\r\n\
e\r\n in\r\n\r\nchunks.\r\n\
0;last\r\nExpires: never\r\nX-Checksum: abc\r\n\r\nGET";
        let (req, consumed) = complete(buf);
        assert_eq!(req.body, b"Wikipedia in\r\n\r\nchunks.");
        assert_eq!(consumed, buf.len() - 3);
        // Trailer fields are ignored, not merged into the headers.
        assert_eq!(req.header("expires"), None);
    }

    #[test]
    fn chunked_uppercase_hex_and_empty_body() {
        let (req, _) = complete(
            b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n\r\n",
        );
        assert_eq!(req.body, b"abcdefghijklmnopqrstuvwxyz");
        let buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET";
        let (req, consumed) = complete(buf);
        assert!(req.body.is_empty());
        assert_eq!(consumed, buf.len() - 3);
    }

    #[test]
    fn no_body_framing_means_empty_body() {
        let buf = b"POST /x HTTP/1.1\r\n\r\nGET /y HTTP/1.1\r\n\r\n";
        let (req, consumed) = complete(buf);
        assert!(req.body.is_empty());
        assert_eq!(consumed, 20);
        let (req, _) = complete(b"DELETE /x HTTP/1.1\r\nContent-Length: 0\r\n\r\n");
        assert!(req.body.is_empty());
    }

    #[test]
    fn leading_empty_lines_are_skipped_and_consumed() {
        let buf = b"\r\n\r\nGET / HTTP/1.1\r\n\r\n";
        let (req, consumed) = complete(buf);
        assert_eq!(req.target, "/");
        assert_eq!(consumed, buf.len());
        let (req, consumed) = complete(b"\nGET / HTTP/1.1\r\n\r\n");
        assert_eq!((req.method.as_str(), consumed), ("GET", 19));
        assert_eq!(incomplete(b"\r\n"), (false, false));
        assert_eq!(incomplete(b""), (false, false));
    }

    #[test]
    fn head_request_decodes_like_get() {
        let (req, _) = complete(b"HEAD /books HTTP/1.1\r\n\r\n");
        assert_eq!(req.method, "HEAD");
        assert!(req.body.is_empty());
    }

    #[test]
    fn encode_head_reports_length_without_body() {
        let mut out = Vec::new();
        encode_response(
            &mut out,
            200,
            &[("Content-Type", "application/json")],
            b"[{\"id\":1}]",
            true,
            true,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 10\r\n\r\n"
        );
    }

    #[test]
    fn a_custom_reason_phrase_replaces_the_standard_one() {
        let mut out = Vec::new();
        encode_response_with_reason(&mut out, 332, Some("My\r\nStatus"), &[], b"", false, true);
        assert!(out.starts_with(b"HTTP/1.1 332 MyStatus\r\n"));
    }

    #[test]
    fn headers_with_cr_or_lf_are_left_out() {
        let mut out = Vec::new();
        encode_response(
            &mut out,
            200,
            &[
                ("X-A", "1\r\nSet-Cookie: evil=1"),
                ("X-B", "2"),
                ("X-C\n", "3"),
            ],
            b"",
            false,
            true,
        );
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("evil") && !text.contains("X-A") && !text.contains("X-C"));
        assert!(text.contains("X-B: 2\r\n"));
    }

    #[test]
    fn encode_200_byte_exact() {
        let mut out = b"previous".to_vec();
        encode_response(
            &mut out,
            200,
            &[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Content-Range", "0-0/*"),
            ],
            b"[{\"id\":1}]",
            false,
            true,
        );
        assert_eq!(
            out,
            b"previousHTTP/1.1 200 OK\r\n\
Content-Type: application/json; charset=utf-8\r\n\
Content-Range: 0-0/*\r\n\
Content-Length: 10\r\n\
\r\n\
[{\"id\":1}]"
        );
    }

    #[test]
    fn encode_close_byte_exact() {
        let mut out = Vec::new();
        encode_response(&mut out, 404, &[], b"", false, false);
        assert_eq!(
            out,
            b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_response(
            &mut out,
            400,
            &[("Content-Type", "text/plain")],
            b"bad",
            false,
            false,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbad"
        );
    }

    #[test]
    fn encode_no_content_statuses_have_no_length_or_body() {
        let mut out = Vec::new();
        encode_response(
            &mut out,
            204,
            &[("Preference-Applied", "x")],
            b"",
            false,
            true,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 204 No Content\r\nPreference-Applied: x\r\n\r\n"
        );
        let mut out = Vec::new();
        encode_response(&mut out, 304, &[], b"ignored", false, false);
        assert_eq!(
            out,
            b"HTTP/1.1 304 Not Modified\r\nConnection: close\r\n\r\n"
        );
    }

    #[test]
    fn encode_large_length_and_unknown_status() {
        let body = vec![b'x'; 1_234_567];
        let mut out = Vec::new();
        encode_response(&mut out, 299, &[], &body, false, true);
        let head = b"HTTP/1.1 299 Unknown\r\nContent-Length: 1234567\r\n\r\n";
        assert_eq!(&out[..head.len()], head);
        assert_eq!(out.len(), head.len() + body.len());
    }

    #[test]
    fn encoded_response_round_trips_through_httparse() {
        let mut out = Vec::new();
        encode_response(
            &mut out,
            201,
            &[("Location", "/t?id=eq.1")],
            b"{}",
            false,
            true,
        );
        let mut slots = [httparse::EMPTY_HEADER; 8];
        let mut resp = httparse::Response::new(&mut slots);
        let n = match resp.parse(&out) {
            Ok(Status::Complete(n)) => n,
            other => panic!("{other:?}"),
        };
        assert_eq!(resp.code, Some(201));
        assert_eq!(resp.reason, Some("Created"));
        assert_eq!(&out[n..], b"{}");
    }

    #[test]
    fn header_too_large_complete_head() {
        let limits = Limits {
            max_header_size: 64,
            max_body_size: 1024,
        };
        let mut buf = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        buf.extend(std::iter::repeat_n(b'a', 100));
        buf.extend_from_slice(b"\r\n\r\n");
        assert_eq!(err_with(&buf, &limits), HttpError::HeaderTooLarge);
        // Exactly at the limit is fine.
        let exact = b"GET / HTTP/1.1\r\nX: 1\r\n\r\n";
        let limits = Limits {
            max_header_size: exact.len(),
            max_body_size: 0,
        };
        assert!(matches!(
            decode(exact, &limits),
            Ok(Decoded::Request { .. })
        ));
    }

    #[test]
    fn header_too_large_partial_head_detected_immediately() {
        let limits = Limits {
            max_header_size: 64,
            max_body_size: 1024,
        };
        let mut buf = b"GET / HTTP/1.1\r\nX-Long: ".to_vec();
        buf.extend(std::iter::repeat_n(b'a', 40));
        assert_eq!(buf.len(), 64);
        assert!(matches!(
            decode(&buf, &limits),
            Ok(Decoded::Incomplete {
                head_complete: false,
                ..
            })
        ));
        buf.push(b'a');
        assert_eq!(err_with(&buf, &limits), HttpError::HeaderTooLarge);
        // A long request-target with no end in sight.
        let mut buf = b"GET /".to_vec();
        buf.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(err_with(&buf, &limits), HttpError::HeaderTooLarge);
        // Endless empty lines count too.
        assert_eq!(
            err_with(&b"\r\n".repeat(40), &limits),
            HttpError::HeaderTooLarge
        );
    }

    #[test]
    fn header_too_large_too_many_headers() {
        let mut buf = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..MAX_HEADERS {
            buf.extend_from_slice(format!("X-H{i}: v\r\n").as_bytes());
        }
        let mut ok = buf.clone();
        ok.extend_from_slice(b"\r\n");
        assert_eq!(complete(&ok).0.headers.len(), MAX_HEADERS);
        buf.extend_from_slice(b"X-One-More: v\r\n\r\n");
        assert_eq!(err(&buf), HttpError::HeaderTooLarge);
        // Also while the head is still partial.
        let partial = &buf[..buf.len() - 2];
        assert_eq!(err(partial), HttpError::HeaderTooLarge);
    }

    #[test]
    fn payload_too_large_content_length_before_body() {
        let limits = Limits {
            max_header_size: 8192,
            max_body_size: 10,
        };
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 11\r\n\r\n";
        assert_eq!(err_with(buf, &limits), HttpError::PayloadTooLarge);
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 99999999999999999\r\n\r\n";
        assert_eq!(err_with(buf, &limits), HttpError::PayloadTooLarge);
        // At the limit is accepted.
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789";
        assert!(matches!(decode(buf, &limits), Ok(Decoded::Request { .. })));
    }

    #[test]
    fn payload_too_large_chunked_growing() {
        let limits = Limits {
            max_header_size: 8192,
            max_body_size: 10,
        };
        let head = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut buf = head.clone();
        buf.extend_from_slice(b"6\r\nabcdef\r\n");
        assert!(matches!(
            decode(&buf, &limits),
            Ok(Decoded::Incomplete {
                head_complete: true,
                ..
            })
        ));
        // The size line of the second chunk alone pushes the total past the limit.
        buf.extend_from_slice(b"5\r\n");
        assert_eq!(err_with(&buf, &limits), HttpError::PayloadTooLarge);
        // A single huge chunk declared up front.
        let mut buf = head.clone();
        buf.extend_from_slice(b"ffffffffffffffff\r\n");
        assert_eq!(err_with(&buf, &limits), HttpError::PayloadTooLarge);
        // Exactly at the limit is fine.
        let mut buf = head;
        buf.extend_from_slice(b"6\r\nabcdef\r\n4\r\nghij\r\n0\r\n\r\n");
        match decode(&buf, &limits) {
            Ok(Decoded::Request { request, .. }) => assert_eq!(request.body, b"abcdefghij"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn chunked_framing_overhead_is_bounded() {
        let limits = Limits {
            max_header_size: 16,
            max_body_size: 16,
        };
        let mut buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let limits_head = Limits {
            max_header_size: buf.len(),
            ..limits
        };
        // 1-byte chunks with long extensions: 16 data bytes but far more framing.
        for _ in 0..3 {
            buf.extend_from_slice(b"1;aaaaaaaaaaaaaaaa\r\nx\r\n");
        }
        assert_eq!(err_with(&buf, &limits_head), HttpError::PayloadTooLarge);
    }

    #[test]
    fn bad_request_garbage() {
        assert!(matches!(
            err(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"hello world\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"GET / HTTP/1.1\r\nBad Header: x\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"GET / HTTP/1.1\r\nX: a\x00b\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"\rGET / HTTP/1.1\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        // Lower-case "http" is not an HTTP-version (400, not 505).
        assert!(matches!(
            err(b"GET / http/1.1\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
        assert!(matches!(
            err(b"GET / HTTP/1.1x\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
    }

    #[test]
    fn bad_request_content_length() {
        for cl in [
            "abc",
            "-1",
            "+1",
            "1.5",
            "0x10",
            "",
            "1 2",
            "5,",
            "99999999999999999999999",
        ] {
            let buf = format!("POST / HTTP/1.1\r\nContent-Length: {cl}\r\n\r\n");
            assert!(
                matches!(err(buf.as_bytes()), HttpError::BadRequest(_)),
                "Content-Length: {cl:?}"
            );
        }
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
            HttpError::BadRequest("conflicting Content-Length values")
        );
        assert!(matches!(
            err(b"POST / HTTP/1.1\r\nContent-Length: 3, 4\r\n\r\nabcd"),
            HttpError::BadRequest(_)
        ));
    }

    #[test]
    fn identical_duplicate_content_lengths_accepted() {
        let (req, _) =
            complete(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc");
        assert_eq!(req.body, b"abc");
        let (req, _) = complete(b"POST / HTTP/1.1\r\nContent-Length: 3 , 003\r\n\r\nabc");
        assert_eq!(req.body, b"abc");
    }

    #[test]
    fn bad_request_content_length_and_transfer_encoding() {
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
            HttpError::BadRequest("both Content-Length and Transfer-Encoding")
        );
        assert_eq!(
            err(b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n"),
            HttpError::BadRequest("both Content-Length and Transfer-Encoding")
        );
    }

    #[test]
    fn bad_request_transfer_encoding_forms() {
        for te in [
            "Transfer-Encoding: chunked, chunked",
            "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked",
            "Transfer-Encoding: ",
            "Transfer-Encoding: ,",
        ] {
            let buf = format!("POST / HTTP/1.1\r\n{te}\r\n\r\n0\r\n\r\n");
            assert!(
                matches!(err(buf.as_bytes()), HttpError::BadRequest(_)),
                "{te:?}"
            );
        }
        // HTTP/1.0 has no chunked framing: faulty framing.
        assert!(matches!(
            err(b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            HttpError::BadRequest(_)
        ));
    }

    #[test]
    fn bad_request_malformed_chunks() {
        let head = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n";
        for body in [
            "zz\r\nab\r\n0\r\n\r\n",
            "\r\n",
            "-1\r\n",
            " 5\r\nhello\r\n0\r\n\r\n",
            "5x\r\nhello\r\n0\r\n\r\n",
            "5\rhello",
            "5\r\nhelloXX0\r\n\r\n",
            "5\r\nhello\rX",
            "12345678901234567\r\n",
            "0\r\nBad Trailer\r\n\r\n",
        ] {
            let buf = format!("{head}{body}");
            assert!(
                matches!(err(buf.as_bytes()), HttpError::BadRequest(_)),
                "{body:?}"
            );
        }
        // An endless chunk extension is cut off.
        let mut buf = format!("{head}5;").into_bytes();
        buf.extend(std::iter::repeat_n(b'e', MAX_CHUNK_LINE));
        assert_eq!(err(&buf), HttpError::BadRequest("chunk size line too long"));
    }

    #[test]
    fn chunked_trailer_section_limits() {
        let limits = Limits {
            max_header_size: 80,
            max_body_size: 1024,
        };
        let mut buf = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-T: ".to_vec();
        buf.extend(std::iter::repeat_n(b'a', 100));
        assert_eq!(err_with(&buf, &limits), HttpError::HeaderTooLarge);
    }

    #[test]
    fn not_implemented_transfer_codings() {
        for te in [
            "gzip",
            "gzip, chunked",
            "chunked, gzip",
            "identity",
            "x-custom",
        ] {
            let buf = format!("POST / HTTP/1.1\r\nTransfer-Encoding: {te}\r\n\r\n");
            assert_eq!(err(buf.as_bytes()), HttpError::NotImplemented, "{te:?}");
        }
    }

    #[test]
    fn version_not_supported() {
        assert_eq!(
            err(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        // httparse only accepts HTTP/1.0 and HTTP/1.1; anything else well-formed is 505.
        assert_eq!(
            err(b"GET / HTTP/1.2\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/3.0\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        assert_eq!(
            err(b"GET / HTTP/0.9\r\n\r\n"),
            HttpError::VersionNotSupported
        );
        // Detected even before the line ends.
        assert_eq!(err(b"PRI * HTTP/2"), HttpError::VersionNotSupported);
        // A still-possible version prefix is just incomplete.
        assert_eq!(incomplete(b"GET / HTTP/1."), (false, false));
    }

    #[test]
    fn expect_continue_head_only() {
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(incomplete(buf), (true, true));
        // Part of the body: still true (the caller sends CONTINUE_RESPONSE once).
        let mut partial = buf.to_vec();
        partial.extend_from_slice(b"he");
        assert_eq!(incomplete(&partial), (true, true));
        // Case-insensitive value.
        let buf = b"POST / HTTP/1.1\r\nExpect: 100-Continue\r\nTransfer-Encoding: chunked\r\n\r\n";
        assert_eq!(incomplete(buf), (true, true));
    }

    #[test]
    fn expect_continue_with_complete_body_is_a_request() {
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\nhello";
        let (req, consumed) = complete(buf);
        assert_eq!(req.body, b"hello");
        assert_eq!(consumed, buf.len());
        assert_eq!(req.header("expect"), Some("100-continue"));
        // No body at all: nothing to wait for.
        let (req, _) = complete(b"GET / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(req.body.is_empty());
    }

    #[test]
    fn expect_continue_ignored_when_not_applicable() {
        // HTTP/1.0 clients do not understand 100 Continue.
        let buf = b"POST / HTTP/1.0\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n";
        assert_eq!(incomplete(buf), (true, false));
        // Other expectations.
        let buf = b"POST / HTTP/1.1\r\nContent-Length: 5\r\nExpect: something\r\n\r\n";
        assert_eq!(incomplete(buf), (true, false));
        // Partial head never asks for a continue.
        assert_eq!(
            incomplete(b"POST / HTTP/1.1\r\nExpect: 100-continue\r\n"),
            (false, false)
        );
        assert_eq!(CONTINUE_RESPONSE, b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn error_statuses_and_messages() {
        assert_eq!(HttpError::BadRequest("why").status(), 400);
        assert_eq!(HttpError::BadRequest("why").message(), "why");
        assert_eq!(HttpError::HeaderTooLarge.status(), 431);
        assert_eq!(HttpError::PayloadTooLarge.status(), 413);
        assert_eq!(HttpError::NotImplemented.status(), 501);
        assert_eq!(HttpError::VersionNotSupported.status(), 505);
        for e in [
            HttpError::HeaderTooLarge,
            HttpError::PayloadTooLarge,
            HttpError::NotImplemented,
            HttpError::VersionNotSupported,
        ] {
            assert!(!e.message().is_empty());
        }
    }

    #[test]
    fn reason_phrases() {
        assert_eq!(reason_phrase(200), "OK");
        assert_eq!(reason_phrase(400), "Bad Request");
        assert_eq!(reason_phrase(401), "Unauthorized");
        assert_eq!(reason_phrase(404), "Not Found");
        assert_eq!(reason_phrase(408), "Request Timeout");
        assert_eq!(reason_phrase(413), "Payload Too Large");
        assert_eq!(reason_phrase(431), "Request Header Fields Too Large");
        assert_eq!(reason_phrase(500), "Internal Server Error");
        assert_eq!(reason_phrase(503), "Service Unavailable");
        assert_eq!(reason_phrase(505), "HTTP Version Not Supported");
        assert_eq!(reason_phrase(999), "Unknown");
        assert_eq!(reason_phrase(0), "Unknown");
    }

    #[test]
    fn mutated_inputs_never_panic_and_stay_in_bounds() {
        let samples: [&[u8]; 2] = [
            b"POST /a?b=c HTTP/1.1\r\nContent-Length: 4\r\nConnection: close\r\n\r\nbody",
            b"PUT / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n2;x\r\nab\r\n0\r\nT: v\r\n\r\n",
        ];
        let limits = Limits {
            max_header_size: 128,
            max_body_size: 16,
        };
        let mut requests = 0;
        for sample in samples {
            for pos in 0..sample.len() {
                for byte in [0u8, b'\r', b'\n', b' ', b':', b';', b'0', b'f', b'z', 0xff] {
                    let mut buf = sample.to_vec();
                    buf[pos] = byte;
                    for end in 0..=buf.len() {
                        if let Ok(Decoded::Request { consumed, .. }) = decode(&buf[..end], &limits)
                        {
                            assert!(consumed > 0 && consumed <= end);
                            requests += 1;
                        }
                    }
                }
            }
        }
        assert!(requests > 0);
    }

    #[test]
    fn push_decimal_values() {
        for n in [0u64, 7, 10, 99, 100, 65535, u64::MAX] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, n.to_string().as_bytes());
        }
    }

    #[test]
    fn resumed_chunked_decode_matches_and_advances() {
        let mut req = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for i in 0..200u8 {
            req.extend_from_slice(format!("1;ext=v\r\n{}\r\n", (b'a' + i % 26) as char).as_bytes());
        }
        req.extend_from_slice(b"0\r\nX-Trailer: t\r\n\r\nGET /next HTTP/1.1\r\n\r\n");
        let (expected, expected_consumed) = complete(&req);
        let mut progress = DecodeProgress::default();
        let mut last_pos = 0;
        // Grow the buffer a few bytes at a time, as reads would, keeping one progress.
        for end in (1..req.len()).step_by(7) {
            match decode_resuming(&req[..end], &LIMITS, &mut progress) {
                Ok(Decoded::Incomplete { .. }) => {
                    assert!(progress.chunk.pos >= last_pos, "progress went backwards");
                    last_pos = progress.chunk.pos;
                }
                Ok(Decoded::Request {
                    request, consumed, ..
                }) => {
                    assert_eq!((request, consumed), (expected.clone(), expected_consumed));
                    return;
                }
                Err(e) => panic!("error at {end}: {e:?}"),
            }
        }
        let done = decode_resuming(&req, &LIMITS, &mut progress);
        match done {
            Ok(Decoded::Request {
                request, consumed, ..
            }) => assert_eq!((request, consumed), (expected, expected_consumed)),
            other => panic!("expected a request, got {other:?}"),
        }
        assert!(last_pos > 200, "progress never advanced past the head");
    }

    #[test]
    fn resumed_chunked_decode_still_limits_the_body() {
        let limits = Limits {
            max_header_size: 1024,
            max_body_size: 10,
        };
        let mut req = b"POST /x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut progress = DecodeProgress::default();
        let mut outcome = Ok(Decoded::Incomplete {
            head_complete: true,
            send_continue: false,
        });
        for _ in 0..20 {
            req.extend_from_slice(b"1\r\nz\r\n");
            outcome = decode_resuming(&req, &limits, &mut progress);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(HttpError::PayloadTooLarge));
    }

    #[test]
    fn head_trickled_byte_by_byte_is_parsed_once_per_line() {
        let mut req = b"GET /books?id=eq.1 HTTP/1.1\r\nHost: h\r\n".to_vec();
        for i in 0..30 {
            req.extend_from_slice(format!("X-Header-{i}: {}\r\n", "v".repeat(200)).as_bytes());
        }
        req.extend_from_slice(b"\r\n");
        let lines = req.iter().filter(|&&b| b == b'\n').count() as u32;
        let (expected, consumed) = complete(&req);
        let mut progress = DecodeProgress::default();
        for end in 1..req.len() {
            let step = decode_resuming(&req[..end], &LIMITS, &mut progress);
            assert!(
                matches!(step, Ok(Decoded::Incomplete { .. })),
                "at {end}: {step:?}"
            );
        }
        let done = decode_resuming(&req, &LIMITS, &mut progress);
        match done {
            Ok(Decoded::Request {
                request,
                consumed: got,
                ..
            }) => assert_eq!((request, got), (expected, consumed)),
            other => panic!("expected a request, got {other:?}"),
        }
        // One parse for the first byte, then at most one per line ended.
        assert!(
            progress.head_parses <= lines + 1,
            "{} parses for {} lines over {} bytes",
            progress.head_parses,
            lines,
            req.len()
        );
    }

    #[test]
    fn trickled_garbage_is_rejected_once_its_line_ends_and_big_heads_at_the_limit() {
        let mut progress = DecodeProgress::default();
        let garbage = b"GE\x01T / HTTP/1.1\r\n";
        let mut outcome = Ok(Decoded::Incomplete {
            head_complete: false,
            send_continue: false,
        });
        for end in 1..=garbage.len() {
            outcome = decode_resuming(&garbage[..end], &LIMITS, &mut progress);
            if outcome.is_err() {
                break;
            }
        }
        assert!(
            matches!(outcome, Err(HttpError::BadRequest(_))),
            "{outcome:?}"
        );

        let limits = Limits {
            max_header_size: 64,
            max_body_size: 10,
        };
        let mut progress = DecodeProgress::default();
        let mut long = b"GET /".to_vec();
        let mut outcome = Ok(Decoded::Incomplete {
            head_complete: false,
            send_continue: false,
        });
        for _ in 0..100 {
            long.push(b'a');
            outcome = decode_resuming(&long, &limits, &mut progress);
            if outcome.is_err() {
                break;
            }
        }
        assert_eq!(outcome, Err(HttpError::HeaderTooLarge));
        assert!(long.len() <= 65, "431 only after {} bytes", long.len());
    }

    #[test]
    fn a_stream_head_is_chunked_without_a_length() {
        let mut out = Vec::new();
        encode_stream_head(
            &mut out,
            200,
            &[("Content-Type", "application/x-ndjson")],
            true,
        );
        assert_eq!(
            out,
            b"HTTP/1.1 200 OK\r\nContent-Type: application/x-ndjson\r\n\
              Transfer-Encoding: chunked\r\n\r\n"
        );
        out.clear();
        encode_stream_head(&mut out, 200, &[], false);
        assert!(out.ends_with(b"Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"));
    }
}
