//! [`Framework`]: the scheduler's slot lifecycle as a state machine.
//!
//! Inputs are Mesos events (through [`Framework::on_event`] and friends), the policy's target
//! ([`Framework::set_target`]) and the passing of time ([`Framework::tick`]); each returns
//! [`Effects`]: ZooKeeper writes to make first, then Mesos calls to send, in order. The run loop
//! carries them out. Nothing here does I/O or reads a clock, so every rule below is tested
//! with plain values.
//!
//! The rules, level-triggered (every tick and every event compares wanted with actual):
//! - **Slots follow the target.** Consumer slots `0..target` and producer slots
//!   `0..producer_count` should run; the others are removed from the highest index down.
//! - **Reconcile before acting.** On every subscription the tasks the scheduler knows are
//!   reconciled explicitly (retried with backoff until each has an answer); until then every
//!   offer is declined. Then implicit reconciliation runs periodically. A restarted scheduler
//!   thus adopts its running tasks and launches nothing twice (the task id is persisted before
//!   the LAUNCH is sent).
//! - **Growing** reserves the slot's resources and launches on them in one ACCEPT
//!   ([`super::matcher`]). **Shrinking** kills with the kill policy's grace period (re-sent
//!   until the task is gone), then unreserves when the resources are offered back, then forgets
//!   the slot. The volume stays for the next time the slot is used.
//! - **Failures**: a failed task is relaunched in its slot, on its reservation when its agent
//!   is alive, after a per-slot exponential backoff (reset once a task ran for a minute); a task
//!   lost with its agent is relaunched elsewhere at once. A task that shows up without being
//!   the current task of its slot is killed.
//! - **Offers**: SUPPRESS when nothing is needed (and decline long); REVIVE, rate-limited,
//!   when something is. Every offer's outcome is kept (bounded) with the reason it was
//!   declined.
//! - **Acknowledgements**: exactly the updates that carry a UUID.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet, VecDeque};

use fastdata_proto::task::StatsReport;
use fastdata_proto::v1::{
    AgentId, Filters, Offer, OfferId, TaskId, TaskState, TaskStatus,
    offer::{Operation, operation},
    scheduler::{self, call, event},
    task_status::Reason,
};
use rand::{Rng as _, SeedableRng as _, rngs::SmallRng};
use tokio::time::{Duration, Instant};

use super::matcher::{self, Demand, LaunchNeed, Planned, Rules};
use super::resources::{Amount, ReservationLabels, resources};
use super::slots::{
    Goal, Reservation, Slot, SlotKind, SlotName, SlotRecord, is_away, relaunch_backoff,
};
use super::tasks::{TaskTemplate, kill_policy, split};
use crate::status::{Counters, OfferOutcome, PlanStatus, TaskView};

/// The moment an input happens: monotonic for timers, wall clock for what is shown.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Now {
    /// Monotonic time.
    pub at: Instant,
    /// Milliseconds since the Unix epoch.
    pub unix_ms: u64,
}

/// Timings and limits of the lifecycle.
#[derive(Debug, Clone, PartialEq)]
pub struct Timings {
    /// Implicit reconciliation period.
    pub reconcile_interval: Duration,
    /// First retry of an unanswered explicit reconciliation (doubling up to 30 s).
    pub reconcile_retry: Duration,
    /// KILL is re-sent this long after the last one while the task is not gone.
    pub kill_retry: Duration,
    /// A launch with no update after this long is reconciled explicitly.
    pub launch_timeout: Duration,
    /// Fewest time between two REVIVE calls.
    pub revive_interval: Duration,
    /// Longest relaunch backoff.
    pub backoff_max: Duration,
    /// A task that ran this long before failing resets its slot's failure count.
    pub stable_after: Duration,
    /// Offers from a reservation's agent without the reservation before it is given up.
    pub reservation_misses: u32,
    /// Offers carrying only part of a removed slot's reservation before that part is
    /// unreserved anyway.
    pub partial_offers: u32,
    /// After subscribing, offers are taken (not suppressed) for at least this long, so that
    /// reservations of ours no slot knows (an earlier run's leftovers) show up and are
    /// released.
    pub sweep_after_subscribe: Duration,
    /// `refuse_seconds` when nothing is needed.
    pub decline_long: f64,
    /// `refuse_seconds` for offers that did not fit while something is needed.
    pub decline_short: f64,
    /// Offer outcomes kept for the debug endpoint.
    pub outcomes_kept: usize,
}

impl Default for Timings {
    fn default() -> Self {
        Timings {
            reconcile_interval: Duration::from_secs(15 * 60),
            reconcile_retry: Duration::from_secs(2),
            kill_retry: Duration::from_secs(30),
            launch_timeout: Duration::from_secs(120),
            revive_interval: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
            reservation_misses: 3,
            partial_offers: 10,
            sweep_after_subscribe: Duration::from_secs(5),
            decline_long: 3600.0,
            decline_short: 5.0,
            outcomes_kept: 200,
        }
    }
}

/// What the framework is.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Role.
    pub role: String,
    /// Principal (reservations carry it).
    pub principal: String,
    /// How tasks are built.
    pub template: TaskTemplate,
    /// Timings.
    pub timings: Timings,
}

/// A ZooKeeper write, made before the calls of the same [`Effects`] are sent.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// Store a slot's record.
    PutSlot(SlotName, Box<SlotRecord>),
    /// Forget a slot.
    DeleteSlot(SlotName),
}

/// What an input asks the run loop to do: writes first, then calls, in order.
#[derive(Debug, Default, PartialEq)]
pub struct Effects {
    /// ZooKeeper writes.
    pub writes: Vec<Write>,
    /// Mesos calls (the client fills in `framework_id`).
    pub calls: Vec<scheduler::Call>,
}

impl Effects {
    fn call(&mut self, call: scheduler::Call) {
        self.calls.push(call);
    }

