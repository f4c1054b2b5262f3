//! The `dcos fastdata` CLI against a real scheduler on devcluster (issue 8 "Evidence"): set
//! thresholds, see them in the status, restart the scheduler, see them kept; a refused change
//! is explained field by field with its exit code.

use std::process::Output;
use std::time::Duration;

use fastdata_devcluster::{ClusterConfig, DevCluster};
use fastdata_tests::binaries::binary;
use fastdata_tests::scheduler::Stage;

async fn cli(url: &str, args: &[&str]) -> Output {
    let bin = binary("dcos-fastdata", "dcos-fastdata");
    tokio::process::Command::new(bin)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .arg("fastdata")
        .args(args)
        .args(["--url", url])
        .output()
        .await
        .expect("the CLI runs")
}

fn text(output: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        output.status.code(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| panic!("{e}: {}", text(output)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn thresholds_set_with_the_cli_show_in_status_and_survive_a_restart() {
    let cluster = DevCluster::start(ClusterConfig::with_agents(2, 2.0, 2048.0).fast())
        .await
        .expect("devcluster starts");
    let stage = Stage::new("fdcli", cluster, 6, "noop").await;
    let mut scheduler = stage.scheduler("scheduler-1").await;
    scheduler.framework_id().await;
    scheduler.health_becomes(200, Duration::from_secs(60)).await;

    let set = cli(
        &scheduler.rest,
        &[
            "scaling",
            "set",
            "--scale-up-lag",
            "900",
            "--scale-down-lag",
            "300",
            "--max",
            "4",
            "--mode",
            "step",
        ],
    )
    .await;
    assert_eq!(set.status.code(), Some(0), "{}", text(&set));

    let status = cli(&scheduler.rest, &["status", "--json"]).await;
    assert_eq!(status.status.code(), Some(0), "{}", text(&status));
    let status = json(&status);
    let scaling = &status["scaling"];
    assert_eq!(scaling["scale_up_lag"], 900, "{status}");
    assert_eq!(scaling["scale_down_lag"], 300, "{status}");
    assert_eq!(scaling["max_consumers"], 4, "{status}");
    assert_eq!(scaling["mode"], "step", "{status}");
    let readable = cli(&scheduler.rest, &["status"]).await;
    assert_eq!(readable.status.code(), Some(0), "{}", text(&readable));
    assert!(
        String::from_utf8_lossy(&readable.stdout).contains("900"),
        "{}",
        text(&readable)
    );

    // A refused change: each field and rule, exit code 6, nothing changed.
    let refused = cli(
        &scheduler.rest,
        &["scaling", "set", "--scale-down-lag", "5000", "--min", "9"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(6), "{}", text(&refused));
    let why = String::from_utf8_lossy(&refused.stderr);
    assert!(why.contains("scale_down_lag"), "{}", text(&refused));
    assert!(why.contains("min_consumers"), "{}", text(&refused));

    assert_eq!(scheduler.stop().await, Some(0));
    let scheduler = stage.scheduler("scheduler-2").await;
    scheduler.health_becomes(200, Duration::from_secs(60)).await;
    let kept = cli(&scheduler.rest, &["scaling", "get", "--json"]).await;
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept));
    let kept = json(&kept);
    assert_eq!(kept["scale_up_lag"], 900, "kept across the restart: {kept}");
    assert_eq!(kept["scale_down_lag"], 300, "{kept}");
    assert_eq!(kept["max_consumers"], 4, "{kept}");
    assert_eq!(kept["mode"], "step", "{kept}");
    stage.cluster.stop().await;
}
