//! Fault injection and the JSON state document.
//!
//! The faults reproduce what the recordings show, in devcluster time:
//! - removing an agent (`faults-agent-lost.jsonl`): its offers are rescinded, its tasks
//!   become TASK_UNREACHABLE (partition-aware frameworks; REASON_AGENT_REMOVED, "health check
//!   timed out", `unreachable_time`, no uuid) or TASK_LOST, or TASK_GONE_BY_OPERATOR when
//!   marked gone, and every framework gets FAILURE{agent_id}. Mesos takes the agent ping
//!   timeout (75 s by default) to decide; devcluster does it at once. Its processes are
//!   killed and it never comes back.
//! - restarting an agent (`faults-checkpoint-executor.jsonl`): its executor streams end and
//!   its listener refuses connections while it is down; its offers are rescinded. On restart
//!   executors of checkpointing frameworks must re-subscribe within
//!   `executor_reregistration_timeout` (calls other than SUBSCRIBE get 503 meanwhile); then
//!   the agent re-registers: executors that did not come back are killed (their tasks fail
//!   with REASON_EXECUTOR_REREGISTRATION_TIMEOUT), pending status updates are resent, and
//!   tasks of non-checkpointing frameworks, whose executors died with the agent, are reported
//!   by the master as TASK_LOST (TASK_GONE when partition-aware).
//! - restarting the master (`faults-master-restart.jsonl` with the replicated log): every
//!   scheduler stream ends without an ERROR, offers and filters vanish, the master gets a
//!   new id (new offer ids), frameworks and tasks are kept and must re-subscribe with their
//!   id; agents re-register at once (Mesos takes up to 75 s).
//! - dropping one framework's stream: as if its connection broke (failover timeout starts).
//! - electing another master address, or none (`redirect.jsonl`): a master failover, and the
//!   other address redirects (307) or answers 503 "No leader elected".

use std::time::Duration;

use fastdata_proto::v1::{TaskState, TimeInfo, task_status};
use serde_json::{Value as Json, json};

use super::agent::ContainerState;
use super::master::{Presence, master_status, scheduler_event, update_event};
use super::{Cluster, Effect, MasterAddress, Now, Signal, Timer};
use crate::resources;

/// A fault to inject (the JSON body of `POST /devcluster/fault`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Fault {
    /// The agent dies for good; the master removes it (or marks it gone).
    RemoveAgent {
        /// Agent index.
        agent: usize,
        /// Marked gone by the operator instead of unreachable.
        #[serde(default)]
        gone: bool,
    },
    /// The agent process crashes and comes back after `down_ms`.
    RestartAgent {
        /// Agent index.
        agent: usize,
        /// How long it stays down.
        #[serde(default = "default_down_ms")]
        down_ms: u64,
    },
    /// A master failover to the same address: streams drop, state is kept.
    RestartMaster,
    /// One framework's subscription connection breaks.
    DropStream {
        /// The framework.
        framework_id: String,
    },
    /// Leader election: `None` leaves no leader (both addresses answer 503).
    ElectLeader {
        /// The new leading address.
        leader: Option<MasterAddress>,
    },
}

fn default_down_ms() -> u64 {
    1000
}

fn to_json<M: prost::Message + prost::Name>(m: &M) -> Json {
    fastdata_proto::json::to_json(m).unwrap_or(Json::Null)
}

impl Cluster {
    /// Injects a fault; `Err` names what is wrong with the request.
    pub fn fault(&mut self, now: Now, fault: Fault) -> Result<(), String> {
        let result = match fault {
            Fault::RemoveAgent { agent, gone } => self.remove_agent(now, agent, gone),
            Fault::RestartAgent { agent, down_ms } => {
                self.crash_agent(now, agent, Duration::from_millis(down_ms))
            }
            Fault::RestartMaster => {
                self.master_failover(now, self.leader);
                Ok(())
            }
            Fault::DropStream { framework_id } => {
                let conn = self
                    .master
                    .frameworks
                    .get(&framework_id)
                    .and_then(|f| f.conn.as_ref())
                    .map(|c| c.conn);
                match conn {
                    Some(conn) => {
                        self.effect(Effect::CloseStream { conn });
                        self.master_stream_closed(now, conn);
                        Ok(())
                    }
                    None => Err(format!("framework {framework_id} has no open stream")),
                }
            }
            Fault::ElectLeader { leader } => {
                if leader == Some(MasterAddress::Standby) && self.ports.standby.is_none() {
                    return Err("this devcluster has no standby master address".into());
                }
                self.master_failover(now, leader);
                Ok(())
            }
        };
        self.flush(now);
        result
    }

