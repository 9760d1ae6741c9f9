//! The HTTPS publish API (`AWS-IOT-ROADS.md` §2): `POST /topics/<url-encoded topic>?qos=0|1&
//! retain=true|false`, body = payload, with the client certificate's identity. Served on the
//! 443-style listener for ALPN `x-amzn-http-ca` and on the HTTPS listener (8443 in the cloud).
//! HTTP/1.0 and 1.1, keep-alive allowed, `Content-Length` required.
//!
//! | request | answer |
//! |---|---|
//! | published | 200 `{"message":"OK","traceId":"<uuid>"}`, `x-amzn-RequestId: <same uuid>` |
//! | bad topic, `qos` not 0/1, `retain` not true/false, no `Content-Length`, not HTTP | 400 `InvalidRequestException` |
//! | the policy denies the topic | 403 `ForbiddenException` |
//! | another path | 404 `ResourceNotFoundException` |
//! | another method on `/topics/…` | 405 `MethodNotAllowedException` |
//! | payload over 128 KiB | 413 `RequestEntityTooLargeException` (the emulator's choice: IoT Core's status is UNCONFIRMED) |
//!
//! Other query parameters (`contentType`, `responseTopic`, `messageExpiry`) and the
//! `x-amz-mqtt5-*` headers are accepted and ignored: the broker speaks MQTT 3.1.1. A body
//! announced larger than 128 KiB + 1 KiB is not read: the answer is 413 and the connection
//! closes.

use super::http::{self, Head, HeadError, Response};
use super::shared::Shared;
use crate::broker::{HttpPublishRefusal, PeerIdentity};
use crate::sigv4::percent_decode;
use bytes::BytesMut;
use iot443_proto::codec::{AWS_MAX_PAYLOAD, QoS};
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt as _};

/// The largest body read: IoT Core's payload limit and some slack, so that a slightly larger
/// payload still gets its 413 from the broker's check.
const MAX_BODY: usize = AWS_MAX_PAYLOAD + 1024;

/// What one request asks: the answer, and whether the connection may carry on.
struct Outcome {
    answer: Response,
    keep_alive: bool,
}

/// Serves HTTPS publish requests from `identity` on `stream` until the client closes (or a
/// request forces a close).
pub(super) async fn serve<S>(
    mut stream: S,
    peer: SocketAddr,
    identity: PeerIdentity,
    shared: Arc<Shared>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut buf = BytesMut::new();
    loop {
        let stopped = shared.stopped();
        let outcome = tokio::select! {
            () = stopped => break,
            outcome = tokio::time::timeout(
                http::REQUEST_TIMEOUT,
                one_request(&mut stream, &mut buf, peer, &identity, &shared),
            ) => match outcome {
                Err(_) | Ok(None) => break,
                Ok(Some(outcome)) => outcome,
            },
        };
        if outcome.answer.write(&mut stream, outcome.keep_alive).await.is_err()
            || !outcome.keep_alive
        {
            break;
        }
    }
    let _ = stream.shutdown().await;
}

/// Reads and runs one request; `None` when the client closed or the transport failed.
async fn one_request<S: AsyncRead + Unpin>(
    stream: &mut S,
    buf: &mut BytesMut,
    peer: SocketAddr,
    identity: &PeerIdentity,
    shared: &Shared,
) -> Option<Outcome> {
    let head = match http::read_head(stream, buf).await {
        Ok(Some(head)) => head,
        Ok(None) => return None,
        Err(HeadError::Malformed(detail)) => {
            tracing::warn!(%peer, "HTTPS publish: {detail}; answered 400 and closed");
            return Some(Outcome { answer: invalid(&detail), keep_alive: false });
        }
        Err(HeadError::Transport(detail)) => {
            tracing::debug!(%peer, "HTTPS publish: {detail}");
            return None;
        }
    };
    let keep_alive = head.keep_alive();
    let length = match head.body_length() {
        Ok(length) => length,
        Err(problem) => return Some(Outcome { answer: invalid(problem), keep_alive: false }),
    };
    if length.is_some_and(|length| length > MAX_BODY) {
        let answer = too_large(length.unwrap_or_default());
        return Some(Outcome { answer, keep_alive: false });
    }
    let body = match length {
        Some(length) => match http::read_body(stream, buf, length).await {
            Ok(body) => Some(body),
            Err(detail) => {
                tracing::debug!(%peer, "HTTPS publish: {detail}");
                return None;
            }
        },
        None => None,
    };
    let answer = answer(&head, body, identity, shared);
    if answer.status != 200 {
        tracing::info!(%peer, status = answer.status, method = %crate::peer_text::peer_text(&head.method),
            path = ?crate::peer_text::peer_text(head.path()), "HTTPS publish refused");
    }
    Some(Outcome { answer, keep_alive })
}

