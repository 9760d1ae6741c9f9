//! The HTTP CONNECT tunnel: TCP to the proxy, `CONNECT host:port`, and the proxy's answer.
//! TLS then runs inside the tunnel exactly as over a direct connection.
//!
//! The answer is parsed by [`parse_head`], which only looks at bytes (need more, done, or
//! wrong); [`open`] does the I/O around it.

use crate::config::ProxyConfig;
use crate::error::ClientError;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest response head accepted from a proxy.
pub(crate) const MAX_HEAD: usize = 8 * 1024;

/// The start of a proxy's answer to CONNECT.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ResponseHead {
    /// The status code, e.g. 200 or 407.
    pub(crate) status: u16,
    /// The status line as sent, e.g. `HTTP/1.1 407 Proxy Authentication Required`.
    pub(crate) status_line: String,
    /// The length of the head, up to and including the empty line.
    pub(crate) len: usize,
}

/// Why a proxy's answer cannot be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// No end of the head within [`MAX_HEAD`] bytes.
    TooLarge,
    /// The status line is not `HTTP/1.x NNN ...`; holds it (shortened).
    NotHttp(String),
}

/// Reads the response head at the start of `buf`: `Ok(None)` when more bytes are needed.
pub(crate) fn parse_head(buf: &[u8]) -> Result<Option<ResponseHead>, HeadError> {
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        // Reject a first line that is clearly not HTTP without waiting for more bytes.
        let prefix = buf.get(..buf.len().min(7)).unwrap_or_default();
        if !b"HTTP/1.".starts_with(prefix) {
            return Err(HeadError::NotHttp(first_line(buf)));
        }
        return if buf.len() >= MAX_HEAD { Err(HeadError::TooLarge) } else { Ok(None) };
    };
    let len = end + 4;
    if len > MAX_HEAD {
        return Err(HeadError::TooLarge);
    }
    let status_line = first_line(buf);
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    let code = parts.next().unwrap_or_default();
    let status = match code.parse::<u16>() {
        Ok(status) if version.starts_with("HTTP/1.") && code.len() == 3 => status,
        _ => return Err(HeadError::NotHttp(status_line)),
    };
    Ok(Some(ResponseHead { status, status_line, len }))
}

/// The CONNECT request for `target` (`host:port`), with `Proxy-Authorization` when the proxy
/// has credentials.
pub(crate) fn connect_request(proxy: &ProxyConfig, target: &str) -> String {
    let mut request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n");
    if let Some(authorization) = proxy.authorization() {
        request.push_str("Proxy-Authorization: ");
        request.push_str(&authorization);
        request.push_str("\r\n");
    }
    request.push_str("\r\n");
    request
}

/// Connects to `proxy` and opens a tunnel to `target` (`host:port`); the TCP connect and the
/// CONNECT exchange each get `timeout`.
pub(crate) async fn open(
    proxy: &ProxyConfig,
    target: &str,
    timeout: Duration,
) -> Result<TcpStream, ClientError> {
    let error = |status: Option<u16>, detail: String, hint: String| ClientError::Proxy {
        proxy: proxy.to_string(),
        status,
        detail,
        hint,
    };
    let unreachable_hint = "; check the proxy address (--proxy, IOT443_PROXY, the file's `proxy` \
                            or HTTPS_PROXY) and that the proxy is running"
        .to_owned();
    let mut tcp =
        match tokio::time::timeout(timeout, TcpStream::connect((proxy.host(), proxy.port()))).await
        {
            Ok(Ok(tcp)) => tcp,
            Ok(Err(source)) => {
                return Err(error(
                    None,
                    format!("cannot reach the proxy {} over TCP: {source}", proxy.addr()),
                    unreachable_hint,
                ));
            }
            Err(_) => {
                return Err(error(
                    None,
                    format!(
                        "TCP connect to the proxy {} timed out after {timeout:?}",
                        proxy.addr()
                    ),
                    unreachable_hint,
                ));
            }
        };
    tcp.set_nodelay(true).map_err(|source| {
        error(None, format!("cannot set TCP_NODELAY: {source}"), String::new())
    })?;

    let exchange = async {
        tcp.write_all(connect_request(proxy, target).as_bytes()).await?;
        let mut buf = Vec::with_capacity(1024);
        let mut chunk = [0_u8; 1024];
        loop {
            let n = tcp.read(&mut chunk).await?;
            if n == 0 {
                return Ok(Err(None));
            }
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            match parse_head(&buf) {
                Ok(None) => continue,
                Ok(Some(head)) => return Ok(Ok((head, buf.len()))),
                Err(e) => return Ok(Err(Some(e))),
            }
        }
    };
    let answer: Result<Result<(ResponseHead, usize), Option<HeadError>>, std::io::Error> =
        match tokio::time::timeout(timeout, exchange).await {
            Ok(answer) => answer,
            Err(_) => {
                return Err(error(
                    None,
                    format!("no answer to CONNECT {target} within {timeout:?}"),
                    "; is it an HTTP proxy?".to_owned(),
                ));
            }
        };
    let (head, received) = match answer {
        Ok(Ok(answer)) => answer,
        Ok(Err(None)) => {
            return Err(error(
                None,
                format!("the proxy closed the connection before answering CONNECT {target}"),
                "; is it an HTTP proxy?".to_owned(),
            ));
        }
        Ok(Err(Some(HeadError::TooLarge))) => {
            return Err(error(
                None,
                format!("the proxy's answer to CONNECT has a head over {MAX_HEAD} bytes"),
                "; is it an HTTP proxy?".to_owned(),
            ));
        }
        Ok(Err(Some(HeadError::NotHttp(line)))) => {
            return Err(error(
                None,
                format!("the proxy's answer to CONNECT is not HTTP/1.x: {line:?}"),
                "; is it an HTTP proxy?".to_owned(),
            ));
        }
        Err(source) => {
            return Err(error(
                None,
                format!("the connection to the proxy failed during CONNECT {target}: {source}"),
                String::new(),
            ));
        }
    };
    match head.status {
        200 if received == head.len => Ok(tcp),
        200 => Err(error(
            Some(200),
            "the proxy sent data after its 200 answer, before TLS began".to_owned(),
            "; is it an HTTP proxy?".to_owned(),
        )),
        407 => Err(error(
            Some(407),
            head.status_line,
            if proxy.has_credentials() {
                "; the proxy did not accept the user and password of the proxy URL; \
                 the proxy needs credentials: proxy = \"http://user:pass@host:port\""
                    .to_owned()
            } else {
                "; the proxy needs credentials: proxy = \"http://user:pass@host:port\"".to_owned()
            },
        )),
        status => {
            let port = target.rsplit_once(':').map_or("443", |(_, port)| port);
            Err(error(
                Some(status),
                head.status_line,
                format!(
                    "; the proxy refused CONNECT to {target} (is port {port} allowed through it?)"
                ),
            ))
        }
    }
}

