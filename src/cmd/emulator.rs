//! `iot443 emulator`: the local AWS IoT Core endpoint as a process.

use crate::args::{DeviceKeyArg, EmulatorAction, EmulatorArgs, MissingAlpnArg};
use crate::exit::Failure;
use iot443_emulator::broker::Policy;
use iot443_emulator::pki::{DeviceKeyKind, Pki, PkiOptions};
use iot443_emulator::server::{Emulator, EmulatorOptions};
use iot443_emulator::tls::MissingAlpn;

pub async fn run(args: EmulatorArgs) -> Result<(), Failure> {
    let args = match args.action {
        Some(EmulatorAction::Shadow(shadow)) => return super::emulator_shadow::run(shadow).await,
        _ => args,
    };
    if let Some(EmulatorAction::IssueDevice { name, dir, device_key }) = &args.action {
        let pki = Pki::load_or_create(
            dir,
            &PkiOptions { device_key: key_kind(*device_key), ..PkiOptions::default() },
        )
        .map_err(|error| Failure::usage(error.to_string()))?;
        let device = pki
            .issue_device(name, key_kind(*device_key))
            .map_err(|error| Failure::usage(error.to_string()))?;
        println!("{}", device.certificate_path.display());
        println!("{}", device.private_key_path.display());
        return Ok(());
    }
    // Each connection is an open file: serve as many as the hard limit allows.
    super::bench::raise_open_files_limit();
    let mut options = EmulatorOptions::new(&args.dir);
    options.bind = args.bind;
    options.alpn_port = args.alpn_port;
    options.mqtts_port = Some(args.mqtts_port);
    options.https_port = Some(args.https_port);
    options.region = args.region.clone();
    options.hostnames = args.hostnames.clone();
    options.strict_sni = args.strict_sni;
    options.missing_alpn = match args.missing_alpn {
        MissingAlpnArg::Http => MissingAlpn::Http,
        MissingAlpnArg::Alert => MissingAlpn::Alert,
        MissingAlpnArg::NoConnack => MissingAlpn::NoConnAck,
    };
    options.pki.device_key = key_kind(args.device_key);
    options.broker.strict_rates = args.strict_rates;
    if let Some(path) = &args.policy {
        let text = std::fs::read_to_string(path).map_err(|error| {
            Failure::usage(format!("cannot read policy file {}: {error}", path.display()))
        })?;
        let policy = Policy::from_json(&text).map_err(|error| {
            Failure::usage(format!("invalid policy file {}: {error}", path.display()))
        })?;
        options.broker.policy = Some(policy);
    }
    let emulator = Emulator::start(options).await?;
    // Tests and `demo` wait for exactly these lines. One write for all of them: a reader that
    // stops after the line it wanted (and closes the pipe) gets them all at once, and a closed
    // stdout is no reason to stop serving.
    let mut listening = format!("iot443-emulator listening mqtt-alpn {}\n", emulator.alpn_addr);
    if let Some(addr) = emulator.mqtts_addr {
        listening.push_str(&format!("iot443-emulator listening mqtts {addr}\n"));
    }
    if let Some(addr) = emulator.https_addr {
        listening.push_str(&format!("iot443-emulator listening https {addr}\n"));
    }
    {
        use std::io::Write as _;
        let mut stdout = std::io::stdout().lock();
        let _ = stdout.write_all(listening.as_bytes()).and_then(|()| stdout.flush());
    }
    eprintln!("client configuration: {}", emulator.pki.config_path().display());
    eprintln!(
        "SigV4 credentials (region {}): {}",
        emulator.region(),
        emulator.pki.credentials_path().display()
    );
    wait_for_signal().await;
    emulator.stop().await;
    Ok(())
}

fn key_kind(arg: DeviceKeyArg) -> DeviceKeyKind {
    match arg {
        DeviceKeyArg::Ec => DeviceKeyKind::EcP256,
        DeviceKeyArg::Rsa => DeviceKeyKind::Rsa2048,
    }
}

/// SIGINT or SIGTERM.
async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut terminate) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = terminate.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
