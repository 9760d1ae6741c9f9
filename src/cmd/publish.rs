//! `iot443 pub`: publish one message, a file, or one message per line of stdin.

use super::config;
use crate::args::PubArgs;
use crate::exit::Failure;
use bytes::Bytes;
use iot443::https::{HttpsPublish, HttpsPublisher};
use iot443::{Client, Config, Delivery, QoS, Queued};
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
        return run_https(&args, config).await;
    }
    if let Some(path) = &args.outbox {
        config.outbox = Some(path.clone());
    }
    let payload = payload(&args).await?;
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

/// `iot443 pub --transport https`: each message (`-m`,
/// `-f`, `-n`, times `--repeat`, or each line of stdin with `-l`) is one POST, answered before
/// the next is sent; nothing is printed on success. The first refusal ends the command with
/// its exit code.
pub async fn run_https(args: &PubArgs, config: Config) -> Result<(), Failure> {
    if args.outbox.is_some() {
        return Err(Failure::usage(
            "--outbox keeps MQTT publishes; over HTTPS each message is answered at once: drop \
             --outbox or --transport https",
        ));
    }
    let payload = payload(args).await?;
    let qos = QoS::from(args.qos);
    let mut publisher = HttpsPublisher::new(&config);
    let message = |payload: Bytes| {
        HttpsPublish::new(args.topic.as_str(), payload).qos(qos).retain(args.retain)
    };
    let outcome = async {
        match payload {
            Some(payload) => {
                for _ in 0..args.repeat {
                    publisher.publish(&message(payload.clone())).await?;
                }
            }
            None => {
                let mut lines = BufReader::new(tokio::io::stdin()).lines();
                while let Some(line) = lines
                    .next_line()
                    .await
                    .map_err(|error| Failure::usage(format!("cannot read stdin: {error}")))?
                {
                    publisher.publish(&message(Bytes::from(line))).await?;
                }
            }
        }
        Ok::<(), Failure>(())
    }
    .await;
    publisher.close().await;
    outcome
}

/// The message of `-m`, `-f` (read on the blocking pool) or `-n`; `None`: lines of stdin.
async fn payload(args: &PubArgs) -> Result<Option<Bytes>, Failure> {
    Ok(match (&args.message, &args.file, args.null_message) {
        (Some(message), _, _) => Some(Bytes::from(message.clone())),
        (_, Some(path), _) => {
            let owned = path.clone();
            let read = tokio::task::spawn_blocking(move || std::fs::read(owned)).await;
            let bytes = match read {
                Ok(Ok(bytes)) => bytes,
                Ok(Err(error)) => {
                    return Err(Failure::usage(format!(
                        "cannot read message file {}: {error}",
                        path.display()
                    )));
                }
                Err(error) => {
                    return Err(Failure::usage(format!(
                        "reading message file {} did not finish: {error}",
                        path.display()
                    )));
                }
            };
            Some(Bytes::from(bytes))
        }
        (_, _, true) => Some(Bytes::new()),
        _ => None,
    })
}
