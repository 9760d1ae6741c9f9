//! Device Shadow round trips on one connection against the emulator: `update` requests with 10
//! in flight (IoT Core's limit per connection), each timed from its publish to its
//! `…/update/accepted`. Loopback only, bounded in count and time. Prints a markdown table.
//!
//! ```sh
//! cargo run --release -p iot443-bench --bin shadow -- [--requests N] [--rounds R] [--in-flight K] [--api]
//! ```
//!
//! Two ways through the client: raw topics (`Client::publish` on `…/update` and one subscription
//! to `…/update/accepted|rejected`, answers matched by `clientToken` here), or with `--api` the
//! `iot443::shadow::Shadow` handle (K tasks each awaiting `Shadow::update` in turn; the handle
//! correlates, and caps requests in flight at 10 per client).
//!
//! The emulator runs in this process on its own runtime (2 worker threads) with its store in a
//! temporary folder; the client runs on another runtime (1 worker thread), so the figures are
//! for one device connection talking to one emulator on a 2-core machine. Each request reports
//! `temperature` and `windowOpen` with a unique `clientToken`; an answer is matched by its
//! token. A round fails loudly on a rejection, on an answer that does not come within
//! [`ANSWER_LIMIT`], or when it runs past [`ROUND_LIMIT`].

#![allow(clippy::expect_used, clippy::unwrap_used, clippy::indexing_slicing, clippy::panic)]

use iot443::shadow::ShadowUpdate;
use iot443::{Client, Config, QoS};
use iot443_emulator::server::{Emulator, EmulatorOptions};
use std::collections::HashMap;
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// How long one answer may take before the round fails.
const ANSWER_LIMIT: Duration = Duration::from_secs(10);
/// How long one round may take.
const ROUND_LIMIT: Duration = Duration::from_secs(120);
/// The thing whose classic shadow is updated.
const THING: &str = "bench-thing";

struct Opts {
    requests: usize,
    rounds: usize,
    in_flight: usize,
    api: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut opts = Opts { requests: 5_000, rounds: 3, in_flight: 10, api: false };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = |name: &str| -> Result<usize, String> {
            let text = args.next().ok_or_else(|| format!("{name} needs a number"))?;
            text.parse().map_err(|_| format!("{name}: not a number: {text}"))
        };
        match flag.as_str() {
            "--requests" => opts.requests = value("--requests")?.clamp(1, 1_000_000),
            "--rounds" => opts.rounds = value("--rounds")?.clamp(1, 100),
            "--in-flight" => opts.in_flight = value("--in-flight")?.clamp(1, 10),
            "--api" => opts.api = true,
            "--help" | "-h" => {
                return Err("usage: shadow [--requests N (5000)] [--rounds R (3)] \
                            [--in-flight K (10, at most 10)] [--api]"
                    .into());
            }
            other => return Err(format!("unknown flag {other}; try --help")),
        }
    }
    Ok(opts)
}

/// One round's figures.
struct Round {
    per_second: f64,
    latencies_ms: Vec<f64>,
}

async fn one_round(config: &Config, opts: &Opts, round: usize) -> Result<Round, String> {
    let (client, _events) = Client::connect(config).await.map_err(|e| e.to_string())?;
    let prefix = format!("$aws/things/{THING}/shadow/update");
    let mut answers = client
        .subscribe_many(&[
            (&format!("{prefix}/accepted"), QoS::AtLeastOnce),
            (&format!("{prefix}/rejected"), QoS::AtLeastOnce),
        ])
        .await
        .map_err(|e| e.to_string())?;

    let mut started: HashMap<String, Instant> = HashMap::with_capacity(opts.in_flight);
    let mut latencies_ms = Vec::with_capacity(opts.requests);
    let mut acks = JoinSet::new();
    let mut sent = 0usize;
    let begin = Instant::now();
    while latencies_ms.len() < opts.requests {
        while sent < opts.requests && started.len() < opts.in_flight {
            let token = format!("r{round}-{sent}");
            let payload = format!(
                r#"{{"state":{{"reported":{{"temperature":{},"windowOpen":{}}}}},"clientToken":"{token}"}}"#,
                20 + sent % 10,
                sent.is_multiple_of(2)
            );
            started.insert(token, Instant::now());
            let delivery = client
                .publish(&prefix, QoS::AtLeastOnce, payload)
                .await
                .map_err(|e| e.to_string())?;
            acks.spawn(delivery);
            sent += 1;
        }
        let message = tokio::time::timeout(ANSWER_LIMIT, answers.recv())
            .await
            .map_err(|_| {
                format!("no answer within {ANSWER_LIMIT:?} ({} in flight)", started.len())
            })?
            .ok_or("the subscription ended")?;
        let answer: serde_json::Value =
            serde_json::from_slice(&message.payload).map_err(|e| format!("bad answer: {e}"))?;
        if message.topic.ends_with("/rejected") {
            return Err(format!("update rejected: {answer}"));
        }
        let token = answer["clientToken"].as_str().unwrap_or_default();
        if let Some(start) = started.remove(token) {
            latencies_ms.push(start.elapsed().as_secs_f64() * 1e3);
        }
        if begin.elapsed() > ROUND_LIMIT {
            return Err(format!("the round ran past {ROUND_LIMIT:?}"));
        }
    }
    let elapsed = begin.elapsed().as_secs_f64();
    while let Some(ack) = acks.join_next().await {
        ack.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    }
    client.disconnect().await.map_err(|e| e.to_string())?;
    Ok(Round { per_second: opts.requests as f64 / elapsed, latencies_ms })
}

