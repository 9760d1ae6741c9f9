//! `port = "auto"`: which ports race, how far apart, and where the winner is remembered.

use super::Config;
use std::path::PathBuf;
use std::time::Duration;

/// `port = "auto"`: a staggered race between MQTT over mutual TLS on [`mqtts_port`] (8883)
/// and port [`alpn_port`] (443) with ALPN `x-amzn-mqtt-ca`, keeping the first connection that
/// reaches CONNACK.
///
/// The 8883 attempt starts first; the 443 attempt starts [`stagger`] later, or at once when the
/// 8883 attempt fails sooner. Only one CONNECT is in flight at a time (two would make the
/// endpoint drop the older connection for a duplicate client id): the first attempt through
/// TLS sends it, and the other waits for its turn until the first reaches CONNACK (the other is
/// closed) or fails (the other goes on). The winner is remembered per endpoint in
/// [`state_file`], so that the next start tries it alone, and races again once the memory is
/// older than [`recheck_after`] or the remembered port fails.
///
/// [`mqtts_port`]: AutoPort::mqtts_port
/// [`alpn_port`]: AutoPort::alpn_port
/// [`stagger`]: AutoPort::stagger
/// [`state_file`]: AutoPort::state_file
/// [`recheck_after`]: AutoPort::recheck_after
///
/// ```
/// # use iot443::config::{AutoPort, Config};
/// let config = Config::builder("abc123-ats.iot.eu-west-1.amazonaws.com", "dev", "c.pem", "k.pem")
///     .auto_port(AutoPort::default())
///     .build()?;
/// let auto = config.auto_port.as_ref().map(|auto| (auto.mqtts_port, auto.alpn_port));
/// assert_eq!(auto, Some((8883, 443)));
/// # Ok::<(), iot443::config::ConfigError>(())
/// ```
#[non_exhaustive]
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AutoPort {
    /// Tried first: MQTT over mutual TLS without ALPN (8883).
    pub mqtts_port: u16,
    /// Tried [`stagger`](AutoPort::stagger) later: ALPN `x-amzn-mqtt-ca` (443), which firewalls
    /// that let only HTTPS out leave open.
    pub alpn_port: u16,
    /// How long the 8883 attempt has alone before the 443 attempt starts (250 ms).
    pub stagger: Duration,
    /// The file that remembers the winning port per endpoint; `None` remembers nothing and
    /// races at every start. By default `$XDG_STATE_HOME/iot443/ports`, else
    /// `~/.local/state/iot443/ports`.
    pub state_file: Option<PathBuf>,
    /// A remembered port older than this is raced again, in case the firewall changed (1 day).
    pub recheck_after: Duration,
    /// Whether the WebSocket road (MQTT over WebSocket signed with SigV4, on
    /// [`alpn_port`](AutoPort::alpn_port)) joins the race as its last contestant when AWS
    /// credentials and a region can be found ([`crate::config::aws_credentials`]): as soon as
    /// the 443 attempt fails, or four staggers after it started. Its win is remembered like a
    /// port's. `true` by default; without credentials it never starts.
    pub websocket: bool,
}

impl AutoPort {
    /// The default stagger between the 8883 and the 443 attempts.
    pub const DEFAULT_STAGGER: Duration = Duration::from_millis(250);
    /// How long a remembered port is trusted before the next race.
    pub const DEFAULT_RECHECK_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

    /// The user's state file for remembered ports: `$XDG_STATE_HOME/iot443/ports`, else
    /// `$HOME/.local/state/iot443/ports`; `None` when neither variable is set (or is relative).
    pub fn default_state_file() -> Option<PathBuf> {
        state_file_from(|name| std::env::var_os(name).map(PathBuf::from))
    }

    /// The configuration of one contestant: `config` with the port (and, on the ALPN port,
    /// ALPN `x-amzn-mqtt-ca` unless the configuration names another protocol; on the MQTTS
    /// port, no ALPN).
    pub(crate) fn contestant(&self, config: &Config, port: u16) -> Config {
        let mut contestant = config.clone();
        contestant.port = port;
        contestant.auto_port = None;
        contestant.alpn = if port == self.alpn_port {
            Some(config.alpn.clone().unwrap_or_else(|| Config::ALPN_MQTT_CA.to_owned()))
        } else {
            None
        };
        contestant
    }
}

