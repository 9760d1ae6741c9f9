//! `iot443 bench pub`: publishers at a total rate, and a subscriber that measures each
//! message's latency and finds the ones that never came.

use super::endpoint::Endpoint;
use super::fleet::{self, FleetCounters, Identities};
use super::process_stats;
use super::progress::Progress;
use super::stamp;
use super::stop::Stop;
use super::summary::{Summary, per_second};
use super::tally::{Failures, Latencies};
use crate::args::BenchPubArgs;
use crate::exit::Failure;
use iot443::{Client, Delivery, QoS, Subscription};
use serde_json::json;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

/// How long the subscriber may still wait for messages once every publish is acknowledged.
const DRAIN: Duration = Duration::from_secs(5);
/// How long closing the connections may take at the end.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);
/// Deliveries a publisher may have unawaited (the library keeps at most 100 QoS 1 messages in
/// flight and queues the rest).
const UNAWAITED: usize = 256;

/// What the publishers and the subscriber count, read by the progress line.
#[derive(Default)]
struct Counts {
    sent: AtomicU64,
    acknowledged: AtomicU64,
    received: AtomicU64,
}

/// What every publisher and the subscriber add to at the end of their work.
#[derive(Default)]
struct Findings {
    ack_times: Latencies,
    failures: Failures,
}

pub async fn run(args: BenchPubArgs) -> Result<(), Failure> {
    super::ensure_open_files(u64::from(args.count) + 1)?;
    if args.messages > u64::from(u32::MAX) {
        return Err(Failure::usage("--messages: at most 4294967295"));
    }
    let endpoint = Endpoint::open(&args.common).await?;
    let result = load(&args, &endpoint).await;
    endpoint.close().await;
    result
}

