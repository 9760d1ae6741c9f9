//! A minimal HTTP CONNECT proxy on an ephemeral loopback port, for the tests that tunnel
//! through one (the client, `iot443 doctor`).

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// What the test proxy does with a CONNECT.
#[derive(Clone)]
pub enum Mode {
    /// Opens every tunnel.
    Open,
    /// Opens the tunnel only with this `Proxy-Authorization` value, else answers 407.
    RequireAuth(&'static str),
    /// Answers 403 to every CONNECT.
    Forbid,
}

/// A CONNECT proxy on an ephemeral loopback port, recording the request heads it received.
pub struct TestProxy {
    pub addr: SocketAddr,
    requests: Arc<Mutex<Vec<String>>>,
}

impl TestProxy {
    pub async fn start(mode: Mode) -> TestProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let requests = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, mode.clone(), Arc::clone(&seen)));
            }
        });
        TestProxy { addr, requests }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

async fn serve(mut client: TcpStream, mode: Mode, seen: Arc<Mutex<Vec<String>>>) {
    // Byte by byte, so that nothing after the head is consumed.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0_u8; 1];
        if client.read(&mut byte).await.unwrap_or(0) == 0 {
            return;
        }
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    seen.lock().unwrap().push(head.clone());
    let target = head
        .lines()
        .next()
        .and_then(|line| line.strip_prefix("CONNECT "))
        .and_then(|rest| rest.strip_suffix(" HTTP/1.1"))
        .expect("a CONNECT request line")
        .to_owned();
    let authorization = head.lines().find_map(|line| line.strip_prefix("Proxy-Authorization: "));
    let refusal = match mode {
        Mode::Open => None,
        Mode::RequireAuth(expected) if authorization == Some(expected) => None,
        Mode::RequireAuth(_) => Some(
            "HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic \
             realm=\"test\"\r\nContent-Length: 0\r\n\r\n",
        ),
        Mode::Forbid => Some("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"),
    };
    if let Some(answer) = refusal {
        let _ = client.write_all(answer.as_bytes()).await;
        return;
    }
    let Ok(mut upstream) = TcpStream::connect(target.as_str()).await else {
        let _ = client.write_all(b"HTTP/1.1 502 Bad Gateway\r\n\r\n").await;
        return;
    };
    client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n").await.unwrap();
    let _ = tokio::io::copy_bidirectional(&mut client, &mut upstream).await;
}
