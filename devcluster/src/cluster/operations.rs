//! ACCEPT (reference 2.5): offer validation, then RESERVE, UNRESERVE, CREATE, DESTROY,
//! LAUNCH and LAUNCH_GROUP applied in order to the resources of the accepted offers, then
//! the unused rest declined with the call's filters.
//!
//! Validation follows M: src/master/validation.cpp; failures of LAUNCH and LAUNCH_GROUP
//! become TASK_ERROR updates (recorded text in `scheduler.jsonl` step 11), failures of the
//! other operations drop the operation, as the master does for operations without an id.

use fastdata_proto::v1::{
    AgentId, ExecutorInfo, FrameworkId, OfferId, OperationId, OperationState, OperationStatus,
    Resource, TaskGroupInfo, TaskInfo, TaskState, executor_info, framework_info,
    offer::{Operation, operation},
    scheduler::{call, event},
    task_status,
};

use super::master::{ExecutorRec, TaskRec, master_status, scheduler_event, update_event};
use super::{Cluster, Msg, Now, ToAgent};
use crate::resources::{self, Resources};

/// `common::validation::validateID`.
fn validate_id(id: &str) -> Result<(), String> {
    if id.is_empty() {
        return Err("ID must not be empty".into());
    }
    if id.len() > 255 {
        return Err("ID must not be greater than 255 characters".into());
    }
    if id == "." || id == ".." {
        return Err(format!("'{id}' is disallowed"));
    }
    if id.chars().any(|c| c.is_control() || c == '/' || c == '\\') {
        return Err(format!("'{id}' contains invalid characters"));
    }
    Ok(())
}

/// Converts operation resources to the internal format and gives those without
/// `allocation_info` the offer's role (M: master.cpp L4260-4270).
fn normalise(resources: &[Resource], role: &str) -> Result<Vec<Resource>, String> {
    resources
        .iter()
        .map(|r| {
            let mut r = resources::upgrade(r)?;
            if r.allocation_info.is_none() {
                r = resources::allocated_to(&r, role);
            }
            Ok(r)
        })
        .collect()
}

/// The tasks an operation would launch (for TASK_LOST on invalid offers).
fn tasks_of(op: &Operation) -> Vec<TaskInfo> {
    let mut tasks = Vec::new();
    if let Some(launch) = &op.launch {
        tasks.extend(launch.task_infos.iter().cloned());
    }
    if let Some(group) = &op.launch_group {
        tasks.extend(group.task_group.tasks.iter().cloned());
    }
    tasks
}

fn op_type(op: &Operation) -> operation::Type {
    op.r#type
        .and_then(|t| operation::Type::try_from(t).ok())
        .unwrap_or(operation::Type::Unknown)
}

impl Cluster {
    /// Offer validation (M: validation.cpp `offer::validate`): `Err` with Mesos' text.
    fn validate_offers(&self, framework_id: &str, offer_ids: &[OfferId]) -> Result<(), String> {
        if offer_ids.is_empty() {
            return Err("No offers specified".into());
        }
        let mut seen: Vec<&str> = Vec::new();
        let mut first: Option<(&str, usize, &str)> = None;
        for id in offer_ids {
            let id = id.value.as_str();
            if seen.contains(&id) {
                return Err(format!("Duplicate offer {id} in accept"));
            }
            seen.push(id);
            let Some(offer) = self.master.offers.get(id) else {
                return Err(format!("Offer {id} is no longer valid"));
            };
            if offer.framework_id != framework_id {
                return Err(format!(
                    "Offer {id} has invalid framework {} while framework {framework_id} is expected",
                    offer.framework_id
                ));
            }
            match first {
                None => first = Some((id, offer.agent, &offer.role)),
                Some((first_id, agent, role)) => {
                    if agent != offer.agent {
                        return Err(format!(
                            "Aggregated offers must belong to one single agent. Offer {id} uses agent {} and offer {first_id} uses agent {}",
                            self.master.agents[offer.agent].id, self.master.agents[agent].id
                        ));
                    }
                    if role != offer.role {
                        return Err(format!(
                            "Aggregated offers must be allocated to the same role. Offer {id} uses role {} and offer {first_id} uses role {role}",
                            offer.role
                        ));
                    }
                }
            }
        }
        Ok(())
    }

