//! The tokio shell around the sans-IO [`Broker`]: listeners, one task per connection, and the
//! broker's timers.
//!
//! [`run`] takes listeners the caller has bound (port 0 in tests) and a shutdown future, as
//! mini-redis does (STYLE.md habit 7). [`Emulator::start`] does everything for in-process use:
//! PKI, binding, and a handle that stops the emulator when dropped. [`InMemoryEmulator`] serves
//! the same broker over in-memory streams, without TLS or sockets, for tests in virtual time.
//!
//! The emulator's clock is tokio's (`tokio::time::Instant`): under `tokio::time::pause()` (or
//! `#[tokio::test(start_paused = true)]`) its CONNECT timeout, keep-alive and session expiry
//! run in virtual time.

mod connection;
mod http;
mod https_publish;
mod in_memory;
pub mod shadow_store;
mod shared;
mod websocket;

pub use in_memory::{InMemoryEmulator, NO_CERTIFICATE_SHA256};
pub use shadow_store::{ShadowStore, ShadowStoreError, cloud_request};
pub use shared::ClosedConnection;
pub use websocket::SIGV4_IDENTITY_PREFIX;

use crate::broker::{Broker, BrokerConfig};
use crate::pki::{DEFAULT_REGION, Pki, PkiError, PkiOptions};
use crate::sigv4::{
    AwsCredentials, DEFAULT_DATE_WINDOW, SERVICE_IOT_DATA, SERVICE_IOT_DEVICE_GATEWAY,
};
use crate::tls::{ListenerKind, MissingAlpn, TlsAcceptor};
use iot443_proto::Instant;
use iot443_proto::aws::shadow::ShadowId;
use shadow_store::StoreThread;
use shared::Shared;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How an emulator is set up.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct EmulatorOptions {
    /// Folder of the PKI and `iot443.toml`.
    pub dir: PathBuf,
    /// Address to listen on. Default 127.0.0.1.
    pub bind: IpAddr,
    /// Port of the listener that behaves as IoT Core's port 443 (routes on ALPN; see
    /// [`crate::tls`]). 0 = ephemeral.
    pub alpn_port: u16,
    /// Port of the plain MQTTS listener (no ALPN needed), or `None` for no such listener.
    pub mqtts_port: Option<u16>,
    /// Port of the HTTPS publish listener (IoT Core's 8443: client certificate, no ALPN), or
    /// `None` for no such listener. Default 8443.
    pub https_port: Option<u16>,
    /// What the ALPN listener does with a client that offers neither `x-amzn-mqtt-ca` nor
    /// `x-amzn-http-ca`. Default [`MissingAlpn::Http`]: the WebSocket road.
    pub missing_alpn: MissingAlpn,
    /// The emulator's AWS region: SigV4 requests must be signed for it, and it is written into
    /// `iot443.toml`. Default `us-east-1`.
    pub region: String,
    /// How far a SigV4 `X-Amz-Date` may be from the emulator's clock. Default 5 minutes.
    pub sigv4_date_window: Duration,
    /// How long a WebSocket (SigV4) connection may last before the emulator closes it. Default
    /// 24 hours, as IoT Core.
    pub websocket_max_duration: Duration,
    /// Refuse a missing SNI, or one that is not a name of the server certificate.
    pub strict_sni: bool,
    /// Extra names for the server certificate.
    pub hostnames: Vec<String>,
    /// Options of the PKI created on first start.
    pub pki: PkiOptions,
    /// The broker's rules and quotas.
    pub broker: BrokerConfig,
}

impl EmulatorOptions {
    /// Defaults for `dir`: 127.0.0.1, ALPN listener on 443 (WebSocket road without ALPN),
    /// MQTTS on 8883, HTTPS on 8443, region `us-east-1`, lenient SNI.
    pub fn new(dir: impl Into<PathBuf>) -> Self {
        EmulatorOptions {
            dir: dir.into(),
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            alpn_port: 443,
            mqtts_port: Some(8883),
            https_port: Some(8443),
            missing_alpn: MissingAlpn::Http,
            region: DEFAULT_REGION.to_owned(),
            sigv4_date_window: DEFAULT_DATE_WINDOW,
            websocket_max_duration: DEFAULT_WEBSOCKET_MAX_DURATION,
            strict_sni: false,
            hostnames: Vec::new(),
            pki: PkiOptions::default(),
            broker: BrokerConfig::default(),
        }
    }
}

/// IoT Core's longest WebSocket connection (`AWS-IOT-ROADS.md` §1.21).
pub const DEFAULT_WEBSOCKET_MAX_DURATION: Duration = Duration::from_secs(24 * 3600);

/// What the WebSocket road verifies.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub struct WebRules {
    /// The one access key accepted.
    pub credentials: AwsCredentials,
    /// The region the credential scope must name.
    pub region: String,
    /// How far `X-Amz-Date` may be from the emulator's clock.
    pub date_window: Duration,
    /// How long an upgraded connection may last.
    pub websocket_max_duration: Duration,
}

