//! Golden tests against bytes recorded from a real Mesos 1.12 master and agent.
//!
//! `tests/data/mesos-transcripts/` is a copy of the recordings (see its README). For every
//! recorded event and request body these tests check that:
//! - our generated types decode it, and re-encode it to exactly the recorded bytes (so no
//!   field is unknown to our `.proto` files and every number and type matches);
//! - its content, as protobuf JSON, equals what protoc's own decoder recorded;
//! - building the call from its recorded content with our types gives the recorded bytes;
//! - our `validate()` accepts the calls Mesos accepted and refuses, with Mesos' own words,
//!   the calls Mesos refused for a validation reason.

use std::{fs, path::PathBuf};

use base64::Engine as _;
use fastdata_proto::{
    json::{descriptor_pool, from_json, to_json},
    mesos_ext::executor_status,
    v1::{
        FrameworkInfo, TaskState, executor,
        framework_info::{Capability, capability},
        scheduler::{self, call},
    },
    validate::Validate,
};
use prost::Message;
use prost_reflect::{DynamicMessage, ReflectMessage, Value as ReflectValue};
use serde_json::Value;

const FILES: &[&str] = &[
    "scheduler.jsonl",
    "executor-events.jsonl",
    "volumes.jsonl",
    "auth-basic.jsonl",
    "redirect.jsonl",
    "faults-master-restart.jsonl",
    "faults-agent-lost.jsonl",
    "faults-checkpoint-executor.jsonl",
];

#[derive(Debug, Clone, Copy, PartialEq)]
enum Side {
    Scheduler,
    Executor,
}

struct Step {
    file: &'static str,
    name: String,
    side: Side,
    line: Value,
}

fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/mesos-transcripts")
}

fn steps() -> Vec<Step> {
    let mut steps = Vec::new();
    for &file in FILES {
        let text = fs::read_to_string(data_dir().join(file))
            .unwrap_or_else(|e| panic!("reading {file}: {e}"));
        for raw in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: Value = serde_json::from_str(raw).unwrap_or_else(|e| panic!("{file}: {e}"));
            let side = match (file, line.get("side").and_then(Value::as_str)) {
                (_, Some("executor")) | ("executor-events.jsonl", _) => Side::Executor,
                _ => Side::Scheduler,
            };
            let name = line["step"].as_str().unwrap_or_default().to_owned();
            steps.push(Step {
                file,
                name,
                side,
                line,
            });
        }
    }
    steps
}

fn b64(text: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("recorded base64")
}

/// JSON numbers compared by value at 15 significant digits: the recorder wrote `3600.0`
/// where we may write `3600`, and rounded doubles such as timestamps to 16 digits (the wire
/// bytes, compared exactly elsewhere, are the truth).
fn normalize(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(format!("{:.14e}", n.as_f64().unwrap_or(f64::NAN))),
        Value::Array(items) => Value::Array(items.iter().map(normalize).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        other => other.clone(),
    }
}

/// Fields a real Mesos sends that are not in the v1 `.proto` files, so that decoders must
/// skip them. `AgentInfo` field 7 is the v0 `SlaveInfo.checkpoint` flag, which the agent
/// leaves in the `agent_info` of an executor's SUBSCRIBED event (`executor-events.jsonl`).
const KNOWN_UNKNOWN_FIELDS: &[(&str, u32)] = &[("mesos.v1.AgentInfo", 7)];

/// Removes unknown fields at every depth, returning `(message type, field number)` of each.
fn strip_unknown_fields(message: &mut DynamicMessage) -> Vec<(String, u32)> {
    let name = message.descriptor().full_name().to_owned();
    let mut found: Vec<(String, u32)> = message
        .take_unknown_fields()
        .map(|f| (name.clone(), f.number()))
        .collect();
    for (_, value) in message.fields_mut() {
        match value {
            ReflectValue::Message(inner) => found.extend(strip_unknown_fields(inner)),
            ReflectValue::List(items) => {
                for item in items {
                    if let ReflectValue::Message(inner) = item {
                        found.extend(strip_unknown_fields(inner));
                    }
                }
            }
            ReflectValue::Map(entries) => {
                for entry in entries.values_mut() {
                    if let ReflectValue::Message(inner) = entry {
                        found.extend(strip_unknown_fields(inner));
                    }
                }
            }
            _ => {}
        }
    }
    found
}

