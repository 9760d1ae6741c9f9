//! Child mode, the in-process library side of the bench:
//! `e2e child KIND HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW`, where KIND is
//! `iot443-connects`, `rumqttc-connects`, `iot443-stream` or `rumqttc-stream`, or
//! `iot443wss-connects` / `iot443wss-stream` for iot443 over WebSocket + SigV4 (region and
//! credentials file from `BENCH_WSS_REGION` and `BENCH_WSS_CREDENTIALS`). It prints one line,
//! `connect_ms=…` or `elapsed_ms=…`, which the bench reads.

use bytes::Bytes;
use iot443::{Client, Config, Credentials, QoS};
use iot443_interop::ALPN;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// The command line of a child.
struct Args {
    kind: String,
    host: String,
    port: u16,
    ca: String,
    cert: String,
    key: String,
    client_id: String,
    qos: u8,
    count: usize,
    window: usize,
}

/// Runs the child `args` (after `child`) on a current-thread runtime, for at most 100 s.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let [kind, host, port, ca, cert, key, client_id, qos, count, window] = args else {
        eprintln!("e2e child: expected KIND HOST PORT CA CERT KEY CLIENT_ID QOS COUNT WINDOW");
        return ExitCode::from(2);
    };
    let args = Args {
        kind: kind.clone(),
        host: host.clone(),
        port: port.parse().unwrap_or(443),
        ca: ca.clone(),
        cert: cert.clone(),
        key: key.clone(),
        client_id: client_id.clone(),
        qos: qos.parse().unwrap_or(0),
        count: count.parse().unwrap_or(1),
        window: window.parse().unwrap_or(100),
    };
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let result = runtime.block_on(async {
        tokio::time::timeout(Duration::from_secs(100), async {
            match args.kind.as_str() {
                "iot443-connects" | "iot443wss-connects" => iot443_connects(&args).await,
                "rumqttc-connects" => rumqttc_connects(&args).await,
                "iot443-stream" | "iot443wss-stream" => iot443_stream(&args).await,
                "rumqttc-stream" => rumqttc_stream(&args).await,
                other => Err(format!("unknown child kind {other:?}")),
            }
        })
        .await
        .unwrap_or_else(|_| Err("timed out".into()))
    });
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("e2e child {}: {error}", args.kind);
            ExitCode::FAILURE
        }
    }
}

fn config(args: &Args) -> Result<Config, String> {
    let mut builder = Config::builder(&args.host, &args.client_id, &args.cert, &args.key)
        .port(args.port)
        .root_ca(&args.ca);
    if args.port != 443 {
        builder = builder.alpn(ALPN);
    }
    let mut config = builder.build().map_err(|e| e.to_string())?;
    if args.kind.starts_with("iot443wss-") {
        let setting = |name: &str| std::env::var_os(name).ok_or(format!("{name} is not set"));
        config.transport = iot443::config::Transport::WebSocket;
        config.region = Some(setting("BENCH_WSS_REGION")?.to_string_lossy().into_owned());
        config.aws_credentials = Some(setting("BENCH_WSS_CREDENTIALS")?.into());
        config.validate().map_err(|e| e.to_string())?;
    }
    Ok(config)
}

fn qos(args: &Args) -> QoS {
    if args.qos == 1 { QoS::AtLeastOnce } else { QoS::AtMostOnce }
}

