//! The real `dcos-fastdata` binary through the whole path: DC/OS environment → Admin Router
//! stand-in (`/service/<name>/`, token check) → the real scheduler API → back, for every
//! subcommand, as the DC/OS CLI invokes plugins (`dcos-fastdata fastdata <args>`).

mod common;

use std::time::Duration;

use common::{AdminRouter, Scheduler, dcos_fastdata};
use serde_json::Value;
use tokio::io::AsyncReadExt;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.operator";

fn cluster_env(router: &AdminRouter) -> Vec<(&'static str, String)> {
    vec![
        ("DCOS_URL", router.url.clone()),
        ("DCOS_ACS_TOKEN", TOKEN.to_owned()),
    ]
}

fn as_refs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_goes_through_admin_router_with_the_token() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let env = cluster_env(&router);
    let run = dcos_fastdata(&["fastdata", "status"], &as_refs(&env)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    for line in [
        "fastdata · running · deploy IN_PROGRESS",
        "  3 of 4 consumers running; consumer-3 waiting for an offer",
        "Lag        12,400 messages (backlog 11,900) · lagging · oldest unread 7.9 s old · drains in 4.3 s",
        "Rates      produce 3,100/s · consume 2,890/s",
        "Consumers  3 running · 4 desired · bounds 1..10 · mode proportional",
        "Sink       Cassandra healthy on 3 of 3 consumers",
        "Held       consumer-3 waiting for an offer: needs 1 cpu and 512 MB, best offer has 0.5 cpu on agent-2",
        "        0       4,100  lagging   7.9 s",
        "Recent decisions (newest first, UTC)",
    ] {
        assert!(
            run.stdout.lines().any(|l| l == line),
            "missing {line:?} in:\n{}",
            run.stdout
        );
    }
    let seen = router.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/service/fastdata/v1/status");
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some(format!("token={TOKEN}").as_str())
    );

    // --json prints the scheduler's document; it also works without the `fastdata` argument.
    let run = dcos_fastdata(&["status", "--json"], &as_refs(&env)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let json: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(json["lag"]["total"], 12_400);
    assert_eq!(json["consumers"]["desired"], 4);
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_set_changes_the_thresholds_that_get_and_status_then_show() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let env = cluster_env(&router);
    let env = as_refs(&env);

    let run = dcos_fastdata(
        &[
            "fastdata",
            "scaling",
            "set",
            "--scale-up-lag",
            "2000",
            "--scale-down-lag",
            "200",
            "--mode",
            "step",
            "--step-interval",
            "7.5s",
            "--max",
            "6",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let marked: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("* "))
        .map(|l| l.split_whitespace().nth(1).expect("a field"))
        .collect();
    assert_eq!(
        marked,
        [
            "mode",
            "scale_up_lag",
            "scale_down_lag",
            "max_consumers",
            "step_interval_secs"
        ],
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("2,000"), "{}", run.stdout);
    let put = router
        .seen()
        .into_iter()
        .find(|s| s.method == "PUT")
        .expect("a PUT");
    assert_eq!(put.path, "/service/fastdata/v1/scaling");
    assert_eq!(put.authorization, Some(format!("token={TOKEN}")));

    let run = dcos_fastdata(&["fastdata", "scaling", "get", "--json"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let config: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(config["scale_up_lag"], 2_000);
    assert_eq!(config["scale_down_lag"], 200);
    assert_eq!(config["mode"], "step");
    assert_eq!(config["step_interval_secs"], 7.5);
    assert_eq!(config["max_consumers"], 6);
    assert_eq!(config["min_consumers"], 1, "untouched");

    let run = dcos_fastdata(&["fastdata", "scaling", "get"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.lines().any(|l| l.starts_with("  scale_up_lag")
            && l.contains("2,000")
            && l.contains("--scale-up-lag")),
        "{}",
        run.stdout
    );

    let run = dcos_fastdata(&["fastdata", "status"], &env).await;
    assert!(
        run.stdout
            .contains("Consumers  3 running · 4 desired · bounds 1..6 · mode step"),
        "{}",
        run.stdout
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_are_listed_newest_first_with_reasons() {
    let scheduler = Scheduler::start(true).await;
    let newest = scheduler
        .status
        .borrow()
        .decisions
        .last()
        .expect("decisions")
        .decision
        .reason
        .clone();
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let env = cluster_env(&router);
    let run = dcos_fastdata(&["fastdata", "decisions", "--limit", "5"], &as_refs(&env)).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0], "Scaling decisions, newest first (UTC; 5 of 14):",
        "{}",
        run.stdout
    );
    assert_eq!(lines.len(), 6);
    assert!(
        lines[1].ends_with(&newest) || lines[1].contains(&newest),
        "{}",
        lines[1]
    );
    assert!(
        run.stdout.contains("▲ 3 → 4"),
        "the scale-up 9 minutes ago is listed: {}",
        run.stdout
    );
    let run = dcos_fastdata(&["fastdata", "decisions", "--json"], &as_refs(&env)).await;
    let json: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(json["decisions"].as_array().map(Vec::len), Some(14));
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_installed_under_another_name_is_reached_with_name() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["data/fastdata-2"], TOKEN).await;
    let env = cluster_env(&router);
    let env = as_refs(&env);

    let run = dcos_fastdata(&["fastdata", "status"], &env).await;
    assert_eq!(
        run.code, 5,
        "the default name is not installed: {}",
        run.stderr
    );

    let run = dcos_fastdata(&["fastdata", "--name", "/data/fastdata-2", "status"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dcos_fastdata(&["fastdata", "status", "--name", "data/fastdata-2"], &env).await;
    assert_eq!(run.code, 0, "--name after the subcommand: {}", run.stderr);
    let mut with_config = env.clone();
    with_config.push(("DCOS_FASTDATA_SERVICE_NAME", "data/fastdata-2"));
    let run = dcos_fastdata(&["fastdata", "status"], &with_config).await;
    assert_eq!(run.code, 0, "the [fastdata] config section: {}", run.stderr);
    let paths: Vec<String> = router.seen().into_iter().map(|s| s.path).collect();
    assert_eq!(
        paths,
        [
            "/service/fastdata/v1/status",
            "/service/data/fastdata-2/v1/status",
            "/service/data/fastdata-2/v1/status",
            "/service/data/fastdata-2/v1/status"
        ]
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_redraws_the_status_in_place() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcos-fastdata"))
        .args(["fastdata", "status", "--watch", "--interval", "0.2"])
        .env_clear()
        .env("DCOS_URL", &router.url)
        .env("DCOS_ACS_TOKEN", TOKEN)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let mut stdout = child.stdout.take().expect("piped");
    let clear = "\x1b[H\x1b[2J";
    let held = "Held       scale-up held: Cassandra unhealthy on 2 of 3 consumers";
    let mut seen = String::new();
    let mut buffer = [0u8; 8192];
    // Whole frames are those followed by the next clear; the last part may be half written.
    let complete = |seen: &str| -> Vec<String> {
        let parts: Vec<&str> = seen.split(clear).collect();
        parts[1..parts.len().saturating_sub(1).max(1)]
            .iter()
            .map(|f| (*f).to_owned())
            .collect()
    };
    // Read until three whole frames are drawn and a redraw shows a change the loop published
    // after the first frame.
    let read = async {
        let mut changed = false;
        loop {
            let frames = complete(&seen);
            if frames.len() >= 3 && frames.iter().any(|f| f.contains(held)) {
                break;
            }
            let n = stdout.read(&mut buffer).await.expect("reads");
            assert!(n > 0, "the watch ended early: {seen}");
            seen.push_str(&String::from_utf8_lossy(&buffer[..n]));
            if !changed && seen.contains(clear) {
                scheduler.status.send_modify(|s| {
                    std::sync::Arc::make_mut(s).held_reason =
                        Some("scale-up held: Cassandra unhealthy on 2 of 3 consumers".into());
                });
                changed = true;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), read)
        .await
        .expect("three frames and the change within 60 s");
    child.kill().await.expect("stops");
    let frames = complete(&seen);
    assert!(
        !frames[0].contains(held),
        "the first frame is from before the change"
    );
    for frame in &frames {
        assert!(
            frame.starts_with("fastdata · running · deploy IN_PROGRESS"),
            "each frame is a whole summary drawn from the top: {frame:?}"
        );
        assert!(frame.contains("Every 0.2 s · "), "{frame}");
    }
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_with_json_prints_one_document_per_line() {
    let scheduler = Scheduler::start(true).await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_dcos-fastdata"))
        .args([
            "--url",
            &scheduler.base,
            "status",
            "--watch",
            "--json",
            "--interval",
            "0.2",
        ])
        .env_clear()
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("starts");
    let stdout = child.stdout.take().expect("piped");
    let mut lines = tokio::io::AsyncBufReadExt::lines(tokio::io::BufReader::new(stdout));
    for _ in 0..3 {
        let line = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
            .await
            .expect("a line within 60 s")
            .expect("reads")
            .expect("the watch goes on");
        let status: Value = serde_json::from_str(&line).expect("each line is a JSON document");
        assert_eq!(status["lag"]["total"], 12_400);
    }
    child.kill().await.expect("stops");
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn producers_shows_and_sets_the_rate_through_admin_router() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let env = cluster_env(&router);
    let env = as_refs(&env);

    let run = dcos_fastdata(&["fastdata", "producers"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(run.stdout, "1 producer task · 800/s each\n");

    let run = dcos_fastdata(&["fastdata", "producers", "set-rate", "2500"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.starts_with(
            "Producer rate set: 1 producer task · 2,500/s each. Running producers changed at once.\n"
        ),
        "{}",
        run.stdout
    );
    let put = router
        .seen()
        .into_iter()
        .find(|s| s.method == "PUT")
        .expect("a PUT");
    assert_eq!(put.path, "/service/fastdata/v1/producers");
    assert_eq!(put.authorization, Some(format!("token={TOKEN}")));

    let run = dcos_fastdata(&["fastdata", "producers", "--json"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let producers: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(producers, serde_json::json!({"tasks": 1, "rate": 2500.0}));
    let run = dcos_fastdata(&["fastdata", "status"], &env).await;
    assert!(
        run.stdout
            .lines()
            .any(|l| l == "Producers  1 producer task · 2,500/s each"),
        "{}",
        run.stdout
    );

    // 0 pauses; a rate out of range is refused by the scheduler (exit 6) and changes nothing.
    let run = dcos_fastdata(&["fastdata", "producers", "set-rate", "0", "--json"], &env).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let producers: Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(producers["rate"], 0.0);
    let run = dcos_fastdata(&["fastdata", "producers", "set-rate", "-5"], &env).await;
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert_eq!(
        run.stderr.lines().collect::<Vec<_>>(),
        [
            "dcos fastdata: the scheduler refused the change (1 problem):",
            "  rate: -5 is not a rate; use events per second per producer task, from 0 (paused) to 1000000",
            "Nothing was changed.",
        ],
        "{}",
        run.stderr
    );
    let run = dcos_fastdata(&["fastdata", "producers"], &env).await;
    assert_eq!(run.stdout, "1 producer task · paused (rate 0)\n");
    scheduler.shutdown().await;
}
