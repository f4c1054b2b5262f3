//! Validation of messages before they go on the wire.
//!
//! prost does not check proto2 `required` fields, and a Mesos master or agent answers 400
//! ("Failed to validate ...") to a call missing one at any depth, or breaking one of its call
//! rules (reference 2.3 and 3.4). [`Validate::validate`] finds those problems on our side,
//! each named by its path (`accept.operations[0].launch.task_infos[1].task_id`), so a bug
//! is a clear error in our logs rather than a bare 400 from the cluster.
//!
//! Required-field checks work by reflection on the encoded bytes, exactly as the C++ parser
//! sees them: a required enum whose value the peer does not know is dropped by a proto2
//! parser and so counts as missing. The call rules are written out per call type and quote
//! the messages Mesos 1.12 answers with, as recorded in the transcripts.

use std::fmt;

use prost_reflect::{DynamicMessage, Kind, MapKey, ReflectMessage, Value};

use crate::json::{JsonError, to_dynamic};
use crate::mesos_ext::is_valid_uuid;
use crate::v1::{TaskState, executor, scheduler, task_status};

/// One problem found in a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// A `required` field is absent at this path.
    MissingRequired(String),
    /// An enum field holds a number its enum does not define.
    UnknownEnumValue {
        /// Path of the field.
        path: String,
        /// The number found.
        value: i32,
    },
    /// A Mesos call rule is broken; the text is what Mesos would answer.
    Rule(String),
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::MissingRequired(path) => write!(f, "required field '{path}' is missing"),
            Problem::UnknownEnumValue { path, value } => {
                write!(
                    f,
                    "field '{path}' holds {value}, which its enum does not define"
                )
            }
            Problem::Rule(text) => f.write_str(text),
        }
    }
}

/// Every problem found in one message; empty never happens.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} is not valid: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct ValidationError {
    /// Full protobuf name of the message.
    pub message: String,
    /// What is wrong, in the order found.
    pub problems: Vec<Problem>,
}

impl ValidationError {
    /// The paths of the missing required fields.
    pub fn missing_fields(&self) -> Vec<&str> {
        self.problems
            .iter()
            .filter_map(|p| match p {
                Problem::MissingRequired(path) => Some(path.as_str()),
                _ => None,
            })
            .collect()
    }
}

/// A message that can check itself before it is sent.
pub trait Validate {
    /// `Ok` when a Mesos peer would accept the message's structure.
    fn validate(&self) -> Result<(), ValidationError>;
}

/// Checks `required` presence and enum values at every depth of any generated message.
pub fn check_required<M: prost::Message + prost::Name>(message: &M) -> Result<(), ValidationError> {
    let problems = required_problems(message);
    into_result::<M>(problems)
}

fn required_problems<M: prost::Message + prost::Name>(message: &M) -> Vec<Problem> {
    match to_dynamic(message) {
        Ok(dynamic) => problems_in(&dynamic),
        // Only a message type missing from our own descriptor set gets here: a bug in this
        // crate, reported rather than hidden.
        Err(JsonError::UnknownType(name)) => {
            vec![Problem::Rule(format!("no descriptor for {name}"))]
        }
        Err(other) => vec![Problem::Rule(other.to_string())],
    }
}

/// Required-field and enum problems of a reflective message (for example one decoded from
/// bytes received over the network).
pub fn problems_in(message: &DynamicMessage) -> Vec<Problem> {
    let mut problems = Vec::new();
    walk(message, "", &mut problems);
    problems
}

fn join(prefix: &str, name: &str) -> String {
    if prefix.is_empty() {
        name.to_owned()
    } else {
        format!("{prefix}.{name}")
    }
}