/// The first line of `buf`, lossily decoded and shortened, for messages.
fn first_line(buf: &[u8]) -> String {
    let line = buf.split(|&b| b == b'\r' || b == b'\n').next().unwrap_or_default();
    let line = line.get(..line.len().min(120)).unwrap_or(line);
    String::from_utf8_lossy(line).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_complete_200_head_is_read_with_its_length() {
        let answer = b"HTTP/1.1 200 Connection established\r\nVia: x\r\n\r\n";
        let head = parse_head(answer).unwrap().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(head.status_line, "HTTP/1.1 200 Connection established");
        assert_eq!(head.len, answer.len());
        let head = parse_head(b"HTTP/1.0 200\r\n\r\n").unwrap().unwrap();
        assert_eq!((head.status, head.len), (200, 16));
    }

    #[test]
    fn a_partial_head_needs_more_bytes_at_every_cut() {
        let answer =
            b"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic\r\n\r\n";
        for cut in 0..answer.len() {
            assert_eq!(parse_head(&answer[..cut]), Ok(None), "cut at {cut}");
        }
        assert_eq!(parse_head(answer).unwrap().unwrap().status, 407);
    }

    #[test]
    fn bytes_after_the_head_are_not_part_of_it() {
        let head = parse_head(b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x01").unwrap().unwrap();
        assert_eq!(head.len, 19);
    }

    #[test]
    fn an_oversize_head_is_refused() {
        let mut answer = b"HTTP/1.1 200 OK\r\n".to_vec();
        while answer.len() < MAX_HEAD {
            answer.extend_from_slice(b"X-Padding: 0123456789\r\n");
        }
        assert_eq!(parse_head(&answer), Err(HeadError::TooLarge));
        answer.extend_from_slice(b"\r\n");
        assert_eq!(parse_head(&answer), Err(HeadError::TooLarge));
    }

    #[test]
    fn an_answer_that_is_not_http_is_refused_early() {
        assert!(matches!(parse_head(b"SSH-2.0-OpenSSH"), Err(HeadError::NotHttp(_))));
        assert!(matches!(parse_head(b"\x16\x03\x01\x00"), Err(HeadError::NotHttp(_))));
        assert!(matches!(parse_head(b"HTTP/1.1 2000 x\r\n\r\n"), Err(HeadError::NotHttp(_))));
        assert!(matches!(parse_head(b"HTTP/2 200\r\n\r\n"), Err(HeadError::NotHttp(_))));
    }

    #[test]
    fn the_request_carries_basic_credentials_only_when_given() {
        let plain = ProxyConfig::parse("http://p:3128").unwrap();
        assert_eq!(
            connect_request(&plain, "example.com:443"),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n"
        );
        let with_user = ProxyConfig::parse("http://Aladdin:open%20sesame@p:3128").unwrap();
        assert_eq!(
            connect_request(&with_user, "example.com:443"),
            "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\
             Proxy-Authorization: Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==\r\n\r\n"
        );
    }
}
