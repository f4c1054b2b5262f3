//! The framework's identity as Mesos sees it: `FrameworkInfo` and the SUBSCRIBE call.
//!
//! Pure builders from [`FrameworkConfig`]; they never decide *whether* to subscribe (the
//! connection state machine does) and never persist the framework id (the run loop keeps it
//! in ZooKeeper).

use fastdata_proto::v1::{FrameworkId, FrameworkInfo, framework_info, scheduler};

use crate::config::FrameworkConfig;

/// What the framework asks Mesos for, in the order the recordings list them:
/// - MULTI_ROLE: required to use `roles` (and `role` must then stay unset, reference 2.1);
/// - RESERVATION_REFINEMENT: offers use the `reservations` stack, and our dynamic
///   reservations refine the role's resources;
/// - PARTITION_AWARE: TASK_UNREACHABLE / TASK_GONE / ... instead of TASK_LOST, so a slot on
///   a partitioned agent is not relaunched twice;
/// - TASK_KILLING_STATE: the executor may report TASK_KILLING during the grace period.
pub const CAPABILITIES: [framework_info::capability::Type; 4] = [
    framework_info::capability::Type::MultiRole,
    framework_info::capability::Type::ReservationRefinement,
    framework_info::capability::Type::PartitionAware,
    framework_info::capability::Type::TaskKillingState,
];

/// The FrameworkInfo fastdata subscribes with.
///
/// `checkpoint` is on so that agents keep our executors and tasks across agent restarts
/// (`faults-checkpoint-executor.jsonl`); `failover_timeout` (seconds) is how long Mesos keeps
/// them running while no scheduler is subscribed; `id` is set once Mesos assigned one, and
/// must then equal `Call.framework_id` on every SUBSCRIBE.
pub fn framework_info(config: &FrameworkConfig, framework_id: Option<&str>) -> FrameworkInfo {
    FrameworkInfo {
        user: config.user.clone(),
        name: config.framework_name.clone(),
        id: framework_id.map(|value| FrameworkId {
            value: value.to_owned(),
        }),
        failover_timeout: Some(config.failover_timeout.as_secs_f64()),
        checkpoint: Some(true),
        roles: vec![config.role.clone()],
        principal: Some(config.principal.clone()),
        webui_url: config.webui_url.clone(),
        capabilities: CAPABILITIES
            .iter()
            .map(|c| framework_info::Capability {
                r#type: Some(*c as i32),
            })
            .collect(),
        ..Default::default()
    }
}

/// The SUBSCRIBE call for `info`, with `framework_id` (when known) in both places Mesos
/// wants it: `Call.framework_id` and `framework_info.id` (it answers 400 if they differ).
pub fn subscribe_call(info: &FrameworkInfo, framework_id: Option<&str>) -> scheduler::Call {
    let id = framework_id.map(|value| FrameworkId {
        value: value.to_owned(),
    });
    let mut framework_info = info.clone();
    framework_info.id = id.clone();
    scheduler::Call {
        framework_id: id,
        r#type: Some(scheduler::call::Type::Subscribe as i32),
        subscribe: Some(scheduler::call::Subscribe {
            framework_info,
            suppressed_roles: Vec::new(),
            offer_constraints: None,
        }),
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use fastdata_proto::validate::Validate as _;
    use prost::Message as _;

    use super::*;
    use crate::config::MesosAuth;

    fn config() -> FrameworkConfig {
        FrameworkConfig {
            framework_name: "fastdata".into(),
            service_name: "fastdata".into(),
            role: "fastdata-role".into(),
            principal: "fastdata-principal".into(),
            user: "nobody".into(),
            failover_timeout: Duration::from_secs(7 * 86_400),
            webui_url: None,
            masters: vec!["http://127.0.0.1:5050".into()],
            auth: MesosAuth::None,
            heartbeat_misses: 5,
            subscribe_backoff_max: Duration::from_secs(15),
            reconcile_interval: Duration::from_secs(900),
        }
    }

    #[test]
    #[allow(deprecated)] // reads `role` to check it stays unset
    fn new_framework_info_has_every_field_the_issue_names() {
        let info = framework_info(&config(), None);
        assert_eq!(info.user, "nobody");
        assert_eq!(info.name, "fastdata");
        assert_eq!(info.id, None);
        assert_eq!(info.roles, vec!["fastdata-role".to_owned()]);
        assert_eq!(info.role, None, "MULTI_ROLE forbids the old `role` field");
        assert_eq!(info.principal.as_deref(), Some("fastdata-principal"));
        assert_eq!(info.failover_timeout, Some(604_800.0));
        assert_eq!(info.checkpoint, Some(true));
        assert_eq!(info.webui_url, None);
        let capabilities: Vec<i32> = info.capabilities.iter().filter_map(|c| c.r#type).collect();
        assert_eq!(capabilities, vec![6, 7, 5, 2]);
    }

    #[test]
    fn known_id_and_web_ui_are_set() {
        let mut c = config();
        c.webui_url = Some("http://fastdata.marathon.l4lb.thisdcos.directory:8080".into());
        c.failover_timeout = Duration::from_millis(1500);
        let info = framework_info(&c, Some("ea96-0000"));
        assert_eq!(info.id.map(|i| i.value).as_deref(), Some("ea96-0000"));
        assert_eq!(
            info.webui_url.as_deref(),
            Some("http://fastdata.marathon.l4lb.thisdcos.directory:8080")
        );
        assert_eq!(info.failover_timeout, Some(1.5));
    }

    #[test]
    fn subscribe_calls_are_valid_for_new_and_known_frameworks() {
        let info = framework_info(&config(), None);
        let first = subscribe_call(&info, None);
        first
            .validate()
            .expect("a new framework's SUBSCRIBE is valid");
        assert_eq!(first.framework_id, None);
        assert_eq!(
            first.subscribe.as_ref().unwrap().framework_info.id,
            None,
            "no id anywhere for a new framework"
        );

        let again = subscribe_call(&info, Some("ea96-0000"));
        again.validate().expect("a re-SUBSCRIBE is valid");
        let id = Some(FrameworkId {
            value: "ea96-0000".into(),
        });
        assert_eq!(again.framework_id, id);
        assert_eq!(again.subscribe.as_ref().unwrap().framework_info.id, id);

        // The encoded call decodes to the same thing (what the master parses).
        let decoded = scheduler::Call::decode(again.encode_to_vec().as_slice()).unwrap();
        assert_eq!(decoded, again);
    }

    #[test]
    fn subscribe_overrides_a_stale_id_in_the_info() {
        // The caller's FrameworkInfo may carry an old id; the call must agree with itself.
        let info = framework_info(&config(), Some("old"));
        let call = subscribe_call(&info, Some("new"));
        call.validate().expect("ids agree");
        assert_eq!(
            call.subscribe.unwrap().framework_info.id.unwrap().value,
            "new"
        );
        let none = subscribe_call(&framework_info(&config(), Some("old")), None);
        assert_eq!(none.subscribe.unwrap().framework_info.id, None);
    }
}
