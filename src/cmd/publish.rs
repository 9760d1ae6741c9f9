//! `iot443 pub`: publish one message, a file, or one message per line of stdin.

use super::config;
use crate::args::PubArgs;
use crate::exit::Failure;
use bytes::Bytes;
use iot443::{Client, Delivery, QoS, Queued};
use std::collections::VecDeque;
use tokio::io::{AsyncBufReadExt, BufReader};

/// Deliveries awaited at most at once while streaming stdin; the client itself keeps at most
/// 100 QoS 1 messages in flight, so a few windows ahead keeps it busy without holding the
/// whole input in memory.
const MAX_PENDING_DELIVERIES: usize = 1_000;

/// Publishes queued before the oldest one's acceptance is awaited. With an outbox, the client
/// writes what is queued to disk together (one sync per group instead of one per message).
const MAX_UNACCEPTED: usize = 256;

/// The publishes on their way: queued (maybe not yet on disk), then accepted (waiting for
/// PUBACK at QoS 1).
#[derive(Default)]
struct InFlight {
    queued: VecDeque<Queued>,
    deliveries: VecDeque<Delivery>,
}

impl InFlight {
    async fn push(&mut self, queued: Queued) -> Result<(), Failure> {
        self.queued.push_back(queued);
        if self.queued.len() > MAX_UNACCEPTED
            && let Some(oldest) = self.queued.pop_front()
        {
            self.accepted(oldest.accepted().await?).await?;
        }
        Ok(())
    }

    async fn accepted(&mut self, delivery: Delivery) -> Result<(), Failure> {
        self.deliveries.push_back(delivery);
        if self.deliveries.len() > MAX_PENDING_DELIVERIES
            && let Some(oldest) = self.deliveries.pop_front()
        {
            oldest.await?;
        }
        Ok(())
    }

    /// Waits for every message: accepted, then delivered.
    async fn finish(mut self) -> Result<(), Failure> {
        while let Some(queued) = self.queued.pop_front() {
            let delivery = queued.accepted().await?;
            self.deliveries.push_back(delivery);
        }
        for delivery in self.deliveries {
            delivery.await?;
        }
        Ok(())
    }
}

pub async fn run(args: PubArgs) -> Result<(), Failure> {
    let mut config = config::resolve_for_publish(&args.connect)?;
    if config.transport == iot443::config::Transport::Https {
        return Err(Failure::usage(
            "--transport https: HTTPS publish is not available in this build; use --transport \
             tls or websocket",
        ));
    }
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
    let mut in_flight = InFlight::default();
    match payload {
        Some(payload) => {
            for _ in 0..args.repeat {
                let queued =
                    client.start_publish(&args.topic, qos, payload.clone(), args.retain).await?;
                in_flight.push(queued).await?;
            }
        }
        None => {
            let mut lines = BufReader::new(tokio::io::stdin()).lines();
            while let Some(line) = lines
                .next_line()
                .await
                .map_err(|error| Failure::usage(format!("cannot read stdin: {error}")))?
            {
                let queued = client.start_publish(&args.topic, qos, line, args.retain).await?;
                in_flight.push(queued).await?;
            }
        }
    }
    in_flight.finish().await?;
    client.disconnect().await?;
    Ok(())
}
