//! Every failure a person can act on, with its message and exit code, from the real binary:
//! no cluster (3), an expired or missing token (4), a service not found (5), a refused change
//! shown field by field (6), an unreachable cluster (7), an unavailable scheduler (8), and
//! command-line mistakes (2).

mod common;

use common::{AdminRouter, Scheduler, dcos_fastdata};

const TOKEN: &str = "current-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_cluster_configured_exits_3_and_says_how_to_set_one_up() {
    let run = dcos_fastdata(&["fastdata", "status"], &[]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stdout.is_empty());
    for hint in ["dcos cluster setup", "DCOS_URL", "--url"] {
        assert!(run.stderr.contains(hint), "{hint}: {}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_or_missing_token_exits_4_and_says_to_log_in() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let expired = dcos_fastdata(
        &["fastdata", "status"],
        &[
            ("DCOS_URL", &router.url),
            ("DCOS_ACS_TOKEN", "expired-token"),
        ],
    )
    .await;
    assert_eq!(expired.code, 4, "{}", expired.stderr);
    assert!(
        expired.stderr.contains("401 Unauthorized"),
        "{}",
        expired.stderr
    );
    assert!(
        expired.stderr.contains("dcos auth login"),
        "{}",
        expired.stderr
    );

    let missing = dcos_fastdata(&["fastdata", "status"], &[("DCOS_URL", &router.url)]).await;
    assert_eq!(missing.code, 4, "{}", missing.stderr);
    let seen = router.seen();
    assert_eq!(
        seen[0].authorization.as_deref(),
        Some("token=expired-token")
    );
    assert_eq!(seen[1].authorization, None, "no token, no header");
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_service_exits_5_and_suggests_name() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let run = dcos_fastdata(
        &["fastdata", "--name", "fastdata-staging", "status"],
        &[("DCOS_URL", &router.url), ("DCOS_ACS_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("no service named \"fastdata-staging\""),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("--name"), "{}", run.stderr);

    // A scheduler that does not serve an endpoint (an older one, or a wrong --url path).
    let run = dcos_fastdata(
        &["--url", &format!("{}/nothing", scheduler.base), "status"],
        &[],
    )
    .await;
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("the scheduler does not serve /v1/status"),
        "{}",
        run.stderr
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_change_exits_6_and_lists_every_field_with_its_flag() {
    let scheduler = Scheduler::start(true).await;
    let router = AdminRouter::start(&scheduler.base, &["fastdata"], TOKEN).await;
    let env = [("DCOS_URL", router.url.as_str()), ("DCOS_ACS_TOKEN", TOKEN)];
    let run = dcos_fastdata(
        &[
            "fastdata",
            "scaling",
            "set",
            "--scale-down-lag",
            "900",
            "--min",
            "5",
            "--max",
            "2",
            "--headroom",
            "1.5",
        ],
        &env,
    )
    .await;
    assert_eq!(run.code, 6, "{}", run.stderr);
    let lines: Vec<&str> = run.stderr.lines().collect();
    assert_eq!(
        lines,
        [
            "dcos fastdata: the scheduler refused the change (3 problems):",
            "  --scale-down-lag (scale_down_lag): scale_down_lag (900) must be below scale_up_lag (500): the group grows above scale_up_lag, shrinks below scale_down_lag and holds in between",
            "  --min (min_consumers): min_consumers (5) must not exceed max_consumers (2)",
            "  --headroom (headroom): headroom must be a fraction between 0 and 1 (0.05 keeps 5% spare capacity), not 1.5",
            "Nothing was changed.",
        ],
        "{}",
        run.stderr
    );
    let run = dcos_fastdata(&["fastdata", "scaling", "get", "--json"], &env).await;
    let config: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(config["scale_down_lag"], 100, "nothing changed");
    assert_eq!(config["max_consumers"], 10);
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_cluster_exits_7() {
    // A port that was free a moment ago: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = dcos_fastdata(
        &["fastdata", "status"],
        &[("DCOS_URL", &url), ("DCOS_ACS_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "cannot reach {url}/service/fastdata/v1/status (DCOS_URL)"
        )),
        "{}",
        run.stderr
    );
    let run = dcos_fastdata(&["--url", &url, "status"], &[]).await;
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(
        run.stderr.contains("is --url its REST address?"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unavailable_scheduler_exits_8() {
    // The scheduler's loop does not answer: the API answers 503.
    let stuck = Scheduler::start(false).await;
    let router = AdminRouter::start(&stuck.base, &["fastdata"], TOKEN).await;
    let run = dcos_fastdata(
        &["fastdata", "scaling", "set", "--scale-up-lag", "900"],
        &[("DCOS_URL", &router.url), ("DCOS_ACS_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(
        run.stderr.contains("503 Service Unavailable"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("did not answer within 0.3 s"),
        "{}",
        run.stderr
    );

    // The scheduler is gone: Admin Router answers 502.
    let base = stuck.base.clone();
    stuck.shutdown().await;
    let router = AdminRouter::start(&base, &["fastdata"], TOKEN).await;
    let run = dcos_fastdata(
        &["fastdata", "status"],
        &[("DCOS_URL", &router.url), ("DCOS_ACS_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 8, "{}", run.stderr);
    assert!(run.stderr.contains("502 Bad Gateway"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn command_line_mistakes_exit_2() {
    let env = [("DCOS_URL", "http://127.0.0.1:9")];
    let cases: [(&[&str], &str); 6] = [
        (
            &["fastdata", "decisions", "--limit", "0"],
            "0 is not in 1..",
        ),
        (&["fastdata", "scaling", "set"], "nothing to change"),
        (
            &["fastdata", "status", "--watch", "--interval", "0.01"],
            "too short",
        ),
        (
            &["fastdata", "scaling", "set", "--mode", "fast"],
            "invalid value 'fast'",
        ),
        (
            &["fastdata", "scaling", "set", "--cooldown", "-5"],
            "must be a duration of 0 or more",
        ),
        (&["fastdata", "rescale"], "unrecognized subcommand"),
    ];
    for (args, message) in cases {
        let run = dcos_fastdata(args, &env).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(message), "{args:?}: {}", run.stderr);
    }
    let run = dcos_fastdata(
        &["fastdata", "status"],
        &[
            ("DCOS_URL", "https://c.example.com"),
            ("DCOS_TLS_CA_PATH", "/nonexistent/ca.pem"),
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("cannot read the CA bundle /nonexistent/ca.pem"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_conventions_answer_without_a_cluster() {
    let info = dcos_fastdata(&["fastdata", "--info"], &[]).await;
    assert_eq!(info.code, 0);
    assert_eq!(info.stdout.lines().count(), 1);
    assert!(info.stdout.starts_with("Inspect fastdata"));
    let version = dcos_fastdata(&["fastdata", "--version"], &[]).await;
    assert_eq!(version.code, 0);
    assert_eq!(
        version.stdout.trim(),
        format!("dcos-fastdata {}", env!("CARGO_PKG_VERSION"))
    );
    let schema = dcos_fastdata(&["fastdata", "--config-schema"], &[]).await;
    assert_eq!(schema.code, 0);
    let schema: serde_json::Value = serde_json::from_str(&schema.stdout).expect("JSON");
    assert_eq!(schema["properties"]["service_name"]["default"], "fastdata");
    let help = dcos_fastdata(&["fastdata", "--help"], &[]).await;
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit codes:"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_talks_to_a_scheduler_directly_without_dcos() {
    let scheduler = Scheduler::start(true).await;
    let run = dcos_fastdata(&["--url", &scheduler.base, "status"], &[]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("fastdata · running"));
    let run = dcos_fastdata(
        &[
            "--url",
            &format!("{}/", scheduler.base),
            "scaling",
            "set",
            "--min",
            "2",
        ],
        &[],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(scheduler.status.borrow().scaling.min_consumers, 2);
    scheduler.shutdown().await;
}
