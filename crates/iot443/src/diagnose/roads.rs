//! The doctor's `roads` step: every road through port 443 tried in turn, whatever the
//! configuration chose, so that the report says which of them work from here.
//!
//! 1. `tls`: MQTT over TLS with the device certificate (ALPN `x-amzn-mqtt-ca` on 443), CONNECT →
//!    CONNACK;
//! 2. `websocket`: MQTT over WebSocket signed with SigV4, CONNECT → CONNACK; not tried (and not
//!    a failure) when no AWS credentials or region can be found;
//! 3. `https`: HTTPS publish with the device certificate (ALPN `x-amzn-http-ca` on 443) of one
//!    QoS 1 message to the doctor's test topic, answered 200.
//!
//! Each road connects on its own, one after the other (one client id, never two connections at
//! once), without reconnecting, within `connect_timeout`, and is closed again. The step passes
//! when at least one road works.

use super::{Step, test_topic};
use crate::client::Client;
use crate::config::{Config, Transport as Road};
use crate::connect::websocket;
use crate::https::{self, HttpsPublish};
use iot443_proto::QoS;

/// How one road fared.
enum Outcome {
    /// It works: what it connected with.
    Works(String),
    /// It was tried and failed: why.
    Fails(String),
    /// It could not be tried: why (missing credentials, files that failed).
    NotTried(String),
}

/// Tries every road for `config`; `no_certificate` says why the certificate roads cannot be
/// tried (the `files` step failed, none is configured), `None` when they can.
pub(super) async fn check_roads(config: &Config, no_certificate: Option<&str>) -> Step {
    let mut probe = config.clone();
    probe.outbox = None;
    probe.message_expiry = None;
    probe.reconnect.enabled = false;
    if let Some(auto) = probe.auto_port.as_mut() {
        // Each road on its own here: the race would mix them.
        auto.websocket = false;
    }

    let tls = match no_certificate {
        None => tls_road(&probe).await,
        Some(why) => Outcome::NotTried(why.to_owned()),
    };
    let websocket = websocket_road(&probe).await;
    let https = match no_certificate {
        None => https_road(&probe).await,
        Some(why) => Outcome::NotTried(why.to_owned()),
    };

    let roads = [("tls", &tls), ("websocket", &websocket), ("https", &https)];
    let detail = roads
        .iter()
        .map(|(name, outcome)| match outcome {
            Outcome::Works(how) => format!("{name}: works ({how})"),
            Outcome::Fails(why) => format!("{name}: fails: {why}"),
            Outcome::NotTried(why) => format!("{name}: not tried: {why}"),
        })
        .collect::<Vec<_>>()
        .join(" | ");
    let works = |outcome: &Outcome| matches!(outcome, Outcome::Works(_));
    if !roads.iter().any(|(_, outcome)| works(outcome)) {
        return Step::fail(
            "roads",
            detail,
            "no road through port 443 works from here: the steps above say where each stops; \
             behind a TLS-inspecting proxy, ask for a bypass of *.iot.<region>.amazonaws.com or \
             use the WebSocket road with the proxy's CA as root_ca and AWS credentials",
        );
    }
    let mut step = Step::pass("roads", detail);
    if !works(&tls) && works(&websocket) {
        step.hint = Some(
            "the certificate road does not get through but the WebSocket road does: set \
             transport = \"websocket\" (or --transport websocket), or port = \"auto\", which \
             falls back to it"
                .to_owned(),
        );
    } else if !works(&tls) && works(&https) {
        step.hint = Some(
            "only HTTPS publish gets through: `iot443 pub --transport https` publishes (it \
             cannot subscribe)"
                .to_owned(),
        );
    }
    step
}

/// The certificate road: the configuration's port (or race of ports), TLS, CONNACK.
async fn tls_road(config: &Config) -> Outcome {
    let mut config = config.clone();
    config.transport = Road::Tls;
    connect_and_close(&config).await
}

/// The WebSocket road on the configuration's port (443 when it is 8883; with `port = "auto"`
/// the race's 443 port).
async fn websocket_road(config: &Config) -> Outcome {
    let mut config = on_the_443_port(config);
    config.transport = Road::WebSocket;
    config.alpn = None;
    match websocket::find_identity(&config).await {
        Ok(_) => connect_and_close(&config).await,
        Err(why) => Outcome::NotTried(why),
    }
}

/// `config` on its 443-style port: the race's with `port = "auto"`, 443 instead of 8883, else
/// the configured one (the emulator's ALPN listener, say).
fn on_the_443_port(config: &Config) -> Config {
    let mut config = config.clone();
    if let Some(auto) = config.auto_port.take() {
        config.port = auto.alpn_port;
    } else if config.port == 8883 {
        config.port = 443;
    }
    config
}

/// HTTPS publish of one QoS 1 message to the doctor's topic on the configuration's port (443
/// when it is 8883).
async fn https_road(config: &Config) -> Outcome {
    let mut config = on_the_443_port(config);
    config.transport = Road::Https;
    let topic = test_topic(&config.client_id);
    let message = HttpsPublish::new(topic.clone(), "iot443 doctor (https)").qos(QoS::AtLeastOnce);
    let publish = https::publish(&config, &message);
    match tokio::time::timeout(config.connect_timeout * 2, publish).await {
        Ok(Ok(answer)) => Outcome::Works(format!(
            "POST /topics/{topic} on port {} answered {}{}",
            config.port,
            answer.status,
            answer.trace_id.map(|id| format!(", traceId {id}")).unwrap_or_default()
        )),
        Ok(Err(error)) => Outcome::Fails(error.to_string()),
        Err(_) => Outcome::Fails(format!(
            "no answer within {:?} on port {}",
            config.connect_timeout * 2,
            config.port
        )),
    }
}

/// CONNECT → CONNACK on `config`, then DISCONNECT.
async fn connect_and_close(config: &Config) -> Outcome {
    match Client::connect(config).await {
        Ok((client, _events)) => {
            let how = client.connection_info().summary();
            let _ = tokio::time::timeout(config.connect_timeout, client.disconnect()).await;
            Outcome::Works(format!("CONNACK, {how}"))
        }
        Err(error) => Outcome::Fails(error.to_string()),
    }
}
