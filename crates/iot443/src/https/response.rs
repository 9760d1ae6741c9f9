//! IoT Core's answer to an HTTPS publish: status line, headers and a `Content-Length` body,
//! read with bounds; the JSON body `{"message", "traceId"}`.
//!
//! [`parse`] only looks at bytes (need more, done, or wrong), so that it can be tested on
//! any input; the I/O around it is in the publisher.

/// The longest response head accepted.
pub(crate) const MAX_HEAD: usize = 16 * 1024;

/// The longest response body accepted (IoT Core's are under 200 bytes).
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// The most headers read from a response.
const MAX_HEADERS: usize = 64;

/// A complete response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Response {
    /// The status code.
    pub(crate) status: u16,
    /// The reason phrase, e.g. `Forbidden`.
    pub(crate) reason: String,
    /// `x-amzn-ErrorType`, e.g. `ForbiddenException:`.
    pub(crate) error_type: Option<String>,
    /// `x-amzn-RequestId`.
    pub(crate) request_id: Option<String>,
    /// The body's `message`, or the body itself (shortened) when it is not IoT Core's JSON.
    pub(crate) message: Option<String>,
    /// The body's `traceId`.
    pub(crate) trace_id: Option<String>,
    /// Whether the connection can carry another request (HTTP/1.1 without `Connection: close`).
    pub(crate) keep_alive: bool,
    /// The bytes the response took, head and body.
    pub(crate) len: usize,
}

/// Why a response cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ResponseError {
    /// Not an HTTP/1.x response.
    #[error("the answer is not an HTTP/1.x response: {0}")]
    NotHttp(String),
    /// A head over [`MAX_HEAD`] bytes.
    #[error("the response head is over {MAX_HEAD} bytes")]
    HeadTooLarge,
    /// A body over [`MAX_BODY`] bytes.
    #[error("the response body of {0} bytes is over {MAX_BODY} bytes")]
    BodyTooLarge(usize),
    /// A `Content-Length` that is not a number.
    #[error("the response's Content-Length {0:?} is not a number")]
    BadLength(String),
    /// `Transfer-Encoding` (chunked), which IoT Core does not use.
    #[error("the response uses Transfer-Encoding {0:?}, which AWS IoT Core does not send")]
    TransferEncoding(String),
}

/// Reads the response at the start of `buf`: `Ok(None)` when more bytes are needed. With
/// `closed`, no more bytes will come: a response without `Content-Length` ends there.
pub(crate) fn parse(buf: &[u8], closed: bool) -> Result<Option<Response>, ResponseError> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut response = httparse::Response::new(&mut headers);
    let head_len = match response.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) if buf.len() >= MAX_HEAD => {
            return Err(ResponseError::HeadTooLarge);
        }
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(error) => return Err(ResponseError::NotHttp(format!("{error}: {}", shorten(buf)))),
    };
    if head_len > MAX_HEAD {
        return Err(ResponseError::HeadTooLarge);
    }
    let status = response.code.unwrap_or_default();
    let reason = response.reason.unwrap_or_default().to_owned();
    let header = |name: &str| {
        response
            .headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| String::from_utf8_lossy(h.value).trim().to_owned())
    };
    if let Some(encoding) = header("transfer-encoding") {
        return Err(ResponseError::TransferEncoding(encoding));
    }
    let connection = header("connection").map(|value| value.to_ascii_lowercase());
    let mut keep_alive = match response.version {
        Some(1) => connection.as_deref() != Some("close"),
        _ => connection.as_deref() == Some("keep-alive"),
    };
    let body_len = match header("content-length") {
        Some(text) => {
            let len = text.parse::<usize>().map_err(|_| ResponseError::BadLength(text.clone()))?;
            if len > MAX_BODY {
                return Err(ResponseError::BodyTooLarge(len));
            }
            len
        }
        None => {
            // The body lasts until the connection closes (bounded all the same).
            let received = buf.len().saturating_sub(head_len);
            if received > MAX_BODY {
                return Err(ResponseError::BodyTooLarge(received));
            }
            if !closed {
                return if status == 204 || status == 304 {
                    Ok(Some(Response::empty(status, reason, head_len, keep_alive)))
                } else {
                    Ok(None)
                };
            }
            keep_alive = false;
            received
        }
    };
    let Some(body) = buf.get(head_len..head_len + body_len) else {
        return Ok(None);
    };
    let (message, trace_id) = read_body(body);
    Ok(Some(Response {
        status,
        reason,
        error_type: header("x-amzn-errortype"),
        request_id: header("x-amzn-requestid"),
        message,
        trace_id,
        keep_alive,
        len: head_len + body_len,
    }))
}

impl Response {
    fn empty(status: u16, reason: String, len: usize, keep_alive: bool) -> Response {
        Response {
            status,
            reason,
            error_type: None,
            request_id: None,
            message: None,
            trace_id: None,
            keep_alive,
            len,
        }
    }
}