    /// ACCEPT. The call itself always got 202; everything here is reported by events.
    pub(crate) fn accept(&mut self, now: Now, framework_id: &str, accept: call::Accept) {
        let validation = self.validate_offers(framework_id, &accept.offer_ids);
        let mut pool = Resources::new();
        let mut target: Option<(usize, String)> = None;
        for id in &accept.offer_ids {
            let belongs = self
                .master
                .offers
                .get(&id.value)
                .is_some_and(|o| o.framework_id == framework_id);
            if belongs && let Some(rec) = self.remove_offer(&id.value) {
                pool.add_all(&rec.resources);
                target = Some((rec.agent, rec.role));
            }
        }
        let (agent, role) = match (validation, target) {
            (Ok(()), Some(target)) => target,
            (Err(error), _) => {
                self.invalid_offers(now, framework_id, &accept.operations, &error);
                return;
            }
            (Ok(()), None) => return,
        };
        for op in accept.operations {
            self.apply(now, framework_id, agent, &role, &mut pool, op);
        }
        let refuse = self.filter_duration(accept.filters.as_ref());
        self.add_filter(now, framework_id, agent, &role, pool.as_slice(), refuse);
    }

    /// Every task of the call: TASK_LOST, or TASK_DROPPED for partition-aware frameworks,
    /// REASON_INVALID_OFFERS, no uuid.
    fn invalid_offers(&mut self, now: Now, framework_id: &str, ops: &[Operation], error: &str) {
        let partition_aware = self.master.frameworks[framework_id].partition_aware();
        let state = if partition_aware {
            TaskState::TaskDropped
        } else {
            TaskState::TaskLost
        };
        for op in ops {
            for task in tasks_of(op) {
                let status = master_status(
                    now,
                    &task.task_id.value,
                    state,
                    Some(&task.agent_id.value),
                    &format!("Task launched with invalid offers: {error}"),
                    task_status::Reason::InvalidOffers,
                );
                self.send_to_framework(framework_id, update_event(status));
            }
        }
    }

    fn apply(
        &mut self,
        now: Now,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        op: Operation,
    ) {
        let kind = op_type(&op);
        let is_launch = matches!(kind, operation::Type::Launch | operation::Type::LaunchGroup);
        if let Some(id) = &op.id
            && !is_launch
        {
            // Operation feedback needs an agent with the RESOURCE_PROVIDER capability.
            let message = format!(
                "Operation requested feedback, but agent {} does not have the required RESOURCE_PROVIDER capability",
                self.master.agents[agent].id
            );
            self.operation_error(framework_id, agent, id.clone(), message);
            return;
        }
        let result = match kind {
            operation::Type::Reserve => op
                .reserve
                .map(|r| self.reserve(framework_id, agent, role, pool, &r))
                .unwrap_or(Ok(())),
            operation::Type::Unreserve => op
                .unreserve
                .map(|r| self.unreserve(agent, role, pool, &r.resources))
                .unwrap_or(Ok(())),
            operation::Type::Create => op
                .create
                .map(|c| self.create_volumes(framework_id, agent, role, pool, &c.volumes))
                .unwrap_or(Ok(())),
            operation::Type::Destroy => op
                .destroy
                .map(|d| self.destroy_volumes(framework_id, agent, role, pool, &d.volumes))
                .unwrap_or(Ok(())),
            operation::Type::Launch => {
                let tasks = op.launch.map(|l| l.task_infos).unwrap_or_default();
                for task in tasks {
                    if op.id.is_some() {
                        self.task_error(
                            now,
                            framework_id,
                            &task,
                            "Operation feedback is not supported for LAUNCH operations",
                            task_status::Reason::TaskInvalid,
                        );
                        continue;
                    }
                    self.launch(now, framework_id, agent, role, pool, task);
                }
                Ok(())
            }
            operation::Type::LaunchGroup => {
                if let Some(group) = op.launch_group {
                    if op.id.is_some() {
                        for task in &group.task_group.tasks {
                            self.task_error(
                                now,
                                framework_id,
                                task,
                                "Operation feedback is not supported for LAUNCH_GROUP operations",
                                task_status::Reason::TaskGroupInvalid,
                            );
                        }
                    } else {
                        self.launch_group(
                            now,
                            framework_id,
                            agent,
                            role,
                            pool,
                            group.executor,
                            group.task_group,
                        );
                    }
                }
                Ok(())
            }
            _ => Err(format!("Unsupported operation {}", kind.as_str_name())),
        };
        if let Err(e) = result {
            tracing::info!(framework = framework_id, error = %e, "dropping invalid operation");
        }
    }

