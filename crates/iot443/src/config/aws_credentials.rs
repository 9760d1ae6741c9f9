//! AWS credentials and the region for the WebSocket road's SigV4 signature, found the way AWS
//! tools find them, without `aws-config` (which brings an HTTP client stack for IMDS, SSO and
//! STS).
//!
//! Credentials, first found wins:
//! 1. the configuration's `aws_credentials` file, when set: its `[default]` profile, *instead of*
//!    everything below (the local emulator writes one);
//! 2. `AWS_ACCESS_KEY_ID` + `AWS_SECRET_ACCESS_KEY` (+ `AWS_SESSION_TOKEN`);
//! 3. the profile `AWS_PROFILE` (default `default`) in the shared credentials file
//!    (`AWS_SHARED_CREDENTIALS_FILE`, default `~/.aws/credentials`), then in the config file
//!    (`AWS_CONFIG_FILE`, default `~/.aws/config`, sections `[profile NAME]` and `[default]`).
//!
//! Region, first found wins: the configuration's `region`, the endpoint's host name
//! (`<prefix>.iot.<region>.amazonaws.com[.cn]`), `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile's
//! `region` in the config file.
//!
//! [`resolve`] reads files synchronously: call it on the blocking pool, at every connect (the
//! credentials may rotate). Secrets never appear in its errors or in `Debug` output.

use super::Config;
use aws_credential_types::Credentials;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What the client signs the WebSocket upgrade with.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct SigningIdentity {
    /// The access key, secret and optional session token (`Debug` redacts the secret).
    pub credentials: Credentials,
    /// The region in the credential scope, e.g. `eu-west-1`.
    pub region: String,
    /// Where the credentials came from, for logs: `environment`, `profile default in …`.
    pub credentials_from: String,
    /// Where the region came from, for logs.
    pub region_from: String,
}

/// Why no credentials or region could be found. Each message names what is missing and where
/// it was looked for; none holds a secret.
#[non_exhaustive]
#[derive(Debug, Clone, thiserror::Error)]
pub enum AwsCredentialsError {
    /// One of the two environment variables is set, the other is not.
    #[error(
        "{set} is set but {missing} is not: set both (and AWS_SESSION_TOKEN for temporary \
         credentials), or unset {set} to use the shared credentials file"
    )]
    PartialEnvironment {
        /// The variable that is set.
        set: &'static str,
        /// The variable that is missing.
        missing: &'static str,
    },
    /// A profile holds one key but not the other.
    #[error(
        "profile `{profile}` in {} has no {missing}; add it (`aws configure --profile {profile}`)",
        .file.display()
    )]
    ProfileIncomplete {
        /// The profile.
        profile: String,
        /// The file holding it.
        file: PathBuf,
        /// The key that is missing: `aws_access_key_id` or `aws_secret_access_key`.
        missing: &'static str,
    },
    /// A profile gets its credentials in a way this client does not follow (a role, SSO, a
    /// process).
    #[error(
        "profile `{profile}` in {} uses {uses}, which iot443 does not resolve: export the \
         credentials into the environment (`eval \"$(aws configure export-credentials --profile \
         {profile} --format env)\"`) or give the profile aws_access_key_id and \
         aws_secret_access_key",
        .file.display()
    )]
    ProfileUnsupported {
        /// The profile.
        profile: String,
        /// The file holding it.
        file: PathBuf,
        /// The key that names the other way, e.g. `role_arn`, `sso_session`.
        uses: &'static str,
    },
    /// `AWS_PROFILE` names a profile that no file holds.
    #[error(
        "profile `{profile}` (AWS_PROFILE) is in none of {}: check the name, or create it with \
         `aws configure --profile {profile}`",
        list(.files)
    )]
    ProfileNotFound {
        /// The profile.
        profile: String,
        /// The files looked in.
        files: Vec<PathBuf>,
    },
    /// No credentials anywhere.
    #[error(
        "no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or put a profile \
         `{profile}` with aws_access_key_id and aws_secret_access_key in {} (`aws configure`), or \
         set `aws_credentials` in the configuration (--aws-credentials FILE)",
        list(.files)
    )]
    NotFound {
        /// The profile looked for.
        profile: String,
        /// The files looked in.
        files: Vec<PathBuf>,
    },
    /// A credentials file exists but cannot be read (or, for `aws_credentials`, does not exist).
    #[error(
        "cannot read AWS credentials file {}: {source}; check the path and its permissions",
        .path.display()
    )]
    Io {
        /// The file.
        path: PathBuf,
        /// The operating system's error.
        source: Arc<std::io::Error>,
    },
    /// The `aws_credentials` file has no `[default]` profile with both keys.
    #[error(
        "AWS credentials file {} (aws_credentials) has no profile `default` with \
         aws_access_key_id and aws_secret_access_key",
        .path.display()
    )]
    NoDefaultProfile {
        /// The file.
        path: PathBuf,
    },
    /// No region to sign for.
    #[error(
        "no AWS region to sign for with endpoint {endpoint}: set `region` in the configuration \
         (IOT443_REGION, --region), use the endpoint's full name \
         <prefix>.iot.<region>.amazonaws.com, set AWS_REGION or AWS_DEFAULT_REGION, or put \
         `region` in profile `{profile}` of {}",
        .config_file.display()
    )]
    NoRegion {
        /// The configured endpoint.
        endpoint: String,
        /// The profile whose `region` was looked for.
        profile: String,
        /// The AWS config file looked in.
        config_file: PathBuf,
    },
}

