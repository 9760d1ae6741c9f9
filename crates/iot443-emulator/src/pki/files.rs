//! Files of the PKI folder: atomic writes with the right modes, reads with context, and the
//! device configuration `iot443.toml`.

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::PkiError;

/// Who may read a written file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Access {
    /// Certificates and the configuration: 0644.
    Public,
    /// Private keys: 0600.
    Private,
}

/// Creates `dir` (and its parents) if needed; a folder created here gets mode 0700, because it
/// will hold the CA's private key.
pub(super) fn ensure_dir(dir: &Path) -> Result<(), PkiError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt as _;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|source| PkiError::CreateDir { path: dir.to_owned(), source })
}

/// Writes `contents` to `path` atomically (temporary file in the same folder, then rename), so
/// that a crash never leaves a half-written key or certificate behind.
pub(super) fn write_atomic(path: &Path, contents: &[u8], access: Access) -> Result<(), PkiError> {
    let write_err = |source| PkiError::Write { path: path.to_owned(), source };
    let tmp = temporary_path(path);
    // A leftover from a crash may carry other permissions: start from scratch.
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(write_err(e)),
    }
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(mode(access));
    }
    let result = options.open(&tmp).and_then(|mut file| {
        // The umask may have removed bits from the mode given at creation: set it exactly.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            file.set_permissions(fs::Permissions::from_mode(mode(access)))?;
        }
        file.write_all(contents)?;
        file.sync_all()
    });
    let result = result.and_then(|()| fs::rename(&tmp, path));
    if let Err(e) = result {
        // Best effort: the temporary file is useless now.
        let _ = fs::remove_file(&tmp);
        return Err(write_err(e));
    }
    Ok(())
}

/// Reads a UTF-8 file (PEM or TOML).
pub(super) fn read_text(path: &Path) -> Result<String, PkiError> {
    fs::read_to_string(path).map_err(|source| PkiError::Read { path: path.to_owned(), source })
}

#[cfg(unix)]
fn mode(access: Access) -> u32 {
    match access {
        Access::Public => 0o644,
        Access::Private => 0o600,
    }
}

fn temporary_path(path: &Path) -> PathBuf {
    let mut name = std::ffi::OsString::from(".");
    name.push(path.file_name().unwrap_or_default());
    name.push(".tmp");
    path.with_file_name(name)
}

/// The device configuration written next to the certificates at first start.
pub(super) fn initial_config(port: u16) -> String {
    format!(
        "# Written by the iot443 emulator at its first start in this folder: the configuration of\n\
         # the device \"device\", pointing at the emulator. Paths are relative to this file.\n\
         endpoint    = \"localhost\"\n\
         port        = {port}\n\
         # On the emulator's 443-style listener, whatever its port number, MQTT with the device\n\
         # certificate needs ALPN x-amzn-mqtt-ca, as IoT Core on 443 (where clients offer it by\n\
         # themselves); without ALPN that listener serves MQTT over WebSocket (SigV4).\n\
         alpn        = \"x-amzn-mqtt-ca\"\n\
         client_id   = \"device\"\n\
         thing_name  = \"device\"\n\
         root_ca     = \"ca.pem\"\n\
         certificate = \"device.crt\"\n\
         private_key = \"device.key\"\n"
    )
}

/// Returns `config` with its top-level `port = ...` line set to `port` (appended when there is
/// none); the rest of the file, comments included, is kept as it is.
pub(super) fn config_with_port(config: &str, port: u16) -> String {
    let mut out = set_top_level(config, "port", &format!("port        = {port}"));
    // Files written before the `alpn` line existed get it, so that they keep working on a
    // port other than 443.
    if !out.lines().any(|line| is_key_line(line.trim_start(), "alpn")) {
        out = format!("alpn = \"x-amzn-mqtt-ca\"\n{out}");
    }
    out
}