impl WebRules {
    /// Rules for `credentials` in `region`, with the default window and duration.
    pub fn new(credentials: AwsCredentials, region: impl Into<String>) -> Self {
        WebRules {
            credentials,
            region: region.into(),
            date_window: DEFAULT_DATE_WINDOW,
            websocket_max_duration: DEFAULT_WEBSOCKET_MAX_DURATION,
        }
    }

    /// The accepted services of the credential scope: `iotdevicegateway`, and `iotdata` (the
    /// emulator's choice).
    pub fn services(&self) -> [&'static str; 2] {
        [SERVICE_IOT_DEVICE_GATEWAY, SERVICE_IOT_DATA]
    }
}

/// Why the emulator could not start.
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// Creating or loading the PKI failed.
    #[error(transparent)]
    Pki(#[from] PkiError),
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}{hint}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The operating system's error.
        source: std::io::Error,
        /// What to do.
        hint: &'static str,
    },
    /// The TLS configuration could not be built.
    #[error("TLS setup failed: {0}")]
    Tls(String),
    /// The task creating or loading the PKI ended without an answer (it panicked).
    #[error("creating or loading the PKI failed unexpectedly: {0}; run the emulator again")]
    PkiTask(String),
}

/// One bound listener and the TLS rules it applies.
#[derive(Debug)]
pub struct Listener {
    /// The socket.
    pub tcp: TcpListener,
    /// The TLS rules.
    pub tls: Arc<TlsAcceptor>,
    /// `"mqtt-alpn"`, `"mqtts"` or `"https"`, for logs.
    pub name: &'static str,
}

/// Serves `listeners` until `shutdown` completes, then closes every connection. Shadows live in
/// memory only; [`Emulator::start`] keeps them in its folder. Without [`WebRules`] every
/// WebSocket upgrade is refused with 403.
pub async fn run(
    listeners: Vec<Listener>,
    broker: BrokerConfig,
    web: Option<WebRules>,
    shutdown: impl Future<Output = ()>,
) {
    if let Err(error) = run_with_store(listeners, broker, web, None, shutdown).await {
        tracing::error!("{error}");
    }
}

