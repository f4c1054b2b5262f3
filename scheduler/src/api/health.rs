//! The DC/OS SDK's status-code contracts: `/v1/health` (one code for the service's state) and
//! `/v1/plans/deploy` (200 complete, 202 in progress, 417 error), as pure functions of a
//! [`StatusSnapshot`].
//!
//! Cosmos and Marathon read the codes, not the bodies: Cosmos polls `plans/deploy` until it
//! answers 200 during an uninstall, and Marathon's `MESOS_HTTP` health check on `/v1/health`
//! passes on any 2xx or 3xx. So every state that is not an error stays below 400, and only a
//! scheduler that gave up (`Phase::Fatal`) answers 503 (dcos-commons `HealthResource`; its
//! older `INITIALIZING` 418 broke exactly that health check, which is why the SDK moved it to
//! 318). No I/O here.

use serde::Serialize;

use super::views::PhaseView;
use crate::status::{Phase, PlanStatus, StatusSnapshot, TaskView};

/// The SDK service status codes we use, with their SDK names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ServiceStatus {
    /// 200: subscribed, and every wanted slot runs (or the uninstall finished).
    Running,
    /// 202: subscribed, slots are being launched or removed (also: uninstalling).
    DeployingStarting,
    /// 203: reconciling tasks with the master before taking offers.
    RecoveringPending,
    /// 206: running, but consumers report a failing sink.
    Degraded,
    /// 208: re-subscribing after a failed attempt, with backoff.
    Delayed,
    /// 318: waiting for the ZooKeeper lock, or subscribing for the first time.
    Initializing,
    /// 500: the deploy plan has errors.
    ErrorCreatingService,
    /// 503: the scheduler gave up; the body says what the operator must do.
    ServiceUnavailable,
}

impl ServiceStatus {
    /// The HTTP status code.
    pub fn code(self) -> u16 {
        match self {
            ServiceStatus::Running => 200,
            ServiceStatus::DeployingStarting => 202,
            ServiceStatus::RecoveringPending => 203,
            ServiceStatus::Degraded => 206,
            ServiceStatus::Delayed => 208,
            ServiceStatus::Initializing => 318,
            ServiceStatus::ErrorCreatingService => 500,
            ServiceStatus::ServiceUnavailable => 503,
        }
    }
}

/// The body of `/v1/health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthView {
    /// The status code, repeated in the body as the SDK does.
    pub value: u16,
    /// The SDK's name for it (`RUNNING`, `DEPLOYING_STARTING`, ...).
    pub status: ServiceStatus,
    /// The scheduler's phase.
    pub phase: &'static str,
    /// What is going on, in a sentence.
    pub message: String,
    /// For 503: what the operator must do.
    pub remedy: Option<String>,
}

impl HealthView {
    /// The health of `snapshot`. The SDK's priorities: an error or initialization first, then
    /// deploying, then degraded, then running.
    pub fn of(snapshot: &StatusSnapshot) -> HealthView {
        let phase = PhaseView::of(&snapshot.phase);
        let (status, message) = match &snapshot.phase {
            Phase::Fatal { .. } => (ServiceStatus::ServiceUnavailable, phase.message.clone()),
            Phase::Starting { .. }
            | Phase::WaitingForLock
            | Phase::Subscribing {
                last_error: None, ..
            } => (ServiceStatus::Initializing, phase.message.clone()),
            Phase::Subscribing {
                last_error: Some(_),
            } => (ServiceStatus::Delayed, phase.message.clone()),
            Phase::Reconciling { .. } => (ServiceStatus::RecoveringPending, phase.message.clone()),
            Phase::Uninstalling { .. } => (ServiceStatus::DeployingStarting, phase.message.clone()),
            Phase::Uninstalled => (ServiceStatus::Running, phase.message.clone()),
            Phase::Running => match snapshot.plan {
                PlanStatus::Error => (
                    ServiceStatus::ErrorCreatingService,
                    snapshot.plan_message.clone(),
                ),
                PlanStatus::InProgress => (
                    ServiceStatus::DeployingStarting,
                    snapshot.plan_message.clone(),
                ),
                PlanStatus::Complete if snapshot.sink_unhealthy_consumers > 0 => (
                    ServiceStatus::Degraded,
                    super::views::SinkView::of(snapshot).summary,
                ),
                PlanStatus::Complete => (ServiceStatus::Running, snapshot.plan_message.clone()),
            },
        };
        HealthView {
            value: status.code(),
            status,
            phase: phase.state,
            message,
            remedy: phase.remedy,
        }
    }
}