async fn load(args: &BenchPubArgs, endpoint: &Endpoint) -> Result<(), Failure> {
    let common = &args.common;
    let qos = QoS::from(args.qos);
    let identities = Identities::new(&endpoint.config, common);
    let mut stop = Stop::at_ctrl_c_or_after(common.time_limit);
    let counts = Arc::new(Counts::default());
    let findings = Arc::new(Mutex::new(Findings::default()));
    let epoch = Instant::now();

    let subscriber = if args.no_subscriber {
        None
    } else {
        let filter = args.topic.replace("{n}", "+");
        let (client, _events) = Client::connect(&identities.config(0, "-sub")).await?;
        let subscription = client.subscribe(&filter, qos).await?;
        let received = Arc::new(Mutex::new(Received::new(args.messages)));
        let task =
            tokio::spawn(receive(subscription, epoch, Arc::clone(&received), Arc::clone(&counts)));
        Some((client, task, received))
    };

    let fleet_counters = Arc::new(FleetCounters::default());
    let publishers = u64::from(args.count);
    let opened = fleet::open(
        publishers,
        |index| identities.config(index, ""),
        common.concurrency,
        0,
        &fleet_counters,
        &stop,
    )
    .await;
    if opened.clients.is_empty() {
        return Err(Failure::incomplete(format!(
            "no publisher could connect to {}{}",
            endpoint.config.server_addr(),
            opened.failures.lines().first().map(|first| format!(": {first}")).unwrap_or_default()
        )));
    }

    let progress = {
        let counts = Arc::clone(&counts);
        let total = args.messages;
        Progress::start(move || {
            format!(
                "{} of {total} sent · {} acknowledged · {} received",
                counts.sent.load(Ordering::Relaxed),
                counts.acknowledged.load(Ordering::Relaxed),
                counts.received.load(Ordering::Relaxed),
            )
        })
    };
    let started = Instant::now();
    let plan = Plan {
        messages: args.messages,
        publishers: opened.clients.len() as u64,
        pace: (args.rate > 0).then(|| Duration::from_secs(1) / args.rate),
        started,
        epoch,
        size: args.size as usize,
        qos,
    };
    let mut sending = JoinSet::new();
    for (slot, (index, client)) in opened.clients.iter().enumerate() {
        let topic = args.topic.replace("{n}", &index.to_string());
        let work = publish(
            client.clone(),
            topic,
            slot as u64,
            plan,
            Arc::clone(&counts),
            Arc::clone(&findings),
        );
        sending.spawn(work);
    }
    tokio::select! {
        _ = async { while sending.join_next().await.is_some() {} } => {}
        _ = stop.wait() => sending.abort_all(),
    }
    let send_span = started.elapsed();
    if let Some((_, _, received)) = &subscriber {
        let arrived = received.lock().map(|received| Arc::clone(&received.arrived));
        let all_in = async {
            let Ok(arrived) = arrived else { return };
            loop {
                // Registered before the check, so that no arrival is missed in between.
                let next = arrived.notified();
                if counts.received.load(Ordering::Relaxed) >= counts.sent.load(Ordering::Relaxed) {
                    return;
                }
                next.await;
            }
        };
        tokio::select! {
            _ = tokio::time::timeout(DRAIN, all_in) => {}
            _ = stop.wait() => {}
        }
    }
    let client_now = process_stats::read(None).await;
    progress.finish().await;

    let sent = counts.sent.load(Ordering::Relaxed);
    let acknowledged = counts.acknowledged.load(Ordering::Relaxed);
    let mut summary = Summary::new("pub", endpoint.describe());
    summary.row(
        "publishers",
        format!("{} connected of {publishers}, QoS {}, {} B, topic {}", opened.clients.len(), qos as u8, args.size, args.topic),
        "publishers",
        json!({"connected": opened.clients.len(), "requested": publishers, "qos": qos as u8, "size": args.size}),
    );
    summary.row(
        "sent",
        format!("{sent} of {} in {:.2} s: {:.1} msgs/s", args.messages, send_span.as_secs_f64(), per_second(sent, send_span)),
        "sent",
        json!({"count": sent, "seconds": send_span.as_secs_f64(), "per_second": per_second(sent, send_span)}),
    );
    let mut findings = match Arc::try_unwrap(findings) {
        Ok(findings) => findings.into_inner().unwrap_or_default(),
        Err(shared) => {
            shared.lock().map(|mut guard| std::mem::take(&mut *guard)).unwrap_or_default()
        }
    };
    if qos == QoS::AtLeastOnce {
        let times = findings.ack_times.percentiles();
        summary.row(
            "acknowledged",
            format!(
                "{acknowledged} (publish → PUBACK {})",
                times.map(|t| t.text()).unwrap_or_else(|| "—".to_owned())
            ),
            "acknowledged",
            json!({"count": acknowledged, "time": times.map(|t| t.json())}),
        );
    }
    if let Some((client, task, received)) = subscriber {
        task.abort();
        let _ = client.disconnect().await;
        if let Ok(mut received) = received.lock() {
            let got = received.unique;
            let missing = sent.saturating_sub(got);
            let latency = received.latencies.percentiles();
            let span = received.span();
            summary.row(
                "received",
                format!(
                    "{got} of {sent} ({missing} missing, {} duplicates), {:.1} msgs/s",
                    received.duplicates,
                    per_second(got, span)
                ),
                "received",
                json!({"unique": got, "missing": missing, "duplicates": received.duplicates, "per_second": per_second(got, span)}),
            );
            if let (true, Some(emulator)) = (missing > 0, &endpoint.emulator) {
                summary.row(
                    "missing",
                    format!(
                        "the emulator drops QoS 1 messages past 10,000 queued for a slow \
                         subscriber, as IoT Core throttles: lower --rate; its log: {}",
                        emulator.log_path.display()
                    ),
                    "missing_hint",
                    json!(emulator.log_path),
                );
            }
            summary.row(
                "latency",
                latency
                    .map(|l| format!("publish → subscriber {}", l.text()))
                    .unwrap_or_else(|| "—".to_owned()),
                "latency",
                latency.map(|l| l.json()).unwrap_or_default(),
            );
        }
    }
    summary.row(
        "failures",
        if findings.failures.total() + opened.failures.total() == 0 {
            "none".to_owned()
        } else {
            [opened.failures.lines(), findings.failures.lines()].concat().join("; ")
        },
        "failures",
        json!({"connect": opened.failures.json(), "publish": findings.failures.json()}),
    );
    summary.usage("client", None, client_now, 0, None);
    summary.stopped(stop.reason());
    fleet::close(opened.clients, common.concurrency, CLOSE_LIMIT).await;
    summary.print(common.json).await;
    Ok(())
}

