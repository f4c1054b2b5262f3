//! Status updates kept until the agent acknowledges them.
//!
//! Owns the executor's half of Mesos' reliable status updates (reference 3.4): every update
//! is kept, in the order it was made, until an ACKNOWLEDGED event names its UUID; every
//! re-SUBSCRIBE carries all of them (`unacknowledged_updates`) together with the TaskInfo of
//! every task that has not had any update acknowledged yet (`unacknowledged_tasks`), as
//! mesos-go's example executor and Mesos' own library do. While subscribed, new updates go
//! out one at a time in order: the agent forwards a task's updates in the order it accepted
//! them, so a TASK_KILLED must never overtake the TASK_KILLING that a failed call still
//! holds back.
//!
//! Pure bookkeeping over values; the caller sends the calls and reports their answers. Must
//! not: drop an update the agent has not acknowledged (except one the agent refused as
//! invalid, which no retry can fix), or send an update while another is in flight.

use std::collections::BTreeMap;

use fastdata_proto::v1::{TaskInfo, TaskStatus, executor};

/// One update waiting for ACKNOWLEDGED.
#[derive(Debug, Clone, PartialEq)]
struct Pending {
    uuid: Vec<u8>,
    update: executor::call::Update,
    /// The agent has it on the current subscription: answered 202, or carried by the
    /// SUBSCRIBE that opened it.
    delivered: bool,
}

/// The unacknowledged updates and tasks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UpdateBook {
    pending: Vec<Pending>,
    /// LAUNCHed tasks none of whose updates has been acknowledged yet.
    unacknowledged_tasks: BTreeMap<String, TaskInfo>,
    /// The UUID of the UPDATE call in flight.
    in_flight: Option<Vec<u8>>,
    /// UUIDs carried by the SUBSCRIBE call being made.
    in_subscribe: Vec<Vec<u8>>,
}

/// What an ACKNOWLEDGED event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Acknowledgement {
    /// It removed this update.
    Removed,
    /// No such update was waiting (a duplicate, or one given up on).
    Unknown,
}

impl UpdateBook {
    /// A task arrived with LAUNCH: it is unacknowledged until one of its updates is.
    pub fn launched(&mut self, task: TaskInfo) {
        self.unacknowledged_tasks
            .insert(task.task_id.value.clone(), task);
    }

    /// A new update to send; it must carry a UUID.
    pub fn record(&mut self, status: TaskStatus) {
        let uuid = status.uuid.clone().unwrap_or_default();
        debug_assert!(!uuid.is_empty(), "executor updates always carry a UUID");
        self.pending.push(Pending {
            uuid,
            update: executor::call::Update { status },
            delivered: false,
        });
    }

    /// ACKNOWLEDGED for `uuid`: the agent has the update (and has checkpointed it).
    pub fn acknowledged(&mut self, task_id: &str, uuid: &[u8]) -> Acknowledgement {
        // "A task becomes acknowledged once any of its updates is" (reference 3.4).
        self.unacknowledged_tasks.remove(task_id);
        let before = self.pending.len();
        self.pending.retain(|p| p.uuid != uuid);
        if self.pending.len() < before {
            Acknowledgement::Removed
        } else {
            Acknowledgement::Unknown
        }
    }

    /// The payload of a (re-)SUBSCRIBE: everything still unacknowledged, in order. Those
    /// updates count as delivered once that subscription opens.
    pub fn subscribe_payload(&mut self) -> executor::call::Subscribe {
        self.in_subscribe = self.pending.iter().map(|p| p.uuid.clone()).collect();
        executor::call::Subscribe {
            unacknowledged_tasks: self.unacknowledged_tasks.values().cloned().collect(),
            unacknowledged_updates: self.pending.iter().map(|p| p.update.clone()).collect(),
        }
    }

    /// The subscription opened: the agent took in the updates the SUBSCRIBE carried.
    pub fn subscribed(&mut self) {
        let carried = std::mem::take(&mut self.in_subscribe);
        for p in &mut self.pending {
            if carried.contains(&p.uuid) {
                p.delivered = true;
            }
        }
        self.in_flight = None;
    }

    /// The connection broke: nothing is delivered on the next one until it is carried again.
    pub fn disconnected(&mut self) {
        for p in &mut self.pending {
            p.delivered = false;
        }
        self.in_flight = None;
        self.in_subscribe.clear();
    }

    /// The next update to send as an UPDATE call, if none is in flight; marks it in flight.
    pub fn next_to_send(&mut self) -> Option<executor::call::Update> {
        if self.in_flight.is_some() {
            return None;
        }
        let next = self.pending.iter().find(|p| !p.delivered)?;
        self.in_flight = Some(next.uuid.clone());
        Some(next.update.clone())
    }