impl Default for AutoPort {
    /// 8883 then 443 after 250 ms, remembered in the user's state folder for a day.
    fn default() -> Self {
        AutoPort {
            mqtts_port: 8883,
            alpn_port: Config::DEFAULT_PORT,
            stagger: Self::DEFAULT_STAGGER,
            state_file: Self::default_state_file(),
            recheck_after: Self::DEFAULT_RECHECK_AFTER,
            websocket: true,
        }
    }
}

fn state_file_from(var: impl Fn(&str) -> Option<PathBuf>) -> Option<PathBuf> {
    let absolute = |path: PathBuf| Some(path).filter(|p| p.is_absolute());
    let state_home = var("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| var("HOME").and_then(absolute).map(|home| home.join(".local/state")))?;
    Some(state_home.join("iot443").join("ports"))
}

/// A port setting that is neither a TCP port nor `auto`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{value:?} is not a TCP port: use 443, 8883 or auto (race 8883 and 443)")]
pub struct InvalidPort {
    /// The value as given.
    pub value: String,
}

/// A port as written in a setting (`port` in the file, `IOT443_PORT`, `-p`): a number, or
/// `auto`.
///
/// ```
/// # use iot443::config::{Config, PortSetting};
/// let mut config = Config::builder("a.example", "dev", "c.pem", "k.pem").build()?;
/// PortSetting::parse("auto").map(|port| port.apply(&mut config)).unwrap();
/// assert!(config.auto_port.is_some());
/// PortSetting::parse("8883").map(|port| port.apply(&mut config)).unwrap();
/// assert_eq!((config.port, config.auto_port), (8883, None));
/// # Ok::<(), iot443::config::ConfigError>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PortSetting {
    /// This port.
    Fixed(u16),
    /// `auto`: race 8883 and 443 ([`AutoPort`]).
    Auto,
}

impl PortSetting {
    /// Parses `443`, `8883` or `auto`.
    pub fn parse(value: &str) -> Result<PortSetting, InvalidPort> {
        let value = value.trim();
        if value.eq_ignore_ascii_case("auto") {
            return Ok(PortSetting::Auto);
        }
        value
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .map(PortSetting::Fixed)
            .ok_or_else(|| InvalidPort { value: value.to_owned() })
    }

    /// Sets `config`'s port: a number turns `auto` off, `auto` keeps an existing [`AutoPort`].
    pub fn apply(self, config: &mut Config) {
        match self {
            PortSetting::Fixed(port) => {
                config.port = port;
                config.auto_port = None;
            }
            PortSetting::Auto => {
                if config.auto_port.is_none() {
                    config.auto_port = Some(AutoPort::default());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<PathBuf> + 'a {
        move |name| pairs.iter().find(|(n, _)| *n == name).map(|(_, v)| PathBuf::from(v))
    }

    #[test]
    fn the_state_file_is_in_xdg_state_home_else_in_home() {
        let both = [("XDG_STATE_HOME", "/s"), ("HOME", "/h")];
        assert_eq!(state_file_from(vars(&both)), Some(PathBuf::from("/s/iot443/ports")));
        let home = [("HOME", "/h")];
        assert_eq!(
            state_file_from(vars(&home)),
            Some(PathBuf::from("/h/.local/state/iot443/ports"))
        );
        let relative = [("XDG_STATE_HOME", "rel"), ("HOME", "/h")];
        assert_eq!(
            state_file_from(vars(&relative)),
            Some(PathBuf::from("/h/.local/state/iot443/ports")),
            "a relative XDG_STATE_HOME is ignored, as the XDG spec says"
        );
        assert_eq!(state_file_from(vars(&[])), None);
    }

    #[test]
    fn port_settings_parse_numbers_and_auto() {
        assert_eq!(PortSetting::parse("443"), Ok(PortSetting::Fixed(443)));
        assert_eq!(PortSetting::parse(" AUTO "), Ok(PortSetting::Auto));
        for bad in ["0", "70000", "https", ""] {
            let err = PortSetting::parse(bad).unwrap_err();
            assert!(err.to_string().contains("auto"), "{err}");
        }
    }
}
