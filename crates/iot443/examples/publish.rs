//! Connects, prints how, publishes N messages at QoS 1 and waits for each PUBACK.
//!
//! ```sh
//! cargo run -p iot443 --example publish -- [CONFIG] [COUNT] [TOPIC]
//! ```
//!
//! CONFIG is an `iot443.toml` or a C SDK `aws_iot_config.h` (default `iot443.toml`), COUNT the
//! number of messages (default 5), TOPIC where to publish (default `sdkTest/sub`). `IOT443_*`
//! environment variables override the file. Exit status 0 when every message was acknowledged.

use iot443::{Client, ClientError, Config, QoS};
use std::path::PathBuf;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("publish: {error}");
            ExitCode::from(error.kind().exit_code())
        }
    }
}

async fn run() -> Result<(), ClientError> {
    let mut args = std::env::args().skip(1);
    let path = PathBuf::from(args.next().unwrap_or_else(|| "iot443.toml".to_owned()));
    let count: u32 = match args.next() {
        Some(text) => {
            text.parse().map_err(|_| usage(&format!("COUNT {text:?} is not a number")))?
        }
        None => 5,
    };
    let topic = args.next().unwrap_or_else(|| "sdkTest/sub".to_owned());

    // The file, then the IOT443_* variables on top (IOT443_ALPN, IOT443_PORT, ...).
    let mut config = Config::load(&path)?;
    config.apply_process_env()?;

    let (client, _events) = Client::connect(&config).await?;
    println!("{}", client.connection_info().summary());

    for i in 0..count {
        let payload = format!("hello from iot443 QOS1 : {i}");
        // `publish` returns once the message is queued; the Delivery resolves on PUBACK.
        let delivery = client.publish(&topic, QoS::AtLeastOnce, payload.clone()).await?;
        delivery.await?;
        println!("{topic} {payload} (acknowledged)");
    }
    client.disconnect().await
}

/// A usage mistake, reported like a configuration error.
fn usage(message: &str) -> ClientError {
    ClientError::Config(iot443::ConfigError::InvalidValue {
        origin: "the command line (publish [CONFIG] [COUNT] [TOPIC])".to_owned(),
        field: "COUNT",
        message: message.to_owned(),
    })
}
