//! Every argument C can get wrong is an error code and a message, never a crash.

use super::support::{TestEmulator, c, last_error, library_str};
use crate::client::*;
use crate::config::*;
use crate::error::*;
use crate::iot443_version;
use crate::logging::iot443_log_to_stderr;
use crate::publish::*;
use crate::subscribe::*;
use std::ffi::c_char;
use std::ptr;

/// A NUL-terminated string that is not UTF-8.
const NOT_UTF8: &[u8] = b"sdk\xffTest\0";

fn not_utf8() -> *const c_char {
    NOT_UTF8.as_ptr().cast()
}

unsafe extern "C" fn ignore_message(_: *const iot443_message, _: *mut std::ffi::c_void) {}

/// A client made from the emulator's file, not connected.
fn unconnected(emulator: &TestEmulator) -> *mut iot443_client {
    let mut client = ptr::null_mut();
    // SAFETY: a valid path and out pointer.
    let rc = unsafe { iot443_client_new(emulator.config_path().as_ptr(), &mut client) };
    assert_eq!(rc, IOT443_OK, "{}", last_error());
    assert!(!client.is_null());
    client
}

#[test]
fn null_pointers_are_invalid_arguments_that_name_the_argument() {
    let topic = c("sdkTest/sub");
    // SAFETY: NULL pointers are what is tested; the library must refuse them.
    unsafe {
        assert_eq!(iot443_client_new(ptr::null(), ptr::null_mut()), IOT443_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("out is NULL"), "{}", last_error());
        let mut out = ptr::dangling_mut();
        assert_eq!(iot443_client_new(ptr::null(), &mut out), IOT443_ERR_INVALID_ARGUMENT);
        assert!(out.is_null(), "a failure leaves NULL in *out");
        assert!(last_error().contains("config_path is NULL"), "{}", last_error());
        assert_eq!(iot443_connect(ptr::null_mut(), 10), IOT443_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("iot443_connect: client is NULL"), "{}", last_error());
        assert_eq!(
            iot443_subscribe(
                ptr::null_mut(),
                topic.as_ptr(),
                1,
                Some(ignore_message),
                ptr::null_mut(),
                10
            ),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_unsubscribe(ptr::null_mut(), topic.as_ptr(), 10),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_publish(ptr::null_mut(), topic.as_ptr(), ptr::null(), 0, 1, 10),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_publish_async(
                ptr::null_mut(),
                topic.as_ptr(),
                ptr::null(),
                0,
                1,
                None,
                ptr::null_mut()
            ),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(iot443_disconnect(ptr::null_mut(), 10), IOT443_ERR_INVALID_ARGUMENT);
        assert_eq!(
            iot443_set_event_callback(ptr::null_mut(), None, ptr::null_mut()),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_config_new(ptr::null(), topic.as_ptr(), &mut ptr::null_mut()),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("endpoint is NULL"), "{}", last_error());
        assert_eq!(iot443_config_set_port(ptr::null_mut(), 443), IOT443_ERR_INVALID_ARGUMENT);
        assert_eq!(
            iot443_config_set_certificate(ptr::null_mut(), topic.as_ptr()),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_client_new_with_config(ptr::null(), &mut ptr::null_mut()),
            IOT443_ERR_INVALID_ARGUMENT
        );
        // Freeing NULL does nothing.
        iot443_client_free(ptr::null_mut());
        iot443_config_free(ptr::null_mut());
    }
}

#[test]
fn invalid_utf8_and_refused_messages_are_invalid_arguments_and_nothing_is_sent() {
    let emulator = TestEmulator::start();
    let client = unconnected(&emulator);
    let topic = c("sdkTest/sub");
    let wildcard = c("sdkTest/#");
    let too_big = vec![0u8; 128 * 1024 + 1];
    // SAFETY: `client` is live; the pointers point where their lengths say.
    unsafe {
        assert_eq!(iot443_connect(client, 20_000), IOT443_OK, "{}", last_error());
        assert_eq!(
            iot443_publish(client, not_utf8(), ptr::null(), 0, 1, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("topic is not valid UTF-8 (at byte 3)"), "{}", last_error());
        assert_eq!(
            iot443_subscribe(client, not_utf8(), 1, Some(ignore_message), ptr::null_mut(), 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("filter is not valid UTF-8"), "{}", last_error());
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), b"x".as_ptr().cast(), 1, 2, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("QoS 2 is not supported"), "{}", last_error());
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), b"x".as_ptr().cast(), 1, 7, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("qos must be 0 or 1, not 7"), "{}", last_error());
        assert_eq!(
            iot443_publish(client, wildcard.as_ptr(), b"x".as_ptr().cast(), 1, 1, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("sdkTest/#"), "{}", last_error());
        assert_eq!(
            iot443_publish_async(
                client,
                wildcard.as_ptr(),
                ptr::null(),
                0,
                0,
                None,
                ptr::null_mut()
            ),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), too_big.as_ptr().cast(), too_big.len(), 1, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("131073"), "{}", last_error());
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), ptr::null(), 5, 1, 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("payload is NULL but its length is 5"), "{}", last_error());
        assert_eq!(
            iot443_subscribe(client, topic.as_ptr(), 1, None, ptr::null_mut(), 1000),
            IOT443_ERR_INVALID_ARGUMENT
        );
        assert!(last_error().contains("callback is NULL"), "{}", last_error());
        // The connection is still usable: an empty payload (NULL, length 0) goes out.
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), ptr::null(), 0, 1, 20_000),
            IOT443_OK,
            "{}",
            last_error()
        );
        assert_eq!(iot443_disconnect(client, 20_000), IOT443_OK, "{}", last_error());
        iot443_client_free(client);
    }
}