/// `message` and `traceId` of IoT Core's JSON body; a body that is not that JSON is the
/// message itself (shortened), so that it still shows in the error.
fn read_body(body: &[u8]) -> (Option<String>, Option<String>) {
    #[derive(serde::Deserialize)]
    struct Body {
        message: Option<String>,
        #[serde(rename = "traceId")]
        trace_id: Option<String>,
    }
    if body.is_empty() {
        return (None, None);
    }
    match serde_json::from_slice::<Body>(body) {
        Ok(parsed) => (parsed.message, parsed.trace_id),
        Err(_) => (Some(shorten(body)), None),
    }
}

/// The start of `bytes` as text, for messages.
fn shorten(bytes: &[u8]) -> String {
    let start = bytes.get(..bytes.len().min(120)).unwrap_or_default();
    let text = String::from_utf8_lossy(start);
    let line = text.lines().next().unwrap_or_default();
    if line.len() < bytes.len() { format!("{line:?}…") } else { format!("{line:?}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OK: &[u8] =
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 65\r\n\
        x-amzn-RequestId: 5c3a1f54-6f0d-9c4b-a7c8-1b2a3c4d5e6f\r\nconnection: keep-alive\r\n\r\n\
        {\"message\":\"OK\",\"traceId\":\"5c3a1f54-6f0d-9c4b-a7c8-1b2a3c4d5e6f\"}";

    #[test]
    fn a_captured_200_is_read_whole() {
        let response = parse(OK, false).ok().flatten();
        let response = response.as_ref();
        assert_eq!(response.map(|r| r.status), Some(200));
        assert_eq!(response.and_then(|r| r.message.as_deref()), Some("OK"));
        assert_eq!(
            response.and_then(|r| r.trace_id.as_deref()),
            Some("5c3a1f54-6f0d-9c4b-a7c8-1b2a3c4d5e6f")
        );
        assert_eq!(response.map(|r| r.keep_alive), Some(true));
        assert_eq!(response.map(|r| r.len), Some(OK.len()));
    }

    #[test]
    fn every_prefix_of_a_response_needs_more_bytes() {
        for end in 0..OK.len() {
            assert_eq!(parse(OK.get(..end).unwrap_or_default(), false), Ok(None), "at {end}");
        }
    }

    #[test]
    fn an_error_carries_its_type_message_and_close() {
        let text = b"HTTP/1.1 403 Forbidden\r\nx-amzn-ErrorType: ForbiddenException:\r\n\
            Connection: close\r\ncontent-length: 56\r\n\r\n\
            {\"message\":\"Missing Authentication Token\",\"traceId\":\"t\"}";
        let response = parse(text, false).ok().flatten();
        assert_eq!(response.as_ref().map(|r| r.status), Some(403));
        assert_eq!(
            response.as_ref().and_then(|r| r.error_type.as_deref()),
            Some("ForbiddenException:")
        );
        assert_eq!(
            response.as_ref().and_then(|r| r.message.as_deref()),
            Some("Missing Authentication Token")
        );
        assert_eq!(response.as_ref().map(|r| r.keep_alive), Some(false));
    }

    #[test]
    fn garbage_and_oversize_answers_are_errors() {
        assert!(matches!(parse(b"SSH-2.0-OpenSSH\r\n\r\n", false), Err(ResponseError::NotHttp(_))));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: 99999999\r\n\r\n", false),
            Err(ResponseError::BodyTooLarge(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false),
            Err(ResponseError::BadLength(_))
        ));
        assert!(matches!(
            parse(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n", false),
            Err(ResponseError::TransferEncoding(_))
        ));
        assert!(matches!(parse(&[b'a'; MAX_HEAD + 1], false), Err(ResponseError::NotHttp(_))));
    }

    #[test]
    fn without_content_length_the_body_ends_with_the_connection() {
        let text = b"HTTP/1.1 500 Internal Server Error\r\n\r\noops";
        assert_eq!(parse(text, false), Ok(None));
        let response = parse(text, true).ok().flatten();
        assert_eq!(response.as_ref().and_then(|r| r.message.as_deref()), Some("\"oops\""));
        assert_eq!(response.as_ref().map(|r| r.keep_alive), Some(false));
    }

    proptest::proptest! {
        #[test]
        fn any_bytes_parse_without_panicking(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..2048), closed in proptest::bool::ANY) {
            let _ = parse(&bytes, closed);
        }

        #[test]
        fn any_split_of_a_response_reads_the_same(split in 0..OK.len()) {
            proptest::prop_assert_eq!(parse(OK.get(..split).unwrap_or_default(), false), Ok(None));
            proptest::prop_assert!(parse(OK, false).ok().flatten().is_some());
        }
    }
}
