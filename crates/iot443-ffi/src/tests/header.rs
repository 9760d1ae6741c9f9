//! The committed header is what cbindgen makes of this crate now.

use std::path::Path;

#[test]
fn committed_header_matches_a_fresh_one() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).unwrap();
    let mut fresh = Vec::new();
    cbindgen::generate_with_config(crate_dir, config).unwrap().write(&mut fresh);
    let fresh = String::from_utf8(fresh).unwrap();
    let committed_path = crate_dir.join("include/iot443.h");
    if std::env::var_os("IOT443_BLESS_HEADER").is_some() {
        std::fs::write(&committed_path, &fresh).unwrap();
    }
    let committed = std::fs::read_to_string(&committed_path).unwrap_or_default();
    assert!(
        committed == fresh,
        "{} differs from what cbindgen generates from the crate now; regenerate it with \
         `IOT443_BLESS_HEADER=1 cargo test -p iot443-ffi committed_header` and commit it",
        committed_path.display()
    );
}

#[test]
fn the_pkg_config_file_has_the_crate_version() {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let pc = std::fs::read_to_string(crate_dir.join("iot443.pc")).unwrap();
    let version = format!("Version: {}", env!("CARGO_PKG_VERSION"));
    assert!(pc.lines().any(|line| line == version), "iot443.pc lacks {version:?}");
}
