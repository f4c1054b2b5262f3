//! `devcluster`: a Mesos master and N agents on loopback, for running the framework locally.
//!
//! Prints the master address (and the agents' endpoints) and serves until interrupted:
//! `POST /api/v1/scheduler`, `GET /state`, `POST /devcluster/fault` on the master address,
//! `POST /api/v1/executor` on each agent.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use fastdata_devcluster::{AgentConfig, AttributeValue, ClusterConfig, DevCluster};

/// A single-machine Mesos v1 cluster (master and agents) for local runs and tests.
#[derive(Debug, Parser)]
#[command(name = "devcluster", version)]
struct Args {
    /// Number of agents.
    #[arg(long, default_value_t = 3)]
    agents: usize,
    /// `cpus` of each agent.
    #[arg(long, default_value_t = 4.0)]
    cpus: f64,
    /// `mem` (MB) of each agent.
    #[arg(long, default_value_t = 4096.0)]
    mem: f64,
    /// `disk` (MB) of each agent.
    #[arg(long, default_value_t = 10000.0)]
    disk: f64,
    /// `ports` of each agent, as BEGIN-END.
    #[arg(long, default_value = "31000-32000")]
    ports: String,
    /// Zones assigned round-robin to the agents (comma-separated); empty for none.
    #[arg(long, default_value = "zone-a,zone-b,zone-c")]
    zones: String,
    /// Region of every agent.
    #[arg(long, default_value = "devcluster")]
    region: String,
    /// Agent attribute NAME=VALUE (repeatable; numbers become SCALAR attributes).
    #[arg(long = "attribute")]
    attributes: Vec<String>,
    /// Docker volume drivers the agents have (comma-separated); empty: no docker/volume
    /// isolator, tasks with DOCKER_VOLUME fail as on such a Mesos agent.
    #[arg(long, default_value = "pxd")]
    volume_drivers: String,
    /// Master port (0: any free port).
    #[arg(long, default_value_t = 5050)]
    port: u16,
    /// First agent port (0: any free ports); agent i gets PORT+i.
    #[arg(long, default_value_t = 0)]
    agent_port: u16,
    /// Also open a non-leading master address that redirects to the leader.
    #[arg(long)]
    standby: bool,
    /// Directory for sandboxes and volumes (default: a fresh temporary directory).
    #[arg(long)]
    work_dir: Option<PathBuf>,
    /// Heartbeat interval in seconds.
    #[arg(long, default_value_t = 15.0)]
    heartbeat_secs: f64,
    /// Allocation interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    allocation_interval_ms: u64,
    /// HTTP Basic credentials PRINCIPAL:SECRET (repeatable); turns authentication on.
    #[arg(long = "credential")]
    credentials: Vec<String>,
}

fn parse_ports(text: &str) -> anyhow::Result<Vec<(u64, u64)>> {
    if text.trim().is_empty() {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|range| {
            let (b, e) = range
                .split_once('-')
                .with_context(|| format!("--ports: '{range}' is not BEGIN-END"))?;
            Ok((b.trim().parse()?, e.trim().parse()?))
        })
        .collect()
}

fn config(args: &Args) -> anyhow::Result<ClusterConfig> {
    let ports = parse_ports(&args.ports)?;
    let zones: Vec<String> = args
        .zones
        .split(',')
        .map(str::trim)
        .filter(|z| !z.is_empty())
        .map(String::from)
        .collect();
    let attributes = args
        .attributes
        .iter()
        .map(|a| {
            let (k, v) = a
                .split_once('=')
                .with_context(|| format!("--attribute '{a}' is not NAME=VALUE"))?;
            let value = v
                .parse::<f64>()
                .map(AttributeValue::Scalar)
                .unwrap_or_else(|_| AttributeValue::Text(v.to_owned()));
            Ok((k.to_owned(), value))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let drivers: Vec<String> = args
        .volume_drivers
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(String::from)
        .collect();
    let agents = (0..args.agents)
        .map(|i| AgentConfig {
            cpus: args.cpus,
            mem: args.mem,
            disk: args.disk,
            ports: ports.clone(),
            attributes: attributes.clone(),
            region: args.region.clone(),
            zone: (!zones.is_empty()).then(|| zones[i % zones.len()].clone()),
            volume_drivers: drivers.clone(),
            hostname: "localhost".into(),
            port: if args.agent_port == 0 {
                0
            } else {
                args.agent_port
                    .saturating_add(u16::try_from(i).unwrap_or(u16::MAX))
            },
        })
        .collect();
    let credentials = args
        .credentials
        .iter()
        .map(|c| {
            c.split_once(':')
                .map(|(p, s)| (p.to_owned(), s.to_owned()))
                .with_context(|| "--credential must be PRINCIPAL:SECRET".to_owned())
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(ClusterConfig {
        agents,
        master_port: args.port,
        standby_master: args.standby,
        work_dir: args.work_dir.clone(),
        heartbeat_interval: Duration::from_secs_f64(args.heartbeat_secs),
        allocation_interval: Duration::from_millis(args.allocation_interval_ms),
        credentials,
        ..ClusterConfig::default()
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    let cluster = DevCluster::start(config(&args)?).await?;
    println!("devcluster master {}", cluster.master_url());
    if let Some(standby) = cluster.standby_url() {
        println!("devcluster standby {standby}");
    }
    for (id, endpoint) in cluster.agent_ids().iter().zip(cluster.agent_endpoints()) {
        println!("devcluster agent {id} {endpoint}");
    }
    println!("devcluster state {}/state", cluster.master_url());
    println!("devcluster work_dir {}", cluster.work_dir().display());
    tokio::signal::ctrl_c().await?;
    eprintln!("devcluster: stopping (interrupt again to force)");
    tokio::select! {
        () = cluster.stop() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(())
}
