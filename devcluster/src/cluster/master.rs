//! The master's scheduler API: the HTTP rules in their Mesos order (reference 1.3),
//! subscriptions and failover (2.1, 2.2), the calls (2.3), status updates and
//! acknowledgements (2.4), reconciliation (2.6), and what the master does with the messages
//! of its agents. Offers are in [`super::allocator`], ACCEPT in [`super::operations`].

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::time::Duration;

use fastdata_proto::v1::{
    AgentId, AgentInfo, Attribute, DomainInfo, ExecutorId, ExecutorInfo, FrameworkId,
    FrameworkInfo, MasterInfo, Resource, TaskId, TaskInfo, TaskState, TaskStatus, TimeInfo,
    domain_info, framework_info, master_info,
    scheduler::{self, call, event},
    task_status, value,
};
use uuid::Uuid;

use super::{
    Cluster, ConnId, MasterAddress, Msg, Now, Reply, SchedulerRequest, Timer, ToAgent, ToMaster,
};
use crate::config::{AgentConfig, AttributeValue, ClusterConfig};
use crate::resources::{self, Resources};
use crate::wire::{self, Answer, Encoding};

/// Completed frameworks the master remembers (`--max_completed_frameworks`).
const MAX_COMPLETED_FRAMEWORKS: usize = 50;

/// Where the master believes an agent is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Presence {
    /// Registered and reachable.
    Active,
    /// Its connection broke (agent restarting); tasks are kept, no offers.
    Disconnected,
    /// Marked unreachable at this wall-clock time (agent removed).
    Unreachable { since_unix: f64 },
    /// Marked gone by the operator.
    Gone,
}

/// The master's view of one agent.
#[derive(Debug, Clone)]
pub(crate) struct MasterAgent {
    pub id: String,
    pub info: AgentInfo,
    pub port: u16,
    /// Total resources, post-refinement format, without allocation info; reservations and
    /// persistent volumes change it.
    pub total: Resources,
    /// Resources of live tasks and executors.
    pub used: Resources,
    /// Resources in outstanding offers.
    pub offered: Resources,
    pub presence: Presence,
}

impl MasterAgent {
    pub fn available(&self) -> Resources {
        let mut available = self.total.clone();
        // Invariant: used and offered are carved out of total by the master itself, so the
        // subtraction cannot fail; if it ever did, offering less is the safe outcome.
        let _ = available.subtract_all(self.used.as_slice());
        let _ = available.subtract_all(self.offered.as_slice());
        available
    }
}

/// One subscription stream.
#[derive(Debug, Clone)]
pub(crate) struct SchedulerConn {
    pub conn: ConnId,
    pub stream_id: String,
}

/// A task as the master knows it.
#[derive(Debug, Clone)]
pub(crate) struct TaskRec {
    pub info: TaskInfo,
    pub agent: usize,
    pub executor_id: Option<String>,
    pub state: TaskState,
    /// The latest status forwarded for it.
    pub status: Option<TaskStatus>,
    /// Resources it holds (with allocation info).
    pub resources: Vec<Resource>,
    /// Set while its agent is unreachable.
    pub unreachable_time: Option<TimeInfo>,
}

/// A custom (or default) executor the master accounted for.
#[derive(Debug, Clone)]
pub(crate) struct ExecutorRec {
    pub info: ExecutorInfo,
    pub resources: Vec<Resource>,
}

/// An offer filter from DECLINE or from the unused part of an ACCEPT.
#[derive(Debug, Clone)]
pub(crate) struct OfferFilter {
    pub role: String,
    pub agent: usize,
    pub resources: Resources,
    pub until: tokio::time::Instant,
}

/// A framework.
#[derive(Debug, Clone)]
pub(crate) struct Framework {
    pub id: String,
    pub info: FrameworkInfo,
    pub conn: Option<SchedulerConn>,
    /// Bumped at every (dis)connection, so stale failover timers are ignored.
    pub generation: u64,
    pub suppressed: BTreeSet<String>,
    pub tasks: BTreeMap<String, TaskRec>,
    /// Tasks whose agent is unreachable (partition-aware frameworks only).
    pub unreachable: BTreeMap<String, TaskRec>,
    pub executors: BTreeMap<(usize, String), ExecutorRec>,
    pub filters: Vec<OfferFilter>,
}

impl Framework {
    pub fn has(&self, cap: framework_info::capability::Type) -> bool {
        has_capability(&self.info, cap)
    }

    pub fn partition_aware(&self) -> bool {
        self.has(framework_info::capability::Type::PartitionAware)
    }

    /// The roles it is subscribed to.
    pub fn roles(&self) -> Vec<String> {
        framework_roles(&self.info)
    }
}

/// An outstanding offer.
#[derive(Debug, Clone)]
pub(crate) struct OfferRec {
    pub framework_id: String,
    pub agent: usize,
    pub role: String,
    /// Post-refinement format, with allocation info.
    pub resources: Vec<Resource>,
}

