//! `iot443 pub --transport https` against a TLS server in the test that requires the device certificate
//! and answers like AWS IoT Core: each message is one POST, success prints nothing and exits 0,
//! a 403 exits 3 and a 429 exits 4 with IoT Core's message on stderr, an invalid topic exits 2
//! before anything is sent.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]

use iot443_emulator::pki::{Pki, PkiOptions};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, channel};
use std::time::Duration;

/// A request as the server read it: the request line and the body.
#[derive(Debug)]
struct Seen {
    line: String,
    body: Vec<u8>,
}

/// Serves every connection, answering each request with the next of `answers` (the last one
/// again when they run out); the requests come out of the receiver. The ALPN selected is
/// `x-amzn-http-ca` when offered.
fn serve(pki: &Pki, answers: Vec<String>) -> (u16, Receiver<Seen>) {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(pki.ca_roots()),
        Arc::clone(&provider),
    )
    .build()
    .unwrap();
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_client_cert_verifier(verifier)
        .with_single_cert(pki.server_cert_chain(), pki.server_key())
        .unwrap();
    config.alpn_protocols = vec![b"x-amzn-http-ca".to_vec()];
    let config = Arc::new(config);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (seen_tx, seen) = channel();
    std::thread::spawn(move || {
        let mut answered = 0;
        for tcp in listener.incoming() {
            let Ok(tcp) = tcp else { return };
            let Ok(connection) = rustls::ServerConnection::new(Arc::clone(&config)) else { return };
            let mut stream = rustls::StreamOwned::new(connection, tcp);
            while let Some(request) = read_request(&mut stream) {
                let answer = answers.get(answered).or(answers.last()).unwrap().clone();
                answered += 1;
                if seen_tx.send(request).is_err() || stream.write_all(answer.as_bytes()).is_err() {
                    return;
                }
            }
        }
    });
    (port, seen)
}

fn read_request(stream: &mut impl Read) -> Option<Seen> {
    let mut buf = Vec::new();
    let mut byte = [0_u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let length: usize = head
        .lines()
        .find_map(|line| {
            line.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap();
    let mut body = vec![0_u8; length];
    stream.read_exact(&mut body).ok()?;
    Some(Seen { line: head.lines().next().unwrap().to_owned(), body })
}

fn answer(status: u16, reason: &str, error_type: &str, message: &str) -> String {
    let body = format!("{{\"message\":\"{message}\",\"traceId\":\"trace-1\"}}");
    format!(
        "HTTP/1.1 {status} {reason}\r\nx-amzn-ErrorType: {error_type}\r\ncontent-type: \
         application/json\r\ncontent-length: {}\r\nconnection: keep-alive\r\n\r\n{body}",
        body.len()
    )
}

fn ok() -> String {
    let body = "{\"message\":\"OK\",\"traceId\":\"trace-ok\"}";
    format!("HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}", body.len())
}

fn pub_https(dir: &Path, port: u16, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_iot443"))
        .arg("pub")
        .args(["--transport", "https"])
        .args(args)
        .arg("--config")
        .arg(dir.join("iot443.toml"))
        .args(["-p", &port.to_string()])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).unwrap();
    child.wait_with_output().unwrap()
}

fn next(seen: &Receiver<Seen>) -> Seen {
    seen.recv_timeout(Duration::from_secs(30)).expect("a request")
}

#[test]
fn each_message_is_one_post_and_success_prints_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let (port, seen) = serve(&pki, vec![ok()]);

    let output = pub_https(
        dir.path(),
        port,
        &["-t", "dt/door", "-m", "open", "-q", "1", "--repeat", "2"],
        "",
    );
    assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.stdout.is_empty());
    for _ in 0..2 {
        let request = next(&seen);
        assert_eq!(request.line, "POST /topics/dt%2Fdoor?qos=1&retain=false HTTP/1.1");
        assert_eq!(request.body, b"open");
    }

    let lines = pub_https(dir.path(), port, &["-t", "t", "-l", "-r"], "one\ntwo\n");
    assert_eq!(lines.status.code(), Some(0), "{}", String::from_utf8_lossy(&lines.stderr));
    let bodies: Vec<Vec<u8>> = (0..2).map(|_| next(&seen).body).collect();
    assert_eq!(bodies, [b"one".to_vec(), b"two".to_vec()]);
    assert!(seen.try_recv().is_err(), "one POST per line");
}

#[test]
fn refusals_exit_with_their_codes_and_iot_cores_message() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let forbidden = answer(403, "Forbidden", "ForbiddenException:", "Not authorized");
    let throttled = answer(429, "Too Many Requests", "ThrottlingException:", "Rate exceeded");
    let (port, seen) = serve(&pki, vec![forbidden, throttled]);

    let output = pub_https(dir.path(), port, &["-t", "a/b", "-m", "x"], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(3), "{stderr}");
    assert!(stderr.contains("403 ForbiddenException: Not authorized"), "{stderr}");
    assert!(stderr.contains("iot:Publish"), "{stderr}");
    next(&seen);

    let output = pub_https(dir.path(), port, &["-t", "a/b", "-m", "x"], "");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(4), "{stderr}");
    assert!(stderr.contains("retry later"), "{stderr}");
    next(&seen);
}

#[test]
fn an_invalid_topic_exits_2_and_sends_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let pki = Pki::load_or_create(dir.path(), &PkiOptions::default()).unwrap();
    let (port, seen) = serve(&pki, vec![ok()]);
    let output = pub_https(dir.path(), port, &["-t", "a/#", "-m", "x"], "");
    assert_eq!(output.status.code(), Some(2), "{}", String::from_utf8_lossy(&output.stderr));
    assert!(String::from_utf8_lossy(&output.stderr).contains("nothing was sent"));
    assert!(seen.try_recv().is_err());
}