    fn operation_error(
        &mut self,
        framework_id: &str,
        agent: usize,
        id: OperationId,
        message: String,
    ) {
        let mut ev = scheduler_event(event::Type::UpdateOperationStatus);
        ev.update_operation_status = Some(event::UpdateOperationStatus {
            status: OperationStatus {
                operation_id: Some(id),
                state: OperationState::OperationError as i32,
                message: Some(message),
                agent_id: Some(AgentId {
                    value: self.master.agents[agent].id.clone(),
                }),
                ..Default::default()
            },
        });
        self.send_to_framework(framework_id, ev);
    }

    /// Applies a change of representation to both the operation's pool and the agent's
    /// total resources: `remove` leaves, `add` arrives.
    fn convert(
        &mut self,
        agent: usize,
        pool: &mut Resources,
        remove: &[Resource],
        add: &[Resource],
    ) -> Result<(), String> {
        if !pool.contains(remove) {
            return Err(format!(
                "{} does not contain {}",
                resources::format_list(pool.as_slice()),
                resources::format_list(remove)
            ));
        }
        let _ = pool.subtract_all(remove);
        pool.add_all(add);
        let strip =
            |rs: &[Resource]| -> Vec<Resource> { rs.iter().map(resources::unallocated).collect() };
        let total = &mut self.master.agents[agent].total;
        let _ = total.subtract_all(&strip(remove));
        total.add_all(&strip(add));
        Ok(())
    }

    fn check_principal(
        &self,
        framework_id: &str,
        principal: Option<&str>,
        what: &str,
    ) -> Result<(), String> {
        let own = self.master.frameworks[framework_id]
            .info
            .principal
            .as_deref();
        match own {
            Some(own) if principal != Some(own) => Err(format!(
                "A {what} operation was attempted by principal '{own}', which does not match principal '{}' in the request",
                principal.unwrap_or("")
            )),
            _ => Ok(()),
        }
    }

    fn reserve(
        &mut self,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        reserve: &operation::Reserve,
    ) -> Result<(), String> {
        let targets = normalise(&reserve.resources, role)?;
        let refinement = self.master.frameworks[framework_id]
            .has(framework_info::capability::Type::ReservationRefinement);
        for r in &targets {
            if !resources::is_dynamically_reserved(r) {
                return Err(format!(
                    "Invalid RESERVE Operation: {} is not dynamically reserved",
                    resources::Display(r)
                ));
            }
            if r.reservations.len() > 1 && !refinement {
                return Err(
                    "Invalid RESERVE Operation: refined reservations need RESERVATION_REFINEMENT"
                        .into(),
                );
            }
            let reserved_for = resources::reservation_role(r).unwrap_or("*");
            if reserved_for != role {
                return Err(format!(
                    "Invalid RESERVE Operation: the resources are allocated to role '{role}' but reserved for role '{reserved_for}'"
                ));
            }
            let principal = r.reservations.last().and_then(|x| x.principal.as_deref());
            self.check_principal(framework_id, principal, "reserve")?;
        }
        let sources = if reserve.source.is_empty() {
            targets.iter().map(resources::pop_reservation).collect()
        } else {
            normalise(&reserve.source, role)?
        };
        self.convert(agent, pool, &sources, &targets)
            .map_err(|e| format!("Invalid RESERVE Operation: {e}"))
    }