/// What every publisher needs to know of the plan.
#[derive(Clone, Copy)]
struct Plan {
    messages: u64,
    publishers: u64,
    /// The time between two messages, all publishers together.
    pace: Option<Duration>,
    started: Instant,
    epoch: Instant,
    size: usize,
    qos: QoS,
}

/// Publisher `slot` sends messages slot, slot + publishers, …, each at its time in the plan.
async fn publish(
    client: Client,
    topic: String,
    slot: u64,
    plan: Plan,
    counts: Arc<Counts>,
    findings: Arc<Mutex<Findings>>,
) {
    let (deliveries, mut awaited) = mpsc::channel::<(Instant, Delivery)>(UNAWAITED);
    let acker = {
        let counts = Arc::clone(&counts);
        tokio::spawn(async move {
            let mut times = Latencies::default();
            let mut failures = Failures::default();
            while let Some((sent, delivery)) = awaited.recv().await {
                match delivery.await {
                    Ok(()) => {
                        times.record(sent.elapsed());
                        counts.acknowledged.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(error) => failures.record(&error),
                }
            }
            (times, failures)
        })
    };
    let mut sequence = slot;
    let mut failures = Failures::default();
    while sequence < plan.messages {
        if let Some(pace) = plan.pace {
            let due = plan.started + pace * u32::try_from(sequence).unwrap_or(u32::MAX);
            tokio::time::sleep_until(due).await;
        }
        let number = u32::try_from(sequence).unwrap_or(u32::MAX);
        let payload = stamp::payload(number, plan.epoch, plan.size);
        let sent = Instant::now();
        match client.publish(&topic, plan.qos, payload).await {
            Ok(delivery) => {
                counts.sent.fetch_add(1, Ordering::Relaxed);
                if plan.qos == QoS::AtLeastOnce && deliveries.send((sent, delivery)).await.is_err()
                {
                    break;
                }
            }
            Err(error) => {
                failures.record(&error);
                if matches!(error, iot443::ClientError::Closed) {
                    break;
                }
            }
        }
        sequence += plan.publishers;
    }
    drop(deliveries);
    let acked = acker.await.ok();
    if let Ok(mut findings) = findings.lock() {
        if let Some((times, ack_failures)) = acked {
            findings.ack_times.extend(times);
            findings.failures.extend(ack_failures);
        }
        findings.failures.extend(failures);
    }
}

/// What the subscriber saw.
struct Received {
    seen: Vec<u64>,
    unique: u64,
    duplicates: u64,
    latencies: Latencies,
    first: Option<Instant>,
    last: Option<Instant>,
    arrived: Arc<tokio::sync::Notify>,
}

impl Received {
    fn new(messages: u64) -> Received {
        Received {
            seen: vec![0; usize::try_from(messages.div_ceil(64)).unwrap_or(0)],
            unique: 0,
            duplicates: 0,
            latencies: Latencies::default(),
            first: None,
            last: None,
            arrived: Arc::new(tokio::sync::Notify::new()),
        }
    }

    /// Records message `sequence`; `false` for a duplicate (or a number outside the plan).
    fn record(&mut self, sequence: u32, latency: Duration) -> bool {
        let bit = u64::from(sequence);
        let Some(word) = self.seen.get_mut(usize::try_from(bit / 64).unwrap_or(usize::MAX)) else {
            return false;
        };
        let mask = 1u64 << (bit % 64);
        let now = Instant::now();
        self.first.get_or_insert(now);
        self.last = Some(now);
        if *word & mask != 0 {
            self.duplicates += 1;
            return false;
        }
        *word |= mask;
        self.unique += 1;
        self.latencies.record(latency);
        true
    }

    fn span(&self) -> Duration {
        match (self.first, self.last) {
            (Some(first), Some(last)) => last.duration_since(first),
            _ => Duration::ZERO,
        }
    }
}

async fn receive(
    mut subscription: Subscription,
    epoch: Instant,
    received: Arc<Mutex<Received>>,
    counts: Arc<Counts>,
) {
    while let Some(message) = subscription.recv().await {
        let Some((sequence, latency)) = stamp::read(&message.payload, epoch) else { continue };
        let Ok(mut received) = received.lock() else { return };
        if received.record(sequence, latency) {
            counts.received.fetch_add(1, Ordering::Relaxed);
            received.arrived.notify_waiters();
        }
    }
}
