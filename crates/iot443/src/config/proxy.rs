//! The HTTP CONNECT proxy setting: `http://[user:pass@]host[:port]`, and which proxy the
//! environment asks for (`IOT443_PROXY`, then `HTTPS_PROXY`/`https_proxy` filtered by
//! `NO_PROXY`/`no_proxy` as curl reads them).

use std::fmt;

/// An HTTP proxy that the client tunnels through with `CONNECT host:port`.
///
/// Built from a URL with [`ProxyConfig::parse`]. Only `http://` proxies are supported (the
/// tunnel itself carries TLS end to end). The password never appears in `Debug` or `Display`:
/// both show `http://user:***@host:port`.
#[derive(Clone, PartialEq, Eq)]
pub struct ProxyConfig {
    host: String,
    port: u16,
    credentials: Option<(String, String)>,
}

impl ProxyConfig {
    /// The port used when the URL names none (curl's default for proxies).
    pub const DEFAULT_PORT: u16 = 1080;

    /// Parses `http://[user:pass@]host[:port][/]`. A URL without a scheme is taken as `http://`
    /// (as curl does); user and password may be percent-encoded. The error says what is wrong,
    /// without repeating the password.
    pub fn parse(url: &str) -> Result<ProxyConfig, String> {
        let url = url.trim();
        let rest = match url.split_once("://") {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("http") => rest,
            Some((scheme, _)) if scheme.eq_ignore_ascii_case("https") => {
                return Err("https:// proxies are not supported: use an http:// proxy URL (the \
                            tunnel through it carries TLS end to end anyway)"
                    .to_owned());
            }
            Some((scheme, _)) => {
                return Err(format!(
                    "proxy scheme {scheme:?} is not supported: use http://[user:pass@]host:port"
                ));
            }
            None => url,
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains(['/', '?', '#']) {
            return Err("a proxy URL has no path: use http://[user:pass@]host:port".to_owned());
        }
        let (userinfo, hostport) = match rest.rsplit_once('@') {
            Some((userinfo, hostport)) => (Some(userinfo), hostport),
            None => (None, rest),
        };
        let credentials = match userinfo {
            None => None,
            Some(userinfo) => {
                let (user, pass) = userinfo.split_once(':').unwrap_or((userinfo, ""));
                let user = percent_decode(user).ok_or_else(|| {
                    "the proxy user name is not valid percent-encoding".to_owned()
                })?;
                let pass = percent_decode(pass)
                    .ok_or_else(|| "the proxy password is not valid percent-encoding".to_owned())?;
                if user.is_empty() {
                    return Err("the proxy URL has an `@` but no user name".to_owned());
                }
                Some((user, pass))
            }
        };
        let (host, port) = split_host_port(hostport)?;
        Ok(ProxyConfig { host, port, credentials })
    }

    /// The proxy's host name or IP address (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The proxy's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user name, when the URL has credentials.
    pub fn user(&self) -> Option<&str> {
        self.credentials.as_ref().map(|(user, _)| user.as_str())
    }

    /// Whether the URL carries credentials (sent as `Proxy-Authorization: Basic`).
    pub fn has_credentials(&self) -> bool {
        self.credentials.is_some()
    }

    /// `host:port` of the proxy, without credentials (IPv6 literals in brackets).
    pub fn addr(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The `Proxy-Authorization` header value, `Basic base64(user:pass)`, when there are
    /// credentials.
    #[cfg(feature = "proxy")]
    pub(crate) fn authorization(&self) -> Option<String> {
        self.credentials
            .as_ref()
            .map(|(user, pass)| format!("Basic {}", base64(format!("{user}:{pass}").as_bytes())))
    }
}

impl fmt::Display for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.credentials {
            Some((user, _)) => write!(f, "http://{user}:***@{}", self.addr()),
            None => write!(f, "http://{}", self.addr()),
        }
    }
}

impl fmt::Debug for ProxyConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ProxyConfig").field(&format_args!("{self}")).finish()
    }
}

