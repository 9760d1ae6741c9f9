//! `iot443 bench conn`: open many connections, hold them, and measure what they cost.

use super::endpoint::Endpoint;
use super::fleet::{self, FleetCounters, Identities};
use super::process_stats;
use super::progress::Progress;
use super::stop::Stop;
use super::summary::{Summary, per_second};
use crate::args::BenchConnArgs;
use crate::exit::Failure;
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::time::Instant;

/// How long closing the connections may take at the end.
const CLOSE_LIMIT: Duration = Duration::from_secs(30);

pub async fn run(args: BenchConnArgs) -> Result<(), Failure> {
    let count = u64::from(args.count);
    super::ensure_open_files(count)?;
    let endpoint = Endpoint::open(&args.common).await?;
    let result = load(&args, count, &endpoint).await;
    endpoint.close().await;
    result
}

async fn load(args: &BenchConnArgs, count: u64, endpoint: &Endpoint) -> Result<(), Failure> {
    let common = &args.common;
    let identities = Identities::new(&endpoint.config, common);
    let counters = Arc::new(FleetCounters::default());
    let mut stop = Stop::at_ctrl_c_or_after(common.time_limit);
    let client_before = process_stats::read(None).await;
    let emulator_before = endpoint.emulator_usage().await;

    let progress = {
        let counters = Arc::clone(&counters);
        Progress::start(move || {
            format!(
                "{} of {count} connected · {} failed · {} lost",
                counters.connected.load(Ordering::Relaxed),
                counters.failed.load(Ordering::Relaxed),
                counters.lost.load(Ordering::Relaxed),
            )
        })
    };
    let mut opened = fleet::open(
        count,
        |index| identities.config(index, ""),
        common.concurrency,
        args.rate,
        &counters,
        &stop,
    )
    .await;

    // Hold: nothing to do but keep-alive.
    let client_rest = process_stats::read(None).await;
    let emulator_rest = endpoint.emulator_usage().await;
    let hold_started = Instant::now();
    if stop.reason().is_none() && !opened.clients.is_empty() {
        tokio::select! {
            _ = tokio::time::sleep(args.hold) => {}
            _ = stop.wait() => {}
        }
    }
    let held = hold_started.elapsed();
    let client_now = process_stats::read(None).await;
    let emulator_now = endpoint.emulator_usage().await;
    progress.finish().await;

    let connected = opened.clients.len() as u64;
    let still = connected.saturating_sub(counters.ended.load(Ordering::Relaxed));
    let lost = counters.lost.load(Ordering::Relaxed);
    let mut summary = Summary::new("conn", endpoint.describe());
    summary.row(
        "connected",
        format!("{connected} of {count} ({} failed)", opened.failures.total()),
        "connected",
        json!(connected),
    );
    summary.field("requested", json!(count));
    summary.row(
        "connect rate",
        format!(
            "{:.1}/s over {:.2} s",
            per_second(connected, opened.span),
            opened.span.as_secs_f64()
        ),
        "connects_per_second",
        json!(per_second(connected, opened.span)),
    );
    if let Some(times) = opened.connect_times.percentiles() {
        summary.row("connect → CONNACK", times.text(), "connect_time", times.json());
    }
    summary.row(
        "held",
        format!(
            "{:.1} s: {still} still connected, {lost} lost and reconnected",
            held.as_secs_f64()
        ),
        "held",
        json!({"seconds": held.as_secs_f64(), "still_connected": still, "lost": lost}),
    );
    summary.row(
        "failures",
        if opened.failures.total() == 0 {
            "none".to_owned()
        } else {
            opened.failures.lines().join("; ")
        },
        "failures",
        opened.failures.json(),
    );
    summary.usage(
        "client",
        client_before,
        client_now,
        connected,
        client_rest.map(|rest| (rest, held)),
    );
    if endpoint.emulator.is_some() {
        summary.usage(
            "emulator",
            emulator_before,
            emulator_now,
            connected,
            emulator_rest.map(|rest| (rest, held)),
        );
    }
    summary.field("keep_alive_seconds", json!(endpoint.config.keep_alive.as_secs()));
    summary.stopped(stop.reason());
    let clients = std::mem::take(&mut opened.clients);
    fleet::close(clients, common.concurrency, CLOSE_LIMIT).await;
    summary.print(common.json).await;
    if connected == 0 {
        return Err(Failure::incomplete(format!(
            "no connection could be made to {}{}",
            endpoint.config.server_addr(),
            opened.failures.lines().first().map(|first| format!(": {first}")).unwrap_or_default()
        )));
    }
    Ok(())
}
