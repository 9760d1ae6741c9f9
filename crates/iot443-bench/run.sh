#!/usr/bin/env bash
# The end-to-end bench of iot443 against its peers (see src/bin/e2e/ and BENCHMARKS.md).
# Installs the peers when missing, builds what is measured, then runs the bench; extra
# arguments go to it, e.g. `crates/iot443-bench/run.sh --rounds 5 --messages 20000`.
# Loopback only; every child is bounded in time; mosquitto and haproxy are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."

.ci/install-peers >/dev/null
if ! [ -f /usr/include/mosquitto.h ]; then
    echo "installing libmosquitto-dev for the libmosquitto C peer"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends libmosquitto-dev >/dev/null
fi
if ! command -v strace >/dev/null 2>&1; then
    echo "installing strace for the costs workload (--only costs)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends strace >/dev/null
fi
cargo build --release --bin iot443
cargo build --release -p iot443-ffi
if [ -f crates/iot443/examples/publish.rs ]; then
    cargo build --release -p iot443 --example publish
fi
# The size workload's builds for a device: the release-small profile, and no cargo feature (in a
# target directory of its own, so that the benchmarked binaries keep every feature). Several
# minutes of building, so only when the size workload runs (the default, or `--only …size…`).
wants_size=true
previous=
for arg in "$@"; do
    if [ "$previous" = --only ]; then
        case ",$arg," in *,size,*) wants_size=true ;; *) wants_size=false ;; esac
    fi
    previous=$arg
done
if $wants_size; then
    cargo build --profile release-small --bin iot443
    cargo build --profile release-small -p iot443 --example publish
    for profile in release release-small; do
        cargo build --profile "$profile" -p iot443 --example publish --no-default-features --target-dir target/device
    done
fi
cargo build --release -p iot443-bench --bin e2e
exec target/release/e2e "$@"
