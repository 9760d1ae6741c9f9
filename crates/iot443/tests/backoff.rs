#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! Reconnect pacing in virtual time, with a seeded jitter source: network failures back off
//! exponentially with full jitter (each delay at most the doubling ceiling, capped at
//! `max_delay`), refusals are retried no sooner than `refused_min_delay`, and the same seed
//! gives the same delays.

mod common;

use common::scripted::{self, Endpoint, Pipes};
use std::sync::Arc;
use std::time::Duration;

/// Gaps between consecutive attempts.
fn gaps(pipes: &Pipes) -> Vec<Duration> {
    pipes.attempts().windows(2).map(|pair| pair[1] - pair[0]).collect()
}

/// Connects, then loses the connection and lets `failures` attempts fail like the network;
/// returns the connector once the attempt after them has connected again.
async fn run_network_failures(seed: u64, failures: usize) -> (Arc<Pipes>, Vec<Duration>) {
    let mut config = scripted::config("backoff");
    config.reconnect.jitter_seed = Some(seed);
    let (_client, mut events, mut endpoint, peer, pipes) =
        scripted::connect_with_pipes(&config).await;
    pipes.fail_next(failures);
    peer.close().await;
    reconnected(&mut endpoint).await;
    common::events::next_connected(&mut events).await; // the first connection
    common::events::next_connected(&mut events).await; // after the failures
    let ceilings = (0..=failures as u32)
        .map(|attempt| {
            let factor = 2u32.saturating_pow(attempt);
            config.reconnect.min_delay.saturating_mul(factor).min(config.reconnect.max_delay)
        })
        .collect();
    (pipes, ceilings)
}

async fn reconnected(endpoint: &mut Endpoint) {
    let mut peer = endpoint.accept().await;
    peer.accept_connect().await;
    std::mem::forget(peer); // keep the connection open for the rest of the test
}

#[tokio::test(start_paused = true)]
async fn network_failures_back_off_with_full_jitter_under_a_doubling_ceiling() {
    let (pipes, ceilings) = run_network_failures(443, 6).await;
    let gaps = gaps(&pipes);
    // The first gap is the connection's loss (a refusal: closed right after CONNACK); the
    // failed attempts follow it.
    assert_eq!(gaps.len(), 7, "{gaps:?}");
    for (gap, ceiling) in gaps.iter().skip(1).zip(ceilings.iter().skip(1)) {
        assert!(gap <= ceiling, "a delay over its ceiling: {gaps:?} vs {ceilings:?}");
    }
    assert!(gaps.iter().skip(1).any(|gap| *gap > Duration::ZERO), "delays are not all zero");
}

#[tokio::test(start_paused = true)]
async fn the_same_seed_gives_the_same_delays() {
    let first = gaps(&run_network_failures(7, 5).await.0);
    let second = gaps(&run_network_failures(7, 5).await.0);
    let other = gaps(&run_network_failures(8, 5).await.0);
    assert_eq!(first, second);
    assert_ne!(first, other, "another seed, other delays");
}

#[tokio::test(start_paused = true)]
async fn refusals_are_retried_no_sooner_than_the_refusal_delay() {
    const REFUSED_MIN_DELAY: Duration = Duration::from_secs(5);
    let mut config = scripted::config("refused");
    config.reconnect.refused_min_delay = REFUSED_MIN_DELAY;
    let (_client, mut events, mut endpoint, peer, pipes) =
        scripted::connect_with_pipes(&config).await;
    peer.close().await;
    // Five refusals in a row: each attempt's CONNECT is answered by a close.
    for _ in 0..5 {
        let mut peer = endpoint.accept().await;
        assert!(matches!(peer.expect().await, iot443_proto::Packet::Connect(_)));
        peer.close().await;
        let cause = common::events::next_reconnecting(&mut events).await;
        assert!(cause.starts_with("refused"), "a close before CONNACK is a refusal: {cause}");
    }
    let gaps = gaps(&pipes);
    assert_eq!(gaps.len(), 5, "{gaps:?}");
    for gap in &gaps {
        assert!(*gap >= REFUSED_MIN_DELAY, "a refusal retried too soon: {gaps:?}");
    }
}