    /// The UPDATE call for `uuid` was answered 202.
    pub fn sent(&mut self, uuid: &[u8]) {
        if let Some(p) = self.pending.iter_mut().find(|p| p.uuid == uuid) {
            p.delivered = true;
        }
        self.clear_in_flight(uuid);
    }

    /// The UPDATE call for `uuid` failed in a way a retry can fix: it stays first in line.
    pub fn send_failed(&mut self, uuid: &[u8]) {
        self.clear_in_flight(uuid);
    }

    /// The agent refused the update as invalid (400): no retry can fix it, and carrying it in
    /// the next SUBSCRIBE would get that refused too. Returns the dropped status.
    pub fn refused(&mut self, uuid: &[u8]) -> Option<TaskStatus> {
        self.clear_in_flight(uuid);
        let index = self.pending.iter().position(|p| p.uuid == uuid)?;
        Some(self.pending.remove(index).update.status)
    }

    fn clear_in_flight(&mut self, uuid: &[u8]) {
        if self.in_flight.as_deref() == Some(uuid) {
            self.in_flight = None;
        }
    }

    /// True when an UPDATE call is in flight.
    pub fn is_sending(&self) -> bool {
        self.in_flight.is_some()
    }

    /// True when some update is neither acknowledged nor delivered on this subscription.
    pub fn has_undelivered(&self) -> bool {
        self.pending.iter().any(|p| !p.delivered)
    }

    /// Number of updates waiting for ACKNOWLEDGED.
    pub fn unacknowledged(&self) -> usize {
        self.pending.len()
    }

    /// True when nothing waits for ACKNOWLEDGED.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use fastdata_proto::mesos_ext::executor_status;
    use fastdata_proto::v1::{TaskId, TaskState};

    use super::*;

    fn task(id: &str) -> TaskInfo {
        TaskInfo {
            task_id: TaskId { value: id.into() },
            name: id.into(),
            ..Default::default()
        }
    }

    fn uuid_of(update: &executor::call::Update) -> Vec<u8> {
        update.status.uuid.clone().unwrap()
    }

    fn states(subscribe: &executor::call::Subscribe) -> Vec<i32> {
        subscribe
            .unacknowledged_updates
            .iter()
            .map(|u| u.status.state)
            .collect()
    }

