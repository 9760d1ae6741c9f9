//! Connects, prints how, subscribes and prints every message until Ctrl-C (or COUNT messages).
//!
//! ```sh
//! cargo run -p iot443 --example subscribe -- [CONFIG] [FILTER] [COUNT]
//! ```
//!
//! CONFIG is an `iot443.toml` or a C SDK `aws_iot_config.h` (default `iot443.toml`), FILTER the
//! topic filter (default `sdkTest/#`), COUNT how many messages to wait for (default: until
//! Ctrl-C). `IOT443_*` environment variables override the file.

use iot443::{Client, ClientError, Config, ConfigError, Event, Events, QoS};
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Client(error)) => {
            eprintln!("subscribe: {error}");
            ExitCode::from(error.kind().exit_code())
        }
        Err(Failure::Ended(reason)) => {
            eprintln!("subscribe: {reason}");
            ExitCode::from(4)
        }
    }
}

/// Why the example stopped early.
enum Failure {
    /// A call failed.
    Client(ClientError),
    /// The connection ended while waiting for messages, for this reason.
    Ended(String),
}

impl From<ClientError> for Failure {
    fn from(error: ClientError) -> Self {
        Failure::Client(error)
    }
}

impl From<ConfigError> for Failure {
    fn from(error: ConfigError) -> Self {
        Failure::Client(error.into())
    }
}

async fn run() -> Result<(), Failure> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "iot443.toml".to_owned()));
    let filter = args.next().unwrap_or_else(|| "sdkTest/#".to_owned());
    let count: Option<u64> = match args.next() {
        Some(text) => {
            Some(text.parse().map_err(|_| usage(&format!("COUNT {text:?} is not a number")))?)
        }
        None => None,
    };

    let mut config = Config::load(&path)?;
    config.apply_process_env()?;

    let (client, mut events) = Client::connect(&config).await?;
    println!("{}", client.connection_info().summary());
    // Returns once SUBACK granted the filter; an endpoint's refusal is an error here.
    let mut messages = client.subscribe(&filter, QoS::AtLeastOnce).await?;
    println!("subscribed to {filter}");

    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    let mut received = 0u64;
    while count.is_none_or(|count| received < count) {
        tokio::select! {
            _ = &mut interrupted => break,
            message = messages.recv() => match message {
                Some(message) => {
                    received += 1;
                    println!("{} {}", message.topic, String::from_utf8_lossy(&message.payload));
                }
                // The connection ended: the event stream says why.
                None => return Err(Failure::Ended(why_it_ended(&mut events).await)),
            },
        }
    }
    Ok(client.disconnect().await?)
}

/// Why the connection ended, from the client's event stream.
async fn why_it_ended(events: &mut Events) -> String {
    let mut reason = "the connection ended".to_owned();
    while let Some(event) = events.recv().await {
        if let Event::Disconnected { reason: why } = event {
            reason = why;
        }
    }
    reason
}

/// A usage mistake, reported like a configuration error.
fn usage(message: &str) -> ClientError {
    ClientError::Config(ConfigError::InvalidValue {
        origin: "the command line (subscribe [CONFIG] [FILTER] [COUNT])".to_owned(),
        field: "COUNT",
        message: message.to_owned(),
    })
}