fn list(files: &[PathBuf]) -> String {
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    names.join(" and ")
}

/// Finds the credentials and the region for `config`, with `env` as the environment (usually
/// `|name| std::env::var(name).ok()`; tests pass their own). Reads files: run it on the
/// blocking pool. A variable set to the empty string counts as unset.
pub fn resolve(
    config: &Config,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<SigningIdentity, AwsCredentialsError> {
    let get = |name: &str| env(name).filter(|v| !v.is_empty());
    let home = get("HOME").or_else(|| get("USERPROFILE")).map(PathBuf::from);
    let expand = |value: String| -> PathBuf {
        match (value.strip_prefix("~/"), &home) {
            (Some(rest), Some(home)) => home.join(rest),
            _ => PathBuf::from(value),
        }
    };
    let default_file = |name: &str| match &home {
        Some(home) => home.join(".aws").join(name),
        None => PathBuf::from("~/.aws").join(name),
    };
    let credentials_file = get("AWS_SHARED_CREDENTIALS_FILE")
        .map(expand)
        .unwrap_or_else(|| default_file("credentials"));
    let config_file = get("AWS_CONFIG_FILE").map(&expand).unwrap_or_else(|| default_file("config"));
    let explicit_profile = get("AWS_PROFILE");
    let profile = explicit_profile.clone().unwrap_or_else(|| "default".to_owned());

    let (credentials, credentials_from, file_region) = match &config.aws_credentials {
        Some(path) => {
            let text = read(path, true)?.unwrap_or_default();
            let section = Ini::parse(&text)
                .section("default")
                .ok_or_else(|| AwsCredentialsError::NoDefaultProfile { path: path.clone() })?;
            let region = section.get("region");
            let credentials = from_section(&section, "default", path)?
                .ok_or_else(|| AwsCredentialsError::NoDefaultProfile { path: path.clone() })?;
            (credentials, format!("profile default in {}", path.display()), region)
        }
        None => chain(&get, &profile, explicit_profile.is_some(), &credentials_file, &config_file)?,
    };

    let region = if let Some(region) = &config.region {
        Some((region.clone(), "the configuration's region".to_owned()))
    } else if let Some(region) = region_from_host(&config.endpoint) {
        Some((region.to_owned(), format!("the endpoint {}", config.endpoint)))
    } else if let Some(region) = get("AWS_REGION") {
        Some((region, "AWS_REGION".to_owned()))
    } else if let Some(region) = get("AWS_DEFAULT_REGION") {
        Some((region, "AWS_DEFAULT_REGION".to_owned()))
    } else if let Some(region) = file_region {
        Some((region, "the aws_credentials file".to_owned()))
    } else {
        let text = read(&config_file, false)?.unwrap_or_default();
        let ini = Ini::parse(&text);
        config_section(&ini, &profile)
            .and_then(|section| section.get("region"))
            .map(|region| (region, format!("profile {profile} in {}", config_file.display())))
    };
    let (region, region_from) = region.ok_or_else(|| AwsCredentialsError::NoRegion {
        endpoint: config.endpoint.clone(),
        profile: profile.clone(),
        config_file: config_file.clone(),
    })?;
    Ok(SigningIdentity { credentials, region, credentials_from, region_from })
}

/// The environment, then the shared credentials file, then the config file.
fn chain(
    get: &dyn Fn(&str) -> Option<String>,
    profile: &str,
    profile_explicit: bool,
    credentials_file: &Path,
    config_file: &Path,
) -> Result<(Credentials, String, Option<String>), AwsCredentialsError> {
    match (get("AWS_ACCESS_KEY_ID"), get("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => {
            let token = get("AWS_SESSION_TOKEN");
            let credentials = Credentials::new(id, secret, token, None, "environment");
            return Ok((credentials, "the environment".to_owned(), None));
        }
        (Some(_), None) => {
            return Err(AwsCredentialsError::PartialEnvironment {
                set: "AWS_ACCESS_KEY_ID",
                missing: "AWS_SECRET_ACCESS_KEY",
            });
        }
        (None, Some(_)) => {
            return Err(AwsCredentialsError::PartialEnvironment {
                set: "AWS_SECRET_ACCESS_KEY",
                missing: "AWS_ACCESS_KEY_ID",
            });
        }
        (None, None) => {}
    }
    let mut found_profile = false;
    if let Some(text) = read(credentials_file, false)? {
        let ini = Ini::parse(&text);
        if let Some(section) = ini.section(profile) {
            found_profile = true;
            if let Some(credentials) = from_section(&section, profile, credentials_file)? {
                let from = format!("profile {profile} in {}", credentials_file.display());
                return Ok((credentials, from, None));
            }
        }
    }
    if let Some(text) = read(config_file, false)? {
        let ini = Ini::parse(&text);
        if let Some(section) = config_section(&ini, profile) {
            found_profile = true;
            if let Some(credentials) = from_section(&section, profile, config_file)? {
                let from = format!("profile {profile} in {}", config_file.display());
                return Ok((credentials, from, None));
            }
            for uses in ["role_arn", "sso_session", "sso_start_url", "credential_process"] {
                if section.get(uses).is_some() {
                    return Err(AwsCredentialsError::ProfileUnsupported {
                        profile: profile.to_owned(),
                        file: config_file.to_owned(),
                        uses,
                    });
                }
            }
        }
    }
    let files = vec![credentials_file.to_owned(), config_file.to_owned()];
    if profile_explicit && !found_profile {
        return Err(AwsCredentialsError::ProfileNotFound { profile: profile.to_owned(), files });
    }
    Err(AwsCredentialsError::NotFound { profile: profile.to_owned(), files })
}

/// The section of `profile` in an AWS config file: `[profile NAME]`, or `[default]`.
fn config_section<'a>(ini: &Ini<'a>, profile: &str) -> Option<Section<'a>> {
    ini.section(&format!("profile {profile}"))
        .or_else(|| (profile == "default").then(|| ini.section("default")).flatten())
}