    /// Appends another input's effects.
    pub fn extend(&mut self, other: Effects) {
        self.writes.extend(other.writes);
        self.calls.extend(other.calls);
    }

    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.calls.is_empty()
    }

    /// The last write of each slot: only the final state of a node needs writing, and two
    /// writes of one node in flight at once would conflict with each other (ZooKeeper's
    /// versioned writes).
    pub fn last_writes(&mut self) -> Vec<Write> {
        let mut last: BTreeMap<SlotName, Write> = BTreeMap::new();
        for write in self.writes.drain(..) {
            let name = match &write {
                Write::PutSlot(name, _) | Write::DeleteSlot(name) => *name,
            };
            last.insert(name, write);
        }
        last.into_values().collect()
    }
}

/// An agent as offers and events showed it.
#[derive(Debug, Clone, PartialEq)]
struct AgentSeen {
    hostname: String,
    zone: Option<String>,
    /// Removed (FAILURE without executor, or a task lost with REASON_AGENT_REMOVED).
    gone: bool,
}

/// Explicit reconciliation in progress.
#[derive(Debug, Clone, PartialEq)]
struct Reconciling {
    /// Tasks without an answer yet, with their agent.
    pending: BTreeMap<String, Option<String>>,
    /// When to send again.
    next_send: Instant,
    /// Current retry interval.
    retry: Duration,
}

/// A task that is not the current task of any slot, being killed.
#[derive(Debug, Clone, PartialEq)]
struct Stray {
    agent_id: Option<String>,
    last_kill: Instant,
}

/// The slot lifecycle. See the module docs.
#[derive(Debug)]
pub struct Framework {
    config: CoreConfig,
    framework_id: Option<String>,
    subscribed: bool,
    slots: BTreeMap<SlotName, Slot>,
    consumer_target: u32,
    agents: HashMap<String, AgentSeen>,
    reconciling: Option<Reconciling>,
    next_implicit: Option<Instant>,
    suppressed: bool,
    /// Offers were declined with a long filter since the last REVIVE.
    filtered: bool,
    last_revive: Option<Instant>,
    strays: HashMap<String, Stray>,
    /// Launches this run made with a new reservation (cleared when the ACCEPT proved invalid).
    fresh_reservations: HashSet<String>,
    outcomes: VecDeque<OfferOutcome>,
    counters: Counters,
    waiting_reason: Option<String>,
    uninstalling: bool,
    /// Offers are wanted until then after a subscription (see `Timings::sweep_after_subscribe`).
    sweep_until: Option<Instant>,
    /// The slots that needed an offer at the last REVIVE.
    revived_for: BTreeSet<SlotName>,
    /// Uninstalling: since when no slot is left, and whether an offer round since found
    /// nothing of ours to unreserve.
    drained_since: Option<Instant>,
    clean_round: bool,
    rng: SmallRng,
}

fn call(kind: call::Type) -> scheduler::Call {
    scheduler::Call {
        r#type: Some(kind as i32),
        ..Default::default()
    }
}

fn filters(refuse_seconds: f64) -> Option<Filters> {
    Some(Filters {
        refuse_seconds: Some(refuse_seconds),
    })
}

fn state_name(state: i32) -> String {
    TaskState::try_from(state).map_or_else(
        |_| format!("TASK_STATE_{state}"),
        |s| s.as_str_name().to_owned(),
    )
}

impl Framework {
    /// A framework with the slots loaded from ZooKeeper (empty on a first start).
    pub fn new(
        config: CoreConfig,
        records: Vec<SlotRecord>,
        framework_id: Option<String>,
        seed: u64,
    ) -> Framework {
        let slots = records
            .into_iter()
            .map(|r| (r.name(), Slot::new(r)))
            .collect();
        Framework {
            config,
            framework_id,
            subscribed: false,
            slots,
            consumer_target: 0,
            agents: HashMap::new(),
            reconciling: None,
            next_implicit: None,
            suppressed: false,
            filtered: true,
            last_revive: None,
            strays: HashMap::new(),
            fresh_reservations: HashSet::new(),
            outcomes: VecDeque::new(),
            counters: Counters::default(),
            waiting_reason: None,
            uninstalling: false,
            sweep_until: None,
            revived_for: BTreeSet::new(),
            drained_since: None,
            clean_round: false,
            rng: SmallRng::seed_from_u64(seed),
        }
    }

    /// Uninstall mode: every slot goes, then the framework may be torn down.
    pub fn start_uninstall(&mut self) {
        self.uninstalling = true;
    }

    /// The consumer count the policy wants.
    pub fn set_target(&mut self, target: u32) {
        self.consumer_target = target;
    }

    /// Changes the producers' rate (events per second per producer task): running producers
    /// get it in a MESSAGE to their executor at once (an `ExecutorCommand`), new ones in their
    /// spec.
    pub fn set_producer_rate(&mut self, rate: f64) -> Effects {
        self.config.template.tasks.producer_rate = rate;
        let data = fastdata_proto::task::ExecutorCommand {
            version: fastdata_proto::task::VERSION,
            set_rate: Some(rate),
        }
        .to_json();
        let mut effects = Effects::default();
        for slot in self
            .slots
            .values()
            .filter(|s| s.record.kind == SlotKind::Producer && s.task_live())
        {
            if let (Some(task_id), Some(agent_id)) = (&slot.record.task_id, &slot.record.agent_id) {
                let mut message = call(call::Type::Message);
                message.message = Some(call::Message {
                    agent_id: AgentId {
                        value: agent_id.clone(),
                    },
                    executor_id: fastdata_proto::v1::ExecutorId {
                        value: super::tasks::executor_id(task_id),
                    },
                    data: data.clone(),
                });
                effects.call(message);
            }
        }
        effects
    }

    /// The producers' rate, events per second per producer task.
    pub fn producer_rate(&self) -> f64 {
        self.config.template.tasks.producer_rate
    }

    /// The consumer count wanted.
    pub fn target(&self) -> u32 {
        self.consumer_target
    }

    /// Consumer slots that should run (a restarted scheduler resumes at this count).
    pub fn consumer_slots_wanted(&self) -> u32 {
        self.slots
            .values()
            .filter(|s| s.record.kind == SlotKind::Consumer && s.record.goal == Goal::Run)
            .count() as u32
    }

    /// Consumer tasks in TASK_RUNNING.
    pub fn running_consumers(&self) -> u32 {
        self.slots
            .values()
            .filter(|s| s.record.kind == SlotKind::Consumer && s.running())
            .count() as u32
    }