/// Decodes `bytes` as `M`, re-encodes it, and compares with the recording.
fn check_round_trip<M>(context: &str, bytes: &[u8], recorded: &Value) -> M
where
    M: Message + prost::Name + Default,
{
    let message = M::decode(bytes)
        .unwrap_or_else(|e| panic!("{context}: does not decode as {}: {e}", M::full_name()));
    // Byte-exact, except for documented fields outside the v1 protos, which prost skips.
    let descriptor = descriptor_pool()
        .get_message_by_name(&M::full_name())
        .expect("descriptor");
    let mut reflected = DynamicMessage::decode(descriptor, bytes).expect("reflective decode");
    let unknown = strip_unknown_fields(&mut reflected);
    for (message_type, number) in &unknown {
        assert!(
            KNOWN_UNKNOWN_FIELDS.contains(&(message_type.as_str(), *number)),
            "{context}: Mesos sent field {number} of {message_type}, which our .proto files lack"
        );
    }
    assert_eq!(
        message.encode_to_vec(),
        reflected.encode_to_vec(),
        "{context}: re-encoding differs from the recorded bytes"
    );
    if unknown.is_empty() {
        assert_eq!(
            message.encode_to_vec(),
            bytes,
            "{context}: re-encoding differs from the recorded bytes"
        );
    }
    let json = to_json(&message).unwrap();
    assert_eq!(
        normalize(&json),
        normalize(recorded),
        "{context}: decoded content differs from the recording"
    );
    // And the other way: the message built from the recorded content encodes to bytes that
    // decode to that same content.
    let rebuilt: M =
        from_json(recorded.to_string().as_bytes()).unwrap_or_else(|e| panic!("{context}: {e}"));
    let decoded = M::decode(rebuilt.encode_to_vec().as_slice()).expect("our own encoding decodes");
    assert_eq!(
        normalize(&to_json(&decoded).unwrap()),
        normalize(recorded),
        "{context}: building from the recorded content gives other content"
    );
    message
}

#[test]
fn every_recorded_event_decodes_to_the_recorded_content() {
    let mut counted = 0;
    for step in steps() {
        for (i, event) in step.line["events"]
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            let context = format!("{} / {} / event {i}", step.file, step.name);
            let bytes = b64(event["record_b64"].as_str().expect("record_b64"));
            match step.side {
                Side::Scheduler => {
                    check_round_trip::<scheduler::Event>(&context, &bytes, &event["event"]);
                }
                Side::Executor => {
                    check_round_trip::<executor::Event>(&context, &bytes, &event["event"]);
                }
            }
            counted += 1;
        }
    }
    assert_eq!(counted, 146, "every recorded event is checked");
}

/// Mesos' answer body for a validation failure, without its prefix.
fn validation_text(body: &str) -> Option<&str> {
    body.strip_prefix("Failed to validate scheduler::Call: ")
        .or_else(|| body.strip_prefix("Failed to validate Executor::Call: "))
}

#[test]
fn every_recorded_call_round_trips_and_validates_as_mesos_did() {
    let mut counted = 0;
    for step in steps() {
        let request = &step.line["request"];
        let (Some(body), Some(call)) = (request["body_b64"].as_str(), request.get("call")) else {
            continue;
        };
        if call.is_null() {
            // The deliberately unparsable body: our decoder must refuse it too.
            let bytes = b64(body);
            assert!(
                scheduler::Call::decode(bytes.as_slice()).is_err(),
                "{}: garbage decoded",
                step.name
            );
            continue;
        }
        let context = format!("{} / {}", step.file, step.name);
        let bytes = b64(body);
        let status = step.line["response"]["status"].as_u64();
        let body_text = step.line["response"]["body_text"]
            .as_str()
            .unwrap_or_default();
        let verdict = match step.side {
            Side::Scheduler => {
                check_round_trip::<scheduler::Call>(&context, &bytes, call).validate()
            }
            Side::Executor => check_round_trip::<executor::Call>(&context, &bytes, call).validate(),
        };
        match (status, validation_text(body_text)) {
            // The principal check needs the authenticated principal: an HTTP-layer rule.
            (Some(400), Some(text)) if !text.starts_with("Authenticated principal") => {
                let err = verdict.expect_err(&context);
                let ours: Vec<String> = err.problems.iter().map(ToString::to_string).collect();
                assert!(
                    ours.iter().any(|p| p == text),
                    "{context}: Mesos said {text:?}, we said {ours:?}"
                );
            }
            (Some(200 | 202), _) => {
                assert_eq!(verdict, Ok(()), "{context}: Mesos accepted this call")
            }
            _ => {}
        }
        counted += 1;
    }
    assert_eq!(counted, 206, "every recorded call is checked");
}

fn step_named(file: &str, name: &str) -> Step {
    steps()
        .into_iter()
        .find(|s| s.file == file && s.name == name)
        .unwrap_or_else(|| panic!("no step {name:?} in {file}"))
}

