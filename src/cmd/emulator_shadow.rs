//! `iot443 emulator shadow get|update|delete`: the cloud side of a Device Shadow, out of band,
//! like `aws iot-data get-thing-shadow` / `update-thing-shadow` / `delete-thing-shadow`.
//!
//! When an emulator serves the folder, it runs the request (and publishes the delta and documents
//! to subscribed devices); otherwise the folder's shadow store is changed directly.

use crate::args::{EmulatorShadowAction, EmulatorShadowArgs};
use crate::exit::Failure;
use iot443_emulator::server::cloud_request;
use iot443_proto::aws::shadow::{ErrorDocument, ShadowId, ShadowName, ShadowOperation, ThingName};
use serde_json::{Map, Value};
use std::io::{IsTerminal, Read, Write};

/// The exit code of a rejected shadow request (documented in `exit::HELP`).
pub const SHADOW_REJECTED: u8 = crate::exit::REJECTED;

pub async fn run(args: EmulatorShadowArgs) -> Result<(), Failure> {
    let (common, operation, payload) = match args.action {
        EmulatorShadowAction::Get(common) => (common, ShadowOperation::Get, Vec::new()),
        EmulatorShadowAction::Delete(common) => (common, ShadowOperation::Delete, Vec::new()),
        EmulatorShadowAction::Update { common, change } => {
            let payload =
                update_payload(change.desired, change.reported, change.document, change.version)
                    .await?;
            (common, ShadowOperation::Update, payload)
        }
    };
    let thing = ThingName::new(common.thing.as_str())
        .map_err(|error| Failure::usage(format!("thing {:?}: {error}", common.thing)))?;
    let id = match &common.name {
        Some(name) => ShadowId::named(
            thing,
            ShadowName::new(name.as_str())
                .map_err(|error| Failure::usage(format!("shadow name {name:?}: {error}")))?,
        ),
        None => ShadowId::classic(thing),
    };
    let dir = common.dir.clone();
    let request_id = id.clone();
    let outcome =
        tokio::task::spawn_blocking(move || cloud_request(&dir, &request_id, operation, &payload))
            .await
            .map_err(|error| {
                Failure::incomplete(format!("the shadow request did not finish: {error}"))
            })?
            .map_err(|error| Failure::usage(error.to_string()))?;
    match outcome {
        Ok(document) => {
            print_document(&document, common.json).await;
            Ok(())
        }
        Err(document) => {
            let (code, message) = match ErrorDocument::parse(&document) {
                Ok(error) => (error.code, error.message),
                Err(_) => (0, String::from_utf8_lossy(&document).into_owned()),
            };
            Err(Failure {
                message: format!(
                    "shadow {} of {} rejected: {code} {message}",
                    operation.as_str(),
                    common.name.as_deref().unwrap_or(common.thing.as_str())
                ),
                code: SHADOW_REJECTED,
            })
        }
    }
}

/// The update request: `--document` as given, or `{"state":{"desired":…,"reported":…},"version":…}`.
async fn update_payload(
    desired: Option<String>,
    reported: Option<String>,
    document: Option<String>,
    version: Option<u64>,
) -> Result<Vec<u8>, Failure> {
    if let Some(source) = document {
        let bytes = read_document(source).await?;
        serde_json::from_slice::<Value>(&bytes)
            .map_err(|error| Failure::usage(format!("--document is not JSON: {error}")))?;
        return Ok(bytes);
    }
    let mut state = Map::new();
    for (flag, value, key) in
        [("--desired", desired, "desired"), ("--reported", reported, "reported")]
    {
        if let Some(text) = value {
            let parsed: Value = serde_json::from_str(&text).map_err(|error| {
                Failure::usage(format!(
                    "{flag} is not JSON: {error} (e.g. {flag} '{{\"on\":true}}')"
                ))
            })?;
            if !parsed.is_object() && !parsed.is_null() {
                return Err(Failure::usage(format!(
                    "{flag} must be a JSON object, or null to remove the section"
                )));
            }
            state.insert(key.to_owned(), parsed);
        }
    }
    if state.is_empty() {
        return Err(Failure::usage(
            "update needs --desired JSON, --reported JSON or --document FILE|-",
        ));
    }
    let mut request = Map::new();
    request.insert("state".into(), Value::Object(state));
    if let Some(version) = version {
        request.insert("version".into(), Value::from(version));
    }
    Ok(Value::Object(request).to_string().into_bytes())
}

pub(super) async fn read_document(source: String) -> Result<Vec<u8>, Failure> {
    tokio::task::spawn_blocking(move || {
        if source == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().read_to_end(&mut bytes).map_err(|error| {
                Failure::usage(format!("cannot read the document from stdin: {error}"))
            })?;
            Ok(bytes)
        } else {
            std::fs::read(&source).map_err(|error| {
                Failure::usage(format!("cannot read --document {source}: {error}"))
            })
        }
    })
    .await
    .map_err(|error| Failure::incomplete(format!("reading the document did not finish: {error}")))?
}

/// Prints the answer: pretty on a terminal, compact otherwise or with `--json`.
pub(super) async fn print_document(document: &[u8], compact: bool) {
    let document = document.to_vec();
    let _ = tokio::task::spawn_blocking(move || {
        let mut stdout = std::io::stdout().lock();
        let text = match serde_json::from_slice::<Value>(&document) {
            Ok(value) if !compact && std::io::stdout().is_terminal() => {
                serde_json::to_string_pretty(&value).unwrap_or_default()
            }
            _ => String::from_utf8_lossy(&document).into_owned(),
        };
        let _ = writeln!(stdout, "{text}");
    })
    .await;
}
