//! `iot443 doctor`: checks the configuration, the files, the network path, TLS and MQTT step by
//! step (`iot443::diagnose`) and prints one line per step.

use super::config;
use crate::args::DoctorArgs;
use crate::exit::{DOCTOR_FIRST_STEP, Failure};
use iot443::diagnose::{Report, Step, diagnose};

pub async fn run(args: DoctorArgs) -> Result<(), Failure> {
    let report = match config::resolve(&args.connect) {
        Ok(config) => diagnose(&config).await,
        // A configuration that cannot even be read is the first step failing.
        Err(failure) => Report {
            steps: vec![Step {
                name: "config",
                ok: false,
                detail: failure.message,
                hint: Some(
                    "pass --config FILE (iot443.toml or aws_iot_config.h) or the connection \
                     flags; `iot443 emulator` writes a complete iot443.toml for the local \
                     endpoint"
                        .to_owned(),
                ),
            }],
        },
    };
    if args.json {
        println!("{}", to_json(&report));
    } else {
        for step in &report.steps {
            println!("{} {}: {}", if step.ok { "✔" } else { "✘" }, step.name, step.detail);
            if let Some(hint) = &step.hint {
                println!("    hint: {hint}");
            }
        }
    }
    match report.first_failure() {
        None => Ok(()),
        Some((index, step)) => Err(Failure {
            message: format!("doctor: step {} failed", step.name),
            code: DOCTOR_FIRST_STEP.saturating_add(u8::try_from(index).unwrap_or(u8::MAX)),
        }),
    }
}

/// `{"steps": [{"name", "ok", "detail", "hint"}, …]}`, keys in that order.
fn to_json(report: &Report) -> String {
    let steps = report
        .steps
        .iter()
        .map(|step| {
            format!(
                "{{\"name\":{},\"ok\":{},\"detail\":{},\"hint\":{}}}",
                serde_json::Value::from(step.name),
                step.ok,
                serde_json::Value::from(step.detail.as_str()),
                serde_json::Value::from(step.hint.as_deref()),
            )
        })
        .collect::<Vec<_>>();
    format!("{{\"steps\":[{}]}}", steps.join(","))
}
