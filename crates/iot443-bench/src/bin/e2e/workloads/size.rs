//! Workload 5: the size of the binaries, as built and stripped.

use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

use iot443_interop::paths;

use crate::stats::MIB;
use crate::tools::Tools;

/// Measures the sizes and returns the table.
pub(crate) fn run(tools: &Tools) -> String {
    let root = paths::workspace_dir();
    let mut out = String::from(
        "### 5. Size (stripped with `strip` on a copy)\n\n| binary | size | stripped |\n|---|---|---|\n",
    );
    let mut row = |name: &str, path: &Path| {
        let Ok(meta) = std::fs::metadata(path) else {
            let _ = writeln!(out, "| {name} | missing: {} | — |", path.display());
            return;
        };
        let copy = std::env::temp_dir().join(format!("iot443-e2e-strip-{}", std::process::id()));
        let stripped = std::fs::copy(path, &copy)
            .ok()
            .and_then(|_| Command::new("strip").arg(&copy).status().ok())
            .filter(|s| s.success())
            .and_then(|_| std::fs::metadata(&copy).ok())
            .map(|m| format!("{:.2} MiB ({} bytes)", m.len() as f64 / MIB, m.len()))
            .unwrap_or_else(|| "?".to_owned());
        let _ = std::fs::remove_file(&copy);
        let _ = writeln!(out, "| {name} | {:.2} MiB | {stripped} |", meta.len() as f64 / MIB);
    };
    row("`iot443` (CLI, release)", &tools.iot443);
    row(
        "`iot443` (CLI, every feature, `release-small`)",
        &root.join("target/release-small/iot443"),
    );
    row(
        "`examples/publish.rs` (every feature, release)",
        &root.join("target/release/examples/publish"),
    );
    row(
        "`examples/publish.rs` (every feature, `release-small`)",
        &root.join("target/release-small/examples/publish"),
    );
    // The device build: no cargo feature (no outbox/SQLite, doctor, proxy, WebSocket, shadow,
    // HTTPS or bundled roots), in a target directory of its own (`run.sh` builds it).
    for profile in ["release", "release-small"] {
        row(
            &format!("`examples/publish.rs` (`--no-default-features`, {profile})"),
            &root.join(format!("target/device/{profile}/examples/publish")),
        );
    }
    if let Some(lib_dir) = tools.iot443.parent() {
        row("`libiot443.so` (the C API, release)", &lib_dir.join("libiot443.so"));
    }
    if let Some(program) = &tools.publish_one_static {
        row("`publish_one` (C, publishes one message, `libiot443.a` linked in)", program);
    }
    row("`mosquitto_pub` (Debian, dynamically linked)", Path::new("/usr/bin/mosquitto_pub"));
    for lib in ["libmosquitto.so.1", "libssl.so.3", "libcrypto.so.3"] {
        let path = Path::new("/usr/lib/x86_64-linux-gnu").join(lib);
        if path.exists() {
            row(&format!("`{lib}` (shared, used by mosquitto_pub)"), &path);
        }
    }
    out.push('\n');
    out
}
