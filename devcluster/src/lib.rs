//! devcluster: a Mesos master and N agents in one process, on loopback.
//!
//! It speaks the Mesos v1 scheduler API (`POST /api/v1/scheduler` on the master address) and
//! the executor API (`POST /api/v1/executor` on each agent's own `127.0.0.1:<port>`, the
//! executor's `MESOS_AGENT_ENDPOINT`) as a Mesos 1.12 master and agent do, following
//! `reference/mesos-v1.md` (sections 1-3) and the recordings of a real master and agent in
//! `proto/tests/data/mesos-transcripts/`, which its conformance suite (`tests/`) replays. It
//! shares only the proto crate with the framework.
//!
//! # Using it
//!
//! As a library (tests): [`DevCluster::start`] with a [`ClusterConfig`] (ports 0 pick free
//! ones; [`ClusterConfig::fast`] shortens every timer), then [`DevCluster::master_url`],
//! [`DevCluster::agent_endpoints`], [`DevCluster::state`], [`DevCluster::inject`] and
//! [`DevCluster::stop`].
//!
//! As a program: `devcluster --agents 3 --cpus 4 --mem 4096 [--port 5050] [--standby]
//! [--credential principal:secret] ...` prints `devcluster master http://127.0.0.1:5050`,
//! the agents and the state URL, and serves until interrupted (`--help` lists the flags).
//!
//! Besides the Mesos endpoints, the master address serves:
//! - `GET /state`: devcluster's own JSON document (not Mesos' `/state` format): frameworks
//!   (with tasks, unreachable tasks, executors, connection), agents (total, used, offered
//!   and available resources, containers with their sandboxes and pids), offers, tasks,
//!   reservations, persistent and Docker volumes;
//! - `POST /devcluster/fault` with a JSON [`Fault`]: `{"kind":"remove_agent","agent":0}`
//!   (`"gone":true` for marked-gone), `{"kind":"restart_agent","agent":0,"down_ms":1000}`,
//!   `{"kind":"restart_master"}`, `{"kind":"drop_stream","framework_id":"..."}`,
//!   `{"kind":"elect_leader","leader":"standby"|"primary"|null}`.
//!
//! # Design
//!
//! [`cluster::Cluster`] is a pure state machine: requests, closed streams, process starts
//! and exits, timers and faults go in with the time ([`cluster::Now`]); answers come back
//! and everything else is returned as [`cluster::Effect`]s. The master and the agents are
//! separate parts of it that exchange messages through an internal queue, so an agent that
//! is down loses them. The shell (`runtime`, `server`, `launcher`) holds it behind one mutex,
//! carries out the effects without blocking (bounded per-stream queues, spawned tasks) and
//! drives its timers with `tokio::time`.
//!
//! # Where devcluster simplifies
//!
//! - **No containerization or isolation.** Executors and command tasks are plain child
//!   processes in their own process group, in a sandbox directory laid out as on a Mesos
//!   agent (`<work_dir>/agents/<i>/slaves/<agent>/frameworks/<fw>/executors/<ex>/runs/<container>`),
//!   with `stdout`/`stderr` files. Resource limits are not enforced; images, users
//!   (`CommandInfo.user`), rlimits, networks and health/check definitions are ignored.
//!   The environment is exactly the agent's executor environment (reference 3.1) plus
//!   `CommandInfo.environment`, plus `PATH` and `HOME` taken from devcluster's own.
//! - **Command and default executors are played by the agent.** A command task runs as
//!   `sh -c <value>` (or `value` with `arguments` when `shell` is false); the agent emits
//!   the updates Mesos' command executor sends (TASK_STARTING and TASK_RUNNING with uuids
//!   and SOURCE_EXECUTOR when the process starts, TASK_KILLING on KILL for TASK_KILLING_STATE
//!   frameworks, "Command exited with status N" / "Command terminated with signal X"). A
//!   LAUNCH_GROUP with the DEFAULT executor runs each task the same way, killing the whole
//!   group when one task is killed, and the "executor" exits (FAILURE, status 0) once all are
//!   terminal. Without a kill policy the grace period is 3 s.
//! - **Fetcher**: absolute local paths, `file://` and `http://` URIs; `executable`
//!   (mode 0755), `extract` of tar/zip archives (`tar`, `unzip`), `output_file`; no cache, no
//!   `https`, no relative paths.
//! - **Volumes**: persistent volumes (CREATE/DESTROY) are per-agent directories
//!   (`<work_dir>/agents/<i>/volumes/roles/<role>/<id>`), symlinked at the container path.
//!   A `DOCKER_VOLUME` with a driver the agent lists in `volume_drivers` (default `pxd`) is
//!   the cluster-wide directory `<work_dir>/volumes/<driver>/<name>`, symlinked the same
//!   way, so a task on another agent finds the same data (driver options are ignored). An
//!   agent without drivers fails any task with volumes in its ContainerInfo as recorded
//!   (TASK_FAILED, "Failed to launch container: Volumes in ContainerInfo is not supported").
//!   As on Mesos, a custom executor's task ContainerInfo is the executor's business: only
//!   the ExecutorInfo's container volumes and the resources' persistent volumes are linked.
//! - **Allocation**: every `allocation_interval` and at once on SUBSCRIBE, REVIVE and agent
//!   (re)registration, each active agent's free resources go to connected frameworks in a
//!   plain round robin (no DRF, quota, weights or offer constraints), one OFFERS event per
//!   framework per round; min allocatable `cpus:0.01 | mem:32`; filters hold declined
//!   resources for (framework, role, agent) while they still cover what would be offered.
//!   No offer timeout, revocable resources, inverse offers, maintenance or operation
//!   feedback (operations with an `id` get OPERATION_ERROR, as for agents without the
//!   RESOURCE_PROVIDER capability; LAUNCH with an `id` gets TASK_ERROR).
//! - **Timing**: the heartbeat interval is configurable (Mesos: 15 s fixed); the master
//!   notices a closed subscription at its next write at the latest (a heartbeat). Faults act
//!   at once where Mesos waits for timeouts (agent removal after ping timeouts; agents
//!   re-registering after a master failover). Status update retries start at 10 s and double
//!   up to 10 min, as configured.
//! - **Faults**: see [`Fault`]; a removed agent never comes back; a restarted agent keeps the
//!   executors of checkpointing frameworks, which must re-subscribe within
//!   `executor_reregistration_timeout`, and drops the others (their tasks are reported lost
//!   at re-registration); a master failover keeps all state but streams, offers and filters,
//!   and does not run failover timeouts for frameworks that do not come back. The standby
//!   address redirects to the leader (`Location: //localhost:<port>/master/api/v1/scheduler`)
//!   or answers 503 "No leader elected"; the 404/503-during-recovery startup window of a real
//!   master is not reproduced. A keep-alive connection that outlives a stopped agent listener
//!   gets 503 "Agent has not finished recovery" instead of a refused connection.
//! - **Failover timeout**: durations over a year never expire. Completed frameworks are
//!   remembered (50) so that re-subscribing gets "Framework has been removed".
//! - **JSON**: protobuf and JSON bodies and streams are supported; JSON parse error texts
//!   come from serde/prost-reflect, not from stout.