/// A step's status, with the SDK's names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum StepStatus {
    /// The plan cannot make progress.
    Error,
    /// Waiting for an offer.
    Pending,
    /// Resources are being reserved.
    Prepared,
    /// The task was launched and is starting.
    Starting,
    /// Done: the task runs (or a removed slot is gone).
    Complete,
    /// Work is under way (killing, unreserving).
    InProgress,
    /// Waiting out a relaunch backoff.
    Delayed,
}

/// `GET /v1/plans/deploy` (SDK shape: phases of steps).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanView {
    /// `deploy`.
    pub name: &'static str,
    /// `COMPLETE`, `IN_PROGRESS` or `ERROR`: the response code says the same (200/202/417).
    pub status: PlanStatus,
    /// `serial`: slots are reserved and launched one offer at a time.
    pub strategy: &'static str,
    /// What is left or what blocks, in a sentence.
    pub message: String,
    /// Why nothing changes, if something is held.
    pub held_reason: Option<String>,
    /// Errors, when the status is `ERROR`.
    pub errors: Vec<String>,
    /// One phase per kind of slot (`consumers`, `producer`), or `uninstall`.
    pub phases: Vec<PlanPhase>,
}

/// A phase of the plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanPhase {
    /// Stable id (the phase name).
    pub id: String,
    /// `consumers`, `producer`, `uninstall`.
    pub name: String,
    /// The worst of its steps.
    pub status: StepStatus,
    /// `serial`.
    pub strategy: &'static str,
    /// One step per slot.
    pub steps: Vec<PlanStep>,
}

/// One slot as a plan step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlanStep {
    /// Stable id (the slot name).
    pub id: String,
    /// The slot name and its task (`consumer-3:[fastdata__consumer-3__...]`).
    pub name: String,
    /// Its status.
    pub status: StepStatus,
    /// What it waits for, or the last status message.
    pub message: String,
}

impl PlanStatus {
    /// The SDK's status code for a plan: 200 complete, 202 in progress, 417 error.
    pub fn http_code(self) -> u16 {
        match self {
            PlanStatus::Complete => 200,
            PlanStatus::InProgress => 202,
            PlanStatus::Error => 417,
        }
    }
}

impl PlanView {
    /// The deploy plan of `snapshot`.
    pub fn deploy(snapshot: &StatusSnapshot) -> PlanView {
        let errors = match (&snapshot.phase, snapshot.plan) {
            (Phase::Fatal { message, remedy }, _) => vec![format!("{message}. {remedy}")],
            (_, PlanStatus::Error) => vec![snapshot.plan_message.clone()],
            _ => Vec::new(),
        };
        let failed = snapshot.plan == PlanStatus::Error;
        let phases = match &snapshot.phase {
            Phase::Uninstalling { remaining } => vec![uninstall_phase(
                StepStatus::InProgress,
                format!("remaining: {remaining}"),
            )],
            Phase::Uninstalled => vec![uninstall_phase(
                StepStatus::Complete,
                "the framework is torn down and its state deleted".to_owned(),
            )],
            _ => slot_phases(&snapshot.tasks, failed),
        };
        PlanView {
            name: "deploy",
            status: snapshot.plan,
            strategy: "serial",
            message: snapshot.plan_message.clone(),
            held_reason: snapshot.held_reason.clone(),
            errors,
            phases,
        }
    }
}

fn uninstall_phase(status: StepStatus, message: String) -> PlanPhase {
    PlanPhase {
        id: "uninstall".to_owned(),
        name: "uninstall".to_owned(),
        status,
        strategy: "serial",
        steps: vec![PlanStep {
            id: "uninstall".to_owned(),
            name: "kill tasks, unreserve, tear down, delete state".to_owned(),
            status,
            message,
        }],
    }
}

/// One phase per slot kind, in order of first appearance; consumers are named in the plural
/// as there are many.
fn slot_phases(tasks: &[TaskView], failed: bool) -> Vec<PlanPhase> {
    let mut phases: Vec<PlanPhase> = Vec::new();
    for task in tasks {
        let name = if task.kind == "consumer" {
            "consumers".to_owned()
        } else {
            task.kind.clone()
        };
        let mut status = step_status(task);
        if failed && status != StepStatus::Complete {
            status = StepStatus::Error;
        }
        let step = PlanStep {
            id: task.slot.clone(),
            name: match &task.task_id {
                Some(id) => format!("{}:[{id}]", task.slot),
                None => task.slot.clone(),
            },
            status,
            message: step_message(task),
        };
        match phases.iter_mut().find(|p| p.name == name) {
            Some(phase) => phase.steps.push(step),
            None => phases.push(PlanPhase {
                id: name.clone(),
                name,
                status: StepStatus::Complete,
                strategy: "serial",
                steps: vec![step],
            }),
        }
    }
    for phase in &mut phases {
        phase.status = phase_status(&phase.steps);
    }
    phases
}