fn invalid(message: &str) -> Response {
    Response::json(400, Some("InvalidRequestException"), message)
}

fn too_large(size: usize) -> Response {
    Response::json(
        413,
        Some("RequestEntityTooLargeException"),
        &format!("the payload is {size} bytes; IoT Core accepts at most {AWS_MAX_PAYLOAD}"),
    )
}

fn answer(
    head: &Head,
    body: Option<bytes::Bytes>,
    identity: &PeerIdentity,
    shared: &Shared,
) -> Response {
    let Some(encoded_topic) = head.path().strip_prefix("/topics/") else {
        return Response::json(
            404,
            Some("ResourceNotFoundException"),
            "not found: the HTTPS publish API is POST /topics/<url-encoded topic>",
        );
    };
    if head.method != "POST" {
        return Response::json(
            405,
            Some("MethodNotAllowedException"),
            &format!("method {} is not allowed: publish with POST", head.method),
        );
    }
    let Some(body) = body else { return invalid("Content-Length is required") };
    let Some(topic) = percent_decode(encoded_topic).and_then(|t| String::from_utf8(t).ok()) else {
        return invalid("the topic in the path is not valid percent-encoded UTF-8");
    };
    let (qos, retain) = match publish_params(head.query()) {
        Ok(params) => params,
        Err(problem) => return invalid(&problem),
    };
    let published = shared.with_broker(|broker, now| {
        broker.publish_from_http(now, identity, &topic, body, qos, retain)
    });
    match published {
        Ok(()) => Response::json(200, None, "OK"),
        Err(refusal @ HttpPublishRefusal::PolicyDenied { .. }) => {
            Response::json(403, Some("ForbiddenException"), &refusal.to_string())
        }
        Err(HttpPublishRefusal::PayloadTooLarge { size }) => too_large(size),
        Err(refusal) => invalid(&refusal.to_string()),
    }
}

/// `qos` (default 0) and `retain` (default false) from the query.
fn publish_params(query: &str) -> Result<(QoS, bool), String> {
    let mut qos = QoS::AtMostOnce;
    let mut retain = false;
    for pair in query.split('&').filter(|pair| !pair.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let value =
            percent_decode(value).and_then(|v| String::from_utf8(v).ok()).unwrap_or_default();
        match name {
            "qos" => {
                qos = match value.as_str() {
                    "0" => QoS::AtMostOnce,
                    "1" => QoS::AtLeastOnce,
                    _ => return Err(format!("qos must be 0 or 1, not {value:?}")),
                }
            }
            "retain" => {
                retain = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(format!("retain must be true or false, not {value:?}")),
                }
            }
            _ => {}
        }
    }
    Ok((qos, retain))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_parameters() {
        assert_eq!(publish_params(""), Ok((QoS::AtMostOnce, false)));
        assert_eq!(publish_params("qos=1&retain=true&contentType=x"), Ok((QoS::AtLeastOnce, true)));
        assert!(publish_params("qos=2").is_err());
        assert!(publish_params("retain=yes").is_err());
    }
}