    fn unreserve(
        &mut self,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        resources: &[Resource],
    ) -> Result<(), String> {
        let reserved = normalise(resources, role)?;
        for r in &reserved {
            if !resources::is_dynamically_reserved(r) {
                return Err(format!(
                    "Invalid UNRESERVE Operation: {} is not dynamically reserved",
                    resources::Display(r)
                ));
            }
            if resources::is_persistent_volume(r) {
                return Err(format!(
                    "Invalid UNRESERVE Operation: a dynamically reserved persistent volume {} cannot be unreserved",
                    resources::Display(r)
                ));
            }
        }
        let freed: Vec<Resource> = reserved.iter().map(resources::pop_reservation).collect();
        self.convert(agent, pool, &reserved, &freed)
            .map_err(|e| format!("Invalid UNRESERVE Operation: {e}"))
    }

    fn create_volumes(
        &mut self,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        volumes: &[Resource],
    ) -> Result<(), String> {
        let volumes = normalise(volumes, role)?;
        for v in &volumes {
            let Some(persistence) = v.disk.as_ref().and_then(|d| d.persistence.as_ref()) else {
                return Err(
                    "Invalid CREATE Operation: a resource is not a persistent volume".into(),
                );
            };
            if v.disk.as_ref().and_then(|d| d.volume.as_ref()).is_none() {
                return Err(format!(
                    "Invalid CREATE Operation: persistent volume '{}' has no 'disk.volume'",
                    persistence.id
                ));
            }
            if v.reservations.is_empty() {
                return Err("Invalid CREATE Operation: persistent volumes cannot be created from unreserved resources".into());
            }
            self.check_principal(framework_id, persistence.principal.as_deref(), "create")?;
            let volume_role = resources::reservation_role(v).unwrap_or("*");
            let taken = self.master.agents[agent].total.as_slice().iter().any(|r| {
                resources::reservation_role(r) == Some(volume_role)
                    && r.disk
                        .as_ref()
                        .and_then(|d| d.persistence.as_ref())
                        .is_some_and(|p| p.id == persistence.id)
            });
            if taken {
                return Err(format!(
                    "Invalid CREATE Operation: persistence ID '{}' is already in use",
                    persistence.id
                ));
            }
        }
        let sources: Vec<Resource> = volumes.iter().map(resources::volume_source).collect();
        self.convert(agent, pool, &sources, &volumes)
            .map_err(|e| format!("Invalid CREATE Operation: {e}"))
    }

    fn destroy_volumes(
        &mut self,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        volumes: &[Resource],
    ) -> Result<(), String> {
        let volumes = normalise(volumes, role)?;
        for v in &volumes {
            let Some(persistence) = v.disk.as_ref().and_then(|d| d.persistence.as_ref()) else {
                return Err(
                    "Invalid DESTROY Operation: a resource is not a persistent volume".into(),
                );
            };
            let in_use = self.master.frameworks.values().any(|f| {
                f.tasks.values().any(|t| {
                    t.agent == agent
                        && !t.state.is_terminal()
                        && t.resources.iter().any(|r| {
                            r.disk
                                .as_ref()
                                .and_then(|d| d.persistence.as_ref())
                                .is_some_and(|p| p.id == persistence.id)
                        })
                })
            });
            if in_use {
                return Err(format!(
                    "Invalid DESTROY Operation: persistent volume '{}' is in use",
                    persistence.id
                ));
            }
        }
        let _ = framework_id;
        let sources: Vec<Resource> = volumes.iter().map(resources::volume_source).collect();
        self.convert(agent, pool, &volumes, &sources)
            .map_err(|e| format!("Invalid DESTROY Operation: {e}"))?;
        for v in &volumes {
            if let Some(p) = v.disk.as_ref().and_then(|d| d.persistence.as_ref()) {
                self.send(Msg::ToAgent(
                    agent,
                    ToAgent::DestroyVolume {
                        role: resources::reservation_role(v).unwrap_or("*").to_owned(),
                        persistence_id: p.id.clone(),
                    },
                ));
            }
        }
        Ok(())
    }