/// Which proxy the environment asks for to reach `endpoint`, as curl reads it:
/// `HTTPS_PROXY` (or `https_proxy`), unless `NO_PROXY` (or `no_proxy`) matches the endpoint.
///
/// `NO_PROXY` is a comma-separated list of host names or suffixes (`example.com` matches
/// `example.com` and `a.example.com`, not `badexample.com`; a leading dot is allowed and
/// ignored), IP addresses, or `*` for every host. Matching ignores case and any `:port` in an
/// entry. Returns the variable's name with the parsed proxy, for error messages.
pub(crate) fn from_https_proxy_env(
    vars: &dyn Fn(&str) -> Option<String>,
    endpoint: &str,
) -> Option<(&'static str, Result<ProxyConfig, String>)> {
    let get = |name: &str| vars(name).filter(|v| !v.trim().is_empty());
    let (name, url) = ["HTTPS_PROXY", "https_proxy"]
        .into_iter()
        .find_map(|name| get(name).map(|url| (name, url)))?;
    let no_proxy = get("NO_PROXY").or_else(|| get("no_proxy")).unwrap_or_default();
    if no_proxy_matches(&no_proxy, endpoint) {
        return None;
    }
    Some((name, ProxyConfig::parse(&url)))
}

/// Whether the `NO_PROXY` list `list` exempts `host` from the proxy.
pub(crate) fn no_proxy_matches(list: &str, host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']').trim_end_matches('.');
    list.split(',').map(str::trim).filter(|entry| !entry.is_empty()).any(|entry| {
        if entry == "*" {
            return true;
        }
        let entry = strip_port(entry).trim_start_matches('.').trim_end_matches('.');
        if entry.is_empty() {
            return false;
        }
        if host.eq_ignore_ascii_case(entry) {
            return true;
        }
        host.len() > entry.len()
            && host
                .get(host.len() - entry.len()..)
                .is_some_and(|suffix| suffix.eq_ignore_ascii_case(entry))
            && host.as_bytes().get(host.len() - entry.len() - 1) == Some(&b'.')
    })
}

/// An entry without its `:port` (`[::1]:80` → `::1`; a bare IPv6 address is kept whole).
fn strip_port(entry: &str) -> &str {
    if let Some(rest) = entry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match entry.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.chars().all(|c| c.is_ascii_digit()) => {
            host
        }
        _ => entry,
    }
}

