//! `iot443 bench sub`: many subscribers to one filter, and what they receive per second.

use super::endpoint::Endpoint;
use super::fleet::{self, FleetCounters, Identities};
use super::process_stats;
use super::progress::Progress;
use super::stamp;
use super::stop::Stop;
use super::summary::{Summary, per_second};
use super::tally::{Failures, Latencies};
use crate::args::BenchSubArgs;
use crate::exit::Failure;
use iot443::{Client, QoS, Subscription};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the subscribers may still receive once the publisher is done.
const DRAIN: Duration = Duration::from_secs(5);
/// How long closing the connections may take at the end.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);

/// What every subscriber adds to.
#[derive(Default)]
struct Tally {
    received: AtomicU64,
    seen: Mutex<Seen>,
    arrived: tokio::sync::Notify,
}

/// The latencies, and when the first and the last message arrived.
#[derive(Default)]
struct Seen {
    latencies: Latencies,
    first: Option<Instant>,
    last: Option<Instant>,
}

pub async fn run(args: BenchSubArgs) -> Result<(), Failure> {
    super::ensure_open_files(u64::from(args.count) + 1)?;
    let endpoint = Endpoint::open(&args.common).await?;
    let result = load(&args, &endpoint).await;
    endpoint.close().await;
    result
}

async fn load(args: &BenchSubArgs, endpoint: &Endpoint) -> Result<(), Failure> {
    let common = &args.common;
    let qos = QoS::from(args.qos);
    if args.rate > 0 {
        Client::check_publish(&args.topic, qos, args.size as usize).map_err(|error| {
            Failure::usage(format!(
                "the bench publishes to --topic, which must then be a topic name ({error}); \
                 with --rate 0 it only counts what others publish"
            ))
        })?;
    }
    let identities = Identities::new(&endpoint.config, common);
    let mut stop = Stop::at_ctrl_c_or_after(common.time_limit);
    let counters = Arc::new(FleetCounters::default());
    let count = u64::from(args.count);
    let client_before = process_stats::read(None).await;
    let tally = Arc::new(Tally::default());
    let progress = {
        let counters = Arc::clone(&counters);
        let tally = Arc::clone(&tally);
        Progress::start(move || {
            format!(
                "{} of {count} connected · {} failed · {} received",
                counters.connected.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
                tally.received.load(Ordering::Relaxed),
            )
        })
    };
    let mut opened = fleet::open(
        count,
        |index| identities.config(index, ""),
        common.concurrency,
        0,
        &counters,
        &stop,
    )
    .await;
    let mut failures = Failures::default();
    let mut subscribing = JoinSet::new();
    for (_, client) in &opened.clients {
        let client = client.clone();
        let filter = args.topic.clone();
        subscribing.spawn(async move { client.subscribe(&filter, qos).await });
    }
    let epoch = Instant::now();
    let mut receiving = JoinSet::new();
    let mut subscribed = 0u64;
    while let Some(joined) = subscribing.join_next().await {
        match joined {
            Ok(Ok(subscription)) => {
                subscribed += 1;
                receiving.spawn(receive(subscription, epoch, Arc::clone(&tally)));
            }
            Ok(Err(error)) => failures.record(&error),
            Err(_) => {}
        }
    }

    let mut published = 0u64;
    if args.rate > 0 && subscribed > 0 {
        let (publisher, _events) = Client::connect(&identities.config(0, "-pub")).await?;
        let pace = Duration::from_secs(1) / args.rate;
        let started = Instant::now();
        let sending = async {
            for sequence in 0..args.messages {
                let due = started + pace * u32::try_from(sequence).unwrap_or(u32::MAX);
                tokio::time::sleep_until(due).await;
                let number = u32::try_from(sequence).unwrap_or(u32::MAX);
                let payload = stamp::payload(number, epoch, args.size as usize);
                match publisher.publish(&args.topic, qos, payload).await {
                    Ok(_) => published += 1,
                    Err(error) => failures.record(&error),
                }
            }
        };
        tokio::select! {
            _ = sending => {}
            _ = stop.wait() => {}
        }
        let expected = published * subscribed;
        let all_in = async {
            loop {
                let next = tally.arrived.notified();
                if tally.received.load(Ordering::Relaxed) >= expected {
                    return;
                }
                next.await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(DRAIN, all_in) => {}
            _ = stop.wait() => {}
        }
        let _ = publisher.disconnect().await;
    } else if subscribed > 0 {
        tokio::select! {
            _ = tokio::time::sleep(args.duration) => {}
            _ = stop.wait() => {}
        }
    }
    receiving.abort_all();
    let client_now = process_stats::read(None).await;
    progress.finish().await;

    let received = tally.received.load(Ordering::Relaxed);
    let mut seen = match tally.seen.lock() {
        Ok(mut seen) => std::mem::take(&mut *seen),
        Err(_) => Seen::default(),
    };
    let span = match (seen.first, seen.last) {
        (Some(first), Some(last)) => last.duration_since(first),
        _ => Duration::ZERO,
    };
    let mut summary = Summary::new("sub", endpoint.describe());
    summary.row(
        "subscribers",
        format!("{subscribed} subscribed to {} (QoS {}) of {count}", args.topic, qos as u8),
        "subscribers",
        json!({"subscribed": subscribed, "requested": count, "filter": args.topic, "qos": qos as u8}),
    );
    if let Some(times) = opened.connect_times.percentiles() {
        summary.row("connect → CONNACK", times.text(), "connect_time", times.json());
    }
    let expected = (args.rate > 0).then_some(published * subscribed);
    summary.row(
        "received",
        match expected {
            Some(expected) => format!(
                "{received} of {expected} ({published} published × {subscribed}), {:.1} msgs/s",
                per_second(received, span)
            ),
            None => format!("{received}, {:.1} msgs/s", per_second(received, span)),
        },
        "received",
        json!({"count": received, "expected": expected, "published": published, "per_second": per_second(received, span)}),
    );
    if let Some(latency) = seen.latencies.percentiles() {
        summary.row(
            "latency",
            format!("publish → subscriber {}", latency.text()),
            "latency",
            latency.json(),
        );
    }
    let all_failures = [opened.failures.lines(), failures.lines()].concat();
    summary.row(
        "failures",
        if all_failures.is_empty() { "none".to_owned() } else { all_failures.join("; ") },
        "failures",
        json!({"connect": opened.failures.json(), "subscribe_or_publish": failures.json()}),
    );
    summary.usage("client", client_before, client_now, opened.clients.len() as u64, None);
    summary.stopped(stop.reason());
    fleet::close(opened.clients, common.concurrency, CLOSE_LIMIT).await;
    summary.print(common.json).await;
    if subscribed == 0 {
        return Err(Failure::incomplete(format!(
            "no subscriber could subscribe at {}",
            endpoint.config.server_addr()
        )));
    }
    Ok(())
}

async fn receive(mut subscription: Subscription, epoch: Instant, tally: Arc<Tally>) {
    while let Some(message) = subscription.recv().await {
        let now = Instant::now();
        let latency = stamp::read(&message.payload, epoch).map(|(_, latency)| latency);
        if let Ok(mut seen) = tally.seen.lock() {
            if let Some(latency) = latency {
                seen.latencies.record(latency);
            }
            seen.first.get_or_insert(now);
            seen.last = Some(now);
        }
        tally.received.fetch_add(1, Ordering::Relaxed);
        tally.arrived.notify_waiters();
    }
}