/// One round through the `Shadow` handle: `in_flight` tasks, each awaiting its updates in turn.
async fn one_round_api(config: &Config, opts: &Opts, round: usize) -> Result<Round, String> {
    let (client, _events) = Client::connect(config).await.map_err(|e| e.to_string())?;
    let shadow = client.shadow(THING).map_err(|e| e.to_string())?;
    // The first request subscribes to the answer topics: outside the timed part.
    shadow
        .update(ShadowUpdate::new().reported(serde_json::json!({"warm": round})))
        .await
        .map_err(|e| e.to_string())?;
    let mut workers = JoinSet::new();
    let begin = Instant::now();
    for worker in 0..opts.in_flight {
        let shadow = shadow.clone();
        let count =
            opts.requests / opts.in_flight + usize::from(worker < opts.requests % opts.in_flight);
        workers.spawn(async move {
            let mut latencies = Vec::with_capacity(count);
            for n in 0..count {
                let reported =
                    serde_json::json!({"temperature": 20 + n % 10, "windowOpen": n % 2 == 0});
                let start = Instant::now();
                tokio::time::timeout(
                    ANSWER_LIMIT,
                    shadow.update(ShadowUpdate::new().reported(reported)),
                )
                .await
                .map_err(|_| format!("no answer within {ANSWER_LIMIT:?}"))?
                .map_err(|e| e.to_string())?;
                latencies.push(start.elapsed().as_secs_f64() * 1e3);
                if begin.elapsed() > ROUND_LIMIT {
                    return Err(format!("the round ran past {ROUND_LIMIT:?}"));
                }
            }
            Ok::<_, String>(latencies)
        });
    }
    let mut latencies_ms = Vec::with_capacity(opts.requests);
    while let Some(done) = workers.join_next().await {
        latencies_ms.extend(done.map_err(|e| e.to_string())??);
    }
    let elapsed = begin.elapsed().as_secs_f64();
    client.disconnect().await.map_err(|e| e.to_string())?;
    Ok(Round { per_second: opts.requests as f64 / elapsed, latencies_ms })
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[rank.min(sorted.len() - 1)]
}

fn main() -> ExitCode {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("shadow: {message}");
            return ExitCode::from(2);
        }
    };
    let dir = tempfile::tempdir().expect("cannot create a temporary folder");
    let emulator_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .thread_name("emulator")
        .build()
        .expect("cannot start the emulator's runtime");
    let mut options = EmulatorOptions::new(dir.path());
    options.alpn_port = 0;
    options.mqtts_port = None;
    options.https_port = None;
    let emulator =
        emulator_runtime.block_on(Emulator::start(options)).expect("the emulator did not start");
    let config = Config::load(&emulator.pki.config_path()).expect("cannot read iot443.toml");

    let client_runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("cannot start the client's runtime");
    let mut rows = Vec::new();
    for round in 0..opts.rounds {
        eprintln!("shadow: round {} of {}: {} updates", round + 1, opts.rounds, opts.requests);
        let outcome = if opts.api {
            client_runtime.block_on(one_round_api(&config, &opts, round))
        } else {
            client_runtime.block_on(one_round(&config, &opts, round))
        };
        match outcome {
            Ok(figures) => rows.push(figures),
            Err(message) => {
                eprintln!("shadow: round {} failed: {message}", round + 1);
                return ExitCode::FAILURE;
            }
        }
    }
    emulator_runtime.block_on(emulator.stop());

    let path = if opts.api { "`Shadow::update`" } else { "raw topics" };
    println!("through {path}\n");
    println!(
        "| round | updates | in flight | updates/s | p50 ms | p99 ms |\n|---|---|---|---|---|---|"
    );
    let mut all = Vec::new();
    for (i, round) in rows.iter_mut().enumerate() {
        round.latencies_ms.sort_by(f64::total_cmp);
        println!(
            "| {} | {} | {} | {:.0} | {:.2} | {:.2} |",
            i + 1,
            opts.requests,
            opts.in_flight,
            round.per_second,
            percentile(&round.latencies_ms, 0.50),
            percentile(&round.latencies_ms, 0.99)
        );
        all.extend_from_slice(&round.latencies_ms);
    }
    all.sort_by(f64::total_cmp);
    let mut rates: Vec<f64> = rows.iter().map(|r| r.per_second).collect();
    rates.sort_by(f64::total_cmp);
    println!(
        "| all | {} | {} | {:.0} (median) | {:.2} | {:.2} |",
        opts.requests * opts.rounds,
        opts.in_flight,
        percentile(&rates, 0.5),
        percentile(&all, 0.50),
        percentile(&all, 0.99)
    );
    ExitCode::SUCCESS
}