pub mod cluster;
pub mod config;
mod launcher;
pub mod resources;
mod runtime;
mod server;
pub mod wire;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use cluster::{Fault, MasterAddress};
pub use config::{AgentConfig, AttributeValue, ClusterConfig};

use cluster::{Cluster, Ports};
use runtime::{Shared, now};

/// Why a devcluster could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A listener could not be bound.
    #[error("could not listen on {addr} for {what}: {source}; pick another port or 0")]
    Bind {
        /// Which listener.
        what: String,
        /// The address.
        addr: SocketAddr,
        /// The error.
        source: std::io::Error,
    },
    /// The work directory could not be made.
    #[error("could not create the work directory {path}: {source}")]
    WorkDir {
        /// The directory.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

/// A running devcluster.
#[derive(Debug)]
pub struct DevCluster {
    shared: Arc<Shared>,
    ports: Ports,
    work_dir: PathBuf,
    temporary: bool,
    tasks: Vec<JoinHandle<()>>,
    /// Set by [`DevCluster::stop`], so that dropping afterwards does nothing.
    stopped: bool,
}

async fn bind(port: u16, what: String) -> Result<TcpListener, StartError> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { what, addr, source })
}

fn port_of(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or(0)
}

impl DevCluster {
    /// Binds the master address(es) and one listener per agent on 127.0.0.1, and starts
    /// serving. Ports 0 in the config get free ports.
    pub async fn start(config: ClusterConfig) -> Result<DevCluster, StartError> {
        let (work_dir, temporary) = match &config.work_dir {
            Some(dir) => (dir.clone(), false),
            None => (
                std::env::temp_dir().join(format!("devcluster-{}", uuid::Uuid::new_v4())),
                true,
            ),
        };
        std::fs::create_dir_all(&work_dir).map_err(|source| StartError::WorkDir {
            path: work_dir.clone(),
            source,
        })?;
        let master = bind(config.master_port, "the master".into()).await?;
        let standby = if config.standby_master {
            Some(bind(0, "the standby master".into()).await?)
        } else {
            None
        };
        let mut agents = Vec::new();
        for (i, agent) in config.agents.iter().enumerate() {
            agents.push(bind(agent.port, format!("agent {i}")).await?);
        }
        let ports = Ports {
            master: port_of(&master),
            standby: standby.as_ref().map(port_of),
            agents: agents.iter().map(port_of).collect(),
        };
        let cluster = Cluster::new(config, ports.clone(), work_dir.clone(), now());
        let shared = Shared::new(cluster);
        let mut tasks = vec![tokio::spawn(Arc::clone(&shared).drive_timers())];
        tasks.push(tokio::spawn(server::serve_master(
            Arc::clone(&shared),
            master,
            MasterAddress::Primary,
        )));
        if let Some(standby) = standby {
            tasks.push(tokio::spawn(server::serve_master(
                Arc::clone(&shared),
                standby,
                MasterAddress::Standby,
            )));
        }
        for (i, listener) in agents.into_iter().enumerate() {
            tasks.push(tokio::spawn(server::serve_agent(
                Arc::clone(&shared),
                i,
                listener,
            )));
        }
        Ok(DevCluster {
            shared,
            ports,
            work_dir,
            temporary,
            tasks,
            stopped: false,
        })
    }