fn split_host_port(hostport: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = hostport.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("{hostport:?}: an IPv6 address needs a closing `]`"))?;
        (host, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err("the proxy URL has no host: use http://[user:pass@]host:port".to_owned());
    }
    let port = match port {
        None => ProxyConfig::DEFAULT_PORT,
        Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| {
            format!("{port:?} is not a TCP port for the proxy (1-65535), e.g. 3128")
        })?,
    };
    Ok((host.to_owned(), port))
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&byte) = bytes.get(i) {
        if byte == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(byte);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Standard base64 with padding (RFC 4648), for `Proxy-Authorization: Basic`.
#[cfg(feature = "proxy")]
pub(crate) fn base64(input: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let sextet = |shift: u32| {
            char::from(ALPHABET.get(((n >> shift) & 63) as usize).copied().unwrap_or(b'='))
        };
        out.push(sextet(18));
        out.push(sextet(12));
        out.push(if chunk.len() > 1 { sextet(6) } else { '=' });
        out.push(if chunk.len() > 2 { sextet(0) } else { '=' });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "proxy")]
    #[test]
    fn base64_matches_rfc_4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("Aladdin:open sesame", "QWxhZGRpbjpvcGVuIHNlc2FtZQ=="),
        ];
        for (input, expected) in vectors {
            assert_eq!(base64(input.as_bytes()), expected, "{input:?}");
        }
    }

    #[cfg(feature = "proxy")]
    #[test]
    fn parses_urls_with_and_without_credentials() {
        let proxy = ProxyConfig::parse("http://proxy.example:3128").unwrap();
        assert_eq!((proxy.host(), proxy.port(), proxy.user()), ("proxy.example", 3128, None));
        assert_eq!(proxy.authorization(), None);

        let proxy = ProxyConfig::parse("http://Aladdin:open%20sesame@10.0.0.1:8080/").unwrap();
        assert_eq!(proxy.addr(), "10.0.0.1:8080");
        assert_eq!(proxy.user(), Some("Aladdin"));
        assert_eq!(proxy.authorization().unwrap(), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");

        let proxy = ProxyConfig::parse("[::1]:3128").unwrap();
        assert_eq!((proxy.host(), proxy.addr().as_str()), ("::1", "[::1]:3128"));
        assert_eq!(ProxyConfig::parse("proxy").unwrap().port(), ProxyConfig::DEFAULT_PORT);
    }

    #[test]
    fn rejects_https_other_schemes_and_bad_ports() {
        assert!(ProxyConfig::parse("https://p:443").unwrap_err().contains("https://"));
        assert!(ProxyConfig::parse("socks5://p:1080").unwrap_err().contains("socks5"));
        assert!(ProxyConfig::parse("http://p:0").is_err());
        assert!(ProxyConfig::parse("http://p:99999").is_err());
        assert!(ProxyConfig::parse("http://").is_err());
        assert!(ProxyConfig::parse("http://p:1/path").is_err());
    }

    #[test]
    fn the_password_never_shows() {
        let proxy = ProxyConfig::parse("http://user:s3cret@p:3128").unwrap();
        for text in [format!("{proxy}"), format!("{proxy:?}"), format!("{:?}", Some(&proxy))] {
            assert!(!text.contains("s3cret"), "{text}");
            assert!(text.contains("user:***@p:3128"), "{text}");
        }
        let error = ProxyConfig::parse("https://user:s3cret@p").unwrap_err();
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn no_proxy_matches_like_curl() {
        let list = "localhost, .internal.example,10.0.0.1,corp.example:8080";
        assert!(no_proxy_matches(list, "localhost"));
        assert!(no_proxy_matches(list, "LOCALHOST"));
        assert!(no_proxy_matches(list, "a.internal.example"));
        assert!(no_proxy_matches(list, "internal.example"));
        assert!(no_proxy_matches(list, "10.0.0.1"));
        assert!(no_proxy_matches(list, "x.corp.example"));
        assert!(!no_proxy_matches(list, "badcorp.example"));
        assert!(!no_proxy_matches(list, "abc-ats.iot.eu-west-1.amazonaws.com"));
        assert!(no_proxy_matches("*", "anything"));
        assert!(no_proxy_matches("amazonaws.com", "abc-ats.iot.eu-west-1.amazonaws.com"));
        assert!(!no_proxy_matches("", "localhost"));
        assert!(no_proxy_matches("::1", "::1"));
    }

    #[test]
    fn https_proxy_env_is_read_and_filtered_by_no_proxy() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| pairs.iter().find(|(k, _)| *k == name).map(|(_, v)| (*v).to_owned())
        };
        let vars = env(&[("https_proxy", "http://p:3128")]);
        let (name, proxy) = from_https_proxy_env(&vars, "a.example").unwrap();
        assert_eq!((name, proxy.unwrap().addr()), ("https_proxy", "p:3128".to_owned()));

        let vars = env(&[("HTTPS_PROXY", "http://upper:1"), ("https_proxy", "http://lower:2")]);
        assert_eq!(from_https_proxy_env(&vars, "h").unwrap().1.unwrap().host(), "upper");

        let vars = env(&[("HTTPS_PROXY", "http://p:3128"), ("NO_PROXY", ".example")]);
        assert!(from_https_proxy_env(&vars, "a.example").is_none());
        assert!(from_https_proxy_env(&vars, "a.example.org").is_some());

        let vars = env(&[("HTTPS_PROXY", "http://p:3128"), ("no_proxy", "*")]);
        assert!(from_https_proxy_env(&vars, "a.example").is_none());

        let vars = env(&[("HTTPS_PROXY", "")]);
        assert!(from_https_proxy_env(&vars, "a.example").is_none());
    }
}
