#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, clippy::indexing_slicing)]
//! The C API from C, built by gcc and run against `iot443 emulator`:
//! - `make` in `crates/iot443-ffi/examples` builds the seed's sample on libiot443, and it
//!   echoes its messages (linked with `libiot443.so`, and with `libiot443.a`);
//! - the C test program (`crates/iot443-ffi/tests/c/api_test.c`), compiled with
//!   `-Wall -Wextra -Werror` against the committed header and linked both ways, passes, and
//!   passes under valgrind too (no invalid access, nothing definitely lost).
//!
//! The library is the one `cargo build -p iot443-ffi` made (`.ci/interop` builds it first):
//! `IOT443_FFI_LIB_DIR`, else the folder of the `iot443` binary.

use iot443_interop::paths::{iot443_bin, peer, workspace_dir};
use iot443_interop::{EmulatorProcess, Finished, Proc};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long a C program may run (valgrind makes everything about 30 times slower).
const RUN_LIMIT: Duration = Duration::from_secs(240);

fn ffi_dir() -> PathBuf {
    workspace_dir().join("crates/iot443-ffi")
}

/// The folder with `libiot443.so` and `libiot443.a`.
fn lib_dir() -> PathBuf {
    let dir = match std::env::var_os("IOT443_FFI_LIB_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => PathBuf::from(dir),
        None => iot443_bin().parent().unwrap().to_path_buf(),
    };
    for lib in ["libiot443.so", "libiot443.a"] {
        assert!(
            dir.join(lib).is_file(),
            "{lib} is missing in {}: run `cargo build -p iot443-ffi` first (or set \
             IOT443_FFI_LIB_DIR)",
            dir.display()
        );
    }
    dir
}

fn succeeded(name: &str, finished: &Finished) {
    assert!(
        finished.status.success(),
        "{name} failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
        finished.status,
        finished.stdout_text(),
        finished.stderr_text()
    );
}

/// A free port of 127.0.0.1 that nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Compiles the C test program into `out_dir`, linked with the shared or the static library.
fn compile_api_test(out_dir: &Path, shared: bool) -> PathBuf {
    let lib = lib_dir();
    let output = out_dir.join(if shared { "api_test_shared" } else { "api_test_static" });
    let mut gcc = Command::new(peer("gcc"));
    gcc.args(["-std=c11", "-D_POSIX_C_SOURCE=200809L", "-Wall", "-Wextra", "-Werror", "-g"])
        .arg("-I")
        .arg(ffi_dir().join("include"))
        .arg("-o")
        .arg(&output)
        .arg(ffi_dir().join("tests/c/api_test.c"));
    if shared {
        gcc.arg("-L").arg(&lib).arg("-liot443").arg(format!("-Wl,-rpath,{}", lib.display()));
        gcc.arg("-lpthread");
    } else {
        gcc.arg(lib.join("libiot443.a"));
        gcc.args(["-lgcc_s", "-lutil", "-lrt", "-lpthread", "-lm", "-ldl", "-lc"]);
    }
    succeeded("gcc api_test.c", &Proc::run("gcc", gcc, RUN_LIMIT));
    output
}

fn run_api_test(program: &Path, emulator: &EmulatorProcess, valgrind: bool) -> Finished {
    let config = emulator.dir.join("iot443.toml");
    let mut command = if valgrind {
        let mut command = Command::new(peer("valgrind"));
        command
            .args(["-q", "--error-exitcode=99", "--leak-check=full"])
            .args(["--errors-for-leak-kinds=definite", "--show-leak-kinds=definite"])
            .arg("--num-callers=50")
            .arg(format!("--suppressions={}", ffi_dir().join("tests/c/valgrind.supp").display()))
            .arg(program);
        command
    } else {
        Command::new(program)
    };
    command.arg(&config).arg(closed_port().to_string());
    command.env_remove("IOT443_PORT");
    Proc::run(program.display().to_string(), command, RUN_LIMIT)
}

fn check_api_test(finished: &Finished, name: &str) {
    succeeded(name, finished);
    let stdout = finished.stdout_text();
    assert!(stdout.contains(" checks, 0 failed"), "{name}:\n{stdout}");
    assert!(!stdout.contains("not ok"), "{name}:\n{stdout}");
    let checks: usize = stdout.lines().filter(|line| line.starts_with("ok ")).count();
    assert!(checks >= 50, "{name} ran only {checks} checks:\n{stdout}");
}

