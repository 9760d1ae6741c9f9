//! `iot443 sub`: subscribe and print messages as they arrive.

use super::config;
use super::stdout_lines::StdoutLines;
use crate::args::SubArgs;
use crate::exit::Failure;
use iot443::{Client, Event, MAX_FILTERS_PER_SUBSCRIBE, Message, QoS};

pub async fn run(args: SubArgs) -> Result<(), Failure> {
    let mut config = config::resolve(&args.connect)?;
    if args.no_clean {
        config.clean_session = false;
    }
    let (client, mut events) = Client::connect(&config).await?;
    if args.connect.verbose {
        eprintln!("{}", client.connection_info().summary());
    }
    let qos = QoS::from(args.qos);
    let (messages_tx, mut messages) =
        tokio::sync::mpsc::channel::<Message>(iot443::SUBSCRIPTION_QUEUE);
    for chunk in args.filters.chunks(MAX_FILTERS_PER_SUBSCRIBE) {
        let filters: Vec<(&str, QoS)> = chunk.iter().map(|filter| (filter.as_str(), qos)).collect();
        let mut subscription = client.subscribe_many(&filters).await?;
        let forward = messages_tx.clone();
        tokio::spawn(async move {
            while let Some(message) = subscription.recv().await {
                if forward.send(message).await.is_err() {
                    return;
                }
            }
        });
    }
    // Messages that arrive before the subscription (a persistent session's backlog) come as events.
    let forward = messages_tx.clone();
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            match event {
                Event::Message(message) => {
                    let Ok(()) = forward.send(message).await else { return };
                }
                Event::Disconnected { reason } => {
                    eprintln!("iot443: disconnected: {reason}");
                    return;
                }
                _ => {}
            }
        }
    });
    drop(messages_tx);
    if args.connect.verbose {
        eprintln!("subscribed to {}", args.filters.join(" "));
    }

    let mut received = 0u64;
    let stdout = StdoutLines::start()
        .map_err(|error| Failure::incomplete(format!("cannot start writing stdout: {error}")))?;
    loop {
        let message = tokio::select! {
            message = messages.recv() => message,
            _ = tokio::signal::ctrl_c() => None,
        };
        let Some(message) = message else { break };
        let line = if args.json {
            json_line(&message).to_string()
        } else if args.print_topic {
            format!("{} {}", message.topic, String::from_utf8_lossy(&message.payload))
        } else {
            String::from_utf8_lossy(&message.payload).into_owned()
        };
        if !stdout.send(line).await {
            break; // stdout closed (e.g. piped into `head`)
        }
        received += 1;
        if args.count.is_some_and(|count| received >= count) {
            break;
        }
    }
    client.disconnect().await.or_else(|error| match error {
        iot443::ClientError::Closed => Ok(()),
        other => Err(other),
    })?;
    // Every line taken is written before the command ends (or stdout is closed).
    if let Err(error) = stdout.finish().await {
        return Err(Failure::incomplete(format!("writing stdout failed: {error}")));
    }
    if let Some(count) = args.count
        && received < count
    {
        return Err(Failure::from(iot443::ClientError::ConnectionLost {
            addr: config.server_addr(),
            reason: format!("received {received} of {count} messages"),
            source: None,
        }));
    }
    Ok(())
}

fn json_line(message: &Message) -> serde_json::Value {
    let payload = match std::str::from_utf8(&message.payload) {
        Ok(text) => serde_json::Value::String(text.to_owned()),
        Err(_) => serde_json::Value::Array(message.payload.iter().map(|&b| b.into()).collect()),
    };
    serde_json::json!({
        "topic": message.topic,
        "payload": payload,
        "qos": message.qos as u8,
        "retain": message.retain,
        "dup": message.dup,
    })
}