    fn check_agent(&self, agent: usize) -> Result<(), String> {
        match self.agents.get(agent) {
            None => Err(format!("no agent {agent}")),
            Some(a) if a.removed => Err(format!("agent {agent} was removed")),
            Some(_) => Ok(()),
        }
    }

    /// Kills every process of an agent and closes its executor streams.
    fn kill_agent_processes(&mut self, agent: usize, only_non_checkpointing: bool) {
        let mut effects = Vec::new();
        let a = &mut self.agents[agent];
        for container in a.containers.values() {
            let checkpoint = a
                .frameworks
                .get(&container.framework_id)
                .is_some_and(|f| f.info.checkpoint.unwrap_or(false));
            if only_non_checkpointing && checkpoint {
                continue;
            }
            for process in &container.processes {
                effects.push(Effect::Signal {
                    agent,
                    process: process.clone(),
                    signal: Signal::Kill,
                });
            }
        }
        for effect in effects {
            self.effect(effect);
        }
    }

    fn close_executor_streams(&mut self, agent: usize) {
        let a = &mut self.agents[agent];
        let conns: Vec<u64> = a
            .containers
            .values_mut()
            .filter_map(|c| c.conn.take().map(|c| c.conn))
            .collect();
        a.conns.clear();
        for conn in conns {
            self.effect(Effect::CloseStream { conn });
        }
    }

    fn remove_agent(&mut self, now: Now, agent: usize, gone: bool) -> Result<(), String> {
        self.check_agent(agent)?;
        self.kill_agent_processes(agent, false);
        self.close_executor_streams(agent);
        {
            let a = &mut self.agents[agent];
            a.removed = true;
            a.up = false;
            a.containers.clear();
        }
        self.effect(Effect::AgentListener { agent, up: false });
        self.rescind_offers_on(agent);
        self.master.agents[agent].presence = if gone {
            Presence::Gone
        } else {
            Presence::Unreachable {
                since_unix: now.unix,
            }
        };
        let agent_id = self.master.agents[agent].id.clone();
        let unreachable_time = TimeInfo {
            nanoseconds: (now.unix * 1e9) as i64,
        };
        let framework_ids: Vec<String> = self.master.frameworks.keys().cloned().collect();
        for framework_id in framework_ids {
            let framework = self
                .master
                .frameworks
                .get_mut(&framework_id)
                .expect("listed");
            let partition_aware = framework.partition_aware();
            let on_agent: Vec<String> = framework
                .tasks
                .iter()
                .filter(|(_, t)| t.agent == agent)
                .map(|(id, _)| id.clone())
                .collect();
            let mut updates = Vec::new();
            let mut released = Vec::new();
            for task_id in on_agent {
                let mut task = framework.tasks.remove(&task_id).expect("listed");
                if !task.state.is_terminal() {
                    released.extend(task.resources.iter().cloned());
                }
                let (state, reason, message) = match (partition_aware, gone) {
                    (true, true) => (
                        TaskState::TaskGoneByOperator,
                        task_status::Reason::AgentRemovedByOperator,
                        "Agent has been marked gone",
                    ),
                    (true, false) => (
                        TaskState::TaskUnreachable,
                        task_status::Reason::AgentRemoved,
                        "health check timed out",
                    ),
                    (false, _) => (
                        TaskState::TaskLost,
                        task_status::Reason::AgentRemoved,
                        "health check timed out",
                    ),
                };
                let mut status =
                    master_status(now, &task_id, state, Some(&agent_id), message, reason);
                if state == TaskState::TaskUnreachable {
                    status.unreachable_time = Some(unreachable_time);
                    task.state = state;
                    task.unreachable_time = Some(unreachable_time);
                    framework.unreachable.insert(task_id.clone(), task);
                }
                updates.push(status);
            }
            let executors: Vec<(usize, String)> = framework
                .executors
                .keys()
                .filter(|(a, _)| *a == agent)
                .cloned()
                .collect();
            for key in executors {
                if let Some(e) = framework.executors.remove(&key) {
                    released.extend(e.resources);
                }
            }
            self.release(agent, &released);
            for status in updates {
                self.send_to_framework(&framework_id, update_event(status));
            }
            let mut failure = scheduler_event(fastdata_proto::v1::scheduler::event::Type::Failure);
            failure.failure = Some(fastdata_proto::v1::scheduler::event::Failure {
                agent_id: Some(fastdata_proto::v1::AgentId {
                    value: agent_id.clone(),
                }),
                executor_id: None,
                status: None,
            });
            self.send_to_framework(&framework_id, failure);
        }
        Ok(())
    }