#[test]
#[ignore = "needs gcc, make, pkg-config and libiot443 (cargo build -p iot443-ffi)"]
fn make_builds_the_sample_and_it_echoes_its_messages_against_iot443_emulator() {
    let lib = lib_dir();
    let profile_dir = lib.file_name().unwrap().to_str().unwrap().to_owned();
    let target_dir = lib.parent().unwrap();
    let examples = ffi_dir().join("examples");
    let mut make = Command::new(peer("make"));
    make.arg("-C").arg(&examples).arg("NO_CARGO=1").arg(format!("PROFILE={profile_dir}"));
    make.arg(format!("TARGET_DIR={}", target_dir.display())).args(["all", "static"]);
    make.arg("-B");
    succeeded("make", &Proc::run("make", make, RUN_LIMIT));

    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(dir.path());
    let config = emulator.dir.join("iot443.toml");
    for program in ["subscribe_publish_sample", "subscribe_publish_sample_static"] {
        let mut sample = Command::new(examples.join(program));
        sample.arg("-c").arg(&config).args(["-x", "10", "-i", "0"]);
        let finished = Proc::run(program, sample, RUN_LIMIT);
        succeeded(program, &finished);
        let stdout = finished.stdout_text();
        for n in 0..10 {
            let line = format!("sdkTest/sub\thello from SDK QOS{} : {n}", n % 2);
            assert!(stdout.lines().any(|l| l == line), "{program}: no {line:?} in\n{stdout}");
        }
        assert_eq!(stdout.matches("Subscribe callback").count(), 10, "{stdout}");
        let stderr = finished.stderr_text();
        assert!(stderr.contains("alpn=x-amzn-mqtt-ca"), "{stderr}");
        assert!(stderr.contains("10 of 10 messages came back"), "{stderr}");
    }

    // Configured by the C SDK's own aws_iot_config.h (certificates in its certs/ folder), with
    // IOT443_ALPN on top: the emulator's port is not 443, where ALPN would be offered by itself.
    let sdk = tempfile::tempdir().unwrap();
    std::fs::create_dir(sdk.path().join("certs")).unwrap();
    for file in ["ca.pem", "device.crt", "device.key"] {
        std::fs::copy(emulator.dir.join(file), sdk.path().join("certs").join(file)).unwrap();
    }
    let header = format!(
        "#define AWS_IOT_MQTT_HOST \"localhost\"\n#define AWS_IOT_MQTT_PORT {}\n\
         #define AWS_IOT_MQTT_CLIENT_ID \"c-sdk-header\"\n#define AWS_IOT_MY_THING_NAME \"c-sdk-header\"\n\
         #define AWS_IOT_ROOT_CA_FILENAME \"ca.pem\"\n#define AWS_IOT_CERTIFICATE_FILENAME \"device.crt\"\n\
         #define AWS_IOT_PRIVATE_KEY_FILENAME \"device.key\"\n",
        emulator.alpn_addr.port()
    );
    let header_path = sdk.path().join("aws_iot_config.h");
    std::fs::write(&header_path, header).unwrap();
    let mut sample = Command::new(examples.join("subscribe_publish_sample"));
    sample.arg("-c").arg(&header_path).args(["-x", "4", "-i", "0"]);
    sample.env("IOT443_ALPN", "x-amzn-mqtt-ca");
    let finished = Proc::run("subscribe_publish_sample -c aws_iot_config.h", sample, RUN_LIMIT);
    succeeded("subscribe_publish_sample -c aws_iot_config.h", &finished);
    assert!(
        finished.stderr_text().contains("4 of 4 messages came back"),
        "{}",
        finished.stderr_text()
    );

    // The smallest program: one QoS 1 message, acknowledged.
    let mut one = Command::new(examples.join("publish_one_static"));
    one.arg(&config).args(["sdkTest/sub", "hello"]);
    succeeded("publish_one_static", &Proc::run("publish_one_static", one, RUN_LIMIT));
}

#[test]
#[ignore = "needs gcc and libiot443 (cargo build -p iot443-ffi)"]
fn the_c_test_program_passes_linked_shared_and_static() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(dir.path());
    for shared in [true, false] {
        let program = compile_api_test(out.path(), shared);
        let finished = run_api_test(&program, &emulator, false);
        check_api_test(&finished, &program.display().to_string());
    }
}

#[test]
#[ignore = "needs gcc, valgrind and libiot443 (cargo build -p iot443-ffi)"]
fn the_c_test_program_passes_under_valgrind() {
    let out = tempfile::tempdir().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let emulator = EmulatorProcess::start(dir.path());
    let program = compile_api_test(out.path(), true);
    let finished = run_api_test(&program, &emulator, true);
    check_api_test(&finished, "api_test under valgrind");
    assert!(
        !finished.stderr_text().contains("definitely lost"),
        "valgrind found a leak:\n{}",
        finished.stderr_text()
    );
}
