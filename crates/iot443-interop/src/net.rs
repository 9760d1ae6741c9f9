//! Loopback ports.

use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// A port that was free a moment ago on 127.0.0.1 (bound to port 0, read, released), for a peer
/// that cannot be told to pick one itself (mosquitto, haproxy).
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("cannot bind 127.0.0.1:0");
    listener.local_addr().expect("a bound listener has an address").port()
}

/// Waits until 127.0.0.1:`port` accepts a TCP connection, for at most `timeout`.
///
/// The connection is closed at once. Between refused attempts it pauses 20 ms (bounded by the
/// deadline), so that a peer still starting is not hammered.
///
/// # Panics
/// When the port does not accept in time; `what` names the peer in the message.
pub fn wait_accepting(port: u16, timeout: Duration, what: &str) {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    while Instant::now() < deadline {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
            Ok(_) => return,
            Err(error) => last_error = Some(error),
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("{what} did not accept connections on {addr} within {timeout:?}: {last_error:?}");
}