fn walk(message: &DynamicMessage, prefix: &str, problems: &mut Vec<Problem>) {
    for field in message.descriptor().fields() {
        let path = join(prefix, field.name());
        if !message.has_field(&field) {
            if field.cardinality() == prost_reflect::Cardinality::Required {
                problems.push(Problem::MissingRequired(path));
            }
            continue;
        }
        let kind = field.kind();
        match &*message.get_field(&field) {
            Value::List(items) => {
                for (i, item) in items.iter().enumerate() {
                    check_value(item, &kind, &format!("{path}[{i}]"), problems);
                }
            }
            Value::Map(entries) => {
                let value_kind = kind
                    .as_message()
                    .map(|entry| entry.map_entry_value_field().kind());
                for (key, value) in entries {
                    let key = match key {
                        MapKey::String(s) => s.clone(),
                        other => format!("{other:?}"),
                    };
                    if let Some(value_kind) = &value_kind {
                        check_value(value, value_kind, &format!("{path}[{key}]"), problems);
                    }
                }
            }
            value => check_value(value, &kind, &path, problems),
        }
    }
}

fn check_value(value: &Value, kind: &Kind, path: &str, problems: &mut Vec<Problem>) {
    match (value, kind) {
        (Value::Message(inner), _) => walk(inner, path, problems),
        (Value::EnumNumber(number), Kind::Enum(descriptor))
            if descriptor.get_value(*number).is_none() =>
        {
            problems.push(Problem::UnknownEnumValue {
                path: path.to_owned(),
                value: *number,
            });
        }
        _ => {}
    }
}

fn into_result<M: prost::Name>(problems: Vec<Problem>) -> Result<(), ValidationError> {
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ValidationError {
            message: M::full_name(),
            problems,
        })
    }
}

fn expect_present(present: bool, field: &str, problems: &mut Vec<Problem>) {
    if !present {
        problems.push(Problem::Rule(format!("Expecting '{field}' to be present")));
    }
}

impl Validate for scheduler::Call {
    /// The master's `validation::scheduler::call::validate` (reference 2.3).
    fn validate(&self) -> Result<(), ValidationError> {
        use scheduler::call::Type;
        let mut problems = required_problems(self);
        let Some(kind) = self.r#type else {
            problems.push(Problem::Rule("Expecting 'type' to be present".into()));
            return into_result::<Self>(problems);
        };
        let kind = Type::try_from(kind).unwrap_or(Type::Unknown);
        if kind == Type::Subscribe {
            expect_present(self.subscribe.is_some(), "subscribe", &mut problems);
            if let (Some(id), Some(subscribe)) = (&self.framework_id, &self.subscribe)
                && subscribe.framework_info.id.as_ref() != Some(id)
            {
                problems.push(Problem::Rule(
                    "'framework_id' differs from 'subscribe.framework_info.id'".into(),
                ));
            }
        } else if kind != Type::Unknown {
            expect_present(self.framework_id.is_some(), "framework_id", &mut problems);
        }
        let payload = match kind {
            Type::Accept => Some((self.accept.is_some(), "accept")),
            Type::Decline => Some((self.decline.is_some(), "decline")),
            Type::AcceptInverseOffers => Some((
                self.accept_inverse_offers.is_some(),
                "accept_inverse_offers",
            )),
            Type::DeclineInverseOffers => Some((
                self.decline_inverse_offers.is_some(),
                "decline_inverse_offers",
            )),
            Type::Kill => Some((self.kill.is_some(), "kill")),
            Type::Shutdown => Some((self.shutdown.is_some(), "shutdown")),
            Type::Acknowledge => Some((self.acknowledge.is_some(), "acknowledge")),
            Type::AcknowledgeOperationStatus => Some((
                self.acknowledge_operation_status.is_some(),
                "acknowledge_operation_status",
            )),
            Type::Reconcile => Some((self.reconcile.is_some(), "reconcile")),
            Type::ReconcileOperations => {
                Some((self.reconcile_operations.is_some(), "reconcile_operations"))
            }
            Type::Message => Some((self.message.is_some(), "message")),
            Type::Request => Some((self.request.is_some(), "request")),
            Type::UpdateFramework => Some((self.update_framework.is_some(), "update_framework")),
            Type::Subscribe | Type::Teardown | Type::Revive | Type::Suppress | Type::Unknown => {
                None
            }
        };
        if let Some((present, field)) = payload {
            expect_present(present, field, &mut problems);
        }
        if kind == Type::Acknowledge
            && let Some(ack) = &self.acknowledge
            && !is_valid_uuid(&ack.uuid)
        {
            problems.push(Problem::Rule("Not a valid UUID".into()));
        }
        if kind == Type::AcknowledgeOperationStatus
            && let Some(ack) = &self.acknowledge_operation_status
            && !is_valid_uuid(&ack.uuid)
        {
            problems.push(Problem::Rule("Not a valid UUID".into()));
        }
        if kind == Type::UpdateFramework
            && let Some(update) = &self.update_framework
            && update.framework_info.id != self.framework_id
        {
            problems.push(Problem::Rule(
                "'framework_id' differs from 'update_framework.framework_info.id'".into(),
            ));
        }
        into_result::<Self>(problems)
    }
}

