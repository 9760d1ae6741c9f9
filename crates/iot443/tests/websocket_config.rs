#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    missing_docs
)]
//! The WebSocket road's settings (`transport`, `region`, `aws_credentials`, their `IOT443_*`
//! variables) and the AWS credential chain (environment, shared files, profiles, the region),
//! each run with its own environment map and temporary files: nothing reads the process's.

use iot443::config::aws_credentials::{self, AwsCredentialsError};
use iot443::config::{Config, ConfigError, ENV_VARS, Transport};
use std::collections::HashMap;
use std::path::Path;

const ENDPOINT: &str = "abc123-ats.iot.eu-west-1.amazonaws.com";

fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn a_websocket_file_needs_no_certificate_or_key_and_reads_region_and_credentials_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "iot443.toml",
        &format!(
            "endpoint = \"{ENDPOINT}\"\nclient_id = \"dev\"\ntransport = \"websocket\"\n\
             region = \"eu-west-1\"\naws_credentials = \"aws-credentials\"\nroot_ca = \"ca.pem\"\n\
             websocket_max_age = 3600\n"
        ),
    );
    let config = Config::from_toml_file(&path).unwrap();
    assert_eq!(config.transport, Transport::WebSocket);
    assert_eq!(config.region.as_deref(), Some("eu-west-1"));
    assert_eq!(
        config.aws_credentials,
        Some(dir.path().join("aws-credentials")),
        "relative to the file"
    );
    assert_eq!(config.root_ca, Some(dir.path().join("ca.pem")));
    assert_eq!(config.websocket_max_age, std::time::Duration::from_secs(3600));
    config.validate().unwrap();
    let default = Config::websocket_builder(ENDPOINT, "dev").build().unwrap();
    assert_eq!(default.websocket_max_age, Config::DEFAULT_WEBSOCKET_MAX_AGE);
    assert!(Config::DEFAULT_WEBSOCKET_MAX_AGE < std::time::Duration::from_secs(24 * 3600));
}

#[test]
fn the_tls_road_still_requires_a_certificate() {
    let text = format!("endpoint = \"{ENDPOINT}\"\nclient_id = \"dev\"\nprivate_key = \"k.pem\"\n");
    let error = Config::from_toml_str(&text, Path::new("/etc")).unwrap_err();
    assert!(matches!(error, ConfigError::MissingField { field: "certificate", .. }), "{error}");
    let mut config = Config::websocket_builder(ENDPOINT, "dev").build().unwrap();
    config.transport = Transport::Tls;
    let error = config.validate().unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
}

#[test]
fn transport_values_and_bad_ones_in_the_file() {
    for (name, transport) in
        [("tls", Transport::Tls), ("websocket", Transport::WebSocket), ("https", Transport::Https)]
    {
        let text = format!(
            "endpoint = \"{ENDPOINT}\"\nclient_id = \"d\"\ncertificate = \"c\"\nprivate_key = \"k\"\n\
             transport = \"{name}\"\n"
        );
        assert_eq!(Config::from_toml_str(&text, Path::new("/")).unwrap().transport, transport);
        assert_eq!(transport.to_string(), name);
    }
    let text = format!("endpoint = \"{ENDPOINT}\"\nclient_id = \"d\"\ntransport = \"quic\"\n");
    let error = Config::from_toml_str(&text, Path::new("/")).unwrap_err().to_string();
    assert!(error.contains("`transport`") && error.contains("\"quic\""), "{error}");
    assert!(error.contains("websocket"), "says what is accepted: {error}");
    let text = format!(
        "endpoint = \"{ENDPOINT}\"\nclient_id = \"d\"\ntransport = \"websocket\"\nregion = \"EU West\"\n"
    );
    let error = Config::from_toml_str(&text, Path::new("/")).unwrap_err().to_string();
    assert!(error.contains("`region`"), "{error}");
}

#[test]
fn the_environment_sets_transport_region_and_credentials_file() {
    let mut config = Config::builder(ENDPOINT, "dev", "c.pem", "k.pem").build().unwrap();
    let env: HashMap<&str, &str> = [
        ("IOT443_TRANSPORT", "websocket"),
        ("IOT443_REGION", "ap-northeast-1"),
        ("IOT443_AWS_CREDENTIALS", "/run/creds"),
    ]
    .into();
    config.apply_env(|name| env.get(name).map(|v| (*v).to_owned())).unwrap();
    assert_eq!(config.transport, Transport::WebSocket);
    assert_eq!(config.region.as_deref(), Some("ap-northeast-1"));
    assert_eq!(config.aws_credentials.as_deref(), Some(Path::new("/run/creds")));
    for var in ["IOT443_TRANSPORT", "IOT443_REGION", "IOT443_AWS_CREDENTIALS"] {
        assert!(ENV_VARS.iter().any(|(name, _)| *name == var), "{var} is listed");
    }

    let bad: HashMap<&str, &str> = [("IOT443_TRANSPORT", "carrier-pigeon")].into();
    let error = config.apply_env(|name| bad.get(name).map(|v| (*v).to_owned())).unwrap_err();
    assert!(error.to_string().contains("IOT443_TRANSPORT"), "{error}");
}

