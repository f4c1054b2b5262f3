//! Constructors and predicates for the traps of the Mesos messages.
//!
//! proto2 enum defaults are the first declared value, not zero (reference 4.0):
//! `TaskStatus::default().state` is TASK_STAGING (the agent rejects it),
//! `ContainerInfo::default().r#type` is DOCKER and `Image::default().r#type` is APPC. Status
//! update UUIDs are 16 raw bytes with an RFC 4122 version nibble, not the 36-character string.
//! The constructors here set every such field explicitly so callers cannot fall into them.

use crate::v1::{
    ContainerInfo, Image, Resource, TaskId, TaskState, TaskStatus, Value, container_info, image,
    task_status, value,
};

/// A fresh random (version 4) status-update UUID as the 16 raw bytes Mesos expects.
pub fn new_status_uuid() -> Vec<u8> {
    uuid::Uuid::new_v4().as_bytes().to_vec()
}

/// True when `bytes` is a UUID Mesos accepts: exactly 16 bytes with an RFC 4122 variant and
/// a version nibble from 1 to 5 (stout `UUID::fromBytes`; otherwise Mesos answers 400 "Not
/// a valid UUID").
pub fn is_valid_uuid(bytes: &[u8]) -> bool {
    let Ok(id) = uuid::Uuid::from_slice(bytes) else {
        return false;
    };
    id.get_variant() == uuid::Variant::RFC4122 && (1..=5).contains(&id.get_version_num())
}

/// A `ContainerInfo` for the Mesos containerizer, with its type set explicitly (the proto2
/// default would be DOCKER).
pub fn mesos_container() -> ContainerInfo {
    ContainerInfo {
        r#type: container_info::Type::Mesos as i32,
        ..Default::default()
    }
}

/// A Docker image reference, with its type set explicitly (the proto2 default is APPC).
pub fn docker_image(name: &str) -> Image {
    Image {
        r#type: image::Type::Docker as i32,
        docker: Some(image::Docker {
            name: name.to_owned(),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// A status update as an executor sends it: explicit state, `source = SOURCE_EXECUTOR` (an
/// absent source means SOURCE_MASTER and the agent answers 400), and a fresh UUID.
pub fn executor_status(task_id: &str, state: TaskState) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        state: state as i32,
        source: Some(task_status::Source::Executor as i32),
        uuid: Some(new_status_uuid()),
        ..Default::default()
    }
}

/// A scalar resource (`cpus`, `mem`, `disk`), unreserved.
pub fn scalar_resource(name: &str, amount: f64) -> Resource {
    Resource {
        name: name.to_owned(),
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

/// A `Value` of type SCALAR.
pub fn scalar_value(amount: f64) -> Value {
    Value {
        r#type: value::Type::Scalar as i32,
        scalar: Some(value::Scalar { value: amount }),
        ..Default::default()
    }
}

impl TaskState {
    /// True for the states Mesos treats as terminal (`protobuf::isTerminalState`): the task
    /// is over and its resources are released. TASK_LOST is terminal although a partitioned
    /// task may come back; TASK_UNREACHABLE and TASK_UNKNOWN are not terminal.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            TaskState::TaskFinished
                | TaskState::TaskFailed
                | TaskState::TaskKilled
                | TaskState::TaskError
                | TaskState::TaskLost
                | TaskState::TaskDropped
                | TaskState::TaskGone
                | TaskState::TaskGoneByOperator
        )
    }
}

impl TaskStatus {
    /// The state, or `None` for a value this build does not know (a newer master).
    pub fn known_state(&self) -> Option<TaskState> {
        TaskState::try_from(self.state).ok()
    }

    /// True when this update must be acknowledged: only updates that carry a UUID (agent or
    /// executor generated) are; acknowledging one without is a 400 (reference 2.4).
    pub fn needs_acknowledgement(&self) -> bool {
        self.uuid.as_ref().is_some_and(|u| !u.is_empty())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn proto2_enum_defaults_are_the_traps_the_reference_lists() {
        assert_eq!(TaskStatus::default().state, TaskState::TaskStaging as i32);
        assert_eq!(
            ContainerInfo::default().r#type,
            container_info::Type::Docker as i32
        );
        assert_eq!(Image::default().r#type, image::Type::Appc as i32);
        assert_eq!(mesos_container().r#type, container_info::Type::Mesos as i32);
        assert_eq!(docker_image("x").r#type, image::Type::Docker as i32);
    }

    #[test]
    fn executor_status_sets_state_source_and_uuid() {
        let s = executor_status("t1", TaskState::TaskStarting);
        assert_eq!(s.known_state(), Some(TaskState::TaskStarting));
        assert_eq!(s.source, Some(task_status::Source::Executor as i32));
        assert!(is_valid_uuid(s.uuid.as_deref().unwrap()));
        // TASK_STARTING is 0 but required, so it is on the wire: `10 00`.
        let bytes = s.encode_to_vec();
        assert!(bytes.windows(2).any(|w| w == [0x10, 0x00]));
        assert_ne!(s.uuid, executor_status("t1", TaskState::TaskStarting).uuid);
    }

    #[test]
    fn uuid_validation() {
        assert!(is_valid_uuid(&new_status_uuid()));
        assert!(!is_valid_uuid(b"bad-uuid"));
        assert!(!is_valid_uuid(&[1, 2, 3, 4, 5]));
        assert!(!is_valid_uuid(&[0u8; 16]), "nil UUID has version 0");
        assert!(
            !is_valid_uuid(uuid::Uuid::new_v4().to_string().as_bytes()),
            "the 36-char string is not the wire form"
        );
    }

    #[test]
    fn terminal_states() {
        let terminal: Vec<_> = (0..=13)
            .filter_map(|v| TaskState::try_from(v).ok())
            .filter(|s| s.is_terminal())
            .map(|s| s.as_str_name())
            .collect();
        assert_eq!(
            terminal,
            [
                "TASK_FINISHED",
                "TASK_FAILED",
                "TASK_KILLED",
                "TASK_LOST",
                "TASK_ERROR",
                "TASK_DROPPED",
                "TASK_GONE",
                "TASK_GONE_BY_OPERATOR"
            ]
        );
    }

    #[test]
    fn acknowledgement_rule() {
        let mut s = executor_status("t", TaskState::TaskRunning);
        assert!(s.needs_acknowledgement());
        s.uuid = None;
        assert!(!s.needs_acknowledgement());
        s.uuid = Some(Vec::new());
        assert!(!s.needs_acknowledgement());
    }
}