impl Validate for executor::Call {
    /// The agent's `validateExecutorCall` (reference 3.4), with its recorded wording.
    fn validate(&self) -> Result<(), ValidationError> {
        use executor::call::Type;
        let mut problems = required_problems(self);
        let Some(kind) = self.r#type else {
            problems.push(Problem::Rule("Expecting 'type' to be present".into()));
            return into_result::<Self>(problems);
        };
        match Type::try_from(kind).unwrap_or(Type::Unknown) {
            Type::Subscribe => expect_present(self.subscribe.is_some(), "subscribe", &mut problems),
            Type::Message => expect_present(self.message.is_some(), "message", &mut problems),
            Type::Update => match &self.update {
                None => expect_present(false, "update", &mut problems),
                Some(update) => self.update_rules(&update.status, &mut problems),
            },
            Type::Heartbeat | Type::Unknown => {}
        }
        into_result::<Self>(problems)
    }
}

impl executor::Call {
    fn update_rules(&self, status: &crate::v1::TaskStatus, problems: &mut Vec<Problem>) {
        let (executor, framework) = (&self.executor_id.value, &self.framework_id.value);
        match &status.uuid {
            None => problems.push(Problem::Rule("Expecting 'uuid' to be present".into())),
            Some(uuid) if !is_valid_uuid(uuid) => {
                problems.push(Problem::Rule("Not a valid UUID".into()))
            }
            Some(_) => {}
        }
        if let Some(id) = &status.executor_id
            && id.value != *executor
        {
            problems.push(Problem::Rule(format!(
                "ExecutorID in Call: {executor} does not match ExecutorID in TaskStatus: {}",
                id.value
            )));
        }
        if status.source != Some(task_status::Source::Executor as i32) {
            problems.push(Problem::Rule(format!(
                "Received Call from executor {executor} of framework {framework} with invalid source, expecting 'SOURCE_EXECUTOR'"
            )));
        }
        if status.state == TaskState::TaskStaging as i32 {
            problems.push(Problem::Rule(format!(
                "Received TASK_STAGING from executor {executor} of framework {framework} which is not allowed"
            )));
        }
    }
}