/// Runs the chain for `config` with exactly the variables of `vars`.
fn resolve(
    config: &Config,
    vars: &[(&str, String)],
) -> Result<iot443::config::SigningIdentity, AwsCredentialsError> {
    let env: HashMap<String, String> =
        vars.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    aws_credentials::resolve(config, &|name| env.get(name).cloned())
}

fn ws_config(endpoint: &str) -> Config {
    Config::websocket_builder(endpoint, "dev").build().unwrap()
}

#[test]
fn environment_credentials_come_first_with_the_session_token() {
    let home = tempfile::tempdir().unwrap();
    let vars = [
        ("HOME", home.path().display().to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "env-secret-value".to_owned()),
        ("AWS_SESSION_TOKEN", "env-token".to_owned()),
    ];
    let identity = resolve(&ws_config(ENDPOINT), &vars).unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDENV");
    assert_eq!(identity.credentials.session_token(), Some("env-token"));
    assert_eq!(identity.region, "eu-west-1", "from the endpoint's name");
    let debug = format!("{identity:?}");
    assert!(!debug.contains("env-secret-value") && !debug.contains("env-token"), "{debug}");
}

#[test]
fn a_partial_environment_names_the_missing_variable() {
    let home = tempfile::tempdir().unwrap();
    let home_var = ("HOME", home.path().display().to_string());
    let error =
        resolve(&ws_config(ENDPOINT), &[home_var.clone(), ("AWS_ACCESS_KEY_ID", "AKID".into())])
            .unwrap_err();
    assert_eq!(
        error.to_string().split(':').next().unwrap(),
        "AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not"
    );
    let error =
        resolve(&ws_config(ENDPOINT), &[home_var, ("AWS_SECRET_ACCESS_KEY", "s3cr3t".into())])
            .unwrap_err()
            .to_string();
    assert!(
        error.starts_with("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not"),
        "{error}"
    );
    assert!(!error.contains("s3cr3t"), "{error}");
}

#[test]
fn the_shared_credentials_file_and_profiles() {
    let home = tempfile::tempdir().unwrap();
    let aws = home.path().join(".aws");
    std::fs::create_dir(&aws).unwrap();
    write(
        &aws,
        "credentials",
        "# comment\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n\n\
         [work]\naws_access_key_id=AKIDWORK\naws_secret_access_key=work-secret\naws_session_token=work-token\n\
         [half]\naws_access_key_id = AKIDHALF\n",
    );
    write(
        &aws,
        "config",
        "[default]\nregion = us-east-2\n[profile cfg]\naws_access_key_id = AKIDCFG\n\
         aws_secret_access_key = cfg-secret\nregion = sa-east-1\n[profile role]\nrole_arn = arn:aws:iam::1:role/x\n",
    );
    let home_var = ("HOME", home.path().display().to_string());
    // An endpoint without a region in its name: the region comes from elsewhere.
    let local = ws_config("localhost");

    let identity = resolve(&local, std::slice::from_ref(&home_var)).unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDDEFAULT");
    assert_eq!(identity.region, "us-east-2", "the default profile's region in ~/.aws/config");

    let identity = resolve(
        &local,
        &[home_var.clone(), ("AWS_PROFILE", "work".into()), ("AWS_REGION", "eu-north-1".into())],
    )
    .unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDWORK");
    assert_eq!(identity.credentials.session_token(), Some("work-token"));
    assert_eq!(identity.region, "eu-north-1", "AWS_REGION before the config file");

    let identity = resolve(&local, &[home_var.clone(), ("AWS_PROFILE", "cfg".into())]).unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDCFG", "[profile cfg] in the config file");
    assert_eq!(identity.region, "sa-east-1");

    let error = resolve(&local, &[home_var.clone(), ("AWS_PROFILE", "half".into())])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with(&format!(
            "profile `half` in {} has no aws_secret_access_key",
            aws.join("credentials").display()
        )),
        "{error}"
    );
    let error = resolve(&local, &[home_var.clone(), ("AWS_PROFILE", "role".into())])
        .unwrap_err()
        .to_string();
    assert!(error.contains("role_arn") && error.contains("export-credentials"), "{error}");
    let error = resolve(&local, &[home_var.clone(), ("AWS_PROFILE", "nope".into())]).unwrap_err();
    assert!(matches!(error, AwsCredentialsError::ProfileNotFound { .. }), "{error}");

    // Config region and endpoint name come before the environment.
    let mut configured = ws_config(ENDPOINT);
    configured.region = Some("me-south-1".to_owned());
    let identity =
        resolve(&configured, &[home_var.clone(), ("AWS_REGION", "eu-north-1".into())]).unwrap();
    assert_eq!(identity.region, "me-south-1");
    let identity =
        resolve(&ws_config(ENDPOINT), &[home_var, ("AWS_REGION", "eu-north-1".into())]).unwrap();
    assert_eq!(identity.region, "eu-west-1");
}