/// `count` payloads of 100 bytes (message i: its number in decimal, zero-padded on the left),
/// slices of one buffer, so that making them costs no allocation per message and few
/// instructions (the `costs` workload counts both per message; `format!` would cost ~3,500
/// instructions a message, more than a publish).
fn payloads(count: usize) -> Vec<Bytes> {
    let mut all = vec![b'0'; count * 100];
    for (i, payload) in all.chunks_exact_mut(100).enumerate() {
        let mut n = i;
        for digit in payload.iter_mut().rev() {
            if n == 0 {
                break;
            }
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
    }
    let all = Bytes::from(all);
    (0..count).map(|i| all.slice(i * 100..(i + 1) * 100)).collect()
}

fn millis(list: &[Duration]) -> String {
    list.iter().map(|d| format!("{:.3}", d.as_secs_f64() * 1e3)).collect::<Vec<_>>().join(" ")
}

async fn iot443_connects(args: &Args) -> Result<String, String> {
    let config = config(args)?;
    let mut times = Vec::new();
    for _ in 0..args.count {
        let start = Instant::now();
        let (client, _events) = Client::connect(&config).await.map_err(|e| e.to_string())?;
        times.push(start.elapsed());
        client.disconnect().await.map_err(|e| e.to_string())?;
    }
    Ok(format!("connect_ms={}", millis(&times)))
}

async fn iot443_stream(args: &Args) -> Result<String, String> {
    let config = config(args)?;
    let (client, _events) = Client::connect(&config).await.map_err(|e| e.to_string())?;
    let payloads = payloads(args.count);
    let qos = qos(args);
    let start = Instant::now();
    // Deliveries awaited in order as an application would, at most twice the window
    // outstanding (rumqttc's child has as many: its request queue and its in-flight window);
    // holding all 20,000 would count them in the peak RSS.
    let outstanding = 2 * args.window.max(1);
    let mut deliveries = std::collections::VecDeque::with_capacity(outstanding);
    for payload in payloads {
        if deliveries.len() >= outstanding
            && let Some(delivery) = deliveries.pop_front()
        {
            let delivery: iot443::Delivery = delivery;
            delivery.await.map_err(|e| e.to_string())?;
        }
        deliveries
            .push_back(client.publish("bench/s", qos, payload).await.map_err(|e| e.to_string())?);
    }
    for delivery in deliveries {
        delivery.await.map_err(|e| e.to_string())?;
    }
    let mut elapsed = start.elapsed();
    client.disconnect().await.map_err(|e| e.to_string())?;
    if args.qos == 0 {
        // A QoS 0 Delivery resolves once the message is in the driver's buffer, before
        // the write: the last byte is known written only once DISCONNECT was flushed.
        elapsed = start.elapsed();
    }
    Ok(format!("elapsed_ms={:.3}", elapsed.as_secs_f64() * 1e3))
}

/// rumqttc with the rustls configuration iot443 builds (ring, client certificate, ALPN).
fn rumqttc_options(args: &Args) -> Result<rumqttc::MqttOptions, String> {
    let config = config(args)?;
    let credentials = Credentials::load(&config).map_err(|e| e.to_string())?;
    let tls = iot443::tls::client_config(&config, &credentials).map_err(|e| e.to_string())?;
    let mut options = rumqttc::MqttOptions::new(&args.client_id, &args.host, args.port);
    options
        .set_transport(rumqttc::Transport::tls_with_config(rumqttc::TlsConfiguration::Rustls(tls)));
    options.set_keep_alive(Duration::from_secs(60));
    options.set_clean_session(true);
    options.set_inflight(u16::try_from(args.window).unwrap_or(100));
    Ok(options)
}

async fn rumqttc_wait_connack(eventloop: &mut rumqttc::EventLoop) -> Result<(), String> {
    loop {
        match eventloop.poll().await.map_err(|e| e.to_string())? {
            rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(ack)) => {
                return if ack.code == rumqttc::ConnectReturnCode::Success {
                    Ok(())
                } else {
                    Err(format!("refused: {:?}", ack.code))
                };
            }
            _ => continue,
        }
    }
}

async fn rumqttc_disconnect(client: &rumqttc::AsyncClient, eventloop: &mut rumqttc::EventLoop) {
    let _ = client.disconnect().await;
    for _ in 0..1000 {
        match eventloop.poll().await {
            Ok(rumqttc::Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_) => break,
            Ok(_) => {}
        }
    }
}

async fn rumqttc_connects(args: &Args) -> Result<String, String> {
    let mut times = Vec::new();
    for _ in 0..args.count {
        let start = Instant::now();
        let options = rumqttc_options(args)?;
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
        rumqttc_wait_connack(&mut eventloop).await?;
        times.push(start.elapsed());
        rumqttc_disconnect(&client, &mut eventloop).await;
    }
    Ok(format!("connect_ms={}", millis(&times)))
}

async fn rumqttc_stream(args: &Args) -> Result<String, String> {
    let options = rumqttc_options(args)?;
    let (client, mut eventloop) = rumqttc::AsyncClient::new(options, args.window.max(10));
    rumqttc_wait_connack(&mut eventloop).await?;
    let payloads = payloads(args.count);
    let qos = if args.qos == 1 { rumqttc::QoS::AtLeastOnce } else { rumqttc::QoS::AtMostOnce };
    let start = Instant::now();
    let publisher = {
        let client = client.clone();
        tokio::spawn(async move {
            for payload in payloads {
                if client.publish_bytes("bench/s", qos, false, payload).await.is_err() {
                    break;
                }
            }
        })
    };
    let mut done = 0;
    while done < args.count {
        match eventloop.poll().await.map_err(|e| e.to_string())? {
            rumqttc::Event::Incoming(rumqttc::Packet::PubAck(_)) if args.qos == 1 => done += 1,
            rumqttc::Event::Outgoing(rumqttc::Outgoing::Publish(_)) if args.qos == 0 => done += 1,
            _ => {}
        }
    }
    let mut elapsed = start.elapsed();
    let _ = publisher.await;
    rumqttc_disconnect(&client, &mut eventloop).await;
    if args.qos == 0 {
        // Measured like iot443's: up to DISCONNECT flushed.
        elapsed = start.elapsed();
    }
    Ok(format!("elapsed_ms={:.3}", elapsed.as_secs_f64() * 1e3))
}
