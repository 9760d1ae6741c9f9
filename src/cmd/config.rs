//! Building the client configuration from a file, the environment and flags.

use crate::args::ConnectArgs;
use crate::exit::Failure;
use iot443::Config;
use iot443::config::Transport;
use std::path::Path;

/// The file read when no `--config` is given and no endpoint flags either.
const DEFAULT_CONFIG: &str = "iot443.toml";

/// file < IOT443_* environment < flags; for the proxy: HTTPS_PROXY (unless NO_PROXY matches)
/// < the file's `proxy` < IOT443_PROXY < `--proxy` / `--no-proxy`. `transport = "https"` is
/// refused: it is publish-only (see [`resolve_for_publish`]).
pub fn resolve(args: &ConnectArgs) -> Result<Config, Failure> {
    let config = resolve_for_publish(args)?;
    if config.transport == Transport::Https {
        return Err(Failure::usage(
            "https is publish-only: use `iot443 pub --transport https`, or --transport tls or \
             websocket here",
        ));
    }
    Ok(config)
}

/// [`resolve`], with `transport = "https"` allowed (`iot443 pub`).
pub fn resolve_for_publish(args: &ConnectArgs) -> Result<Config, Failure> {
    let file = match &args.config {
        Some(path) => Some(path.clone()),
        None if Path::new(DEFAULT_CONFIG).is_file() => Some(DEFAULT_CONFIG.into()),
        None => None,
    };
    let mut config = match file {
        Some(path) if Config::is_c_sdk_header(&path) => Config::from_c_sdk_header(&path, None)?,
        // A key the file lacks may come from a flag or the environment, which override it.
        Some(path) => Config::from_toml_file_with(&path, |key| supplied(args, key))?,
        None if requested_transport(args) == Some(Transport::WebSocket) => {
            let Some(endpoint) = &args.endpoint else {
                return Err(Failure::usage(
                    "no configuration: pass --config FILE, or -h HOST with --transport websocket",
                ));
            };
            let client_id = args.client_id.clone().unwrap_or_else(|| "iot443".to_owned());
            Config::websocket_builder(endpoint.clone(), client_id).build()?
        }
        None => {
            let (Some(endpoint), Some(cert), Some(key)) = (&args.endpoint, &args.cert, &args.key)
            else {
                return Err(Failure::usage(
                    "no configuration: pass --config FILE (iot443.toml or aws_iot_config.h), or \
                     -h HOST --cert FILE --key FILE; `iot443 emulator` writes an iot443.toml for \
                     the local endpoint, and `iot443 demo` needs none",
                ));
            };
            let client_id = args.client_id.clone().unwrap_or_else(|| "iot443".to_owned());
            Config::builder(endpoint.clone(), client_id, cert.clone(), key.clone()).build()?
        }
    };
    // The endpoint flag first too, so that NO_PROXY is matched against the endpoint used.
    if let Some(endpoint) = &args.endpoint {
        config.endpoint = endpoint.clone();
    }
    config.apply_process_env()?;
    if let Some(endpoint) = &args.endpoint {
        config.endpoint = endpoint.clone();
    }
    if let Some(port) = args.port {
        port.apply(&mut config);
    }
    if let Some(timeout) = args.ack_timeout {
        config.ack_timeout = timeout;
    }
    if let Some(timeout) = args.connect_timeout {
        config.connect_timeout = timeout;
    }
    if let Some(client_id) = &args.client_id {
        config.client_id = client_id.clone();
    }
    if let Some(cafile) = &args.cafile {
        config.root_ca = Some(cafile.clone());
    }
    if let Some(cert) = &args.cert {
        config.certificate = cert.clone();
    }
    if let Some(key) = &args.key {
        config.private_key = key.clone();
    }
    if let Some(alpn) = &args.alpn {
        config.alpn = Some(alpn.clone());
    }
    if let Some(url) = &args.proxy {
        let proxy = iot443::config::ProxyConfig::parse(url).map_err(|message| {
            iot443::ConfigError::InvalidValue {
                origin: "--proxy".to_owned(),
                field: "proxy",
                message,
            }
        })?;
        config.proxy = Some(proxy);
    }
    if args.no_proxy {
        config.proxy = None;
    }
    if let Some(transport) = args.transport {
        config.transport = transport.into();
    }
    if let Some(region) = &args.region {
        config.region = Some(region.clone());
    }
    if let Some(path) = &args.aws_credentials {
        config.aws_credentials = Some(path.clone());
    }
    config.validate()?;
    Ok(config)
}

/// The transport `--transport` or `IOT443_TRANSPORT` asks for, if any.
fn requested_transport(args: &ConnectArgs) -> Option<Transport> {
    args.transport
        .map(Transport::from)
        .or_else(|| std::env::var("IOT443_TRANSPORT").ok().and_then(|value| value.parse().ok()))
}

/// A required key given by a flag, else by its `IOT443_*` variable.
fn supplied(args: &ConnectArgs, key: &str) -> Option<String> {
    let flag = match key {
        "endpoint" => args.endpoint.clone(),
        "client_id" => args.client_id.clone(),
        "certificate" => args.cert.as_ref().map(|p| p.display().to_string()),
        "private_key" => args.key.as_ref().map(|p| p.display().to_string()),
        _ => None,
    };
    // With the WebSocket road asked for, a file needs no certificate or key.
    if key == "transport" {
        return requested_transport(args).map(|transport| transport.to_string());
    }
    let from_env = || std::env::var(iot443::config::env_var_for(key)?).ok();
    flag.or_else(|| from_env().filter(|value| !value.is_empty()))
}
