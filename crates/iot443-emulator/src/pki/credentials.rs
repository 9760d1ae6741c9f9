//! The AWS access key the emulator creates for SigV4 (`aws-credentials`, the shared
//! credentials file format, profile `default`, mode 0600), and the `region` line of
//! `iot443.toml`.

use std::path::Path;

use ring::rand::{SecureRandom as _, SystemRandom};

use super::PkiError;
use super::files::{self, Access};
use crate::sigv4::AwsCredentials;

/// The credentials file in the emulator's folder.
pub const CREDENTIALS_FILE: &str = "aws-credentials";

/// The region of an emulator that is not told another one.
pub const DEFAULT_REGION: &str = "us-east-1";

const WHAT: &str = "an AWS shared credentials file with aws_access_key_id and \
                    aws_secret_access_key in the [default] profile";

/// Loads `<dir>/aws-credentials`, or creates it with a new random key pair.
pub(super) fn load_or_create(dir: &Path) -> Result<AwsCredentials, PkiError> {
    let path = dir.join(CREDENTIALS_FILE);
    if path.exists() {
        let text = files::read_text(&path)?;
        return parse(&text).map_err(|detail| PkiError::Invalid { path, what: WHAT, detail });
    }
    let credentials = generate()?;
    files::write_atomic(&path, render(&credentials).as_bytes(), Access::Private)?;
    tracing::info!(path = %path.display(), access_key_id = %credentials.access_key_id,
        "created AWS credentials for SigV4");
    Ok(credentials)
}

fn generate() -> Result<AwsCredentials, PkiError> {
    const KEY_ID_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    const SECRET_ALPHABET: &[u8] =
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut random = [0u8; 56];
    SystemRandom::new().fill(&mut random).map_err(|_| PkiError::KeyGeneration {
        what: "the AWS access key of aws-credentials".into(),
        detail: "no random bytes".into(),
    })?;
    let (id_bytes, secret_bytes) = random.split_at(16);
    let pick = |alphabet: &[u8], byte: &u8| {
        char::from(alphabet.get(usize::from(*byte) % alphabet.len()).copied().unwrap_or(b'A'))
    };
    let mut access_key_id = String::from("AKIA");
    access_key_id.extend(id_bytes.iter().map(|b| pick(KEY_ID_ALPHABET, b)));
    let secret_access_key = secret_bytes.iter().map(|b| pick(SECRET_ALPHABET, b)).collect();
    Ok(AwsCredentials { access_key_id, secret_access_key })
}

fn render(credentials: &AwsCredentials) -> String {
    format!(
        "# Written by the iot443 emulator at its first start in this folder: the access key its\n\
         # WebSocket listener accepts for SigV4 (GET /mqtt). Use it with\n\
         # AWS_SHARED_CREDENTIALS_FILE=<this file>, or copy the profile into ~/.aws/credentials.\n\
         [default]\n\
         aws_access_key_id = {}\n\
         aws_secret_access_key = {}\n",
        credentials.access_key_id, credentials.secret_access_key
    )
}

/// Reads the `[default]` profile. The error text never holds the secret.
fn parse(text: &str) -> Result<AwsCredentials, String> {
    let mut profile: Option<&str> = None;
    let mut saw_default = false;
    let mut access_key_id = None;
    let mut secret_access_key = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|rest| rest.strip_suffix(']')) {
            profile = Some(name.trim());
            saw_default |= profile == Some("default");
            continue;
        }
        if profile != Some("default") {
            continue;
        }
        let Some((key, value)) = line.split_once('=') else {
            return Err("a line of the [default] profile is not `key = value`".into());
        };
        match key.trim() {
            "aws_access_key_id" => access_key_id = Some(value.trim().to_owned()),
            "aws_secret_access_key" => secret_access_key = Some(value.trim().to_owned()),
            _ => {}
        }
    }
    if !saw_default {
        return Err("there is no [default] profile".into());
    }
    match (access_key_id, secret_access_key) {
        (Some(access_key_id), Some(secret_access_key))
            if !access_key_id.is_empty() && !secret_access_key.is_empty() =>
        {
            Ok(AwsCredentials { access_key_id, secret_access_key })
        }
        _ => Err("aws_access_key_id or aws_secret_access_key is missing or empty".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_aws_shapes_and_round_trip() {
        let credentials = generate().unwrap_or_else(|_| AwsCredentials {
            access_key_id: String::new(),
            secret_access_key: String::new(),
        });
        assert_eq!(credentials.access_key_id.len(), 20);
        assert!(credentials.access_key_id.starts_with("AKIA"));
        assert_eq!(credentials.secret_access_key.len(), 40);
        assert_eq!(parse(&render(&credentials)), Ok(credentials));
    }

    #[test]
    fn other_profiles_are_ignored_and_problems_named() {
        let text = "[other]\naws_access_key_id = X\n[default]\naws_access_key_id=A\n\
                    aws_secret_access_key = S\n";
        let parsed = parse(text).map(|c| (c.access_key_id, c.secret_access_key));
        assert_eq!(parsed, Ok(("A".to_owned(), "S".to_owned())));
        assert_eq!(parse("x = 1\n"), Err("there is no [default] profile".into()));
        let missing = parse("[default]\naws_secret_access_key = SECRET\n").unwrap_err();
        assert!(missing.contains("missing") && !missing.contains("SECRET"), "{missing}");
    }
}
