#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Properties of what the WebSocket road parses: any split of a byte stream into binary
//! messages reads back as the same stream; any credentials file text is read without a panic,
//! finds the keys of a well-formed `[default]` profile, and never puts a value in an error.

use bytes::Bytes;
use futures_util::SinkExt;
use iot443::config::Config;
use iot443::config::aws_credentials;
use iot443::connect::WebSocketTransport;
use iot443_test_support::proptest_cases;
use proptest::prelude::*;
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio_tungstenite::tungstenite::Message;

/// Sends `chunks` as binary messages and reads them through the adapter with reads of
/// `read_size` bytes.
fn read_back(chunks: &[Vec<u8>], read_size: usize) -> Vec<u8> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let (client_io, server_io) = tokio::io::duplex(1024);
        let server = tokio::spawn(tokio_tungstenite::accept_async(server_io));
        let (ws, _) =
            tokio_tungstenite::client_async("ws://localhost/mqtt", client_io).await.unwrap();
        let mut server = server.await.unwrap().unwrap();
        let messages: Vec<Vec<u8>> = chunks.to_vec();
        let sender = tokio::spawn(async move {
            for message in messages {
                server.send(Message::Binary(Bytes::from(message))).await.unwrap();
            }
            server.send(Message::Close(None)).await.unwrap();
            server
        });
        let mut client = WebSocketTransport::new(ws, "localhost:443", Duration::from_secs(3600));
        let mut out = Vec::new();
        let mut buf = vec![0; read_size];
        loop {
            let n = client.read(&mut buf).await.unwrap();
            if n == 0 {
                break;
            }
            out.extend_from_slice(&buf[..n]);
        }
        drop(sender.await.unwrap());
        out
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases() / 10))]

    #[test]
    fn any_split_into_binary_messages_reads_as_the_same_stream(
        chunks in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..300), 0..12),
        read_size in 1_usize..64,
    ) {
        let expected: Vec<u8> = chunks.concat();
        prop_assert_eq!(read_back(&chunks, read_size), expected);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(proptest_cases()))]

    #[test]
    fn any_credentials_file_reads_without_panic_and_no_value_reaches_an_error(
        text in "[\\[\\]a-z_=# \\n;A-Z0-9/+]{0,400}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aws-credentials");
        std::fs::write(&path, &text).unwrap();
        let mut config = Config::websocket_builder("localhost", "dev").build().unwrap();
        config.aws_credentials = Some(path);
        config.region = Some("us-east-1".to_owned());
        if let Err(error) = aws_credentials::resolve(&config, &|_| None) {
            let message = error.to_string();
            for line in text.lines() {
                if let Some((_, value)) = line.split_once('=') {
                    let value = value.trim();
                    if value.len() >= 12 {
                        prop_assert!(!message.contains(value), "{} in {}", value, message);
                    }
                }
            }
        }
    }

    #[test]
    fn a_well_formed_default_profile_is_found_among_other_lines(
        noise in "[a-z_ =#;\\n]{0,120}",
        id in "AKIA[A-Z0-9]{16}",
        secret in "[A-Za-z0-9/+]{40}",
    ) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aws-credentials");
        let text = format!(
            "[other]\n{noise}\n[default]\naws_access_key_id = {id}\n  aws_secret_access_key={secret}  \n[next]\n{noise}\n"
        );
        std::fs::write(&path, text).unwrap();
        let mut config = Config::websocket_builder("localhost", "dev").build().unwrap();
        config.aws_credentials = Some(path);
        config.region = Some("us-east-1".to_owned());
        let identity = aws_credentials::resolve(&config, &|_| None).unwrap();
        prop_assert_eq!(identity.credentials.access_key_id(), id.as_str());
        prop_assert_eq!(identity.credentials.secret_access_key(), secret.as_str());
    }
}