    /// Running consumers that report a failing sink, and the last error one of them gave.
    pub fn sink_health(&self, now: Instant) -> (u32, u32, Option<String>) {
        let period = self.config.template.tasks.stats_interval;
        let mut healthy = 0;
        let mut unhealthy = 0;
        let mut error = None;
        for slot in self
            .slots
            .values()
            .filter(|s| s.record.kind == SlotKind::Consumer && s.running())
        {
            match slot.fresh_stats(now, period).map(|s| s.sink) {
                Some(fastdata_proto::task::SinkState::Healthy) => healthy += 1,
                Some(fastdata_proto::task::SinkState::Unhealthy) => {
                    unhealthy += 1;
                    if error.is_none() {
                        error = slot
                            .fresh_stats(now, period)
                            .and_then(|s| s.sink_error.clone());
                    }
                }
                _ => {}
            }
        }
        (healthy, unhealthy, error)
    }

    /// True once the subscription's explicit reconciliation has every answer.
    pub fn reconciled(&self) -> bool {
        self.subscribed && self.reconciling.is_none()
    }

    /// Tasks still unanswered by reconciliation.
    pub fn reconciling_pending(&self) -> usize {
        self.reconciling.as_ref().map_or(0, |r| r.pending.len())
    }

    /// The framework id, once known.
    pub fn framework_id(&self) -> Option<&str> {
        self.framework_id.as_deref()
    }

    /// Uninstalling and everything is cleaned up: the framework may be torn down.
    pub fn uninstall_done(&self, now: Instant) -> bool {
        self.uninstalling
            && self.slots.is_empty()
            && self.drained_since.is_some_and(|since| {
                self.clean_round || now.saturating_duration_since(since) >= Duration::from_secs(10)
            })
    }

    /// Counters for the metrics endpoint.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// Recent offer outcomes, oldest first.
    pub fn outcomes(&self) -> Vec<OfferOutcome> {
        self.outcomes.iter().cloned().collect()
    }

    /// Why a wanted slot is not running yet, if one is waiting for an offer.
    pub fn waiting_reason(&self) -> Option<&str> {
        self.waiting_reason.as_deref()
    }

    // ---- subscription ----

    /// A subscription is established: remember the id, reconcile every task known.
    pub fn on_subscribed(&mut self, framework_id: &str, now: Now) -> Effects {
        self.framework_id = Some(framework_id.to_owned());
        self.subscribed = true;
        self.suppressed = false;
        self.filtered = true;
        self.counters.subscriptions += 1;
        let pending: BTreeMap<String, Option<String>> = self
            .slots
            .values()
            .filter(|s| s.record.task_id.is_some() && s.state.is_none_or(|st| !st.is_terminal()))
            .filter_map(|s| {
                s.record
                    .task_id
                    .clone()
                    .map(|id| (id, s.record.agent_id.clone()))
            })
            .chain(
                self.strays
                    .iter()
                    .map(|(id, s)| (id.clone(), s.agent_id.clone())),
            )
            .collect();
        self.next_implicit = Some(now.at + self.config.timings.reconcile_interval);
        self.sweep_until = Some(now.at + self.config.timings.sweep_after_subscribe);
        let mut effects = Effects::default();
        if pending.is_empty() {
            self.reconciling = None;
        } else {
            tracing::info!(
                tasks = pending.len(),
                "reconciling the tasks the scheduler knows before taking offers"
            );
            effects.call(reconcile_call(&pending));
            self.reconciling = Some(Reconciling {
                pending,
                next_send: now.at + self.config.timings.reconcile_retry,
                retry: self.config.timings.reconcile_retry,
            });
        }
        effects.extend(self.tick(now));
        effects
    }

    /// The subscription is gone; the client re-subscribes.
    pub fn on_disconnected(&mut self) {
        self.subscribed = false;
    }