/// The step status of a slot, from its Mesos state or the scheduler's own step.
pub fn step_status(task: &TaskView) -> StepStatus {
    let terminal = matches!(
        task.state.as_str(),
        "TASK_FINISHED"
            | "TASK_FAILED"
            | "TASK_KILLED"
            | "TASK_LOST"
            | "TASK_ERROR"
            | "TASK_DROPPED"
            | "TASK_GONE"
            | "TASK_GONE_BY_OPERATOR"
    );
    if task.goal == "removed" {
        return if terminal {
            StepStatus::Complete
        } else {
            StepStatus::InProgress
        };
    }
    match task.state.as_str() {
        "TASK_RUNNING" => StepStatus::Complete,
        "TASK_STAGING" | "TASK_STARTING" => StepStatus::Starting,
        "RESERVING" => StepStatus::Prepared,
        "WAITING_FOR_OFFER" => StepStatus::Pending,
        "BACKOFF" => StepStatus::Delayed,
        _ if terminal && task.relaunch_at_unix_ms.is_some() => StepStatus::Delayed,
        _ if terminal => StepStatus::Pending,
        _ => StepStatus::InProgress,
    }
}

fn step_message(task: &TaskView) -> String {
    if let Some(message) = &task.message {
        return message.clone();
    }
    let on = task
        .hostname
        .as_deref()
        .or(task.agent_id.as_deref())
        .unwrap_or("an agent");
    match task.state.as_str() {
        "TASK_RUNNING" => format!("running on {on}"),
        "WAITING_FOR_OFFER" => "waiting for an offer".to_owned(),
        "RESERVING" => format!("reserving resources on {on}"),
        "BACKOFF" => match task.relaunch_at_unix_ms {
            Some(at) => format!(
                "relaunch after {} failures, not before {}",
                task.failures,
                super::views::rfc3339(at)
            ),
            None => format!("relaunch after {} failures", task.failures),
        },
        "KILLING" => format!("killing on {on}"),
        "UNRESERVING" => format!("unreserving on {on}"),
        state => format!("{state} on {on}"),
    }
}