/// The master.
#[derive(Debug)]
pub(crate) struct MasterState {
    pub id: String,
    /// The id prefix of the agents (their ids outlive master restarts).
    agent_prefix: String,
    pub port: u16,
    next_framework: u32,
    pub next_offer: u64,
    pub frameworks: BTreeMap<String, Framework>,
    removed: VecDeque<String>,
    pub offers: BTreeMap<String, OfferRec>,
    pub agents: Vec<MasterAgent>,
    pub conns: HashMap<ConnId, String>,
    /// Where the next allocation round starts among frameworks (round robin).
    pub allocation_cursor: usize,
}

pub(crate) fn has_capability(info: &FrameworkInfo, cap: framework_info::capability::Type) -> bool {
    info.capabilities
        .iter()
        .any(|c| c.r#type == Some(cap as i32))
}

#[allow(deprecated)] // `role` is how a framework without MULTI_ROLE names its role
pub(crate) fn framework_roles(info: &FrameworkInfo) -> Vec<String> {
    if has_capability(info, framework_info::capability::Type::MultiRole) {
        info.roles.clone()
    } else {
        vec![info.role.clone().unwrap_or_else(|| "*".into())]
    }
}

pub(crate) fn scheduler_event(kind: event::Type) -> scheduler::Event {
    scheduler::Event {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

pub(crate) fn update_event(status: TaskStatus) -> scheduler::Event {
    scheduler::Event {
        update: Some(event::Update { status }),
        ..scheduler_event(event::Type::Update)
    }
}

/// A status update the master itself generates: SOURCE_MASTER, no uuid, not retried.
pub(crate) fn master_status(
    now: Now,
    task_id: &str,
    state: TaskState,
    agent_id: Option<&str>,
    message: &str,
    reason: task_status::Reason,
) -> TaskStatus {
    TaskStatus {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        state: state as i32,
        message: Some(message.to_owned()),
        source: Some(task_status::Source::Master as i32),
        reason: Some(reason as i32),
        agent_id: agent_id.map(|a| AgentId {
            value: a.to_owned(),
        }),
        timestamp: Some(now.unix),
        ..Default::default()
    }
}

/// A role name as Mesos validates it (M: src/common/roles.cpp `validate`).
fn validate_role(role: &str) -> Result<(), String> {
    if role == "*" {
        return Ok(());
    }
    if role.is_empty() {
        return Err("Empty role name is invalid".into());
    }
    if role.starts_with('/') {
        return Err(format!("Role '{role}' cannot start with a slash"));
    }
    if role.ends_with('/') {
        return Err(format!("Role '{role}' cannot end with a slash"));
    }
    for component in role.split('/') {
        if component.is_empty() {
            return Err(format!("Role '{role}' cannot contain two adjacent slashes"));
        }
        if component == "." || component == ".." {
            return Err(format!(
                "Role '{role}' cannot include '.' or '..' as a component"
            ));
        }
        if component.starts_with('-') {
            return Err(format!(
                "Role component '{component}' is invalid because it starts with a dash"
            ));
        }
        if component
            .chars()
            .any(|c| c.is_whitespace() || c.is_control() || c == '\\' || c == '*')
        {
            return Err(format!(
                "Role '{role}' cannot include whitespace, '\\', '*' or control characters"
            ));
        }
    }
    Ok(())
}

/// The FrameworkInfo rules that end a subscription with an ERROR event rather than an HTTP
/// error (M: src/master/validation.cpp `framework::validate`, reference 2.1).
#[allow(deprecated)] // the rule is about the deprecated `role` field
pub(crate) fn validate_framework_info(
    info: &FrameworkInfo,
    suppressed: &[String],
) -> Result<(), String> {
    let multi_role = has_capability(info, framework_info::capability::Type::MultiRole);
    if multi_role && info.role.is_some() {
        return Err(
            "'FrameworkInfo.role' must not be set when the framework is MULTI_ROLE capable".into(),
        );
    }
    if !multi_role && !info.roles.is_empty() {
        return Err(
            "'FrameworkInfo.roles' must not be set when the framework is not MULTI_ROLE capable"
                .into(),
        );
    }
    let mut seen = BTreeSet::new();
    let duplicates: Vec<&String> = info.roles.iter().filter(|r| !seen.insert(*r)).collect();
    if !duplicates.is_empty() {
        return Err(format!(
            "'FrameworkInfo.roles' contains duplicate items: {{ {} }}",
            duplicates
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for role in framework_roles(info) {
        validate_role(&role)?;
    }
    if let Some(t) = info.failover_timeout
        && (!t.is_finite() || t < 0.0)
    {
        return Err(format!(
            "Invalid 'FrameworkInfo.failover_timeout': {t} is not a valid duration"
        ));
    }
    let roles = framework_roles(info);
    for role in suppressed {
        if !roles.contains(role) {
            return Err(format!(
                "Suppressed role '{role}' is not contained in the list of roles"
            ));
        }
    }
    Ok(())
}

/// MasterInfo as the recorded master sent it (`scheduler.jsonl` SUBSCRIBED).
pub(crate) fn master_info(id: &str, port: u16) -> MasterInfo {
    MasterInfo {
        id: id.to_owned(),
        // 127.0.0.1 as the in_addr Mesos stores (network byte order read as little-endian).
        ip: u32::from_le_bytes([127, 0, 0, 1]),
        port: u32::from(port),
        pid: Some(format!("master@127.0.0.1:{port}")),
        hostname: Some("localhost".into()),
        version: Some("1.12.0".into()),
        address: Some(fastdata_proto::v1::Address {
            hostname: Some("localhost".into()),
            ip: Some("127.0.0.1".into()),
            port: i32::from(port),
        }),
        domain: None,
        capabilities: [
            master_info::capability::Type::AgentUpdate,
            master_info::capability::Type::AgentDraining,
            master_info::capability::Type::QuotaV2,
        ]
        .into_iter()
        .map(|t| master_info::Capability {
            r#type: Some(t as i32),
        })
        .collect(),
    }
}

/// The AgentInfo an agent registers with (resources as `--resources` lists them).
pub(crate) fn agent_info(id: &str, config: &AgentConfig, port: u16) -> AgentInfo {
    let mut resources = vec![
        resources::scalar_resource("cpus", config.cpus),
        resources::scalar_resource("mem", config.mem),
        resources::scalar_resource("disk", config.disk),
    ];
    if !config.ports.is_empty() {
        resources.push(resources::ranges_resource("ports", &config.ports));
    }
    let attributes = config
        .attributes
        .iter()
        .map(|(name, v)| match v {
            AttributeValue::Scalar(x) => Attribute {
                name: name.clone(),
                r#type: value::Type::Scalar as i32,
                scalar: Some(value::Scalar { value: *x }),
                ..Default::default()
            },
            AttributeValue::Text(t) => Attribute {
                name: name.clone(),
                r#type: value::Type::Text as i32,
                text: Some(value::Text { value: t.clone() }),
                ..Default::default()
            },
        })
        .collect();
    let domain = config.zone.as_ref().map(|zone| DomainInfo {
        fault_domain: Some(domain_info::FaultDomain {
            region: domain_info::fault_domain::RegionInfo {
                name: config.region.clone(),
            },
            zone: domain_info::fault_domain::ZoneInfo { name: zone.clone() },
        }),
    });
    AgentInfo {
        hostname: config.hostname.clone(),
        port: Some(i32::from(port)),
        resources,
        attributes,
        id: Some(AgentId {
            value: id.to_owned(),
        }),
        domain,
    }
}

impl MasterState {
    pub fn new(config: &ClusterConfig, port: u16) -> MasterState {
        let id = Uuid::new_v4().to_string();
        let _ = config;
        MasterState {
            agent_prefix: id.clone(),
            id,
            port,
            next_framework: 0,
            next_offer: 0,
            frameworks: BTreeMap::new(),
            removed: VecDeque::new(),
            offers: BTreeMap::new(),
            agents: Vec::new(),
            conns: HashMap::new(),
            allocation_cursor: 0,
        }
    }

    pub fn agent_id(&self, i: usize) -> String {
        format!("{}-S{i}", self.agent_prefix)
    }

    pub fn agent_index(&self, id: &str) -> Option<usize> {
        self.agents.iter().position(|a| a.id == id)
    }

    pub fn agent_reachable(&self, i: usize) -> bool {
        self.agents
            .get(i)
            .is_some_and(|a| a.presence == Presence::Active)
    }

    pub fn info(&self) -> MasterInfo {
        master_info(&self.id, self.port)
    }

    /// A new master id (after a master failover); framework and agent ids keep theirs.
    pub fn reelect(&mut self, port: u16) {
        self.id = Uuid::new_v4().to_string();
        self.port = port;
    }

    fn is_removed(&self, id: &str) -> bool {
        self.removed.iter().any(|r| r == id)
    }

    fn remember_removed(&mut self, id: String) {
        self.removed.push_back(id);
        while self.removed.len() > MAX_COMPLETED_FRAMEWORKS {
            self.removed.pop_front();
        }
    }
}

impl Cluster {
    pub(crate) fn master_add_agent(&mut self, i: usize) {
        let id = self.master.agent_id(i);
        let port = self.ports.agents.get(i).copied().unwrap_or(5051);
        let info = agent_info(&id, &self.config.agents[i], port);
        // Offers list ports first, as the recorded master did.
        let mut total = Resources::new();
        for r in info.resources.iter().filter(|r| r.name == "ports") {
            total.add(r);
        }
        for r in info.resources.iter().filter(|r| r.name != "ports") {
            total.add(r);
        }
        self.master.agents.push(MasterAgent {
            id,
            info,
            port,
            total,
            used: Resources::new(),
            offered: Resources::new(),
            presence: Presence::Active,
        });
    }

    pub(crate) fn send_to_framework(&mut self, framework_id: &str, event: scheduler::Event) {
        if let Some(conn) = self
            .master
            .frameworks
            .get(framework_id)
            .and_then(|f| f.conn.as_ref())
            .map(|c| c.conn)
        {
            self.effect(super::Effect::SchedulerEvent { conn, event });
        }
    }

    /// The scheduler endpoint, in the order of `Master::Http::scheduler`.
    pub(crate) fn master_request(
        &mut self,
        now: Now,
        address: MasterAddress,
        req: SchedulerRequest<'_>,
    ) -> Reply {
        // Authentication happens in libprocess before the handler runs.
        let principal = if self.config.credentials.is_empty() {
            None
        } else {
            match wire::basic_principal(req.authorization, &self.config.credentials) {
                Some(p) => Some(p),
                None => return Reply::Answer(Answer::unauthorized("mesos-master-scheduler")),
            }
        };
        match self.leader {
            Some(leader) if leader == address => {}
            Some(leader) => {
                let port = match leader {
                    MasterAddress::Primary => self.ports.master,
                    MasterAddress::Standby => self.ports.standby.unwrap_or(self.ports.master),
                };
                // `redirect.jsonl`: hostname `localhost` and a `/master` prefix on the path.
                return Reply::Answer(Answer::redirect(format!(
                    "//localhost:{port}/master/api/v1/scheduler"
                )));
            }
            None => return Reply::Answer(Answer::text(503, "No leader elected")),
        }
        let decoded = match wire::decode_scheduler_call(req.parts) {
            Ok(d) => d,
            Err(answer) => return Reply::Answer(answer),
        };
        let call = decoded.call;
        let kind = call
            .r#type
            .and_then(|t| call::Type::try_from(t).ok())
            .unwrap_or(call::Type::Unknown);
        if kind == call::Type::Subscribe {
            // Part of call validation in Mesos, hence the prefix (`auth-basic.jsonl`).
            if let (Some(p), Some(fp)) = (
                &principal,
                call.subscribe
                    .as_ref()
                    .and_then(|s| s.framework_info.principal.as_ref()),
            ) && p != fp
            {
                return Reply::Answer(Answer::bad_request(format!(
                    "Failed to validate scheduler::Call: Authenticated principal '{p}' does not match principal '{fp}' set in `FrameworkInfo`"
                )));
            }
            let encoding = match wire::response_encoding(req.parts.accept) {
                Ok(e) => e,
                Err(answer) => return Reply::Answer(answer),
            };
            if req.stream_id.is_some() {
                return Reply::Answer(Answer::bad_request(
                    "Subscribe calls should not include the 'Mesos-Stream-Id' header",
                ));
            }
            return self.subscribe(now, call, encoding, req.conn);
        }
        let framework_id = call
            .framework_id
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let Some(framework) = self.master.frameworks.get(&framework_id) else {
            return Reply::Answer(Answer::bad_request("Framework cannot be found"));
        };
        if let Some(p) = &principal {
            let fp = framework.info.principal.clone().unwrap_or_default();
            if *p != fp {
                return Reply::Answer(Answer::bad_request(format!(
                    "Authenticated principal '{p}' does not match principal '{fp}' set in `FrameworkInfo`"
                )));
            }
        }
        let Some(conn) = &framework.conn else {
            return Reply::Answer(Answer::text(403, "Framework is not subscribed"));
        };
        let Some(stream_id) = req.stream_id else {
            return Reply::Answer(Answer::bad_request(
                "All non-subscribe calls should include the 'Mesos-Stream-Id' header",
            ));
        };
        if stream_id != conn.stream_id {
            return Reply::Answer(Answer::bad_request(format!(
                "The stream ID '{stream_id}' included in this request didn't match the stream ID currently associated with framework ID {framework_id}"
            )));
        }
        let answer = self.framework_call(now, &framework_id, kind, call);
        Reply::Answer(answer)
    }

    fn framework_call(
        &mut self,
        now: Now,
        framework_id: &str,
        kind: call::Type,
        call: scheduler::Call,
    ) -> Answer {
        match kind {
            call::Type::Teardown => {
                self.remove_framework(now, framework_id);
            }
            call::Type::Accept => {
                if let Some(accept) = call.accept {
                    self.accept(now, framework_id, accept);
                }
            }
            call::Type::Decline => {
                if let Some(decline) = call.decline {
                    let refuse = self.filter_duration(decline.filters.as_ref());
                    for offer_id in &decline.offer_ids {
                        self.decline_offer(now, framework_id, &offer_id.value, refuse);
                    }
                }
            }
            call::Type::Revive => {
                let roles = call.revive.map(|r| r.roles).unwrap_or_default();
                self.revive(now, framework_id, roles);
            }
            call::Type::Suppress => {
                let roles = call.suppress.map(|r| r.roles).unwrap_or_default();
                self.suppress(framework_id, roles);
            }
            call::Type::Kill => {
                if let Some(kill) = call.kill {
                    self.kill(now, framework_id, kill);
                }
            }
            call::Type::Shutdown => {
                if let Some(shutdown) = call.shutdown
                    && let Some(agent) = self.master.agent_index(&shutdown.agent_id.value)
                {
                    self.send(Msg::ToAgent(
                        agent,
                        ToAgent::ShutdownExecutor {
                            framework_id: framework_id.to_owned(),
                            executor_id: shutdown.executor_id.value,
                        },
                    ));
                }
            }
            call::Type::Acknowledge => {
                if let Some(ack) = call.acknowledge {
                    self.acknowledge(framework_id, ack);
                }
            }
            call::Type::Reconcile => {
                if let Some(reconcile) = call.reconcile {
                    self.reconcile(now, framework_id, &reconcile);
                }
            }
            call::Type::Message => {
                if let Some(message) = call.message
                    && let Some(agent) = self.master.agent_index(&message.agent_id.value)
                {
                    self.send(Msg::ToAgent(
                        agent,
                        ToAgent::FrameworkMessage {
                            framework_id: framework_id.to_owned(),
                            executor_id: message.executor_id.value,
                            data: message.data,
                        },
                    ));
                }
            }
            call::Type::UpdateFramework => {
                if let Some(update) = call.update_framework {
                    return self.update_framework(now, framework_id, update);
                }
            }
            // Ignored by the built-in allocator (REQUEST); devcluster schedules no
            // maintenance (inverse offers) and offers no operation feedback, so there is
            // nothing to answer for the operation calls.
            call::Type::Request
            | call::Type::AcceptInverseOffers
            | call::Type::DeclineInverseOffers
            | call::Type::AcknowledgeOperationStatus
            | call::Type::ReconcileOperations => {}
            call::Type::Unknown => return Answer::not_implemented(),
            call::Type::Subscribe => {}
        }
        Answer::accepted()
    }

    /// SUBSCRIBE (reference 2.1). The answer is always a stream; FrameworkInfo problems
    /// arrive on it as one ERROR event before it closes.
    fn subscribe(
        &mut self,
        now: Now,
        call: scheduler::Call,
        encoding: Encoding,
        conn: ConnId,
    ) -> Reply {
        let stream_id = Uuid::new_v4().to_string();
        let reply = Reply::Stream {
            encoding,
            stream_id: Some(stream_id.clone()),
        };
        let Some(subscribe) = call.subscribe else {
            return reply;
        };
        let mut info = subscribe.framework_info;
        if let Err(message) = validate_framework_info(&info, &subscribe.suppressed_roles) {
            self.refuse_subscription(conn, message);
            return reply;
        }
        let requested = info.id.as_ref().map(|id| id.value.clone());
        let framework_id = match requested {
            Some(id) if self.master.is_removed(&id) => {
                self.refuse_subscription(conn, "Framework has been removed".into());
                return reply;
            }
            Some(id) => id,
            None => {
                let id = format!("{}-{:04}", self.master.id, self.master.next_framework);
                self.master.next_framework += 1;
                id
            }
        };
        info.id = Some(FrameworkId {
            value: framework_id.clone(),
        });
        let existing = self.master.frameworks.contains_key(&framework_id);
        if existing {
            let old = &self.master.frameworks[&framework_id];
            if old.info.principal != info.principal {
                self.refuse_subscription(
                    conn,
                    "Changing framework's principal is not allowed.".into(),
                );
                return reply;
            }
            // `preserveImmutableFields`: user and checkpoint cannot change on re-subscribe.
            info.user = old.info.user.clone();
            info.checkpoint = old.info.checkpoint;
            if let Some(old_conn) = old.conn.clone() {
                // MESOS-4712: always fail over the old connection.
                let mut error = scheduler_event(event::Type::Error);
                error.error = Some(event::Error {
                    message: "Framework failed over".into(),
                });
                self.effect(super::Effect::SchedulerEvent {
                    conn: old_conn.conn,
                    event: error,
                });
                self.effect(super::Effect::CloseStream {
                    conn: old_conn.conn,
                });
                self.master.conns.remove(&old_conn.conn);
            }
            // Outstanding offers are discarded without RESCIND.
            self.discard_offers_of(&framework_id);
            let framework = self
                .master
                .frameworks
                .get_mut(&framework_id)
                .expect("checked above");
            framework.info = info.clone();
            framework.suppressed = subscribe.suppressed_roles.iter().cloned().collect();
            let roles = framework.roles();
            framework.filters.retain(|f| roles.contains(&f.role));
        } else {
            self.master.frameworks.insert(
                framework_id.clone(),
                Framework {
                    id: framework_id.clone(),
                    info: info.clone(),
                    conn: None,
                    generation: 0,
                    suppressed: subscribe.suppressed_roles.iter().cloned().collect(),
                    tasks: BTreeMap::new(),
                    unreachable: BTreeMap::new(),
                    executors: BTreeMap::new(),
                    filters: Vec::new(),
                },
            );
        }
        let framework = self
            .master
            .frameworks
            .get_mut(&framework_id)
            .expect("inserted above");
        framework.conn = Some(super::master::SchedulerConn { conn, stream_id });
        framework.generation += 1;
        self.master.conns.insert(conn, framework_id.clone());

        let mut subscribed = scheduler_event(event::Type::Subscribed);
        subscribed.subscribed = Some(event::Subscribed {
            framework_id: FrameworkId {
                value: framework_id.clone(),
            },
            heartbeat_interval_seconds: Some(self.config.heartbeat_interval.as_secs_f64()),
            master_info: Some(self.master.info()),
        });
        self.effect(super::Effect::SchedulerEvent {
            conn,
            event: subscribed,
        });
        // The heartbeater fires at once, then every interval.
        self.effect(super::Effect::SchedulerEvent {
            conn,
            event: scheduler_event(event::Type::Heartbeat),
        });
        let interval = self.config.heartbeat_interval;
        self.set_timer(
            now.at + interval,
            Timer::Heartbeat {
                framework_id: framework_id.clone(),
                conn,
            },
        );
        if existing {
            // Pending status updates go to the new instance (`SchedulerFailoverStatusUpdate`).
            for i in 0..self.agents.len() {
                self.send(Msg::ToAgent(
                    i,
                    ToAgent::FrameworkReconnected {
                        framework_id: framework_id.clone(),
                        framework: info.clone(),
                    },
                ));
            }
        }
        self.allocate(now);
        reply
    }

    fn refuse_subscription(&mut self, conn: ConnId, message: String) {
        let mut error = scheduler_event(event::Type::Error);
        error.error = Some(event::Error { message });
        self.effect(super::Effect::SchedulerEvent { conn, event: error });
        self.effect(super::Effect::CloseStream { conn });
    }

    pub(crate) fn heartbeat(&mut self, now: Now, framework_id: &str, conn: ConnId) {
        let connected = self
            .master
            .frameworks
            .get(framework_id)
            .and_then(|f| f.conn.as_ref())
            .is_some_and(|c| c.conn == conn);
        if !connected {
            return;
        }
        self.effect(super::Effect::SchedulerEvent {
            conn,
            event: scheduler_event(event::Type::Heartbeat),
        });
        let interval = self.config.heartbeat_interval;
        self.set_timer(
            now.at + interval,
            Timer::Heartbeat {
                framework_id: framework_id.to_owned(),
                conn,
            },
        );
    }

    /// The subscription connection closed: the framework is disconnected, its offers go
    /// away, and it is removed after its failover timeout (reference 2.2).
    pub(crate) fn master_stream_closed(&mut self, now: Now, conn: ConnId) {
        let Some(framework_id) = self.master.conns.remove(&conn) else {
            return;
        };
        self.disconnect_framework(now, &framework_id, true);
    }

    /// Marks a framework disconnected; with `start_failover`, schedules its removal.
    pub(crate) fn disconnect_framework(
        &mut self,
        now: Now,
        framework_id: &str,
        start_failover: bool,
    ) {
        let Some(framework) = self.master.frameworks.get_mut(framework_id) else {
            return;
        };
        if let Some(c) = framework.conn.take() {
            self.master.conns.remove(&c.conn);
        }
        framework.generation += 1;
        let generation = framework.generation;
        let timeout = framework.info.failover_timeout.unwrap_or(0.0);
        self.discard_offers_of(framework_id);
        if start_failover {
            // Durations beyond a year are as good as forever for a devcluster.
            if let Ok(d) = Duration::try_from_secs_f64(timeout)
                && d < Duration::from_secs(365 * 24 * 3600)
            {
                self.set_timer(
                    now.at + d,
                    Timer::FailoverTimeout {
                        framework_id: framework_id.to_owned(),
                        generation,
                    },
                );
            }
        }
    }

    pub(crate) fn failover_timeout(&mut self, now: Now, framework_id: &str, generation: u64) {
        let expired = self
            .master
            .frameworks
            .get(framework_id)
            .is_some_and(|f| f.conn.is_none() && f.generation == generation);
        if expired {
            self.remove_framework(now, framework_id);
        }
    }

    /// TEARDOWN or failover timeout: kill everything of the framework and forget it.
    pub(crate) fn remove_framework(&mut self, _now: Now, framework_id: &str) {
        self.discard_offers_of(framework_id);
        let Some(framework) = self.master.frameworks.remove(framework_id) else {
            return;
        };
        if let Some(c) = &framework.conn {
            self.master.conns.remove(&c.conn);
            self.effect(super::Effect::CloseStream { conn: c.conn });
        }
        let mut agents = BTreeSet::new();
        for task in framework.tasks.values() {
            agents.insert(task.agent);
            if !task.state.is_terminal() {
                self.release(task.agent, &task.resources);
            }
        }
        for ((agent, _), executor) in &framework.executors {
            agents.insert(*agent);
            self.release(*agent, &executor.resources);
        }
        for agent in agents {
            self.send(Msg::ToAgent(
                agent,
                ToAgent::ShutdownFramework {
                    framework_id: framework_id.to_owned(),
                },
            ));
        }
        self.master.remember_removed(framework_id.to_owned());
    }

    /// Gives resources held by a task or executor back to the agent's free pool.
    pub(crate) fn release(&mut self, agent: usize, held: &[Resource]) {
        if let Some(a) = self.master.agents.get_mut(agent) {
            let stripped: Vec<Resource> = held.iter().map(resources::unallocated).collect();
            let _ = a.used.subtract_all(&stripped);
        }
    }

    fn kill(&mut self, now: Now, framework_id: &str, kill: call::Kill) {
        let task_id = kill.task_id.value.clone();
        let framework = &self.master.frameworks[framework_id];
        match framework.tasks.get(&task_id) {
            Some(task) => {
                let agent = task.agent;
                if let Some(given) = &kill.agent_id
                    && given.value != self.master.agents[agent].id
                {
                    return;
                }
                if task.state.is_terminal() {
                    return;
                }
                self.send(Msg::ToAgent(
                    agent,
                    ToAgent::KillTask {
                        framework_id: framework_id.to_owned(),
                        task_id,
                        kill_policy: kill.kill_policy,
                    },
                ));
            }
            None => {
                // An unknown task is reconciled explicitly instead (reference 2.3 KILL).
                let reconcile = call::Reconcile {
                    tasks: vec![call::reconcile::Task {
                        task_id: kill.task_id,
                        agent_id: kill.agent_id,
                    }],
                };
                self.reconcile(now, framework_id, &reconcile);
            }
        }
    }

    fn acknowledge(&mut self, framework_id: &str, ack: call::Acknowledge) {
        let Some(agent) = self.master.agent_index(&ack.agent_id.value) else {
            return;
        };
        let framework = self
            .master
            .frameworks
            .get_mut(framework_id)
            .expect("checked by the caller");
        let task_id = ack.task_id.value.clone();
        // The master forgets a task once its terminal update is acknowledged.
        let done = framework.tasks.get(&task_id).is_some_and(|t| {
            t.state.is_terminal()
                && t.status.as_ref().and_then(|s| s.uuid.as_ref()) == Some(&ack.uuid)
                && t.status
                    .as_ref()
                    .and_then(|s| TaskState::try_from(s.state).ok())
                    .is_some_and(TaskState::is_terminal)
        });
        if done {
            framework.tasks.remove(&task_id);
        }
        self.send(Msg::ToAgent(
            agent,
            ToAgent::Acknowledge {
                framework_id: framework_id.to_owned(),
                task_id,
                uuid: ack.uuid,
            },
        ));
    }

    /// RECONCILE (reference 2.6, with the states and messages `scheduler.jsonl` and
    /// `faults-agent-lost.jsonl` recorded).
    pub(crate) fn reconcile(&mut self, now: Now, framework_id: &str, reconcile: &call::Reconcile) {
        let framework = &self.master.frameworks[framework_id];
        let partition_aware = framework.partition_aware();
        let mut updates = Vec::new();
        if reconcile.tasks.is_empty() {
            for task in framework.tasks.values() {
                if self.master.agents[task.agent].presence == Presence::Active {
                    updates.push(self.latest_state_status(now, task));
                }
            }
        } else {
            for wanted in &reconcile.tasks {
                let task_id = &wanted.task_id.value;
                let given_agent = wanted.agent_id.as_ref().map(|a| a.value.as_str());
                if let Some(task) = framework.tasks.get(task_id)
                    && given_agent.is_none_or(|a| a == self.master.agents[task.agent].id)
                {
                    if self.master.agents[task.agent].presence == Presence::Disconnected {
                        continue; // agent not yet re-registered: no reply, retry later
                    }
                    updates.push(self.latest_state_status(now, task));
                    continue;
                }
                let lost = |state: TaskState| {
                    if partition_aware {
                        state
                    } else {
                        TaskState::TaskLost
                    }
                };
                let Some(agent_id) = given_agent else {
                    updates.push(master_status(
                        now,
                        task_id,
                        lost(TaskState::TaskUnknown),
                        None,
                        "Reconciliation: Task is unknown",
                        task_status::Reason::Reconciliation,
                    ));
                    continue;
                };
                let status = match self
                    .master
                    .agent_index(agent_id)
                    .map(|i| &self.master.agents[i])
                {
                    Some(agent) => match agent.presence {
                        Presence::Active => master_status(
                            now,
                            task_id,
                            lost(TaskState::TaskGone),
                            Some(agent_id),
                            "Reconciliation: Task is unknown to the agent",
                            task_status::Reason::Reconciliation,
                        ),
                        Presence::Disconnected => continue,
                        Presence::Unreachable { since_unix } => {
                            let mut s = master_status(
                                now,
                                task_id,
                                lost(TaskState::TaskUnreachable),
                                Some(agent_id),
                                "Reconciliation: Task is unreachable",
                                task_status::Reason::Reconciliation,
                            );
                            let recorded = framework
                                .unreachable
                                .get(task_id)
                                .and_then(|t| t.unreachable_time);
                            s.unreachable_time = Some(recorded.unwrap_or(TimeInfo {
                                nanoseconds: (since_unix * 1e9) as i64,
                            }));
                            s
                        }
                        Presence::Gone => master_status(
                            now,
                            task_id,
                            lost(TaskState::TaskGoneByOperator),
                            Some(agent_id),
                            "Reconciliation: Task is gone",
                            task_status::Reason::Reconciliation,
                        ),
                    },
                    None => master_status(
                        now,
                        task_id,
                        lost(TaskState::TaskUnknown),
                        Some(agent_id),
                        "Reconciliation: Task is unknown",
                        task_status::Reason::Reconciliation,
                    ),
                };
                updates.push(status);
            }
        }
        for status in updates {
            self.send_to_framework(framework_id, update_event(status));
        }
    }

    /// "Reconciliation: Latest task state": state, agent and container status only.
    fn latest_state_status(&self, now: Now, task: &TaskRec) -> TaskStatus {
        let mut status = master_status(
            now,
            &task.info.task_id.value,
            task.state,
            Some(&self.master.agents[task.agent].id),
            "Reconciliation: Latest task state",
            task_status::Reason::Reconciliation,
        );
        if let Some(latest) = &task.status {
            status.container_status = latest.container_status.clone();
            status.healthy = latest.healthy;
            status.check_status = latest.check_status;
        }
        status
    }

    fn update_framework(
        &mut self,
        now: Now,
        framework_id: &str,
        update: call::UpdateFramework,
    ) -> Answer {
        let info = update.framework_info;
        if let Err(e) = validate_framework_info(&info, &update.suppressed_roles) {
            return Answer::bad_request(e);
        }
        let old = self.master.frameworks[framework_id].info.clone();
        if old.principal != info.principal {
            return Answer::bad_request("Changing framework's principal is not allowed.");
        }
        if old.user != info.user {
            return Answer::bad_request(format!(
                "Updating 'FrameworkInfo.user' is unsupported; attempted to update from '{}' to '{}'",
                old.user, info.user
            ));
        }
        if old.checkpoint.unwrap_or(false) != info.checkpoint.unwrap_or(false) {
            return Answer::bad_request("Updating 'FrameworkInfo.checkpoint' is unsupported");
        }
        let new_roles = framework_roles(&info);
        let gone_offers: Vec<String> = self
            .master
            .offers
            .iter()
            .filter(|(_, o)| o.framework_id == framework_id && !new_roles.contains(&o.role))
            .map(|(id, _)| id.clone())
            .collect();
        for offer_id in gone_offers {
            self.rescind_offer(&offer_id);
        }
        let framework = self
            .master
            .frameworks
            .get_mut(framework_id)
            .expect("checked by the caller");
        let newly_unsuppressed: Vec<String> = framework
            .suppressed
            .iter()
            .filter(|r| !update.suppressed_roles.contains(r))
            .cloned()
            .collect();
        framework
            .filters
            .retain(|f| new_roles.contains(&f.role) && !newly_unsuppressed.contains(&f.role));
        framework.suppressed = update.suppressed_roles.into_iter().collect();
        framework.info = info;
        self.allocate(now);
        Answer::ok_empty()
    }

    /// A message from agent `agent`.
    pub(crate) fn master_receive(&mut self, _now: Now, agent: usize, msg: ToMaster) {
        match msg {
            ToMaster::StatusUpdate {
                framework_id,
                status,
                latest_state,
            } => {
                let Some(framework) = self.master.frameworks.get_mut(&framework_id) else {
                    return;
                };
                let latest = TaskState::try_from(latest_state).unwrap_or(TaskState::TaskUnknown);
                let mut release = None;
                if let Some(task) = framework.tasks.get_mut(&status.task_id.value) {
                    if !task.state.is_terminal() && latest.is_terminal() {
                        release = Some(task.resources.clone());
                    }
                    task.state = latest;
                    task.status = Some(status.clone());
                }
                if let Some(held) = release {
                    self.release(agent, &held);
                }
                self.send_to_framework(&framework_id, update_event(status));
            }
            ToMaster::ExecutorMessage {
                framework_id,
                executor_id,
                data,
            } => {
                let mut message = scheduler_event(event::Type::Message);
                message.message = Some(event::Message {
                    agent_id: AgentId {
                        value: self.master.agents[agent].id.clone(),
                    },
                    executor_id: ExecutorId { value: executor_id },
                    data,
                });
                self.send_to_framework(&framework_id, message);
            }
            ToMaster::ExitedExecutor {
                framework_id,
                executor_id,
                status,
            } => {
                let Some(framework) = self.master.frameworks.get_mut(&framework_id) else {
                    return;
                };
                let held = framework
                    .executors
                    .remove(&(agent, executor_id.clone()))
                    .map(|e| e.resources);
                if let Some(held) = held {
                    self.release(agent, &held);
                }
                let mut failure = scheduler_event(event::Type::Failure);
                failure.failure = Some(event::Failure {
                    agent_id: Some(AgentId {
                        value: self.master.agents[agent].id.clone(),
                    }),
                    executor_id: Some(ExecutorId { value: executor_id }),
                    status,
                });
                self.send_to_framework(&framework_id, failure);
            }
        }
    }
}