/// Returns `config` with its top-level `region = "..."` line set to `region` (added when there
/// is none); the rest of the file is kept as it is.
pub(super) fn config_with_region(config: &str, region: &str) -> String {
    set_top_level(config, "region", &format!("region      = {}", toml_string(region)))
}

/// Returns `config` with a top-level `aws_credentials = "aws-credentials"` line (the
/// emulator's credentials file, relative to the configuration) when it has no such line; one
/// that is there, maybe pointing elsewhere, is kept.
pub(super) fn config_with_credentials(config: &str, file: &str) -> String {
    if config.lines().any(|line| is_key_line(line.trim_start(), "aws_credentials")) {
        return config.to_owned();
    }
    set_top_level(config, "aws_credentials", &format!("aws_credentials = {}", toml_string(file)))
}

/// A TOML basic string.
fn toml_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Replaces the first top-level line setting `key` by `line`, or adds `line` (at the end, or
/// at the top when the file has tables: top-level keys must come before the first one).
fn set_top_level(config: &str, key: &str, line: &str) -> String {
    let mut out = String::with_capacity(config.len() + line.len() + 1);
    let mut replaced = false;
    let mut in_table = false;
    for current in config.lines() {
        let trimmed = current.trim_start();
        if trimmed.starts_with('[') {
            in_table = true;
        }
        if !replaced && !in_table && is_key_line(trimmed, key) {
            out.push_str(line);
            replaced = true;
        } else {
            out.push_str(current);
        }
        out.push('\n');
    }
    if !replaced {
        if in_table {
            let compact: String = line.split_whitespace().collect::<Vec<_>>().join(" ");
            out = format!("{compact}\n{out}");
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    out
}

fn is_key_line(trimmed: &str, key: &str) -> bool {
    trimmed.strip_prefix(key).is_some_and(|rest| rest.trim_start().starts_with('='))
}

#[cfg(test)]
fn is_port_line(trimmed: &str) -> bool {
    is_key_line(trimmed, "port")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_line_is_replaced_and_comments_kept() {
        let config = "# hello\nendpoint = \"localhost\"\nport = 443 # comment\nalpn = \"a\"\n";
        assert_eq!(
            config_with_port(config, 8443),
            "# hello\nendpoint = \"localhost\"\nport        = 8443\nalpn = \"a\"\n"
        );
    }

    #[test]
    fn port_line_is_added_when_missing() {
        assert_eq!(config_with_port("alpn = \"a\"\n", 1), "alpn = \"a\"\nport        = 1\n");
        assert_eq!(
            config_with_port("alpn = \"a\"\n[t]\nport = 2\n", 3),
            "port = 3\nalpn = \"a\"\n[t]\nport = 2\n"
        );
    }

    #[test]
    fn alpn_line_is_added_to_files_written_without_it() {
        assert_eq!(
            config_with_port("port = 443\n", 8443),
            "alpn = \"x-amzn-mqtt-ca\"\nport        = 8443\n"
        );
        let initial = initial_config(8443);
        assert_eq!(config_with_port(&initial, 8443), initial);
    }

    #[test]
    fn region_line_is_set_or_added() {
        assert_eq!(
            config_with_region("port = 1\nregion = \"x\"\n", "eu-west-1"),
            "port = 1\nregion      = \"eu-west-1\"\n"
        );
        assert_eq!(config_with_region("[t]\n", "a\"b"), "region = \"a\\\"b\"\n[t]\n");
    }

    #[test]
    fn credentials_line_is_added_once_and_never_replaced() {
        let added = config_with_credentials("port = 1\n", "aws-credentials");
        assert_eq!(added, "port = 1\naws_credentials = \"aws-credentials\"\n");
        assert_eq!(config_with_credentials(&added, "aws-credentials"), added);
        let mine = "aws_credentials = \"/elsewhere\"\n";
        assert_eq!(config_with_credentials(mine, "aws-credentials"), mine);
    }

    #[test]
    fn port_prefix_of_another_key_is_not_a_port_line() {
        assert!(!is_port_line("portal = 1"));
        assert!(is_port_line("port=1"));
    }
}
