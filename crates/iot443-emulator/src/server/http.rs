//! A small, bounded HTTP/1.x server side shared by the WebSocket road and the HTTPS publish
//! API: the request head parsed with `httparse` (at most [`MAX_HEAD`] bytes), bodies read by
//! `Content-Length`, and IoT Core's answers (`AWS-IOT-ROADS.md` §1.18, §2.5–2.8).

use bytes::{Buf as _, BytesMut};
use ring::rand::{SecureRandom as _, SystemRandom};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};

/// The largest request head (request line and headers) accepted.
pub(super) const MAX_HEAD: usize = 16 * 1024;
/// The most headers in one request.
const MAX_HEADERS: usize = 64;
/// How long a client may take to send a request (head and body) once it started, and how long
/// an idle keep-alive connection is kept.
pub(super) const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// A parsed request head.
#[derive(Debug)]
pub(super) struct Head {
    pub(super) method: String,
    /// The request target as received (path and query).
    pub(super) target: String,
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    pub(super) minor_version: u8,
    /// Names and values as received (values lossy UTF-8).
    pub(super) headers: Vec<(String, String)>,
}

impl Head {
    /// The first value of header `name` (case-insensitive).
    pub(super) fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// Whether header `name` holds `token` in its comma-separated list (case-insensitive).
    pub(super) fn header_has_token(&self, name: &str, token: &str) -> bool {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .flat_map(|(_, v)| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case(token))
    }

    /// The path, without the query.
    pub(super) fn path(&self) -> &str {
        self.target.split_once('?').map_or(self.target.as_str(), |(path, _)| path)
    }

    /// The raw query, without `?` (empty when there is none).
    pub(super) fn query(&self) -> &str {
        self.target.split_once('?').map_or("", |(_, query)| query)
    }

    /// Whether the client wants the connection kept after this request.
    pub(super) fn keep_alive(&self) -> bool {
        if self.header_has_token("connection", "close") {
            return false;
        }
        self.minor_version >= 1 || self.header_has_token("connection", "keep-alive")
    }

    /// What the head says about a body: `Ok(None)` for none, `Ok(Some(n))` for a
    /// `Content-Length` of `n`, `Err` for a length that cannot be known (chunked, or a broken
    /// or repeated `Content-Length`).
    pub(super) fn body_length(&self) -> Result<Option<usize>, &'static str> {
        if self.header("transfer-encoding").is_some() {
            return Err("Transfer-Encoding is not supported: send Content-Length");
        }
        let mut lengths =
            self.headers.iter().filter(|(n, _)| n.eq_ignore_ascii_case("content-length"));
        let Some((_, first)) = lengths.next() else { return Ok(None) };
        if lengths.next().is_some() {
            return Err("Content-Length is repeated");
        }
        first.trim().parse().map(Some).map_err(|_| "Content-Length is not a number")
    }
}

/// Why no request head could be read.
#[derive(Debug)]
pub(super) enum HeadError {
    /// Not HTTP, or beyond the limits; the text says what (for the 400 answer and the log).
    Malformed(String),
    /// The transport failed or the client stopped in the middle.
    Transport(String),
}

/// Reads one request head from `stream`, with what was already read in `buf` (bytes after the
/// head stay in `buf`). `Ok(None)` when the client closed before sending a byte.
pub(super) async fn read_head<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
) -> Result<Option<Head>, HeadError> {
    loop {
        if !buf.is_empty()
            && let Some((head, used)) = parse_head(buf)?
        {
            buf.advance(used);
            return Ok(Some(head));
        }
        if buf.len() >= MAX_HEAD {
            return Err(HeadError::Malformed(format!(
                "the request head is longer than {MAX_HEAD} bytes"
            )));
        }
        let limit = MAX_HEAD - buf.len();
        let mut chunk = vec![0u8; limit.min(4096)];
        match stream.read(&mut chunk).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(HeadError::Transport("the client closed mid-request".into())),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(error) => return Err(HeadError::Transport(format!("read failed: {error}"))),
        }
    }
}

/// Parses a complete head at the start of `buf`: `Ok(None)` while incomplete.
fn parse_head(buf: &[u8]) -> Result<Option<(Head, usize)>, HeadError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    let used = match request.parse(buf) {
        Ok(httparse::Status::Complete(used)) => used,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => {
            return Err(HeadError::Malformed(format!("not an HTTP/1.x request: {error}")));
        }
    };
    let head = Head {
        method: request.method.unwrap_or_default().to_owned(),
        target: request.path.unwrap_or_default().to_owned(),
        minor_version: request.version.unwrap_or(1),
        headers: request
            .headers
            .iter()
            .map(|h| (h.name.to_owned(), String::from_utf8_lossy(h.value).into_owned()))
            .collect(),
    };
    Ok(Some((head, used)))
}

/// Reads exactly `length` body bytes (some may already be in `buf`); the bytes after the body
/// stay in `buf`.
pub(super) async fn read_body<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    length: usize,
) -> Result<bytes::Bytes, String> {
    while buf.len() < length {
        let mut chunk = vec![0u8; (length - buf.len()).min(16 * 1024)];
        match stream.read(&mut chunk).await {
            Ok(0) => return Err("the client closed in the middle of the body".into()),
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(error) => return Err(format!("read failed: {error}")),
        }
    }
    Ok(buf.split_to(length).freeze())
}