    fn crash_agent(&mut self, now: Now, agent: usize, down: Duration) -> Result<(), String> {
        self.check_agent(agent)?;
        if !self.agents[agent].up {
            return Err(format!("agent {agent} is already down"));
        }
        self.close_executor_streams(agent);
        // Executors of non-checkpointing frameworks do not survive the agent.
        self.kill_agent_processes(agent, true);
        let generation = {
            let a = &mut self.agents[agent];
            a.up = false;
            a.generation += 1;
            a.generation
        };
        self.effect(Effect::AgentListener { agent, up: false });
        self.master.agents[agent].presence = Presence::Disconnected;
        self.rescind_offers_on(agent);
        self.set_timer(now.at + down, Timer::AgentRestart { agent, generation });
        Ok(())
    }

    pub(crate) fn agent_restarted(&mut self, now: Now, agent: usize, generation: u64) {
        let a = &mut self.agents[agent];
        if a.removed || a.generation != generation {
            return;
        }
        a.up = true;
        a.recovering = true;
        // Containers of non-checkpointing frameworks are not recovered.
        let frameworks = a.frameworks.clone();
        a.containers.retain(|_, c| {
            frameworks
                .get(&c.framework_id)
                .is_some_and(|f| f.info.checkpoint.unwrap_or(false))
        });
        self.effect(Effect::AgentListener { agent, up: true });
        let timeout = self.config.executor_reregistration_timeout;
        self.set_timer(
            now.at + timeout,
            Timer::ExecutorReregistration { agent, generation },
        );
    }

    /// End of the agent's recovery: executors that did not re-subscribe are destroyed, and
    /// the agent re-registers with the master.
    pub(crate) fn reregistration_timeout(&mut self, now: Now, agent: usize, generation: u64) {
        let a = &mut self.agents[agent];
        if a.removed || a.generation != generation || !a.up {
            return;
        }
        a.recovering = false;
        let mut kills = Vec::new();
        for c in a.containers.values_mut() {
            if c.kind == super::agent::ContainerKind::Custom
                && c.conn.is_none()
                && c.state != ContainerState::Terminated
            {
                c.set_termination(
                    TaskState::TaskFailed,
                    task_status::Reason::ExecutorReregistrationTimeout,
                    "Executor did not reregister within the executor reregistration timeout",
                );
                kills.extend(c.processes.iter().cloned());
            }
        }
        for process in kills {
            self.effect(Effect::Signal {
                agent,
                process,
                signal: Signal::Kill,
            });
        }
        self.agent_reregistered(now, agent);
    }