    fn task_error(
        &mut self,
        now: Now,
        framework_id: &str,
        task: &TaskInfo,
        message: &str,
        reason: task_status::Reason,
    ) {
        let status = master_status(
            now,
            &task.task_id.value,
            TaskState::TaskError,
            Some(&task.agent_id.value),
            message,
            reason,
        );
        self.send_to_framework(framework_id, update_event(status));
    }

    /// Rules shared by LAUNCH and LAUNCH_GROUP tasks: id, uniqueness, agent, kill policy.
    fn validate_task_common(
        &self,
        framework_id: &str,
        agent: usize,
        task: &TaskInfo,
    ) -> Result<(), String> {
        validate_id(&task.task_id.value)
            .map_err(|e| format!("'TaskInfo.task_id' is invalid: {e}"))?;
        let framework = &self.master.frameworks[framework_id];
        if framework.tasks.contains_key(&task.task_id.value)
            || framework.unreachable.contains_key(&task.task_id.value)
        {
            return Err(format!("Task has duplicate ID: {}", task.task_id.value));
        }
        if task.agent_id.value != self.master.agents[agent].id {
            return Err(format!("Task uses invalid agent: {}", task.agent_id.value));
        }
        if let Some(grace) = task.kill_policy.as_ref().and_then(|k| k.grace_period)
            && grace.nanoseconds < 0
        {
            return Err("Task's 'kill_policy.grace_period' must be non-negative".into());
        }
        Ok(())
    }

    /// The executor's resources when the launch starts it, none when it already runs on the
    /// agent: Mesos counts an executor's resources once, when it is started.
    fn new_executor_resources(
        &self,
        framework_id: &str,
        agent: usize,
        executor: &ExecutorInfo,
    ) -> Vec<Resource> {
        let running = self.master.frameworks[framework_id]
            .executors
            .contains_key(&(agent, executor.executor_id.value.clone()));
        if running {
            Vec::new()
        } else {
            executor.resources.clone()
        }
    }

    /// ExecutorInfo rules (M: validation.cpp `executor::internal::validate`), and
    /// compatibility with a running executor of the same id.
    fn validate_executor(
        &self,
        framework_id: &str,
        agent: usize,
        executor: &ExecutorInfo,
    ) -> Result<(), String> {
        validate_id(&executor.executor_id.value)
            .map_err(|e| format!("'ExecutorInfo.executor_id' is invalid: {e}"))?;
        if let Some(fid) = &executor.framework_id
            && fid.value != framework_id
        {
            return Err(format!(
                "ExecutorInfo has an invalid FrameworkID (Actual: {} vs Expected: {framework_id})",
                fid.value
            ));
        }
        let framework = &self.master.frameworks[framework_id];
        if let Some(existing) = framework
            .executors
            .get(&(agent, executor.executor_id.value.clone()))
        {
            let mut mine = executor.clone();
            mine.framework_id = existing.info.framework_id.clone();
            let role = existing
                .resources
                .first()
                .and_then(|r| r.allocation_info.as_ref())
                .and_then(|a| a.role.clone())
                .unwrap_or_default();
            mine.resources = normalise(&mine.resources, &role)?;
            let mut theirs = existing.info.clone();
            theirs.resources.clone_from(&existing.resources);
            if mine != theirs {
                return Err(format!(
                    "ExecutorInfo is not compatible with existing ExecutorInfo with same ExecutorID '{}'",
                    executor.executor_id.value
                ));
            }
        }
        Ok(())
    }