    /// One step of a table: an operation and what the book must then hold.
    enum Op {
        Launch(&'static str),
        Record(&'static str, TaskState),
        /// Send the next update (expecting this state, or nothing).
        Send(Option<TaskState>),
        /// The call in flight answered 202.
        Sent,
        /// The call in flight failed and will be retried.
        Failed,
        /// ACKNOWLEDGED for the n-th recorded update (0-based).
        Ack(usize),
        /// ACKNOWLEDGED for a UUID never recorded.
        AckUnknown,
        Disconnect,
        /// Build a SUBSCRIBE: expected unacknowledged tasks and update states.
        Subscribe(&'static [&'static str], &'static [TaskState]),
        Subscribed,
    }

    fn run(ops: &[Op]) -> UpdateBook {
        let mut book = UpdateBook::default();
        let mut recorded: Vec<Vec<u8>> = Vec::new();
        let mut flying: Option<Vec<u8>> = None;
        for (i, op) in ops.iter().enumerate() {
            match op {
                Op::Launch(id) => book.launched(task(id)),
                Op::Record(id, state) => {
                    let s = executor_status(id, *state);
                    recorded.push(s.uuid.clone().unwrap());
                    book.record(s);
                }
                Op::Send(want) => {
                    let got = book.next_to_send();
                    assert_eq!(
                        got.as_ref().map(|u| u.status.state),
                        want.map(|s| s as i32),
                        "step {i}"
                    );
                    if let Some(u) = got {
                        flying = Some(uuid_of(&u));
                    }
                }
                Op::Sent => book.sent(&flying.take().expect("in flight")),
                Op::Failed => book.send_failed(&flying.take().expect("in flight")),
                Op::Ack(n) => {
                    let id = book
                        .pending
                        .iter()
                        .find(|p| p.uuid == recorded[*n])
                        .map(|p| p.update.status.task_id.value.clone())
                        .unwrap_or_default();
                    assert_eq!(
                        book.acknowledged(&id, &recorded[*n]),
                        Acknowledgement::Removed,
                        "step {i}"
                    );
                }
                Op::AckUnknown => assert_eq!(
                    book.acknowledged("t1", &[9; 16]),
                    Acknowledgement::Unknown,
                    "step {i}"
                ),
                Op::Disconnect => {
                    flying = None;
                    book.disconnected();
                }
                Op::Subscribe(tasks, want) => {
                    let s = book.subscribe_payload();
                    let ids: Vec<&str> = s
                        .unacknowledged_tasks
                        .iter()
                        .map(|t| t.task_id.value.as_str())
                        .collect();
                    assert_eq!(ids, *tasks, "step {i}");
                    let want: Vec<i32> = want.iter().map(|s| *s as i32).collect();
                    assert_eq!(states(&s), want, "step {i}");
                }
                Op::Subscribed => book.subscribed(),
            }
        }
        book
    }

    use TaskState::*;

    #[test]
    fn updates_go_one_at_a_time_in_order() {
        let book = run(&[
            Op::Launch("t1"),
            Op::Record("t1", TaskStarting),
            Op::Record("t1", TaskRunning),
            Op::Send(Some(TaskStarting)),
            // Nothing else while one is in flight.
            Op::Send(None),
            Op::Sent,
            Op::Send(Some(TaskRunning)),
            Op::Sent,
            Op::Send(None),
            Op::Ack(0),
            Op::Ack(1),
        ]);
        assert!(book.is_empty());
        assert!(book.unacknowledged_tasks.is_empty());
    }

    #[test]
    fn a_failed_call_holds_back_the_later_updates() {
        let book = run(&[
            Op::Launch("t1"),
            Op::Record("t1", TaskKilling),
            Op::Record("t1", TaskKilled),
            Op::Send(Some(TaskKilling)),
            Op::Failed,
            // The retry sends TASK_KILLING again, never TASK_KILLED first.
            Op::Send(Some(TaskKilling)),
            Op::Sent,
            Op::Send(Some(TaskKilled)),
        ]);
        assert_eq!(book.unacknowledged(), 2);
    }

    #[test]
    fn resubscribe_carries_every_unacknowledged_update_and_task() {
        let book = run(&[
            Op::Launch("t1"),
            Op::Launch("t2"),
            Op::Record("t1", TaskStarting),
            Op::Send(Some(TaskStarting)),
            Op::Sent,
            Op::Ack(0),
            // t1 is acknowledged now; t2 never had an update acknowledged.
            Op::Record("t1", TaskRunning),
            Op::Send(Some(TaskRunning)),
            Op::Sent,
            Op::Disconnect,
            Op::Record("t1", TaskKilling),
            Op::Record("t1", TaskKilled),
            Op::Subscribe(&["t2"], &[TaskRunning, TaskKilling, TaskKilled]),
            // Made while the SUBSCRIBE was on its way: not carried, sent after.
            Op::Record("t2", TaskFailed),
            Op::Subscribed,
            Op::Send(Some(TaskFailed)),
            Op::Sent,
            Op::Send(None),
            Op::Ack(2),
            Op::AckUnknown,
            Op::Ack(1),
            Op::Ack(3),
        ]);
        assert_eq!(book.unacknowledged(), 1, "t2's TASK_FAILED waits");
        assert!(
            book.unacknowledged_tasks.contains_key("t2"),
            "no update of t2 was acknowledged yet"
        );
    }

    #[test]
    fn a_subscription_that_broke_before_opening_carries_them_again() {
        let mut book = run(&[
            Op::Launch("t1"),
            Op::Record("t1", TaskRunning),
            Op::Subscribe(&["t1"], &[TaskRunning]),
            Op::Disconnect,
            Op::Subscribe(&["t1"], &[TaskRunning]),
            Op::Subscribed,
            // Carried by the SUBSCRIBE that opened: not sent again.
            Op::Send(None),
        ]);
        assert!(!book.has_undelivered());
        book.disconnected();
        assert!(book.has_undelivered());
    }

    #[test]
    fn a_refused_update_is_dropped_so_it_cannot_poison_the_next_subscribe() {
        let mut book = UpdateBook::default();
        let bad = executor_status("t1", TaskRunning);
        let uuid = bad.uuid.clone().unwrap();
        book.record(bad);
        book.record(executor_status("t1", TaskFinished));
        let sent = book.next_to_send().unwrap();
        assert_eq!(uuid_of(&sent), uuid);
        let dropped = book.refused(&uuid).unwrap();
        assert_eq!(dropped.state, TaskRunning as i32);
        assert!(!book.is_sending());
        let next = book.next_to_send().unwrap();
        assert_eq!(next.status.state, TaskFinished as i32);
        assert_eq!(book.subscribe_payload().unacknowledged_updates.len(), 1);
    }
}