    /// The agent is back with the master: tasks it no longer has are lost, pending updates
    /// are resent, and its resources are offered again.
    fn agent_reregistered(&mut self, now: Now, agent: usize) {
        self.master.agents[agent].presence = Presence::Active;
        let agent_id = self.master.agents[agent].id.clone();
        let framework_ids: Vec<String> = self.master.frameworks.keys().cloned().collect();
        for framework_id in framework_ids {
            let known_to_agent: Vec<String> = self.agents[agent]
                .containers
                .values()
                .filter(|c| c.framework_id == framework_id)
                .flat_map(|c| c.tasks.keys().cloned())
                .collect();
            let framework = self
                .master
                .frameworks
                .get_mut(&framework_id)
                .expect("listed");
            let partition_aware = framework.partition_aware();
            let missing: Vec<String> = framework
                .tasks
                .iter()
                .filter(|(id, t)| {
                    t.agent == agent && !t.state.is_terminal() && !known_to_agent.contains(id)
                })
                .map(|(id, _)| id.clone())
                .collect();
            let mut released = Vec::new();
            // Executors the agent no longer runs (killed while it was down) are gone too.
            let live_executors: Vec<String> = self.agents[agent]
                .containers
                .values()
                .filter(|c| c.framework_id == framework_id && c.state != ContainerState::Terminated)
                .map(|c| c.executor_id.clone())
                .collect();
            let stale: Vec<(usize, String)> = framework
                .executors
                .keys()
                .filter(|(a, e)| *a == agent && !live_executors.contains(e))
                .cloned()
                .collect();
            for key in stale {
                if let Some(e) = framework.executors.remove(&key) {
                    released.extend(e.resources);
                }
            }
            let mut updates = Vec::new();
            for task_id in missing {
                let task = framework.tasks.remove(&task_id).expect("listed");
                released.extend(task.resources);
                let state = if partition_aware {
                    TaskState::TaskGone
                } else {
                    TaskState::TaskLost
                };
                updates.push(master_status(
                    now,
                    &task_id,
                    state,
                    Some(&agent_id),
                    "Task is unknown to the agent",
                    task_status::Reason::TaskUnknown,
                ));
            }
            self.release(agent, &released);
            for status in updates {
                self.send_to_framework(&framework_id, update_event(status));
            }
        }
        self.resend_pending(now, agent, None);
        self.allocate(now);
    }

    /// A master failover: streams end, offers and filters vanish, a new master id; agents
    /// re-register at once and resend what is pending.
    fn master_failover(&mut self, now: Now, leader: Option<MasterAddress>) {
        let conns: Vec<u64> = self.master.conns.keys().copied().collect();
        for conn in conns {
            self.effect(Effect::CloseStream { conn });
        }
        self.master.conns.clear();
        let framework_ids: Vec<String> = self.master.frameworks.keys().cloned().collect();
        for framework_id in &framework_ids {
            // The failover timeout is not persisted (MESOS-4659): frameworks wait for their
            // scheduler to re-subscribe.
            self.disconnect_framework(now, framework_id, false);
            if let Some(f) = self.master.frameworks.get_mut(framework_id) {
                f.filters.clear();
            }
        }
        let offer_ids: Vec<String> = self.master.offers.keys().cloned().collect();
        for id in offer_ids {
            self.remove_offer(&id);
        }
        self.leader = leader;
        let port = match leader {
            Some(MasterAddress::Standby) => self.ports.standby.unwrap_or(self.ports.master),
            _ => self.ports.master,
        };
        self.master.reelect(port);
        for agent in 0..self.agents.len() {
            if self.agents[agent].is_up() && self.master.agents[agent].presence == Presence::Active
            {
                self.resend_pending(now, agent, None);
            }
        }
    }