    /// One task of a LAUNCH.
    fn launch(
        &mut self,
        now: Now,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        mut task: TaskInfo,
    ) {
        let checked = (|| -> Result<Vec<Resource>, String> {
            task.resources = normalise(&task.resources, role)?;
            if let Some(executor) = task.executor.as_mut() {
                executor.resources = normalise(&executor.resources, role)?;
            }
            self.validate_task_common(framework_id, agent, &task)?;
            if task.executor.is_some() == task.command.is_some() {
                return Err(
                    "Task should have at least one (but not both) of CommandInfo or ExecutorInfo present"
                        .into(),
                );
            }
            let mut needed = task.resources.clone();
            if let Some(executor) = &task.executor {
                self.validate_executor(framework_id, agent, executor)?;
                match executor
                    .r#type
                    .and_then(|t| executor_info::Type::try_from(t).ok())
                {
                    Some(executor_info::Type::Default) => {
                        return Err(
                            "'ExecutorInfo.type' must be 'CUSTOM' for a LAUNCH operation".into(),
                        );
                    }
                    Some(executor_info::Type::Custom) | None if executor.command.is_none() => {
                        return Err(
                            "'ExecutorInfo.command' must be set for 'CUSTOM' executor".into()
                        );
                    }
                    _ => {}
                }
                needed.extend(self.new_executor_resources(framework_id, agent, executor));
            }
            require_fits(pool, &needed, "task and its executor is")?;
            Ok(needed)
        })();
        let needed = match checked {
            Ok(needed) => needed,
            Err(message) => {
                self.task_error(
                    now,
                    framework_id,
                    &task,
                    &message,
                    task_status::Reason::TaskInvalid,
                );
                return;
            }
        };
        let _ = pool.subtract_all(&needed);
        let stripped: Vec<Resource> = needed.iter().map(resources::unallocated).collect();
        self.master.agents[agent].used.add_all(&stripped);
        let framework_info = self.master.frameworks[framework_id].info.clone();
        if let Some(executor) = task.executor.as_mut() {
            executor.framework_id = Some(FrameworkId {
                value: framework_id.to_owned(),
            });
            let framework = self
                .master
                .frameworks
                .get_mut(framework_id)
                .expect("validated");
            framework
                .executors
                .entry((agent, executor.executor_id.value.clone()))
                .or_insert_with(|| ExecutorRec {
                    info: executor.clone(),
                    resources: executor.resources.clone(),
                });
        }
        self.record_task(framework_id, agent, &task);
        self.send(Msg::ToAgent(
            agent,
            ToAgent::RunTask {
                framework: framework_info,
                task,
            },
        ));
    }

    fn record_task(&mut self, framework_id: &str, agent: usize, task: &TaskInfo) {
        let framework = self
            .master
            .frameworks
            .get_mut(framework_id)
            .expect("validated");
        framework.tasks.insert(
            task.task_id.value.clone(),
            TaskRec {
                info: task.clone(),
                agent,
                executor_id: task.executor.as_ref().map(|e| e.executor_id.value.clone()),
                state: TaskState::TaskStaging,
                status: None,
                resources: task.resources.clone(),
                unreachable_time: None,
            },
        );
    }

