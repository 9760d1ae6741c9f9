//! Fleet mode, one library holding many device connections from one process:
//! `e2e fleet LIB HOST PORT CA CERT KEY ID_PREFIX COUNT HOLD_S KEEP_ALIVE_S`, LIB `iot443` or
//! `rumqttc`. Opens COUNT connections (client ids `ID_PREFIX-n`, 64 handshakes at a time),
//! holds them HOLD_S seconds with keep-alive, and prints one line:
//! `connected=… connect_s=… rss_before=… rss_after=… cpu_rest_s=… hold_s=… lost=…`, read
//! from /proc/self.

use iot443::{Client, Config, Credentials, Event};
use iot443_interop::ALPN;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

/// Handshakes in progress at once.
const CONCURRENCY: usize = 64;

/// Runs the fleet child `args` (after `fleet`) on a current-thread runtime.
pub(crate) fn main(args: &[String]) -> ExitCode {
    let [lib, host, port, ca, cert, key, prefix, count, hold, keep_alive] = args else {
        eprintln!(
            "e2e fleet: expected LIB HOST PORT CA CERT KEY ID_PREFIX COUNT HOLD_S KEEP_ALIVE_S"
        );
        return ExitCode::from(2);
    };
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let port: u16 = port.parse().unwrap_or(443);
    let mut builder = Config::builder(host, prefix, cert, key).port(port).root_ca(ca);
    if port != 443 {
        builder = builder.alpn(ALPN);
    }
    let Ok(mut config) = builder.build() else {
        eprintln!("e2e fleet: bad configuration");
        return ExitCode::from(2);
    };
    config.keep_alive = Duration::from_secs(keep_alive.parse().unwrap_or(30));
    let count: u64 = count.parse().unwrap_or(1);
    let hold = Duration::from_secs(hold.parse().unwrap_or(10));
    let runtime =
        tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let line = runtime.block_on(async {
        match lib.as_str() {
            "iot443" => iot443_fleet(&config, count, hold).await,
            "rumqttc" => rumqttc_fleet(&config, count, hold).await,
            other => Err(format!("unknown library {other:?}")),
        }
    });
    match line {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("e2e fleet {lib}: {error}");
            ExitCode::FAILURE
        }
    }
}

/// Resident memory (bytes) and CPU time of this process, from /proc/self.
fn usage() -> (u64, Duration) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let rss = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
        .unwrap_or(0)
        * 1024;
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let ticks: u64 = stat
        .rfind(')')
        .map(|end| &stat[end + 1..])
        .map(|rest| {
            rest.split_whitespace().skip(11).take(2).filter_map(|t| t.parse::<u64>().ok()).sum()
        })
        .unwrap_or(0);
    (rss, Duration::from_millis(ticks * 10))
}

/// Holds for `hold` and formats what was measured.
async fn report(
    connected: u64,
    connect: Duration,
    before: u64,
    hold: Duration,
    lost: &AtomicU64,
) -> String {
    let (after, cpu_start) = usage();
    tokio::time::sleep(hold).await;
    let (_, cpu_end) = usage();
    format!(
        "connected={connected} connect_s={:.3} rss_before={before} rss_after={after} \
         cpu_rest_s={:.3} hold_s={} lost={}",
        connect.as_secs_f64(),
        cpu_end.saturating_sub(cpu_start).as_secs_f64(),
        hold.as_secs(),
        lost.load(Ordering::Relaxed)
    )
}

async fn iot443_fleet(config: &Config, count: u64, hold: Duration) -> Result<String, String> {
    let (before, _) = usage();
    let lost = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut attempts = JoinSet::new();
    let mut clients = Vec::with_capacity(count as usize);
    let mut next = 0;
    while next < count || !attempts.is_empty() {
        while next < count && attempts.len() < CONCURRENCY {
            let mut config = config.clone();
            config.client_id = format!("{}-{next}", config.client_id);
            attempts.spawn(async move { Client::connect(&config).await });
            next += 1;
        }
        if let Some(Ok(result)) = attempts.join_next().await {
            let (client, mut events) = result.map_err(|e| e.to_string())?;
            let lost = Arc::clone(&lost);
            tokio::spawn(async move {
                while let Some(event) = events.recv().await {
                    if matches!(event, Event::Reconnecting { .. }) {
                        lost.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
            clients.push(client);
        }
    }
    let connect = started.elapsed();
    let line = report(clients.len() as u64, connect, before, hold, &lost).await;
    Ok(line)
}

async fn rumqttc_fleet(config: &Config, count: u64, hold: Duration) -> Result<String, String> {
    let (before, _) = usage();
    // One rustls configuration shared by every event loop, as a rumqttc application would.
    let credentials = Credentials::load(config).map_err(|e| e.to_string())?;
    let tls = iot443::tls::client_config(config, &credentials).map_err(|e| e.to_string())?;
    let lost = Arc::new(AtomicU64::new(0));
    let connected = Arc::new(AtomicU64::new(0));
    let all_in = Arc::new(tokio::sync::Notify::new());
    let permits = Arc::new(Semaphore::new(CONCURRENCY));
    let started = Instant::now();
    let mut clients = Vec::with_capacity(count as usize);
    for n in 0..count {
        let id = format!("{}-{n}", config.client_id);
        let mut options = rumqttc::MqttOptions::new(id, &config.endpoint, config.port);
        options.set_transport(rumqttc::Transport::tls_with_config(
            rumqttc::TlsConfiguration::Rustls(Arc::clone(&tls)),
        ));
        options.set_keep_alive(config.keep_alive);
        options.set_clean_session(true);
        let (client, mut eventloop) = rumqttc::AsyncClient::new(options, 10);
        clients.push(client);
        let permit = Arc::clone(&permits).acquire_owned().await.map_err(|e| e.to_string())?;
        let (lost, connected, all_in) =
            (Arc::clone(&lost), Arc::clone(&connected), Arc::clone(&all_in));
        tokio::spawn(async move {
            let mut permit = Some(permit);
            loop {
                match eventloop.poll().await {
                    Ok(rumqttc::Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        if permit.take().is_some()
                            && connected.fetch_add(1, Ordering::Relaxed) + 1 == count
                        {
                            all_in.notify_one();
                        }
                    }
                    Ok(_) => {}
                    Err(_) => {
                        lost.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
            }
        });
    }
    let _ = tokio::time::timeout(Duration::from_secs(300), all_in.notified()).await;
    let connect = started.elapsed();
    let line = report(connected.load(Ordering::Relaxed), connect, before, hold, &lost).await;
    drop(clients);
    Ok(line)
}