/// Required-field and enum problems in the raw bytes of a message of the given full name,
/// as a proto2 parser would see them. `Err` when the bytes do not parse at all.
pub fn check_encoded(full_name: &str, bytes: &[u8]) -> Result<Vec<Problem>, prost::DecodeError> {
    let Some(descriptor) = crate::json::descriptor_pool().get_message_by_name(full_name) else {
        return Ok(vec![Problem::Rule(format!(
            "no descriptor for {full_name}"
        ))]);
    };
    let message = DynamicMessage::decode(descriptor, bytes)?;
    Ok(problems_in(&message))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mesos_ext::{executor_status, new_status_uuid, scalar_resource};
    use crate::v1::{
        AgentId, ExecutorId, FrameworkId, FrameworkInfo, OfferId, TaskId, TaskInfo,
        Value as MesosValue,
        offer::{Operation, operation},
        scheduler::{Call, call},
    };
    use prost::Message;

    fn subscribe() -> Call {
        Call {
            r#type: Some(call::Type::Subscribe as i32),
            subscribe: Some(call::Subscribe {
                framework_info: FrameworkInfo {
                    user: "root".into(),
                    name: "fastdata".into(),
                    ..Default::default()
                },
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    fn with_framework(kind: call::Type) -> Call {
        Call {
            framework_id: Some(FrameworkId { value: "f".into() }),
            r#type: Some(kind as i32),
            ..Default::default()
        }
    }

    fn rules(result: Result<(), ValidationError>) -> Vec<String> {
        result
            .err()
            .map(|e| e.problems.iter().map(ToString::to_string).collect())
            .unwrap_or_default()
    }

    #[test]
    fn scheduler_call_rules() {
        let empty: Vec<String> = Vec::new();
        let cases: Vec<(&str, Call, Vec<&str>)> = vec![
            ("valid subscribe", subscribe(), vec![]),
            (
                "no type",
                Call::default(),
                vec!["Expecting 'type' to be present"],
            ),
            (
                "subscribe without payload",
                Call {
                    subscribe: None,
                    ..subscribe()
                },
                vec!["Expecting 'subscribe' to be present"],
            ),
            (
                "resubscribe ids differ",
                Call {
                    framework_id: Some(FrameworkId { value: "a".into() }),
                    ..subscribe()
                },
                vec!["'framework_id' differs from 'subscribe.framework_info.id'"],
            ),
            (
                "teardown without framework id",
                Call {
                    framework_id: None,
                    ..with_framework(call::Type::Teardown)
                },
                vec!["Expecting 'framework_id' to be present"],
            ),
            (
                "revive needs nothing else",
                with_framework(call::Type::Revive),
                vec![],
            ),
            (
                "reconcile without payload",
                with_framework(call::Type::Reconcile),
                vec!["Expecting 'reconcile' to be present"],
            ),
            (
                "acknowledge with 5-byte uuid",
                Call {
                    acknowledge: Some(call::Acknowledge {
                        agent_id: AgentId { value: "a".into() },
                        task_id: TaskId { value: "t".into() },
                        uuid: vec![1, 2, 3, 4, 5],
                    }),
                    ..with_framework(call::Type::Acknowledge)
                },
                vec!["Not a valid UUID"],
            ),
            (
                "acknowledge with uuid",
                Call {
                    acknowledge: Some(call::Acknowledge {
                        agent_id: AgentId { value: "a".into() },
                        task_id: TaskId { value: "t".into() },
                        uuid: new_status_uuid(),
                    }),
                    ..with_framework(call::Type::Acknowledge)
                },
                vec![],
            ),
        ];
        for (name, call, expected) in cases {
            let got = rules(call.validate());
            let expected: Vec<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            assert_eq!(
                got,
                if expected.is_empty() {
                    empty.clone()
                } else {
                    expected
                },
                "{name}"
            );
        }
    }

    #[test]
    fn missing_required_fields_are_named_by_path() {
        // A resource without a name (required) deep inside an ACCEPT, and a LAUNCH whose
        // task has an unknown required enum value in a resource type.
        let mut unnamed = scalar_resource("cpus", 1.0);
        unnamed.name.clear();
        let mut bad_type = scalar_resource("mem", 64.0);
        bad_type.r#type = 42;
        let call = Call {
            accept: Some(call::Accept {
                offer_ids: vec![OfferId { value: "o".into() }],
                operations: vec![Operation {
                    r#type: Some(operation::Type::Launch as i32),
                    launch: Some(operation::Launch {
                        task_infos: vec![TaskInfo {
                            name: "t".into(),
                            task_id: TaskId { value: "t".into() },
                            agent_id: AgentId { value: "a".into() },
                            resources: vec![unnamed, bad_type],
                            ..Default::default()
                        }],
                    }),
                    ..Default::default()
                }],
                filters: None,
            }),
            ..with_framework(call::Type::Accept)
        };
        // prost always encodes required strings, even empty ones, so `name` is present on the
        // wire: only the unknown enum is a problem, and it is reported by path.
        let err = call.validate().unwrap_err();
        assert_eq!(
            err.problems,
            vec![Problem::UnknownEnumValue {
                path: "accept.operations[0].launch.task_infos[0].resources[1].type".into(),
                value: 42
            }]
        );
    }

    #[test]
    fn encoded_bytes_missing_required_fields() {
        // FrameworkInfo with only `name` set (field 2): `user` (1) is required and absent.
        let framework_info = [0x12, 0x01, b'x'];
        let problems = check_encoded("mesos.v1.FrameworkInfo", &framework_info).unwrap();
        assert_eq!(problems, vec![Problem::MissingRequired("user".into())]);
        // A scheduler SUBSCRIBE whose subscribe message is empty: framework_info is required.
        let call = [0x10, 0x01, 0x1a, 0x00];
        let problems = check_encoded("mesos.v1.scheduler.Call", &call).unwrap();
        assert_eq!(
            problems,
            vec![Problem::MissingRequired("subscribe.framework_info".into())]
        );
        // A Value with neither type nor scalar: type is required.
        let problems = check_encoded(
            "mesos.v1.Value",
            &MesosValue::default().encode_to_vec()[..0],
        )
        .unwrap();
        assert_eq!(problems, vec![Problem::MissingRequired("type".into())]);
        assert!(check_encoded("mesos.v1.Value", b"\xff\xff").is_err());
    }

    fn update_call(status: crate::v1::TaskStatus) -> executor::Call {
        executor::Call {
            executor_id: ExecutorId {
                value: "exec".into(),
            },
            framework_id: FrameworkId { value: "fw".into() },
            r#type: Some(executor::call::Type::Update as i32),
            update: Some(executor::call::Update { status }),
            ..Default::default()
        }
    }

    #[test]
    fn executor_update_rules_mirror_status_update_call_failed_validation() {
        let good = executor_status("t", TaskState::TaskRunning);
        assert_eq!(update_call(good.clone()).validate(), Ok(()));
        let cases: Vec<(&str, crate::v1::TaskStatus, &str)> = vec![
            (
                "no source",
                crate::v1::TaskStatus {
                    source: None,
                    ..good.clone()
                },
                "Received Call from executor exec of framework fw with invalid source, expecting 'SOURCE_EXECUTOR'",
            ),
            (
                "staging",
                crate::v1::TaskStatus {
                    state: TaskState::TaskStaging as i32,
                    ..good.clone()
                },
                "Received TASK_STAGING from executor exec of framework fw which is not allowed",
            ),
            (
                "bad uuid",
                crate::v1::TaskStatus {
                    uuid: Some(b"dummy_uuid".to_vec()),
                    ..good.clone()
                },
                "Not a valid UUID",
            ),
            (
                "no uuid",
                crate::v1::TaskStatus {
                    uuid: None,
                    ..good.clone()
                },
                "Expecting 'uuid' to be present",
            ),
            (
                "other executor",
                crate::v1::TaskStatus {
                    executor_id: Some(ExecutorId {
                        value: "other".into(),
                    }),
                    ..good.clone()
                },
                "ExecutorID in Call: exec does not match ExecutorID in TaskStatus: other",
            ),
        ];
        for (name, status, expected) in cases {
            assert_eq!(
                rules(update_call(status).validate()),
                vec![expected.to_owned()],
                "{name}"
            );
        }
        let no_payload = executor::Call {
            update: None,
            ..update_call(good)
        };
        assert_eq!(
            rules(no_payload.validate()),
            vec!["Expecting 'update' to be present".to_owned()]
        );
    }
}