    /// The state document of `GET /state`: frameworks, agents, offers, tasks, reservations,
    /// volumes.
    pub fn state(&self) -> Json {
        let agent_id = |i: usize| self.master.agents[i].id.clone();
        let frameworks: Vec<Json> = self
            .master
            .frameworks
            .values()
            .map(|f| {
                let task_json = |t: &super::master::TaskRec| {
                    json!({
                        "id": t.info.task_id.value,
                        "name": t.info.name,
                        "state": t.state.as_str_name(),
                        "agent_id": agent_id(t.agent),
                        "executor_id": t.executor_id,
                        "resources": t.resources.iter().map(to_json).collect::<Vec<_>>(),
                    })
                };
                json!({
                    "id": f.id,
                    "name": f.info.name,
                    "user": f.info.user,
                    "principal": f.info.principal,
                    "roles": f.roles(),
                    "suppressed_roles": f.suppressed.iter().collect::<Vec<_>>(),
                    "capabilities": f.info.capabilities.iter()
                        .filter_map(|c| c.r#type)
                        .filter_map(|t| fastdata_proto::v1::framework_info::capability::Type::try_from(t).ok())
                        .map(|t| t.as_str_name())
                        .collect::<Vec<_>>(),
                    "failover_timeout": f.info.failover_timeout,
                    "checkpoint": f.info.checkpoint.unwrap_or(false),
                    "connected": f.conn.is_some(),
                    "stream_id": f.conn.as_ref().map(|c| c.stream_id.clone()),
                    "tasks": f.tasks.values().map(task_json).collect::<Vec<_>>(),
                    "unreachable_tasks": f.unreachable.values().map(task_json).collect::<Vec<_>>(),
                    "executors": f.executors.iter().map(|((a, e), rec)| json!({
                        "agent_id": agent_id(*a),
                        "executor_id": e,
                        "resources": rec.resources.iter().map(to_json).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                    "filters": f.filters.len(),
                })
            })
            .collect();
        let offers: Vec<Json> = self
            .master
            .offers
            .iter()
            .map(|(id, o)| {
                json!({
                    "id": id,
                    "framework_id": o.framework_id,
                    "agent_id": agent_id(o.agent),
                    "role": o.role,
                    "resources": o.resources.iter().map(to_json).collect::<Vec<_>>(),
                })
            })
            .collect();
        let mut reservations = Vec::new();
        let mut persistent_volumes = Vec::new();
        let agents: Vec<Json> = self
            .master
            .agents
            .iter()
            .enumerate()
            .map(|(i, a)| {
                for r in a.total.as_slice() {
                    if !r.reservations.is_empty() {
                        reservations.push(json!({"agent_id": a.id, "resource": to_json(r)}));
                    }
                    if let Some(p) = r.disk.as_ref().and_then(|d| d.persistence.as_ref()) {
                        let role = resources::reservation_role(r).unwrap_or("*");
                        persistent_volumes.push(json!({
                            "agent_id": a.id,
                            "role": role,
                            "persistence_id": p.id,
                            "container_path": r.disk.as_ref().and_then(|d| d.volume.as_ref()).map(|v| v.container_path.clone()),
                            "path": self.agents[i].volume_dir(role, &p.id),
                        }));
                    }
                }
                let agent = &self.agents[i];
                let presence = match a.presence {
                    Presence::Active => "active",
                    Presence::Disconnected => "disconnected",
                    Presence::Unreachable { .. } => "unreachable",
                    Presence::Gone => "gone",
                };
                json!({
                    "index": i,
                    "id": a.id,
                    "hostname": a.info.hostname,
                    "port": a.port,
                    "endpoint": format!("127.0.0.1:{}", a.port),
                    "zone": self.config.agents[i].zone,
                    "volume_drivers": self.config.agents[i].volume_drivers,
                    "presence": presence,
                    "up": agent.is_up(),
                    "recovering": agent.recovering,
                    "total": a.total.as_slice().iter().map(to_json).collect::<Vec<_>>(),
                    "used": a.used.as_slice().iter().map(to_json).collect::<Vec<_>>(),
                    "offered": a.offered.as_slice().iter().map(to_json).collect::<Vec<_>>(),
                    "available": a.available().as_slice().iter().map(to_json).collect::<Vec<_>>(),
                    "containers": agent.containers.values().map(|c| json!({
                        "id": c.id,
                        "framework_id": c.framework_id,
                        "executor_id": c.executor_id,
                        "kind": c.kind,
                        "state": c.state,
                        "pid": c.pid,
                        "sandbox": c.sandbox,
                        "subscribed": c.conn.is_some(),
                        "tasks": c.tasks.iter().map(|(id, t)| json!({
                            "id": id,
                            "state": t.state.as_str_name(),
                            "unacknowledged_updates": t.pending.len(),
                        })).collect::<Vec<_>>(),
                    })).collect::<Vec<_>>(),
                })
            })
            .collect();
        let tasks: Vec<Json> = self
            .master
            .frameworks
            .values()
            .flat_map(|f| {
                f.tasks.values().map(move |t| {
                    json!({
                        "id": t.info.task_id.value,
                        "framework_id": f.id,
                        "state": t.state.as_str_name(),
                        "agent_id": agent_id(t.agent),
                    })
                })
            })
            .collect();
        let docker_volumes: Vec<Json> = self
            .docker_volumes
            .iter()
            .map(|(name, path)| json!({"name": name, "path": path}))
            .collect();
        json!({
            "master": {
                "id": self.master.id,
                "leader": self.leader,
                "pid": format!("master@127.0.0.1:{}", self.master.port),
                "ports": self.ports,
            },
            "work_dir": self.work_dir,
            "frameworks": frameworks,
            "agents": agents,
            "offers": offers,
            "tasks": tasks,
            "reservations": reservations,
            "volumes": {
                "persistent": persistent_volumes,
                "docker": docker_volumes,
            },
        })
    }
}
