//! `iot443 pub`: publish one message, a file, or one message per line of stdin.

use super::config;
use crate::args::PubArgs;
use crate::exit::Failure;
use bytes::Bytes;
use iot443::{Client, Delivery, QoS};
use std::collections::VecDeque;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Deliveries awaited at most at once while streaming stdin; the client itself keeps at most
/// 100 QoS 1 messages in flight, so a few windows ahead keeps it busy without holding the
/// whole input in memory.
const MAX_PENDING_DELIVERIES: usize = 1_000;

pub async fn run(args: PubArgs) -> Result<(), Failure> {
    let mut config = config::resolve(&args.connect)?;
    if let Some(path) = &args.outbox {
        config.outbox = Some(path.clone());
    }
    let payload = match (&args.message, &args.file, args.null_message) {
        (Some(message), _, _) => Some(Bytes::from(message.clone())),
        (_, Some(path), _) => Some(Bytes::from(std::fs::read(path).map_err(|error| {
            Failure::usage(format!("cannot read message file {}: {error}", path.display()))
        })?)),
        (_, _, true) => Some(Bytes::new()),
        _ => None,
    };
    let (client, _events) = Client::connect(&config).await?;
    if args.connect.verbose {
        eprintln!("{}", client.connection_info().summary());
    }
    let qos = QoS::from(args.qos);
    let mut pending: VecDeque<Delivery> = VecDeque::new();
    match payload {
        Some(payload) => {
            for _ in 0..args.repeat {
                let delivery = client
                    .publish_with_retain(&args.topic, qos, payload.clone(), args.retain)
                    .await?;
                push_bounded(&mut pending, delivery).await?;
            }
        }
        None => {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|error| Failure::usage(format!("cannot read stdin: {error}")))?
            {
                let delivery =
                    client.publish_with_retain(&args.topic, qos, line, args.retain).await?;
                push_bounded(&mut pending, delivery).await?;
            }
        }
    }
    for delivery in pending {
        delivery.await?;
    }
    client.disconnect().await?;
    Ok(())
}

async fn push_bounded(pending: &mut VecDeque<Delivery>, delivery: Delivery) -> Result<(), Failure> {
    pending.push_back(delivery);
    if pending.len() > MAX_PENDING_DELIVERIES
        && let Some(oldest) = pending.pop_front()
    {
        oldest.await?;
    }
    Ok(())
}