/// Like [`run`], with the shadows kept in `<store_dir>/shadows.sqlite3` (loaded at start, written
/// as they change) and the cloud side's requests served (see [`shadow_store`]).
///
/// # Errors
/// When the store cannot be opened.
pub async fn run_with_store(
    listeners: Vec<Listener>,
    broker: BrokerConfig,
    web: Option<WebRules>,
    store_dir: Option<PathBuf>,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ShadowStoreError> {
    let mut broker = Broker::new(broker);
    broker.set_unix_time(Instant::ZERO, shadow_store::unix_now());
    let live: Arc<std::sync::OnceLock<std::sync::Weak<Shared>>> = Arc::default();
    let store = match &store_dir {
        Some(dir) => {
            let live = Arc::clone(&live);
            let run = Box::new(move |id: &ShadowId, operation, payload: &[u8]| {
                match live.get().and_then(std::sync::Weak::upgrade) {
                    Some(shared) => shared.with_broker(|broker, now| {
                        broker.shadow_request(now, id, operation, payload)
                    }),
                    None => Err(br#"{"code":500,"message":"Internal service failure"}"#.to_vec()),
                }
            });
            Some(StoreThread::start(dir, &mut broker, run)?)
        }
        None => None,
    };
    let shared = Arc::new(Shared::new(broker, false));
    if let Some(web) = web {
        shared.set_web(Arc::new(web));
    }
    let _ = live.set(Arc::downgrade(&shared));
    let store_thread = store.map(|(thread, changes)| {
        shared.set_store(changes);
        thread
    });
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(shared::run_timers(Arc::clone(&shared))));
    for listener in listeners {
        tasks.push(tokio::spawn(accept_loop(listener, Arc::clone(&shared))));
    }
    shutdown.await;
    tracing::info!("shutting down");
    shared.shut_down();
    for task in tasks {
        let _ = tokio::time::timeout(STOP_LIMIT, task).await;
    }
    if let Some(thread) = store_thread {
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
    }
    Ok(())
}

/// How long stopping waits for each task.
const STOP_LIMIT: Duration = Duration::from_secs(5);

async fn accept_loop(listener: Listener, shared: Arc<Shared>) {
    let stopped = shared.stopped();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            () = &mut stopped => return,
            accepted = listener.tcp.accept() => match accepted {
                Ok((tcp, peer)) => {
                    let _ = tcp.set_nodelay(true);
                    let tls = Arc::clone(&listener.tls);
                    tokio::spawn(connection::serve_tls(tcp, peer, tls, Arc::clone(&shared)));
                }
                Err(error) => {
                    // Out of file descriptors and the like: log, breathe, go on.
                    tracing::warn!(listener = listener.name, "accept failed: {error}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
        }
    }
}

/// An emulator running in this process, stopped when dropped or by [`Emulator::stop`].
#[derive(Debug)]
pub struct Emulator {
    /// The PKI (CA, server and device certificates, `iot443.toml`).
    pub pki: Pki,
    /// Where the ALPN listener is.
    pub alpn_addr: SocketAddr,
    /// Where the MQTTS listener is, if any.
    pub mqtts_addr: Option<SocketAddr>,
    /// Where the HTTPS publish listener is, if any.
    pub https_addr: Option<SocketAddr>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Emulator {
    /// Creates or loads the PKI, binds the listeners (writing the ALPN port into
    /// `iot443.toml`) and starts serving.
    pub async fn start(options: EmulatorOptions) -> Result<Emulator, ServerError> {
        let alpn_tcp = bind(SocketAddr::new(options.bind, options.alpn_port)).await?;
        let alpn_addr = alpn_tcp.local_addr().map_err(|source| ServerError::Bind {
            addr: SocketAddr::new(options.bind, options.alpn_port),
            source,
            hint: "",
        })?;
        let mqtts_tcp = match options.mqtts_port {
            Some(port) => Some(bind(SocketAddr::new(options.bind, port)).await?),
            None => None,
        };
        let mqtts_addr = mqtts_tcp.as_ref().and_then(|tcp| tcp.local_addr().ok());
        let https_tcp = match options.https_port {
            Some(port) => Some(bind(SocketAddr::new(options.bind, port)).await?),
            None => None,
        };
        let https_addr = https_tcp.as_ref().and_then(|tcp| tcp.local_addr().ok());

        let mut pki_options = options.pki.clone();
        pki_options.hostnames.extend(options.hostnames.iter().cloned());
        pki_options.endpoint_port = Some(alpn_addr.port());
        pki_options.region = Some(options.region.clone());
        let dir = options.dir.clone();
        // Key generation and file writes: off the async threads.
        let pki = tokio::task::spawn_blocking(move || Pki::load_or_create(&dir, &pki_options))
            .await
            .map_err(|error| ServerError::PkiTask(error.to_string()))??;

        let alpn_kind = ListenerKind::Alpn { on_missing: options.missing_alpn };
        let mut listeners = vec![Listener {
            tcp: alpn_tcp,
            tls: Arc::new(acceptor(&pki, alpn_kind, options.strict_sni)?),
            name: "mqtt-alpn",
        }];
        if let Some(tcp) = mqtts_tcp {
            listeners.push(Listener {
                tcp,
                tls: Arc::new(acceptor(&pki, ListenerKind::Mqtts, options.strict_sni)?),
                name: "mqtts",
            });
        }
        if let Some(tcp) = https_tcp {
            listeners.push(Listener {
                tcp,
                tls: Arc::new(acceptor(&pki, ListenerKind::Https, options.strict_sni)?),
                name: "https",
            });
        }
        let mut web = WebRules::new(pki.aws_credentials().clone(), pki.region());
        web.date_window = options.sigv4_date_window;
        web.websocket_max_duration = options.websocket_max_duration;
        let (shutdown, stopped) = oneshot::channel::<()>();
        let broker = options.broker.clone();
        let dir = options.dir.clone();
        let task = tokio::spawn(async move {
            let stopped = async {
                let _ = stopped.await;
            };
            if let Err(error) =
                run_with_store(listeners, broker, Some(web), Some(dir), stopped).await
            {
                tracing::error!("{error}");
            }
        });
        Ok(Emulator {
            pki,
            alpn_addr,
            mqtts_addr,
            https_addr,
            shutdown: Some(shutdown),
            task: Some(task),
        })
    }

    /// The AWS access key the WebSocket road accepts (the emulator's `aws-credentials`).
    pub fn aws_credentials(&self) -> &AwsCredentials {
        self.pki.aws_credentials()
    }

    /// The emulator's region.
    pub fn region(&self) -> &str {
        self.pki.region()
    }

    /// Stops serving and waits until every connection is closed.
    pub async fn stop(mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
    }
}

fn acceptor(pki: &Pki, kind: ListenerKind, strict_sni: bool) -> Result<TlsAcceptor, ServerError> {
    TlsAcceptor::new(pki, kind, strict_sni).map_err(|error| ServerError::Tls(error.to_string()))
}

/// Binds a listener, explaining the usual failures.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, ServerError> {
    TcpListener::bind(addr).await.map_err(|source| {
        let hint = match source.kind() {
            std::io::ErrorKind::PermissionDenied => {
                "; ports below 1024 need root or CAP_NET_BIND_SERVICE: choose another port (0 = any free one)"
            }
            std::io::ErrorKind::AddrInUse => "; another program listens there: choose another port (0 = any free one)",
            _ => "",
        };
        ServerError::Bind { addr, source, hint }
    })
}