/// The worst step decides: an error, then pending-like work, then complete.
fn phase_status(steps: &[PlanStep]) -> StepStatus {
    let any = |s: StepStatus| steps.iter().any(|step| step.status == s);
    if any(StepStatus::Error) {
        StepStatus::Error
    } else if steps.iter().all(|s| s.status == StepStatus::Complete) {
        StepStatus::Complete
    } else if steps.iter().all(|s| s.status == StepStatus::Pending) {
        StepStatus::Pending
    } else {
        StepStatus::InProgress
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::sample::sample_snapshot;

    fn health_of(phase: Phase, plan: PlanStatus, unhealthy: u32) -> (u16, ServiceStatus) {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.phase = phase;
        snapshot.plan = plan;
        snapshot.sink_unhealthy_consumers = unhealthy;
        let view = HealthView::of(&snapshot);
        (view.value, view.status)
    }

    #[test]
    fn every_phase_has_its_sdk_code_and_only_errors_fail_a_health_check() {
        use PlanStatus::*;
        use ServiceStatus as S;
        let fatal = Phase::Fatal {
            message: "Framework has been removed".into(),
            remedy: "delete /dcos-service-fastdata/FrameworkID and restart".into(),
        };
        let cases = [
            (
                Phase::Starting { last_error: None },
                InProgress,
                0,
                (318, S::Initializing),
            ),
            (Phase::WaitingForLock, InProgress, 0, (318, S::Initializing)),
            (
                Phase::Subscribing { last_error: None },
                InProgress,
                0,
                (318, S::Initializing),
            ),
            (
                Phase::Subscribing {
                    last_error: Some("connection refused".into()),
                },
                InProgress,
                0,
                (208, S::Delayed),
            ),
            (
                Phase::Reconciling { pending: 2 },
                InProgress,
                0,
                (203, S::RecoveringPending),
            ),
            (Phase::Running, InProgress, 0, (202, S::DeployingStarting)),
            (Phase::Running, InProgress, 2, (202, S::DeployingStarting)),
            (Phase::Running, Complete, 0, (200, S::Running)),
            (Phase::Running, Complete, 2, (206, S::Degraded)),
            (Phase::Running, Error, 0, (500, S::ErrorCreatingService)),
            (fatal, Error, 0, (503, S::ServiceUnavailable)),
            (
                Phase::Uninstalling {
                    remaining: "2 reservations".into(),
                },
                InProgress,
                0,
                (202, S::DeployingStarting),
            ),
            (Phase::Uninstalled, Complete, 0, (200, S::Running)),
        ];
        for (phase, plan, unhealthy, expected) in cases {
            let label = format!("{phase:?} {plan:?} {unhealthy}");
            let got = health_of(phase.clone(), plan, unhealthy);
            assert_eq!(got, expected, "{label}");
            let passes_marathon = (200..400).contains(&got.0);
            let is_error = matches!(phase, Phase::Fatal { .. }) || plan == Error;
            assert_eq!(passes_marathon, !is_error, "{label}");
        }
    }

    #[test]
    fn fatal_health_carries_message_and_remedy() {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.phase = Phase::Fatal {
            message: "Mesos says: Framework has been removed".into(),
            remedy: "run `dcos package uninstall fastdata`, then install again".into(),
        };
        let view = HealthView::of(&snapshot);
        assert_eq!(view.value, 503);
        assert_eq!(view.message, "Mesos says: Framework has been removed");
        assert_eq!(
            view.remedy.as_deref(),
            Some("run `dcos package uninstall fastdata`, then install again")
        );
    }

    #[test]
    fn plan_has_one_step_per_slot_grouped_by_kind() {
        let snapshot = sample_snapshot(1_795_600_800_000);
        let plan = PlanView::deploy(&snapshot);
        assert_eq!(plan.status.http_code(), 202);
        type Shape<'a> = (&'a str, StepStatus, Vec<(&'a str, StepStatus)>);
        let shape: Vec<Shape<'_>> = plan
            .phases
            .iter()
            .map(|p| {
                (
                    p.name.as_str(),
                    p.status,
                    p.steps.iter().map(|s| (s.id.as_str(), s.status)).collect(),
                )
            })
            .collect();
        assert_eq!(
            shape,
            vec![
                (
                    "consumers",
                    StepStatus::InProgress,
                    vec![
                        ("consumer-0", StepStatus::Complete),
                        ("consumer-1", StepStatus::Complete),
                        ("consumer-2", StepStatus::Complete),
                        ("consumer-3", StepStatus::Pending),
                    ]
                ),
                (
                    "producer",
                    StepStatus::Complete,
                    vec![("producer-0", StepStatus::Complete)]
                ),
            ]
        );
        let waiting = &plan.phases[0].steps[3];
        assert!(waiting.message.contains("best offer has 0.5 cpu"));
    }

    #[test]
    fn step_status_follows_the_slot_lifecycle() {
        let mut task = sample_snapshot(0).tasks[0].clone();
        let cases = [
            ("TASK_STAGING", "running", None, StepStatus::Starting),
            ("TASK_STARTING", "running", None, StepStatus::Starting),
            ("RESERVING", "running", None, StepStatus::Prepared),
            ("BACKOFF", "running", Some(5), StepStatus::Delayed),
            ("TASK_FAILED", "running", Some(5), StepStatus::Delayed),
            ("TASK_LOST", "running", None, StepStatus::Pending),
            ("KILLING", "removed", None, StepStatus::InProgress),
            ("TASK_RUNNING", "removed", None, StepStatus::InProgress),
            ("TASK_KILLED", "removed", None, StepStatus::Complete),
            ("UNRESERVING", "removed", None, StepStatus::InProgress),
        ];
        for (state, goal, relaunch, expected) in cases {
            task.state = state.into();
            task.goal = goal.into();
            task.relaunch_at_unix_ms = relaunch;
            assert_eq!(step_status(&task), expected, "{state} {goal}");
        }
    }

    #[test]
    fn errors_and_uninstall_show_in_the_plan() {
        let mut snapshot = sample_snapshot(1_795_600_800_000);
        snapshot.plan = PlanStatus::Error;
        snapshot.plan_message = "consumer-3 cannot be placed: no agent has 1 cpu".into();
        let plan = PlanView::deploy(&snapshot);
        assert_eq!(plan.status.http_code(), 417);
        assert_eq!(plan.errors, vec![snapshot.plan_message.clone()]);
        assert_eq!(plan.phases[0].status, StepStatus::Error);
        assert_eq!(plan.phases[0].steps[0].status, StepStatus::Complete);

        snapshot.phase = Phase::Uninstalled;
        snapshot.plan = PlanStatus::Complete;
        let plan = PlanView::deploy(&snapshot);
        assert_eq!(plan.status.http_code(), 200);
        assert_eq!(plan.phases.len(), 1);
        assert_eq!(plan.phases[0].name, "uninstall");
        assert_eq!(plan.phases[0].status, StepStatus::Complete);
    }
}