    /// LAUNCH_GROUP: all tasks or none (REASON_TASK_GROUP_INVALID).
    #[allow(clippy::too_many_arguments)]
    fn launch_group(
        &mut self,
        now: Now,
        framework_id: &str,
        agent: usize,
        role: &str,
        pool: &mut Resources,
        mut executor: ExecutorInfo,
        mut group: TaskGroupInfo,
    ) {
        let checked = (|| -> Result<Vec<Resource>, String> {
            executor.resources = normalise(&executor.resources, role)?;
            for task in &mut group.tasks {
                task.resources = normalise(&task.resources, role)?;
            }
            self.validate_executor(framework_id, agent, &executor)?;
            let id = &executor.executor_id.value;
            match executor
                .r#type
                .and_then(|t| executor_info::Type::try_from(t).ok())
            {
                None | Some(executor_info::Type::Unknown) => {
                    return Err("'ExecutorInfo.type' must be set".into());
                }
                Some(executor_info::Type::Default) if executor.command.is_some() => {
                    return Err(
                        "'ExecutorInfo.command' must not be set for 'DEFAULT' executor".into(),
                    );
                }
                Some(executor_info::Type::Custom) if executor.command.is_none() => {
                    return Err("'ExecutorInfo.command' must be set for 'CUSTOM' executor".into());
                }
                _ => {}
            }
            let own: Resources = executor.resources.clone().into();
            if own.scalar_total("cpus") < 0.01 {
                return Err(format!(
                    "Executor '{id}' uses less cpus ({}) than the minimum required (0.01)",
                    own.scalar_total("cpus")
                ));
            }
            if own.scalar_total("mem") < 32.0 {
                return Err(format!(
                    "Executor '{id}' uses less mem ({}) than the minimum required (32)",
                    own.scalar_total("mem")
                ));
            }
            if own.scalar_total("disk") <= 0.0 {
                return Err(format!("Executor '{id}' uses no disk"));
            }
            if group.tasks.is_empty() {
                return Err("Task group is empty".into());
            }
            let mut ids = Vec::new();
            let mut needed = Vec::new();
            for task in &group.tasks {
                self.validate_task_common(framework_id, agent, task)?;
                if ids.contains(&&task.task_id.value) {
                    return Err(format!(
                        "Duplicate task '{}' in the task group",
                        task.task_id.value
                    ));
                }
                ids.push(&task.task_id.value);
                if task.executor.is_some() {
                    return Err(format!(
                        "Task '{}' should not have 'ExecutorInfo' set",
                        task.task_id.value
                    ));
                }
                if let Some(c) = &task.container
                    && c.r#type != fastdata_proto::v1::container_info::Type::Mesos as i32
                {
                    return Err(format!(
                        "Task '{}' has invalid ContainerInfo: only 'MESOS' containers are supported",
                        task.task_id.value
                    ));
                }
                needed.extend(task.resources.iter().cloned());
            }
            needed.extend(self.new_executor_resources(framework_id, agent, &executor));
            require_fits(pool, &needed, "task group and its executor are")?;
            Ok(needed)
        })();
        let needed = match checked {
            Ok(needed) => needed,
            Err(message) => {
                for task in &group.tasks {
                    self.task_error(
                        now,
                        framework_id,
                        task,
                        &message,
                        task_status::Reason::TaskGroupInvalid,
                    );
                }
                return;
            }
        };
        let _ = pool.subtract_all(&needed);
        let stripped: Vec<Resource> = needed.iter().map(resources::unallocated).collect();
        self.master.agents[agent].used.add_all(&stripped);
        executor.framework_id = Some(FrameworkId {
            value: framework_id.to_owned(),
        });
        let framework = self
            .master
            .frameworks
            .get_mut(framework_id)
            .expect("validated");
        framework
            .executors
            .entry((agent, executor.executor_id.value.clone()))
            .or_insert_with(|| ExecutorRec {
                info: executor.clone(),
                resources: executor.resources.clone(),
            });
        let framework_info = framework.info.clone();
        for task in &group.tasks {
            self.record_task(framework_id, agent, task);
            if let Some(t) = self
                .master
                .frameworks
                .get_mut(framework_id)
                .and_then(|f| f.tasks.get_mut(&task.task_id.value))
            {
                t.executor_id = Some(executor.executor_id.value.clone());
            }
        }
        self.send(Msg::ToAgent(
            agent,
            ToAgent::RunTaskGroup {
                framework: framework_info,
                executor,
                group,
            },
        ));
    }
}

/// Mesos' refusal of a launch whose resources the offers do not hold; `required_by` words the
/// subject as Mesos does ("task and its executor is", "task group and its executor are").
fn require_fits(pool: &Resources, needed: &[Resource], required_by: &str) -> Result<(), String> {
    if pool.contains(needed) {
        return Ok(());
    }
    Err(format!(
        "Total resources {} required by {required_by} more than available {}",
        resources::format_list(needed),
        resources::format_list(pool.as_slice())
    ))
}
