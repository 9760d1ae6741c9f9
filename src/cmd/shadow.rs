//! `iot443 shadow get|update|delete|watch`: a thing's Device Shadow over MQTT, as a device or an
//! application sees it (`iot443::shadow`).

use super::config;
use super::emulator_shadow::{print_document, read_document};
use super::stdout_lines::StdoutLines;
use crate::args::{ShadowAction, ShadowArgs, ShadowChange, ShadowCommon};
use crate::exit::Failure;
use iot443::Client;
use iot443::shadow::{Shadow, ShadowUpdate};
use serde_json::Value;

pub async fn run(args: ShadowArgs) -> Result<(), Failure> {
    match args.action {
        ShadowAction::Get(common) => {
            let (client, shadow) = open(&common).await?;
            let answer = shadow.get().await.map(|document| document.raw);
            finish(client, answer, common.json).await
        }
        ShadowAction::Delete(common) => {
            let (client, shadow) = open(&common).await?;
            let answer = shadow.delete().await.map(|deleted| deleted.raw);
            finish(client, answer, common.json).await
        }
        ShadowAction::Update { common, change } => {
            let update = update_of(change).await?;
            let (client, shadow) = open(&common).await?;
            let answer = shadow.update(update).await.map(|accepted| accepted.raw);
            finish(client, answer, common.json).await
        }
        ShadowAction::Watch { common, documents, count } => watch(&common, documents, count).await,
    }
}

/// Connects and makes the handle (the thing and name checked first, nothing sent for them).
async fn open(common: &ShadowCommon) -> Result<(Client, Shadow), Failure> {
    let config = config::resolve(&common.connect)?;
    let thing = common.thing.clone().unwrap_or_else(|| config.effective_thing_name().to_owned());
    // The names are checked before connecting.
    let check = iot443::shadow::ThingName::new(thing.as_str())
        .map_err(iot443::shadow::ShadowError::from)
        .and_then(|_| match &common.name {
            Some(name) => iot443::shadow::ShadowName::new(name.as_str())
                .map(drop)
                .map_err(iot443::shadow::ShadowError::from),
            None => Ok(()),
        });
    check?;
    let (client, _events) = Client::connect(&config).await?;
    if common.connect.verbose {
        eprintln!("{}", client.connection_info().summary());
    }
    let shadow = match &common.name {
        Some(name) => client.named_shadow(&thing, name)?,
        None => client.shadow(&thing)?,
    };
    let shadow = match common.timeout {
        Some(timeout) => shadow.with_timeout(timeout),
        None => shadow,
    };
    Ok((client, shadow))
}

/// Prints an accepted answer, disconnects, and turns a rejection into its failure (exit 7).
async fn finish(
    client: Client,
    answer: Result<bytes::Bytes, iot443::shadow::ShadowError>,
    compact: bool,
) -> Result<(), Failure> {
    let _ = client.disconnect().await;
    let answer = answer?;
    print_document(&answer, compact).await;
    Ok(())
}

/// The update the flags describe: `--document` as a whole request, or `--desired`,
/// `--reported` and `--version`.
async fn update_of(change: ShadowChange) -> Result<ShadowUpdate, Failure> {
    let ShadowChange { desired, reported, document, version } = change;
    if let Some(source) = document {
        let bytes = read_document(source).await?;
        return ShadowUpdate::from_json(&bytes)
            .map_err(|problem| Failure::usage(format!("--document: {problem}; nothing was sent")));
    }
    let mut update = ShadowUpdate::new();
    if let Some(text) = desired {
        update = update.desired(json_flag("--desired", &text)?);
    }
    if let Some(text) = reported {
        update = update.reported(json_flag("--reported", &text)?);
    }
    if let Some(version) = version {
        update = update.version(version);
    }
    Ok(update)
}

fn json_flag(flag: &str, text: &str) -> Result<Value, Failure> {
    serde_json::from_str(text).map_err(|error| {
        Failure::usage(format!(
            "{flag} is not JSON: {error} (e.g. {flag} '{{\"on\":true}}'); nothing was sent"
        ))
    })
}

/// Prints each delta (or documents message) as one line until Ctrl-C, `count` messages, or
/// the client's end.
async fn watch(common: &ShadowCommon, documents: bool, count: Option<u64>) -> Result<(), Failure> {
    let (client, shadow) = open(common).await?;
    let mut deltas = None;
    let mut changes = None;
    if documents {
        changes = Some(shadow.documents().await?);
    } else {
        deltas = Some(shadow.deltas().await?);
    }
    if common.connect.verbose {
        let suffix = if documents { "documents" } else { "delta" };
        eprintln!("watching {}/update/{suffix}", shadow.id());
    }
    let stdout = StdoutLines::start()
        .map_err(|error| Failure::incomplete(format!("cannot start writing stdout: {error}")))?;
    let mut printed = 0u64;
    loop {
        let next = async {
            match (&mut deltas, &mut changes) {
                (Some(deltas), _) => deltas.recv().await.map(|delta| delta.raw),
                (None, Some(changes)) => changes.recv().await.map(|change| change.raw),
                (None, None) => None,
            }
        };
        let raw = tokio::select! {
            raw = next => raw,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(raw) = raw else { break };
        let line = one_line(&raw);
        if !stdout.send(line).await {
            break;
        }
        printed += 1;
        if count.is_some_and(|count| printed >= count) {
            break;
        }
    }
    let _ = client.disconnect().await;
    if let Err(error) = stdout.finish().await {
        return Err(Failure::incomplete(format!("writing stdout failed: {error}")));
    }
    match count {
        Some(count) if printed < count => {
            Err(Failure::incomplete(format!("printed {printed} of {count} messages")))
        }
        _ => Ok(()),
    }
}

/// A message as one line: as it came when it is one line of UTF-8 (the service's field order),
/// else compact JSON.
pub(super) fn one_line(raw: &[u8]) -> String {
    match std::str::from_utf8(raw) {
        Ok(text) if !text.contains('\n') => text.to_owned(),
        _ => match serde_json::from_slice::<Value>(raw) {
            Ok(value) => value.to_string(),
            Err(_) => String::from_utf8_lossy(raw).into_owned(),
        },
    }
}
