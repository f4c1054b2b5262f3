//! The binary and its environment, without an agent: a missing or malformed `MESOS_*`
//! variable stops it with exit code 2 and a message naming the variable; with checkpointing
//! and no agent it gives up after `MESOS_RECOVERY_TIMEOUT`; SIGTERM stops it.

use std::collections::BTreeMap;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const EXECUTOR: &str = env!("CARGO_BIN_EXE_fastdata-executor");

/// A port on 127.0.0.1 where nothing listens.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A complete environment as a checkpointing agent writes it (`executor-env-checkpoint.json`).
fn agent_env(port: u16) -> BTreeMap<String, String> {
    let sandbox = std::env::temp_dir().join("fastdata-executor-env-test");
    std::fs::create_dir_all(&sandbox).unwrap();
    let sandbox = sandbox.display().to_string();
    [
        ("LIBPROCESS_IP", "127.0.0.1".to_owned()),
        ("LIBPROCESS_PORT", "0".to_owned()),
        ("MESOS_AGENT_ENDPOINT", format!("127.0.0.1:{port}")),
        ("MESOS_CHECKPOINT", "1".to_owned()),
        ("MESOS_DIRECTORY", sandbox.clone()),
        ("MESOS_EXECUTOR_ID", "env-test.executor".to_owned()),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5secs".to_owned()),
        (
            "MESOS_FRAMEWORK_ID",
            "03e54496-2043-43f3-a8ee-17d501c112ea-0000".to_owned(),
        ),
        ("MESOS_HTTP_COMMAND_EXECUTOR", "0".to_owned()),
        ("MESOS_RECOVERY_TIMEOUT", "15mins".to_owned()),
        ("MESOS_SANDBOX", sandbox),
        (
            "MESOS_SLAVE_ID",
            "03e54496-2043-43f3-a8ee-17d501c112ea-S0".to_owned(),
        ),
        ("MESOS_SLAVE_PID", format!("slave(1)@127.0.0.1:{port}")),
        ("MESOS_SUBSCRIPTION_BACKOFF_MAX", "2secs".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect()
}

fn command(env: &BTreeMap<String, String>) -> Command {
    let mut cmd = Command::new(EXECUTOR);
    cmd.env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs to completion within `within`; returns (exit code, stderr, time taken).
fn run(mut cmd: Command, within: Duration) -> (Option<i32>, String, Duration) {
    let started = Instant::now();
    let mut child = cmd.spawn().expect("the executor starts");
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let output = child.wait_with_output().unwrap();
            return (
                status.code(),
                String::from_utf8_lossy(&output.stderr).into_owned(),
                started.elapsed(),
            );
        }
        if started.elapsed() > within {
            let _ = child.kill();
            let output = child.wait_with_output().unwrap();
            panic!(
                "still running after {within:?}; stderr:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_missing_or_malformed_variable_stops_it_naming_the_variable() {
    // (variable, value or None for "unset")
    let cases: &[(&str, Option<&str>)] = &[
        ("MESOS_AGENT_ENDPOINT", None),
        ("MESOS_AGENT_ENDPOINT", Some("localhost")),
        ("MESOS_FRAMEWORK_ID", None),
        ("MESOS_EXECUTOR_ID", Some("")),
        ("MESOS_DIRECTORY", None),
        ("MESOS_SANDBOX", Some("relative/sandbox")),
        ("MESOS_CHECKPOINT", None),
        ("MESOS_CHECKPOINT", Some("yes")),
        ("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", Some("5 fortnights")),
        ("MESOS_RECOVERY_TIMEOUT", None),
        ("MESOS_SUBSCRIPTION_BACKOFF_MAX", Some("-2secs")),
    ];
    let port = closed_port();
    for (variable, value) in cases {
        let mut env = agent_env(port);
        match value {
            Some(v) => env.insert((*variable).to_owned(), (*v).to_owned()),
            None => env.remove(*variable),
        };
        let (code, stderr, _) = run(command(&env), Duration::from_secs(30));
        assert_eq!(code, Some(2), "{variable}={value:?}: {stderr}");
        let line = stderr.trim();
        assert!(
            line.starts_with(&format!("fastdata-executor: cannot start: {variable}: ")),
            "{variable}={value:?}: {line}"
        );
        assert_eq!(line.lines().count(), 1, "one sentence: {line}");
    }
}

#[test]
fn with_checkpointing_and_no_agent_it_gives_up_after_the_recovery_timeout() {
    let mut env = agent_env(closed_port());
    env.insert("MESOS_RECOVERY_TIMEOUT".into(), "2secs".into());
    env.insert("MESOS_SUBSCRIPTION_BACKOFF_MAX".into(), "500ms".into());
    let (code, stderr, took) = run(command(&env), Duration::from_secs(30));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(took >= Duration::from_secs(2), "gave up after {took:?}");
    assert!(
        stderr.contains("could not subscribe to the agent within 2 s"),
        "{stderr}"
    );
    // It kept trying in between (refused connections, retried within the backoff).
    assert!(
        stderr.matches("subscribing to the agent").count() >= 4,
        "{stderr}"
    );
    for line in stderr.lines().filter(|l| !l.trim().is_empty()) {
        assert!(
            line.starts_with("task_id=- executor_id=env-test.executor "),
            "{line}"
        );
    }
}

#[test]
fn sigterm_stops_it() {
    let env = agent_env(closed_port());
    let started = Instant::now();
    let mut child = command(&env).spawn().unwrap();
    std::thread::sleep(Duration::from_millis(500));
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "SIGTERM did not stop it");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(0), "nothing was running: a clean exit");
    assert!(started.elapsed() < Duration::from_secs(20));
}