#[test]
fn calls_before_connect_say_not_connected() {
    let emulator = TestEmulator::start();
    let client = unconnected(&emulator);
    let topic = c("sdkTest/sub");
    // SAFETY: `client` is live.
    unsafe {
        assert_eq!(
            iot443_publish(client, topic.as_ptr(), ptr::null(), 0, 1, 1000),
            IOT443_ERR_CLOSED
        );
        assert!(last_error().contains("call iot443_connect first"), "{}", last_error());
        assert_eq!(
            iot443_subscribe(
                client,
                topic.as_ptr(),
                0,
                Some(ignore_message),
                ptr::null_mut(),
                1000
            ),
            IOT443_ERR_CLOSED
        );
        // Disconnecting a client that is not connected succeeds.
        assert_eq!(iot443_disconnect(client, 1000), IOT443_OK);
        iot443_client_free(client);
    }
}

#[test]
fn a_missing_configuration_file_is_a_configuration_error_naming_it() {
    let mut client = ptr::null_mut();
    let path = c("/nonexistent/iot443-test/iot443.toml");
    // SAFETY: valid strings and out pointer.
    let rc = unsafe { iot443_client_new(path.as_ptr(), &mut client) };
    assert_eq!(rc, IOT443_ERR_CONFIG);
    assert!(client.is_null());
    assert!(last_error().contains("/nonexistent/iot443-test/iot443.toml"), "{}", last_error());
    // A configuration without a key is refused when the client is made, naming what is missing.
    let (endpoint, client_id) = (c("localhost"), c("dev"));
    let mut config = ptr::null_mut();
    // SAFETY: valid strings and out pointers; `config` is freed once.
    unsafe {
        assert_eq!(
            iot443_config_new(endpoint.as_ptr(), client_id.as_ptr(), &mut config),
            IOT443_OK
        );
        assert_eq!(iot443_config_set_keep_alive(config, 5), IOT443_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("30 to 1200"), "{}", last_error());
        assert_eq!(iot443_client_new_with_config(config, &mut client), IOT443_ERR_CONFIG);
        assert!(last_error().contains("iot443_config_set_certificate"), "{}", last_error());
        iot443_config_free(config);
    }
}

#[test]
fn a_closed_port_fails_within_its_timeout_as_a_connection_error() {
    // A port nothing listens on: bound, then closed again.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let emulator = TestEmulator::start();
    let file = emulator.emulator.as_ref().unwrap().pki.config_path();
    let emulated = iot443_core::Config::load(&file).unwrap();
    let (endpoint, client_id) = (c("127.0.0.1"), c("closed-port"));
    let certificate = c(emulated.certificate.to_str().unwrap());
    let key = c(emulated.private_key.to_str().unwrap());
    let mut config = ptr::null_mut();
    let mut client = ptr::null_mut();
    // SAFETY: valid strings and out pointers; each pointer is freed once.
    unsafe {
        assert_eq!(
            iot443_config_new(endpoint.as_ptr(), client_id.as_ptr(), &mut config),
            IOT443_OK
        );
        assert_eq!(iot443_config_set_port(config, port), IOT443_OK);
        assert_eq!(iot443_config_set_certificate(config, certificate.as_ptr()), IOT443_OK);
        assert_eq!(iot443_config_set_private_key(config, key.as_ptr()), IOT443_OK);
        assert_eq!(
            iot443_client_new_with_config(config, &mut client),
            IOT443_OK,
            "{}",
            last_error()
        );
        iot443_config_free(config);
        assert_eq!(iot443_connect(client, 5_000), IOT443_ERR_CONNECTION, "{}", last_error());
        assert!(last_error().contains(&format!("127.0.0.1:{port}")), "{}", last_error());
        iot443_client_free(client);
    }
}

#[test]
fn version_and_error_strings_are_static_and_meaningful() {
    assert_eq!(library_str(iot443_version()), env!("CARGO_PKG_VERSION"));
    for code in [
        IOT443_OK,
        IOT443_ERR_CONFIG,
        IOT443_ERR_TLS,
        IOT443_ERR_CONNECTION,
        IOT443_ERR_PROTOCOL,
        IOT443_ERR_STORAGE,
        IOT443_ERR_REJECTED,
        IOT443_ERR_TIMEOUT,
        IOT443_ERR_CLOSED,
        IOT443_ERR_INVALID_ARGUMENT,
        IOT443_ERR_IN_CALLBACK,
        IOT443_ERR_WOULD_BLOCK,
        IOT443_ERR_INTERNAL,
    ] {
        let text = library_str(iot443_strerror(code));
        assert!(!text.is_empty() && text != "unknown error code", "{code}: {text}");
    }
    assert_eq!(library_str(iot443_strerror(-999)), "unknown error code");
}

#[test]
fn logging_is_set_up_once_and_a_bad_filter_says_what_to_use() {
    let (bad, good) = (c("iot443=[loud"), c("warn"));
    // SAFETY: NUL-terminated strings.
    unsafe {
        assert_eq!(iot443_log_to_stderr(bad.as_ptr()), IOT443_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("use e.g. \"warn\""), "{}", last_error());
        assert_eq!(iot443_log_to_stderr(good.as_ptr()), IOT443_OK, "{}", last_error());
        assert_eq!(iot443_log_to_stderr(ptr::null()), IOT443_ERR_INVALID_ARGUMENT);
        assert!(last_error().contains("already set up"), "{}", last_error());
    }
}