#[test]
fn the_file_variables_move_the_shared_files() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = write(
        dir.path(),
        "creds",
        "[default]\naws_access_key_id = AKIDMOVED\naws_secret_access_key = x\n",
    );
    let config_file = write(dir.path(), "conf", "[default]\nregion = ca-central-1\n");
    let identity = resolve(
        &ws_config("localhost"),
        &[
            ("HOME", "/nonexistent-home".to_owned()),
            ("AWS_SHARED_CREDENTIALS_FILE", credentials.display().to_string()),
            ("AWS_CONFIG_FILE", config_file.display().to_string()),
        ],
    )
    .unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDMOVED");
    assert_eq!(identity.region, "ca-central-1");
}

#[test]
fn nothing_found_says_where_it_looked_and_what_to_set() {
    let home = tempfile::tempdir().unwrap();
    let error = resolve(&ws_config(ENDPOINT), &[("HOME", home.path().display().to_string())])
        .unwrap_err()
        .to_string();
    assert!(
        error.starts_with("no AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"),
        "{error}"
    );
    assert!(error.contains(&home.path().join(".aws/credentials").display().to_string()), "{error}");

    let vars = [
        ("HOME", home.path().display().to_string()),
        ("AWS_ACCESS_KEY_ID", "AKID".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "secret".to_owned()),
    ];
    let error = resolve(&ws_config("localhost"), &vars).unwrap_err().to_string();
    assert!(error.starts_with("no AWS region to sign for with endpoint localhost"), "{error}");
    for source in [
        "`region`",
        "IOT443_REGION",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        ".iot.<region>.amazonaws.com",
    ] {
        assert!(error.contains(source), "{source} in {error}");
    }
    // A configuration error: the CLI exits with the configuration class.
    let client_error = iot443::ClientError::from(ConfigError::from(
        resolve(&ws_config("localhost"), &vars).unwrap_err(),
    ));
    assert_eq!(client_error.kind(), iot443::ErrorKind::Usage);
}

#[test]
fn an_aws_credentials_file_replaces_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(
        dir.path(),
        "aws-credentials",
        "[default]\naws_access_key_id = AKIDEMU\naws_secret_access_key = emu-secret\n",
    );
    let mut config = ws_config("localhost");
    config.aws_credentials = Some(file);
    config.region = Some("us-east-1".to_owned());
    let vars = [
        ("HOME", dir.path().display().to_string()),
        ("AWS_ACCESS_KEY_ID", "AKIDENV".to_owned()),
        ("AWS_SECRET_ACCESS_KEY", "env".to_owned()),
    ];
    let identity = resolve(&config, &vars).unwrap();
    assert_eq!(identity.credentials.access_key_id(), "AKIDEMU", "the file, not the environment");

    config.aws_credentials = Some(dir.path().join("missing"));
    let error = resolve(&config, &vars).unwrap_err().to_string();
    assert!(error.starts_with("cannot read AWS credentials file"), "{error}");
}

#[test]
fn the_region_in_iot_host_names() {
    assert_eq!(aws_credentials::region_from_host(ENDPOINT), Some("eu-west-1"));
    assert_eq!(
        aws_credentials::region_from_host("a1b2-ats.iot.cn-north-1.amazonaws.com.cn"),
        Some("cn-north-1")
    );
    assert_eq!(
        aws_credentials::region_from_host("data.iot.us-gov-west-1.amazonaws.com"),
        Some("us-gov-west-1")
    );
    assert_eq!(aws_credentials::region_from_host("127.0.0.1"), None);
    assert_eq!(aws_credentials::region_from_host("iot.example.com"), None);
}
