//! Cluster discovery from the DC/OS CLI's configuration directory, with the real binary: the
//! attached cluster's `dcos.toml` (URL, token, `[fastdata] service_name`), `DCOS_CLUSTER` to
//! choose another, `~/.dcos` as the default directory, and the environment over the file.

mod common;

use common::{AdminRouter, Scheduler, dcos_dir, dcos_fastdata, scratch};

fn toml(url: &str, token: &str, name: &str, service: Option<&str>) -> String {
    let mut text = format!(
        "[core]\ndcos_url = \"{url}\"\ndcos_acs_token = \"{token}\"\nssl_verify = \"false\"\n\n[cluster]\nname = \"{name}\"\n"
    );
    if let Some(service) = service {
        text.push_str(&format!("\n[fastdata]\nservice_name = \"{service}\"\n"));
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_attached_cluster_of_dcos_dir_is_used_and_dcos_cluster_picks_another() {
    let scheduler = Scheduler::start(true).await;
    let prod = AdminRouter::start(&scheduler.base, &["fd-prod"], "prod-token").await;
    let dev = AdminRouter::start(&scheduler.base, &["fastdata"], "dev-token").await;
    let dir = dcos_dir(&[
        (
            "8e3f1c2a-prod",
            true,
            &toml(&prod.url, "prod-token", "prod", Some("fd-prod")),
        ),
        (
            "41b7d9e0-dev",
            false,
            &toml(&dev.url, "dev-token", "dev", None),
        ),
    ]);
    let dir_text = dir.to_string_lossy().into_owned();

    let run = dcos_fastdata(&["fastdata", "status"], &[("DCOS_DIR", &dir_text)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("fastdata · running"));
    let seen = prod.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].path, "/service/fd-prod/v1/status",
        "[fastdata] service_name"
    );
    assert_eq!(seen[0].authorization.as_deref(), Some("token=prod-token"));

    for selector in ["dev", "41b7"] {
        let run = dcos_fastdata(
            &["fastdata", "scaling", "get"],
            &[("DCOS_DIR", &dir_text), ("DCOS_CLUSTER", selector)],
        )
        .await;
        assert_eq!(run.code, 0, "{selector}: {}", run.stderr);
    }
    let seen = dev.seen();
    assert_eq!(seen.len(), 2);
    assert!(seen.iter().all(|s| s.path == "/service/fastdata/v1/scaling"
        && s.authorization.as_deref() == Some("token=dev-token")));

    let run = dcos_fastdata(
        &["fastdata", "status"],
        &[("DCOS_DIR", &dir_text), ("DCOS_CLUSTER", "staging")],
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("DCOS_CLUSTER=staging names no cluster; the clusters set up are dev (41b7d9e0-dev), prod (8e3f1c2a-prod)"),
        "{}",
        run.stderr
    );
    scheduler.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn home_dot_dcos_is_the_default_and_the_environment_overrides_it() {
    let scheduler = Scheduler::start(true).await;
    let from_file = AdminRouter::start(&scheduler.base, &["fastdata"], "file-token").await;
    let from_env = AdminRouter::start(&scheduler.base, &["fastdata"], "env-token").await;
    let home = scratch("home-with-dcos");
    let cluster = home.join(".dcos").join("clusters").join("c1");
    std::fs::create_dir_all(&cluster).expect("a cluster directory");
    std::fs::write(
        cluster.join("dcos.toml"),
        toml(&from_file.url, "file-token", "main", None),
    )
    .expect("dcos.toml");
    std::fs::write(cluster.join("attached"), "").expect("attached");
    let home_text = home.to_string_lossy().into_owned();

    let run = dcos_fastdata(&["fastdata", "decisions"], &[("HOME", &home_text)]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(from_file.seen().len(), 1);

    // The DC/OS CLI passes DCOS_URL and DCOS_ACS_TOKEN: they win over the file.
    let run = dcos_fastdata(
        &["fastdata", "decisions"],
        &[
            ("HOME", &home_text),
            ("DCOS_URL", &from_env.url),
            ("DCOS_ACS_TOKEN", "env-token"),
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(from_file.seen().len(), 1, "the file's cluster is not used");
    assert_eq!(
        from_env.seen()[0].authorization.as_deref(),
        Some("token=env-token")
    );
    scheduler.shutdown().await;
}