/// An answer.
#[derive(Debug)]
pub(super) struct Response {
    pub(super) status: u16,
    pub(super) headers: Vec<(&'static str, String)>,
    pub(super) body: Vec<u8>,
}

impl Response {
    /// IoT Core's JSON answer `{"message":…,"traceId":…}` with `content-type`,
    /// `x-amzn-RequestId` and, for errors, `x-amzn-ErrorType: <error_type>:` and the CORS
    /// headers IoT Core sends (`AWS-IOT-ROADS.md` §1.18, §2.5, §2.7).
    pub(super) fn json(status: u16, error_type: Option<&str>, message: &str) -> Response {
        let request_id = request_id();
        let body = serde_json::json!({ "message": message, "traceId": request_id }).to_string();
        let mut headers = vec![("content-type", "application/json".to_owned())];
        headers.push(("x-amzn-RequestId", request_id));
        if let Some(error_type) = error_type {
            headers.push(("x-amzn-ErrorType", format!("{error_type}:")));
            headers.push(("access-control-allow-origin", "*".to_owned()));
            headers.push((
                "access-control-expose-headers",
                "x-amzn-ErrorMessage, x-amzn-RequestId, x-amzn-ErrorType, Date".to_owned(),
            ));
        }
        Response { status, headers, body: body.into_bytes() }
    }

    /// The bytes on the wire; `keep_alive` picks the `connection` header.
    pub(super) fn to_bytes(&self, keep_alive: bool) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {} {}\r\n", self.status, reason(self.status));
        for (name, value) in &self.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        if self.status != 101 {
            out.push_str(&format!("content-length: {}\r\n", self.body.len()));
            out.push_str(if keep_alive {
                "connection: keep-alive\r\n"
            } else {
                "connection: close\r\n"
            });
        }
        out.push_str("\r\n");
        let mut bytes = out.into_bytes();
        bytes.extend_from_slice(&self.body);
        bytes
    }

    /// Writes the answer and flushes.
    pub(super) async fn write<S: AsyncWrite + Unpin>(
        &self,
        stream: &mut S,
        keep_alive: bool,
    ) -> std::io::Result<()> {
        stream.write_all(&self.to_bytes(keep_alive)).await?;
        stream.flush().await
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        101 => "Switching Protocols",
        200 => "OK",
        400 => "Bad Request",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        413 => "Payload Too Large",
        _ => "Error",
    }
}

/// A random (version 4) UUID, IoT Core's request id and trace id form.
pub(super) fn request_id() -> String {
    let mut bytes = [0u8; 16];
    // Without the system's random source, a fixed id still answers the request.
    let _ = SystemRandom::new().fill(&mut bytes);
    if let Some(b) = bytes.get_mut(6) {
        *b = (*b & 0x0f) | 0x40;
    }
    if let Some(b) = bytes.get_mut(8) {
        *b = (*b & 0x3f) | 0x80;
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let part = |range: std::ops::Range<usize>| hex.get(range).unwrap_or_default();
    format!("{}-{}-{}-{}-{}", part(0..8), part(8..12), part(12..16), part(16..20), part(20..32))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_to_a_head_within_them_or_an_error(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..2048),
        ) {
            if let Ok(Some((head, used))) = parse_head(&bytes) {
                proptest::prop_assert!(used <= bytes.len());
                proptest::prop_assert!(head.headers.len() <= MAX_HEADERS);
                let _ = (head.keep_alive(), head.body_length(), head.path(), head.query());
            }
        }

        #[test]
        fn a_valid_head_with_any_extra_bytes_keeps_them(
            target in "/[a-z0-9%/?=&]{0,40}",
            extra in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
        ) {
            let mut bytes = format!("GET {target} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes();
            let head_len = bytes.len();
            bytes.extend_from_slice(&extra);
            let parsed = parse_head(&bytes);
            let Ok(Some((head, used))) = parsed else {
                return Err(proptest::test_runner::TestCaseError::fail("not parsed"));
            };
            proptest::prop_assert_eq!(used, head_len);
            proptest::prop_assert_eq!(head.target, target);
        }
    }

    #[test]
    fn request_ids_are_uuid_v4() {
        let id = request_id();
        assert_eq!(id.len(), 36);
        assert_eq!(id.get(14..15), Some("4"));
        assert_ne!(id, request_id());
    }

    #[test]
    fn heads_parse_and_tell_keep_alive_and_length() {
        let raw = b"POST /topics/a%2Fb?qos=1 HTTP/1.0\r\nContent-Length: 3\r\nConnection: keep-alive\r\n\r\nabc";
        let Ok(Some((head, used))) = parse_head(raw) else { panic!("not parsed") };
        assert_eq!(used, raw.len() - 3);
        assert_eq!((head.path(), head.query()), ("/topics/a%2Fb", "qos=1"));
        assert!(head.keep_alive());
        assert_eq!(head.body_length(), Ok(Some(3)));
        assert!(matches!(parse_head(b"\x10\x0c\x00\x04MQTT"), Err(HeadError::Malformed(_))));
        assert!(matches!(parse_head(b"GET / HTTP/1.1\r\n"), Ok(None)));
    }

    #[test]
    fn error_answers_carry_iot_core_headers() {
        let text =
            String::from_utf8(Response::json(403, Some("ForbiddenException"), "no").to_bytes(true))
                .unwrap_or_default();
        assert!(text.starts_with("HTTP/1.1 403 Forbidden\r\n"), "{text}");
        assert!(text.contains("x-amzn-ErrorType: ForbiddenException:\r\n"), "{text}");
        assert!(text.contains("connection: keep-alive\r\n"), "{text}");
        assert!(text.contains("\"message\":\"no\""), "{text}");
    }
}
