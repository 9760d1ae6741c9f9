//! `iot443 demo --shadow`: the Embedded C SDK's `shadow_sample` on iot443. The device reports
//! `temperature` and `windowOpen` every second and prints "Update Accepted" for each accepted
//! update; a delta (a desired change made by an application, e.g. `iot443 shadow update
//! --desired '{"windowOpen":true}'`) is printed, applied to `windowOpen` and reported back.

use super::shadow::one_line;
use crate::exit::Failure;
use iot443::shadow::{Shadow, ShadowError, ShadowUpdate};
use iot443::{Client, Config};
use serde_json::json;
use std::time::Duration;

/// How often the device reports, as the C sample does.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// The sample's room: the temperature drifts between these, the window opens or closes.
#[derive(Debug)]
struct Room {
    temperature: i64,
    rising: bool,
    window_open: bool,
}

impl Room {
    /// The next second: the temperature moves a degree (up to 32, down to 18).
    fn tick(&mut self) {
        if self.temperature >= 32 {
            self.rising = false;
        } else if self.temperature <= 18 {
            self.rising = true;
        }
        self.temperature += if self.rising { 1 } else { -1 };
    }

    fn reported(&self) -> serde_json::Value {
        json!({"temperature": self.temperature, "windowOpen": self.window_open})
    }
}

/// Runs the sample for `count` reports (0: until Ctrl-C).
pub async fn run_sample(config: &Config, thing: Option<&str>, count: u64) -> Result<(), Failure> {
    let (client, _events) = Client::connect(config).await?;
    println!("{}", client.connection_info().summary());
    let thing = thing.unwrap_or_else(|| config.effective_thing_name());
    let shadow = client.shadow(thing)?;
    let mut deltas = shadow.deltas().await?;
    println!("shadow of {thing}: reporting temperature and windowOpen every second");
    let mut room = Room { temperature: 25, rising: true, window_open: false };
    let mut accepted = 0u64;
    let mut reports = 0u64;
    let mut ticks = tokio::time::interval(REPORT_EVERY);
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    while count == 0 || reports < count {
        tokio::select! {
            _ = &mut interrupted => break,
            _ = ticks.tick() => {
                room.tick();
                reports += 1;
                accepted += u64::from(report(&shadow, &room).await?);
            }
            delta = deltas.recv() => {
                let Some(delta) = delta else { break };
                println!("Received Delta message {}", one_line(&delta.raw));
                if let Some(open) = delta.state.get("windowOpen").and_then(serde_json::Value::as_bool) {
                    room.window_open = open;
                    println!("windowOpen changed to {open}");
                    reports += 1;
                    accepted += u64::from(report(&shadow, &room).await?);
                }
            }
        }
    }
    client.disconnect().await?;
    println!("{accepted} of {reports} updates accepted");
    if accepted == reports && reports > 0 {
        Ok(())
    } else {
        Err(Failure::incomplete(format!("only {accepted} of {reports} updates were accepted")))
    }
}

/// Reports the room; `true` when the update was accepted. A rejection or a timeout is printed
/// and the sample goes on, as the C sample does; a client failure ends it.
async fn report(shadow: &Shadow, room: &Room) -> Result<bool, Failure> {
    match shadow.update(ShadowUpdate::new().reported(room.reported())).await {
        Ok(_) => {
            println!(
                "Update Accepted !! temperature {} windowOpen {}",
                room.temperature, room.window_open
            );
            Ok(true)
        }
        Err(error @ (ShadowError::Rejected { .. } | ShadowError::Timeout { .. })) => {
            println!("Update {error}");
            Ok(false)
        }
        Err(error) => Err(error.into()),
    }
}
