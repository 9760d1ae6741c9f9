//! `iot443 demo`: the Embedded C SDK's subscribe_publish_sample (or with `--shadow` its
//! shadow_sample, in `demo_shadow`), against AWS IoT Core (with `--config`) or against the local
//! emulator started in-process.

use crate::args::DemoArgs;
use crate::exit::Failure;
use iot443::config::Transport;
use iot443::{Client, Config, QoS, Subscription};
use iot443_emulator::server::{Emulator, EmulatorOptions, ServerError};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// The sample's topic.
const TOPIC: &str = "sdkTest/sub";
/// How long a message may take to come back before the demo gives up on it.
const ROUND_TRIP_TIMEOUT: Duration = Duration::from_secs(10);

pub async fn run(args: DemoArgs) -> Result<(), Failure> {
    let mut emulator = None;
    let config = match &args.config {
        Some(path) => {
            let mut config = Config::load(path)?;
            config.apply_process_env()?;
            config
        }
        None => {
            let started = start_emulator().await?;
            let config = Config::load(&started.pki.config_path())?;
            emulator = Some(started);
            config
        }
    };
    let mut config = config;
    if let Some(road) = args.transport {
        config.transport = road.into();
    }
    if config.transport == Transport::Https {
        if let Some(emulator) = emulator {
            emulator.stop().await;
        }
        return Err(Failure::usage(
            "the demo subscribes, which https cannot: use --transport tls or websocket (`iot443 \
             pub --transport https` publishes over HTTPS)",
        ));
    }
    let result = if args.shadow {
        super::demo_shadow::run_sample(&config, args.thing.as_deref(), args.count).await
    } else {
        run_sample(&config, args.count).await
    };
    if let Some(emulator) = emulator {
        emulator.stop().await;
    }
    result
}

async fn start_emulator() -> Result<Emulator, Failure> {
    let dir = data_dir().join("emulator");
    println!("iot443 demo: starting the local IoT Core endpoint (PKI in {})", dir.display());
    let mut options = EmulatorOptions::new(dir);
    options.mqtts_port = None;
    options.https_port = None;
    match Emulator::start(options.clone()).await {
        Ok(emulator) => Ok(emulator),
        Err(ServerError::Bind { source, .. }) => {
            options.alpn_port = 0;
            let emulator = Emulator::start(options).await?;
            println!(
                "iot443 demo: port 443 is not available ({source}); using {} instead",
                emulator.alpn_addr
            );
            Ok(emulator)
        }
        Err(other) => Err(other.into()),
    }
}

/// `$XDG_DATA_HOME/iot443`, else `~/.local/share/iot443`, else `./.iot443`.
pub fn data_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("XDG_DATA_HOME").filter(|dir| !dir.is_empty()) {
        return PathBuf::from(dir).join("iot443");
    }
    match std::env::var_os("HOME").filter(|home| !home.is_empty()) {
        Some(home) => PathBuf::from(home).join(".local/share/iot443"),
        None => PathBuf::from(".iot443"),
    }
}

async fn run_sample(config: &Config, count: u64) -> Result<(), Failure> {
    let (client, _events) = Client::connect(config).await?;
    println!("{}", client.connection_info().summary());
    let mut subscription = client.subscribe(TOPIC, QoS::AtLeastOnce).await?;
    println!("subscribed to {TOPIC}");
    let mut came_back = 0u64;
    let mut sent = 0u64;
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while count == 0 || sent < count {
        let qos = if sent.is_multiple_of(2) { QoS::AtMostOnce } else { QoS::AtLeastOnce };
        let payload = format!("hello from SDK QOS{} : {sent}", qos as u8);
        let started = Instant::now();
        let delivery = client.publish(TOPIC, qos, payload.clone()).await?;
        sent += 1;
        tokio::select! {
            _ = &mut interrupted => break,
            result = round_trip(delivery, &mut subscription, &payload) => {
                if result? {
                    came_back += 1;
                    println!("{TOPIC}\t{payload}\t(QoS {}, round trip {:.3} ms)", qos as u8, started.elapsed().as_secs_f64() * 1e3);
                } else {
                    println!("{TOPIC}\t{payload}\tdid not come back within {ROUND_TRIP_TIMEOUT:?}");
                }
            }
        }
    }
    client.disconnect().await?;
    println!("{came_back} of {sent} messages came back");
    if came_back == sent && sent > 0 {
        Ok(())
    } else {
        Err(Failure::incomplete(format!("only {came_back} of {sent} messages came back")))
    }
}

/// Waits for the publish to be delivered and for the same payload to come back.
async fn round_trip(
    delivery: iot443::Delivery,
    subscription: &mut Subscription,
    payload: &str,
) -> Result<bool, Failure> {
    let wait = async {
        delivery.await?;
        while let Some(message) = subscription.recv().await {
            if message.payload == payload.as_bytes() {
                return Ok(true);
            }
        }
        Ok(false)
    };
    match tokio::time::timeout(ROUND_TRIP_TIMEOUT, wait).await {
        Ok(result) => result.map_err(|error: iot443::ClientError| Failure::from(error)),
        Err(_) => Ok(false),
    }
}