    /// `http://127.0.0.1:<port>` of the (first) master address.
    pub fn master_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.ports.master)
    }

    /// The master address.
    pub fn master_addr(&self) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.ports.master))
    }

    /// `http://127.0.0.1:<port>` of the standby master address, if configured.
    pub fn standby_url(&self) -> Option<String> {
        self.ports.standby.map(|p| format!("http://127.0.0.1:{p}"))
    }

    /// Each agent's `MESOS_AGENT_ENDPOINT` (`127.0.0.1:<port>`).
    pub fn agent_endpoints(&self) -> Vec<SocketAddr> {
        self.ports
            .agents
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect()
    }

    /// The agents' ids, in order.
    pub fn agent_ids(&self) -> Vec<String> {
        self.shared.with_cluster(|c| {
            (0..self.ports.agents.len())
                .filter_map(|i| c.agent_id(i))
                .collect()
        })
    }

    /// Where sandboxes and volumes live.
    pub fn work_dir(&self) -> &std::path::Path {
        &self.work_dir
    }

    /// The state document (the same as `GET /state`).
    pub fn state(&self) -> serde_json::Value {
        self.shared.with_cluster(|c| c.state())
    }

    /// Injects a fault (the same as `POST /devcluster/fault`).
    pub fn inject(&self, fault: Fault) -> Result<(), String> {
        self.shared.step(|inner| inner.cluster.fault(now(), fault))
    }

    /// Stops serving, kills every process devcluster started, and removes the work
    /// directory if devcluster made it.
    pub async fn stop(mut self) {
        self.stopped = true;
        self.shared.kill_all();
        self.shared.shutdown.send_replace(true);
        for task in std::mem::take(&mut self.tasks) {
            task.abort();
            let _ = task.await;
        }
        if self.temporary {
            let _ = tokio::fs::remove_dir_all(&self.work_dir).await;
        }
    }
}

/// A cluster dropped without [`DevCluster::stop`] (a test that panicked, say) still kills its
/// processes and removes its temporary work directory: sandboxes hold a copy of every fetched
/// executor, and left behind they fill the disk.
impl Drop for DevCluster {
    fn drop(&mut self) {
        if self.stopped {
            // Done by stop(); signalling its process groups again could reach reused ids.
            return;
        }
        self.shared.kill_all();
        self.shared.shutdown.send_replace(true);
        for task in &self.tasks {
            task.abort();
        }
        if self.temporary {
            let _ = std::fs::remove_dir_all(&self.work_dir);
        }
    }
}