    /// Any event other than SUBSCRIBED, HEARTBEAT and ERROR.
    pub fn on_event(&mut self, event: scheduler::Event, now: Now) -> Effects {
        match event.r#type.and_then(|t| event::Type::try_from(t).ok()) {
            Some(event::Type::Offers) => {
                let offers = event.offers.map(|o| o.offers).unwrap_or_default();
                self.on_offers(&offers, now)
            }
            Some(event::Type::Update) => match event.update {
                Some(update) => self.on_update(update.status, now),
                None => Effects::default(),
            },
            Some(event::Type::Failure) => match event.failure {
                Some(failure) => {
                    if let Some(executor) = &failure.executor_id {
                        // Normal after a task ends (the executor exits on its own); the wait
                        // status says how an executor that died under its task ended.
                        tracing::debug!(executor = %executor.value, status = ?failure.status, "executor exited");
                    }
                    self.on_failure(
                        failure.agent_id.map(|a| a.value),
                        failure.executor_id.is_some(),
                        now,
                    )
                }
                None => Effects::default(),
            },
            Some(event::Type::Message) => {
                if let Some(message) = event.message {
                    self.on_message(&message.data, now);
                }
                Effects::default()
            }
            // Offers are answered as soon as they arrive, so a rescind has nothing to undo;
            // inverse offers (maintenance) are not acted on.
            _ => self.tick(now),
        }
    }

    // ---- offers ----

    fn demand(&self, now: Instant) -> Demand {
        let mut demand = Demand::default();
        for slot in self.slots.values() {
            let name = slot.name();
            let record = &slot.record;
            if slot.needs_launch(now) && !self.uninstalling {
                demand.launches.push(LaunchNeed {
                    slot: name,
                    reservation: record
                        .reservation
                        .as_ref()
                        .map(|r| (r.agent_id.clone(), r.resource_id.clone())),
                });
            }
            if let Some(reservation) = &record.reservation {
                if (record.goal == Goal::Run || slot.task_live()) && !self.uninstalling {
                    demand.keep.insert(reservation.resource_id.clone(), name);
                } else if slot.reservation_misses < self.config.timings.partial_offers {
                    demand.releasing.insert(
                        reservation.resource_id.clone(),
                        (name, Amount::new(reservation.cpus, reservation.mem)),
                    );
                }
            }
            let placed = record.kind == SlotKind::Consumer
                && record.goal == Goal::Run
                && (slot.task_live() || record.reservation.is_some());
            if placed && let Some(agent) = &record.agent_id {
                *demand.consumers_per_agent.entry(agent.clone()).or_insert(0) += 1;
                if let Some(zone) = &record.zone {
                    *demand.consumers_per_zone.entry(zone.clone()).or_insert(0) += 1;
                }
            }
        }
        demand
    }

    fn rules(&self) -> Rules {
        let template = &self.config.template;
        Rules {
            role: self.config.role.clone(),
            framework_id: self.framework_id.clone().unwrap_or_default(),
            consumer: template.needs(SlotKind::Consumer),
            producer: template.needs(SlotKind::Producer),
            max_per_agent: template.tasks.max_consumers_per_agent,
            spread_zones: template.tasks.spread_zones,
        }
    }

    fn outcome(&mut self, offer: &Offer, now: Now, accepted: bool, reason: String) {
        if self.outcomes.len() >= self.config.timings.outcomes_kept {
            self.outcomes.pop_front();
        }
        self.outcomes.push_back(OfferOutcome {
            at_unix_ms: now.unix_ms,
            offer_id: offer.id.value.clone(),
            agent_id: offer.agent_id.value.clone(),
            hostname: offer.hostname.clone(),
            outcome: if accepted { "accepted" } else { "declined" }.to_owned(),
            reason,
        });
    }

    /// Answers a batch of offers: every offer is accepted or declined at once.
    pub fn on_offers(&mut self, offers: &[Offer], now: Now) -> Effects {
        let mut effects = Effects::default();
        self.counters.offers_received += offers.len() as u64;
        for offer in offers {
            let agent = self
                .agents
                .entry(offer.agent_id.value.clone())
                .or_insert_with(|| AgentSeen {
                    hostname: offer.hostname.clone(),
                    zone: None,
                    gone: false,
                });
            agent.gone = false;
            agent.hostname = offer.hostname.clone();
            agent.zone = super::resources::offer_zone(offer).map(str::to_owned);
        }
        if let Some(reconciling) = &self.reconciling {
            let reason = format!(
                "waiting for task reconciliation ({} of the scheduler's tasks not answered yet)",
                reconciling.pending.len()
            );
            for offer in offers {
                self.outcome(offer, now, false, reason.clone());
            }
            self.decline(
                &mut effects,
                offers.iter().map(|o| o.id.clone()).collect(),
                self.config.timings.decline_short,
            );
            effects.extend(self.tick(now));
            return effects;
        }
        let demand = self.demand(now.at);
        let nothing_needed = demand.launches.is_empty()
            && !self.uninstalling
            && !self.unreserve_pending()
            && !self.sweeping(now.at);
        let rules = self.rules();
        let matching = matcher::plan(offers, &demand, &rules, || uuid::Uuid::new_v4().to_string());
        let mut declined = Vec::new();
        let mut unreserved_any = false;
        for plan in &matching.offers {
            let offer = &offers[plan.offer];
            if let Some(reason) = &plan.decline_reason {
                self.outcome(offer, now, false, reason.clone());
                declined.push(offer.id.clone());
                continue;
            }
            let mut operations = Vec::new();
            let mut done = Vec::new();
            for planned in &plan.planned {
                match planned {
                    Planned::ReserveAndLaunch {
                        slot,
                        resource_id,
                        amount,
                    } => {
                        let labels = self.labels(*slot, resource_id);
                        let reserved = resources(*amount, &self.config.role, Some(&labels));
                        operations.push(Operation {
                            r#type: Some(operation::Type::Reserve as i32),
                            reserve: Some(operation::Reserve {
                                resources: reserved.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        });
                        let reservation = Reservation {
                            agent_id: offer.agent_id.value.clone(),
                            resource_id: resource_id.clone(),
                            cpus: amount.cpus,
                            mem: amount.mem,
                        };
                        self.fresh_reservations.insert(resource_id.clone());
                        operations.push(self.launch(
                            *slot,
                            offer,
                            &reserved,
                            Some(reservation),
                            now,
                            &mut effects,
                        ));
                        done.push(format!("RESERVE+LAUNCH {slot}"));
                    }
                    Planned::LaunchOnReservation {
                        slot,
                        resources: reserved,
                        ..
                    } => {
                        let reservation = self
                            .slots
                            .get(slot)
                            .and_then(|s| s.record.reservation.clone());
                        operations.push(self.launch(
                            *slot,
                            offer,
                            reserved,
                            reservation,
                            now,
                            &mut effects,
                        ));
                        done.push(format!("LAUNCH {slot} on its reservation"));
                    }
                    Planned::LaunchUnreserved { slot } => {
                        let unreserved = resources(
                            self.config.template.needs(slot.kind),
                            &self.config.role,
                            None,
                        );
                        operations.push(self.launch(
                            *slot,
                            offer,
                            &unreserved,
                            None,
                            now,
                            &mut effects,
                        ));
                        done.push(format!("LAUNCH {slot}"));
                    }
                    Planned::Unreserve {
                        resource_id,
                        slot,
                        resources: reserved,
                    } => {
                        unreserved_any = true;
                        operations.push(Operation {
                            r#type: Some(operation::Type::Unreserve as i32),
                            unreserve: Some(operation::Unreserve {
                                resources: reserved.clone(),
                            }),
                            ..Default::default()
                        });
                        self.forget_reservation(resource_id, &mut effects);
                        done.push(format!(
                            "UNRESERVE {}",
                            slot.as_deref().unwrap_or("an unlabelled reservation")
                        ));
                    }
                }
            }
            self.outcome(offer, now, true, done.join(", "));
            self.counters.offers_accepted += 1;
            let mut accept = call(call::Type::Accept);
            accept.accept = Some(call::Accept {
                offer_ids: vec![offer.id.clone()],
                operations,
                // What is left of the offer comes back soon if more slots wait.
                filters: filters(if matching.unplaced.is_empty() {
                    self.config.timings.decline_short
                } else {
                    1.0
                }),
            });
            effects.call(accept);
        }
        for slot in &matching.reservation_missing {
            self.reservation_missed(*slot, &mut effects);
        }
        for name in &matching.reservation_partial {
            // Counted so that a reservation recorded larger than it is (it was partly given
            // back by an older scheduler) is not waited for forever: after a few partial offers
            // what is there is unreserved.
            if let Some(slot) = self.slots.get_mut(name) {
                slot.reservation_misses += 1;
            }
        }
        self.waiting_reason = matching
            .unplaced
            .first()
            .map(|(slot, why)| format!("{slot} waits for an offer: {why}"));
        let refuse = if nothing_needed {
            self.filtered = true;
            self.config.timings.decline_long
        } else {
            self.config.timings.decline_short
        };
        self.decline(&mut effects, declined, refuse);
        if self.uninstalling
            && self.slots.is_empty()
            && self.drained_since.is_some()
            && !unreserved_any
        {
            self.clean_round = true;
        }
        effects.extend(self.tick(now));
        effects
    }

    fn decline(&mut self, effects: &mut Effects, offer_ids: Vec<OfferId>, refuse_seconds: f64) {
        if offer_ids.is_empty() {
            return;
        }
        self.counters.offers_declined += offer_ids.len() as u64;
        let mut decline = call(call::Type::Decline);
        decline.decline = Some(call::Decline {
            offer_ids,
            filters: filters(refuse_seconds),
        });
        effects.call(decline);
    }

    fn labels(&self, slot: SlotName, resource_id: &str) -> ReservationLabels {
        ReservationLabels {
            role: self.config.role.clone(),
            principal: self.config.principal.clone(),
            framework_id: self.framework_id.clone().unwrap_or_default(),
            slot: slot.to_string(),
            resource_id: resource_id.to_owned(),
        }
    }

    /// A LAUNCH of the slot's next task on `available`, recording it in the slot first.
    fn launch(
        &mut self,
        name: SlotName,
        offer: &Offer,
        available: &[fastdata_proto::v1::Resource],
        reservation: Option<Reservation>,
        now: Now,
        effects: &mut Effects,
    ) -> Operation {
        let template = &self.config.template;
        let task_id = template.new_task_id(name);
        let (task_resources, executor_resources) = split(available, template.executor_amount());
        let info = template.task_info(
            name,
            &task_id,
            &offer.agent_id.value,
            self.framework_id.as_deref().unwrap_or_default(),
            task_resources,
            executor_resources,
        );
        let zone = super::resources::offer_zone(offer).map(str::to_owned);
        if let Some(slot) = self.slots.get_mut(&name) {
            let record = &mut slot.record;
            record.task_id = Some(task_id.clone());
            record.agent_id = Some(offer.agent_id.value.clone());
            record.hostname = Some(offer.hostname.clone());
            record.zone = zone;
            if reservation.is_some() {
                record.reservation = reservation;
            }
            record.launches += 1;
            slot.state = Some(TaskState::TaskStaging);
            slot.message = None;
            slot.launched_at = Some(now.at);
            slot.running_since = None;
            slot.relaunch_at = None;
            slot.kill_sent_at = None;
            slot.reservation_misses = 0;
            slot.stats = None;
            effects
                .writes
                .push(Write::PutSlot(name, Box::new(slot.record.clone())));
        }
        self.counters.tasks_launched += 1;
        tracing::info!(slot = %name, task_id = %task_id, agent = %offer.hostname, "launching");
        Operation {
            r#type: Some(operation::Type::Launch as i32),
            launch: Some(operation::Launch {
                task_infos: vec![info],
            }),
            ..Default::default()
        }
    }

    /// A reservation was given back: the slot holding it (if any) no longer has it.
    fn forget_reservation(&mut self, resource_id: &str, effects: &mut Effects) {
        for slot in self.slots.values_mut() {
            if slot
                .record
                .reservation
                .as_ref()
                .is_some_and(|r| r.resource_id == resource_id)
            {
                slot.record.reservation = None;
                effects
                    .writes
                    .push(Write::PutSlot(slot.name(), Box::new(slot.record.clone())));
            }
        }
    }

    fn reservation_missed(&mut self, name: SlotName, effects: &mut Effects) {
        let limit = self.config.timings.reservation_misses;
        let Some(slot) = self.slots.get_mut(&name) else {
            return;
        };
        slot.reservation_misses += 1;
        if slot.reservation_misses >= limit {
            tracing::warn!(slot = %name, misses = slot.reservation_misses, "the slot's reservation is no longer offered by its agent; reserving anew");
            slot.record.reservation = None;
            slot.reservation_misses = 0;
            effects
                .writes
                .push(Write::PutSlot(name, Box::new(slot.record.clone())));
        }
    }

    fn sweeping(&self, now: Instant) -> bool {
        self.sweep_until.is_some_and(|until| now < until)
    }

    fn unreserve_pending(&self) -> bool {
        self.slots.values().any(|s| {
            s.record.goal == Goal::Remove && !s.task_live() && s.record.reservation.is_some()
        })
    }

    // ---- updates ----

    /// A status update: acknowledge it if it has a UUID, and move its slot on.
    pub fn on_update(&mut self, status: TaskStatus, now: Now) -> Effects {
        let mut effects = self.apply_update(status, now);
        effects.extend(self.tick(now));
        effects
    }

    fn apply_update(&mut self, status: TaskStatus, now: Now) -> Effects {
        let mut effects = Effects::default();
        *self
            .counters
            .task_updates
            .entry(state_name(status.state))
            .or_insert(0) += 1;
        if status.needs_acknowledgement()
            && let Some(agent) = &status.agent_id
        {
            let mut ack = call(call::Type::Acknowledge);
            ack.acknowledge = Some(call::Acknowledge {
                agent_id: agent.clone(),
                task_id: status.task_id.clone(),
                uuid: status.uuid.clone().unwrap_or_default(),
            });
            effects.call(ack);
        }
        let task_id = status.task_id.value.clone();
        let Some(state) = status.known_state() else {
            return effects;
        };
        if let Some(reconciling) = &mut self.reconciling {
            reconciling.pending.remove(&task_id);
            if reconciling.pending.is_empty() {
                tracing::info!("task reconciliation complete");
                self.reconciling = None;
            }
        }
        let reason = status.reason.and_then(|r| Reason::try_from(r).ok());
        // The agent is gone (or unreachable): its reservations with it.
        let agent_lost = matches!(
            reason,
            Some(Reason::AgentRemoved | Reason::AgentRemovedByOperator)
        ) || matches!(
            state,
            TaskState::TaskUnreachable | TaskState::TaskGoneByOperator
        );
        // Over, but not because the workload failed: relaunch at once, without backoff. A
        // reconciliation answer of TASK_GONE/LOST/UNKNOWN means the task is not there (for
        // example the scheduler stopped between recording a launch and sending it).
        let not_the_workload = agent_lost
            || matches!(
                reason,
                Some(
                    Reason::InvalidOffers
                        | Reason::Reconciliation
                        | Reason::AgentRestarted
                        | Reason::AgentDisconnected
                        | Reason::AgentUnknown
                        | Reason::TaskKilledDuringLaunch
                )
            )
            || state == TaskState::TaskDropped;
        if agent_lost && let Some(agent) = &status.agent_id {
            self.agent_gone(&agent.value, &mut effects);
        }
        let owner = self.config.template.slot_of(&task_id).filter(|name| {
            self.slots
                .get(name)
                .is_some_and(|s| s.record.task_id.as_deref() == Some(task_id.as_str()))
        });
        let Some(name) = owner else {
            self.stray(
                &task_id,
                state,
                status.agent_id.map(|a| a.value),
                now.at,
                &mut effects,
            );
            return effects;
        };
        let stable_after = self.config.timings.stable_after;
        let backoff_max = self.config.timings.backoff_max;
        let jitter = self.rng.random_range(0.5..1.5);
        let invalid_offers = reason == Some(Reason::InvalidOffers);
        let slot = self.slots.get_mut(&name).expect("owner is a slot");
        let previous = slot.state;
        slot.state = Some(state);
        slot.message = status.message.clone();
        slot.launched_at = None;
        if state == TaskState::TaskRunning && slot.running_since.is_none() {
            slot.running_since = Some(now.at);
        }
        if previous != Some(state) {
            tracing::info!(slot = %name, task_id = %task_id, state = state.as_str_name(), message = status.message.as_deref().unwrap_or(""), "task update");
        }
        if !(state.is_terminal() || is_away(state)) {
            return effects;
        }
        // The task is over (or unreachable). Decide how the slot goes on.
        if invalid_offers
            && let Some(r) = &slot.record.reservation
            && self.fresh_reservations.remove(&r.resource_id)
        {
            // The ACCEPT was refused as a whole, so the RESERVE in it never happened.
            slot.record.reservation = None;
        }
        let ran_long = slot
            .running_since
            .is_some_and(|since| now.at.saturating_duration_since(since) >= stable_after);
        slot.running_since = None;
        slot.kill_sent_at = None;
        if slot.record.goal == Goal::Run {
            if !not_the_workload {
                slot.record.failures = if ran_long {
                    1
                } else {
                    slot.record.failures.saturating_add(1)
                };
                let delay = relaunch_backoff(slot.record.failures, backoff_max, jitter);
                slot.relaunch_at = Some(now.at + delay);
                tracing::warn!(slot = %name, task_id = %task_id, state = state.as_str_name(), failures = slot.record.failures, relaunch_in = ?delay, "task ended; relaunching after backoff");
            } else {
                slot.relaunch_at = None;
                tracing::warn!(slot = %name, task_id = %task_id, state = state.as_str_name(), reason = ?reason, "task gone, not by its own failure; relaunching");
            }
        }
        effects
            .writes
            .push(Write::PutSlot(name, Box::new(slot.record.clone())));
        effects
    }

    /// A task that is no slot's current task: kill it if it may still run.
    fn stray(
        &mut self,
        task_id: &str,
        state: TaskState,
        agent_id: Option<String>,
        now: Instant,
        effects: &mut Effects,
    ) {
        if state.is_terminal() || is_away(state) {
            self.strays.remove(task_id);
            return;
        }
        if self.strays.contains_key(task_id) {
            return;
        }
        tracing::warn!(
            task_id,
            state = state.as_str_name(),
            "a task that no slot owns is running; killing it"
        );
        effects.call(kill_call(task_id, agent_id.as_deref(), None));
        self.counters.kills += 1;
        self.strays.insert(
            task_id.to_owned(),
            Stray {
                agent_id,
                last_kill: now,
            },
        );
    }

    fn agent_gone(&mut self, agent_id: &str, effects: &mut Effects) {
        let first = self.agents.get(agent_id).is_none_or(|a| !a.gone);
        if let Some(agent) = self.agents.get_mut(agent_id) {
            agent.gone = true;
        } else {
            self.agents.insert(
                agent_id.to_owned(),
                AgentSeen {
                    hostname: agent_id.to_owned(),
                    zone: None,
                    gone: true,
                },
            );
        }
        if first {
            tracing::warn!(
                agent = agent_id,
                "agent removed; its slots move to other agents"
            );
        }
        for slot in self.slots.values_mut() {
            if slot
                .record
                .reservation
                .as_ref()
                .is_some_and(|r| r.agent_id == agent_id)
            {
                slot.record.reservation = None;
                effects
                    .writes
                    .push(Write::PutSlot(slot.name(), Box::new(slot.record.clone())));
            }
        }
    }

    /// FAILURE: an agent was removed (no executor id), or an executor ended.
    pub fn on_failure(&mut self, agent_id: Option<String>, executor: bool, now: Now) -> Effects {
        let mut effects = Effects::default();
        if !executor && let Some(agent) = agent_id {
            self.agent_gone(&agent, &mut effects);
        }
        effects.extend(self.tick(now));
        effects
    }

    /// An executor's MESSAGE: the workload's stats.
    pub fn on_message(&mut self, data: &[u8], now: Now) {
        let Ok(report) = StatsReport::from_json(data) else {
            tracing::debug!(
                bytes = data.len(),
                "an executor message that is not a stats report; ignored"
            );
            return;
        };
        let Some(name) = self.config.template.slot_of(&report.task_id) else {
            return;
        };
        if let Some(slot) = self.slots.get_mut(&name)
            && slot.record.task_id.as_deref() == Some(report.task_id.as_str())
        {
            slot.stats = Some((now.at, report));
        }
    }

    // ---- the level-triggered part ----

    /// Compares wanted with actual and corrects the difference: slots to create or remove,
    /// kills to (re)send, reconciliation retries, REVIVE / SUPPRESS.
    pub fn tick(&mut self, now: Now) -> Effects {
        let mut effects = Effects::default();
        self.align_slots(&mut effects);
        if !self.subscribed {
            return effects;
        }
        let timings = self.config.timings.clone();
        let mut forget = Vec::new();
        let mut probe: BTreeMap<String, Option<String>> = BTreeMap::new();
        for slot in self.slots.values_mut() {
            let name = slot.name();
            if slot.record.goal == Goal::Remove {
                if slot.task_live() {
                    let due = slot.kill_sent_at.is_none_or(|at| {
                        now.at.saturating_duration_since(at) >= timings.kill_retry
                    });
                    if due && let Some(task_id) = &slot.record.task_id {
                        tracing::info!(slot = %name, task_id = %task_id, "killing (scale-down)");
                        effects.call(kill_call(
                            task_id,
                            slot.record.agent_id.as_deref(),
                            Some(self.config.template.grace(name.kind)),
                        ));
                        self.counters.kills += 1;
                        slot.kill_sent_at = Some(now.at);
                    }
                } else {
                    let agent_gone = slot
                        .record
                        .reservation
                        .as_ref()
                        .is_some_and(|r| self.agents.get(&r.agent_id).is_some_and(|a| a.gone));
                    if agent_gone {
                        slot.record.reservation = None;
                    }
                    if slot.record.reservation.is_none() {
                        forget.push(name);
                    }
                }
            }
            if let Some(launched) = slot.launched_at
                && now.at.saturating_duration_since(launched) >= timings.launch_timeout
                && let Some(task_id) = &slot.record.task_id
            {
                tracing::warn!(slot = %name, task_id = %task_id, "no update since the launch; reconciling it");
                probe.insert(task_id.clone(), slot.record.agent_id.clone());
                slot.launched_at = Some(now.at);
            }
        }
        for name in forget {
            tracing::info!(slot = %name, "slot removed");
            self.slots.remove(&name);
            effects.writes.push(Write::DeleteSlot(name));
        }
        if self.uninstalling && self.slots.is_empty() && self.drained_since.is_none() {
            self.drained_since = Some(now.at);
        }
        if !probe.is_empty() {
            effects.call(reconcile_call(&probe));
        }
        // Explicit reconciliation retries, then periodic implicit reconciliation.
        if let Some(reconciling) = &mut self.reconciling {
            if now.at >= reconciling.next_send {
                tracing::info!(
                    pending = reconciling.pending.len(),
                    "reconciliation: asking again for the tasks without an answer"
                );
                effects.call(reconcile_call(&reconciling.pending));
                reconciling.retry = (reconciling.retry * 2).min(Duration::from_secs(30));
                reconciling.next_send = now.at + reconciling.retry;
            }
        } else if self.next_implicit.is_some_and(|at| now.at >= at) {
            effects.call(reconcile_call(&BTreeMap::new()));
            self.next_implicit = Some(now.at + timings.reconcile_interval);
        }
        for (task_id, stray) in &mut self.strays {
            if now.at.saturating_duration_since(stray.last_kill) >= timings.kill_retry {
                effects.call(kill_call(task_id, stray.agent_id.as_deref(), None));
                stray.last_kill = now.at;
            }
        }
        self.offers_wanted(now.at, &mut effects);
        effects
    }

    /// Creates and retires slots so that exactly the wanted ones have goal Run.
    fn align_slots(&mut self, effects: &mut Effects) {
        let producers = self.config.template.tasks.producer_count;
        let wanted = |name: SlotName| -> bool {
            match name.kind {
                SlotKind::Consumer => name.index < self.consumer_target,
                SlotKind::Producer => name.index < producers,
            }
        };
        let uninstalling = self.uninstalling;
        for slot in self.slots.values_mut() {
            let goal = if !uninstalling && wanted(slot.name()) {
                Goal::Run
            } else {
                Goal::Remove
            };
            if slot.record.goal != goal {
                tracing::info!(slot = %slot.name(), goal = ?goal, "slot goal changed");
                slot.record.goal = goal;
                slot.relaunch_at = None;
                effects
                    .writes
                    .push(Write::PutSlot(slot.name(), Box::new(slot.record.clone())));
            }
        }
        if uninstalling {
            return;
        }
        let new: Vec<SlotName> = (0..self.consumer_target)
            .map(SlotName::consumer)
            .chain((0..producers).map(SlotName::producer))
            .filter(|name| !self.slots.contains_key(name))
            .collect();
        for name in new {
            let record = SlotRecord::new(name, self.config.template.volume_name(name));
            effects
                .writes
                .push(Write::PutSlot(name, Box::new(record.clone())));
            self.slots.insert(name, Slot::new(record));
        }
    }

    /// REVIVE when something waits for an offer, SUPPRESS when nothing does.
    fn offers_wanted(&mut self, now: Instant, effects: &mut Effects) {
        let backing_off = self
            .slots
            .values()
            .filter_map(|s| {
                (s.record.goal == Goal::Run && !s.task_live())
                    .then_some(s.relaunch_at)
                    .flatten()
            })
            .any(|at| at > now);
        // What needs an offer now: slots to launch and reservations to give back.
        let needing: BTreeSet<SlotName> = self
            .slots
            .values()
            .filter(|s| {
                s.needs_launch(now)
                    || (s.record.goal == Goal::Remove
                        && !s.task_live()
                        && s.record.reservation.is_some())
            })
            .map(Slot::name)
            .collect();
        let wanted = self.reconciling.is_none()
            && (self.uninstalling || self.sweeping(now) || !needing.is_empty());
        let revive_due = self.last_revive.is_none_or(|at| {
            now.saturating_duration_since(at) >= self.config.timings.revive_interval
        });
        // Declined offers come back only after their filter (5 s): a slot that newly needs an
        // offer revives at once rather than wait for them.
        let new_need = !needing.is_subset(&self.revived_for);
        if wanted && (self.suppressed || self.filtered || new_need) && revive_due {
            self.revived_for = needing;
            let mut revive = call(call::Type::Revive);
            revive.revive = Some(call::Revive {
                roles: vec![self.config.role.clone()],
            });
            effects.call(revive);
            self.counters.revives += 1;
            self.suppressed = false;
            self.filtered = false;
            self.last_revive = Some(now);
        } else if !wanted && !backing_off && !self.suppressed && self.reconciling.is_none() {
            let mut suppress = call(call::Type::Suppress);
            suppress.suppress = Some(call::Suppress {
                roles: vec![self.config.role.clone()],
            });
            effects.call(suppress);
            self.counters.suppresses += 1;
            self.suppressed = true;
            self.waiting_reason = None;
        }
    }

    /// Gives up on a write that failed: the launches it recorded were not sent (the run loop
    /// declines their offers), so their slots wait for another offer.
    pub fn writes_failed(&mut self, names: &[SlotName]) {
        for name in names {
            if let Some(slot) = self.slots.get_mut(name)
                && slot.state == Some(TaskState::TaskStaging)
            {
                slot.state = Some(TaskState::TaskDropped);
                slot.launched_at = None;
                if let Some(r) = &slot.record.reservation
                    && self.fresh_reservations.remove(&r.resource_id)
                {
                    slot.record.reservation = None;
                }
            }
        }
    }

    // ---- what the APIs show ----

    /// Every slot, for `/v1/tasks` and the status.
    pub fn task_views(&self, now: Now) -> Vec<TaskView> {
        self.slots
            .values()
            .map(|slot| {
                let record = &slot.record;
                let state = match (slot.state, &record.task_id) {
                    (Some(state), Some(_))
                        if !(slot.needs_launch(now.at)
                            || (record.goal == Goal::Run && slot.relaunch_at.is_some())) =>
                    {
                        state.as_str_name().to_owned()
                    }
                    _ if record.goal == Goal::Remove
                        && record.reservation.is_some()
                        && !slot.task_live() =>
                    {
                        "UNRESERVING".to_owned()
                    }
                    _ if record.goal == Goal::Remove => "KILLING".to_owned(),
                    (None, Some(_)) => "RECONCILING".to_owned(),
                    _ if slot.relaunch_at.is_some_and(|at| at > now.at) => "BACKOFF".to_owned(),
                    _ => "WAITING_FOR_OFFER".to_owned(),
                };
                let relaunch_at_unix_ms = slot.relaunch_at.filter(|at| *at > now.at).map(|at| {
                    now.unix_ms + at.saturating_duration_since(now.at).as_millis() as u64
                });
                TaskView {
                    slot: slot.name().to_string(),
                    kind: record.kind.as_str().to_owned(),
                    task_id: record.task_id.clone(),
                    agent_id: record.agent_id.clone(),
                    hostname: record.hostname.clone(),
                    state,
                    goal: match record.goal {
                        Goal::Run => "running",
                        Goal::Remove => "removed",
                    }
                    .to_owned(),
                    message: slot.message.clone(),
                    volume: record.volume.clone(),
                    failures: record.failures,
                    relaunch_at_unix_ms,
                    stats: slot.stats.as_ref().map(|(_, s)| s.clone()),
                }
            })
            .collect()
    }

    /// The deploy plan: complete when every wanted slot runs and no removed one is left.
    pub fn plan(&self) -> (PlanStatus, String) {
        let wanted: Vec<&Slot> = self
            .slots
            .values()
            .filter(|s| s.record.goal == Goal::Run)
            .collect();
        let running = wanted.iter().filter(|s| s.running()).count();
        let leaving = self
            .slots
            .values()
            .filter(|s| s.record.goal == Goal::Remove)
            .count();
        if self.uninstalling {
            return if self.slots.is_empty() {
                (
                    PlanStatus::Complete,
                    "uninstall: every task killed and every reservation released".to_owned(),
                )
            } else {
                (
                    PlanStatus::InProgress,
                    format!(
                        "uninstall: {} slots left to kill and unreserve",
                        self.slots.len()
                    ),
                )
            };
        }
        let consumers = wanted
            .iter()
            .filter(|s| s.record.kind == SlotKind::Consumer)
            .count();
        let consumers_running = wanted
            .iter()
            .filter(|s| s.record.kind == SlotKind::Consumer && s.running())
            .count();
        let mut message = format!("{consumers_running} of {consumers} consumers running");
        let producers = wanted.len() - consumers;
        if producers > 0 {
            message.push_str(&format!(
                ", {} of {producers} producers running",
                running - consumers_running
            ));
        }
        if leaving > 0 {
            message.push_str(&format!(", {leaving} being removed"));
        }
        if let Some(reason) = &self.waiting_reason
            && running < wanted.len()
        {
            message.push_str("; ");
            message.push_str(reason);
        }
        let status = if running == wanted.len() && leaving == 0 && self.reconciled() {
            PlanStatus::Complete
        } else {
            PlanStatus::InProgress
        };
        (status, message)
    }

    /// The slot records (what ZooKeeper holds).
    pub fn records(&self) -> Vec<SlotRecord> {
        self.slots.values().map(|s| s.record.clone()).collect()
    }

    /// A slot, for tests and the run loop.
    pub fn slot(&self, name: SlotName) -> Option<&Slot> {
        self.slots.get(&name)
    }

    /// The amount one slot of this kind needs.
    pub fn needs(&self, kind: SlotKind) -> Amount {
        self.config.template.needs(kind)
    }
}

fn reconcile_call(tasks: &BTreeMap<String, Option<String>>) -> scheduler::Call {
    let mut reconcile = call(call::Type::Reconcile);
    reconcile.reconcile = Some(call::Reconcile {
        tasks: tasks
            .iter()
            .map(|(task_id, agent_id)| call::reconcile::Task {
                task_id: TaskId {
                    value: task_id.clone(),
                },
                agent_id: agent_id.clone().map(|value| AgentId { value }),
            })
            .collect(),
    });
    reconcile
}

fn kill_call(task_id: &str, agent_id: Option<&str>, grace: Option<Duration>) -> scheduler::Call {
    let mut kill = call(call::Type::Kill);
    kill.kill = Some(call::Kill {
        task_id: TaskId {
            value: task_id.to_owned(),
        },
        agent_id: agent_id.map(|value| AgentId {
            value: value.to_owned(),
        }),
        kill_policy: grace.map(kill_policy),
    });
    kill
}