#[test]
fn subscribe_we_build_is_byte_identical_to_the_recorded_one() {
    let framework_info = FrameworkInfo {
        user: "root".into(),
        name: "fdx-transcript-capture".into(),
        failover_timeout: Some(3600.0),
        principal: Some("fastdata-principal".into()),
        capabilities: [
            capability::Type::MultiRole,
            capability::Type::ReservationRefinement,
            capability::Type::PartitionAware,
            capability::Type::TaskKillingState,
        ]
        .into_iter()
        .map(|t| Capability {
            r#type: Some(t as i32),
        })
        .collect(),
        roles: vec!["fastdata-role".into()],
        ..Default::default()
    };
    let call = scheduler::Call {
        r#type: Some(call::Type::Subscribe as i32),
        subscribe: Some(call::Subscribe {
            framework_info,
            ..Default::default()
        }),
        ..Default::default()
    };
    let recorded = step_named("scheduler.jsonl", "SUBSCRIBE");
    assert_eq!(
        call.encode_to_vec(),
        b64(recorded.line["request"]["body_b64"].as_str().unwrap())
    );
    assert_eq!(call.validate(), Ok(()));
}

#[test]
fn acknowledge_built_from_a_recorded_update_is_the_recorded_acknowledge() {
    // The update that the "sleep3: ACKNOWLEDGE TASK_STARTING" step answers arrived during the
    // LAUNCH step; the ACK must carry its agent id, task id and uuid.
    let launch = step_named(
        "scheduler.jsonl",
        "ACCEPT LAUNCH sleep 3 (reserved resources)",
    );
    let update = launch.line["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            scheduler::Event::decode(b64(e["record_b64"].as_str().unwrap()).as_slice()).unwrap()
        })
        .find_map(|e| e.update)
        .expect("an UPDATE during the launch step");
    let status = update.status;
    assert!(status.needs_acknowledgement());
    let ack_step = step_named("scheduler.jsonl", "sleep3: ACKNOWLEDGE TASK_STARTING");
    let recorded = scheduler::Call::decode(
        b64(ack_step.line["request"]["body_b64"].as_str().unwrap()).as_slice(),
    )
    .unwrap();
    let ours = scheduler::Call {
        framework_id: recorded.framework_id.clone(),
        r#type: Some(call::Type::Acknowledge as i32),
        acknowledge: Some(call::Acknowledge {
            agent_id: status
                .agent_id
                .clone()
                .expect("agent id on agent-generated updates"),
            task_id: status.task_id.clone(),
            uuid: status.uuid.unwrap(),
        }),
        ..Default::default()
    };
    assert_eq!(ours, recorded);
    assert_eq!(
        ours.encode_to_vec(),
        b64(ack_step.line["request"]["body_b64"].as_str().unwrap())
    );
}

#[test]
fn reconciliation_and_master_updates_carry_no_uuid() {
    // Mesos sends master-generated updates without a uuid; they must not be acknowledged.
    let mut master_updates = 0;
    for step in steps().into_iter().filter(|s| s.side == Side::Scheduler) {
        for event in step.line["events"].as_array().into_iter().flatten() {
            let event =
                scheduler::Event::decode(b64(event["record_b64"].as_str().unwrap()).as_slice())
                    .unwrap();
            if let Some(update) = event.update
                && update.status.source
                    == Some(fastdata_proto::v1::task_status::Source::Master as i32)
            {
                assert!(
                    !update.status.needs_acknowledgement(),
                    "{}: {:?}",
                    step.name,
                    update.status
                );
                master_updates += 1;
            }
        }
    }
    assert!(
        master_updates >= 5,
        "found only {master_updates} master updates"
    );
}

#[test]
fn executor_update_we_build_passes_where_the_agent_accepted() {
    // The agent refused an UPDATE without source and one with TASK_STAGING; ours sets both.
    let recorded = step_named("executor-events.jsonl", "UPDATE TASK_RUNNING");
    let recorded = executor::Call::decode(
        b64(recorded.line["request"]["body_b64"].as_str().unwrap()).as_slice(),
    )
    .unwrap();
    let mut status = executor_status(
        &recorded.update.as_ref().unwrap().status.task_id.value,
        TaskState::TaskRunning,
    );
    status.uuid = recorded.update.as_ref().unwrap().status.uuid.clone();
    let ours = executor::Call {
        executor_id: recorded.executor_id.clone(),
        framework_id: recorded.framework_id.clone(),
        r#type: Some(executor::call::Type::Update as i32),
        update: Some(executor::call::Update { status }),
        ..Default::default()
    };
    assert_eq!(ours, recorded);
    assert_eq!(ours.validate(), Ok(()));
}