/// The credentials of a section: `None` when it holds neither key, an error when only one.
fn from_section(
    section: &Section<'_>,
    profile: &str,
    file: &Path,
) -> Result<Option<Credentials>, AwsCredentialsError> {
    let incomplete = |missing| AwsCredentialsError::ProfileIncomplete {
        profile: profile.to_owned(),
        file: file.to_owned(),
        missing,
    };
    match (section.get("aws_access_key_id"), section.get("aws_secret_access_key")) {
        (Some(id), Some(secret)) => {
            let token = section.get("aws_session_token");
            Ok(Some(Credentials::new(id, secret, token, None, "shared credentials file")))
        }
        (Some(_), None) => Err(incomplete("aws_secret_access_key")),
        (None, Some(_)) => Err(incomplete("aws_access_key_id")),
        (None, None) => Ok(None),
    }
}

/// A file's text; `Ok(None)` when it does not exist and `required` is false.
fn read(path: &Path, required: bool) -> Result<Option<String>, AwsCredentialsError> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(error) if !required && error.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => {
            Err(AwsCredentialsError::Io { path: path.to_owned(), source: Arc::new(source) })
        }
    }
}

/// The region in an IoT endpoint's host name: `eu-west-1` in
/// `abc123-ats.iot.eu-west-1.amazonaws.com` (also `….amazonaws.com.cn`).
///
/// ```
/// use iot443::config::aws_credentials::region_from_host;
/// assert_eq!(region_from_host("abc-ats.iot.eu-west-1.amazonaws.com"), Some("eu-west-1"));
/// assert_eq!(region_from_host("abc.iot.cn-north-1.amazonaws.com.cn"), Some("cn-north-1"));
/// assert_eq!(region_from_host("localhost"), None);
/// ```
pub fn region_from_host(host: &str) -> Option<&str> {
    let labels: Vec<&str> = host.split('.').collect();
    labels.windows(3).find_map(|w| match w {
        ["iot", region, "amazonaws"] if !region.is_empty() => Some(*region),
        _ => None,
    })
}

/// An INI file as the AWS tools write it: `[section]`, `key = value`, `#` and `;` comments.
struct Ini<'a> {
    lines: Vec<&'a str>,
}

/// One section of an [`Ini`]: its `key = value` lines.
struct Section<'a> {
    entries: Vec<(&'a str, &'a str)>,
}

impl<'a> Ini<'a> {
    fn parse(text: &'a str) -> Ini<'a> {
        Ini { lines: text.lines().map(str::trim).collect() }
    }

    /// The section named `name` (the first one, if repeated).
    fn section(&self, name: &str) -> Option<Section<'a>> {
        let mut inside = false;
        let mut found = false;
        let mut entries = Vec::new();
        for line in &self.lines {
            if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            if let Some(header) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                if found && inside {
                    break;
                }
                inside = header.split_whitespace().collect::<Vec<_>>().join(" ") == name;
                found |= inside;
                continue;
            }
            if inside && let Some((key, value)) = line.split_once('=') {
                entries.push((key.trim(), value.trim()));
            }
        }
        found.then_some(Section { entries })
    }
}

impl Section<'_> {
    /// The value of `key`, when set and not empty.
    fn get(&self, key: &str) -> Option<String> {
        self.entries
            .iter()
            .find(|(k, v)| k.eq_ignore_ascii_case(key) && !v.is_empty())
            .map(|(_, v)| (*v).to_owned())
    }
}
