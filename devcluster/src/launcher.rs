//! Starting processes the way an agent's containerizer would, minus the isolation: make the
//! sandbox, fetch `CommandInfo.uris` into it (local paths, `file://` and `http://` URLs),
//! link volumes into it, and start the command in its own process group with exactly the
//! environment the agent computed (plus `PATH` and `HOME` from devcluster's own).
//!
//! stdout and stderr go to the files `stdout` and `stderr` in the sandbox, as on a Mesos
//! agent.

use std::os::unix::process::ExitStatusExt as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use fastdata_proto::v1::command_info::Uri;
use nix::sys::signal::{self, Signal as NixSignal};
use nix::unistd::Pid;

use crate::cluster::{ExitInfo, LaunchSpec, Signal};
use crate::runtime::Shared;

/// Sends a signal to a process group (devcluster starts every process as a group leader).
pub(crate) fn signal_group(pgid: u32, signal: Signal) {
    let Ok(raw) = i32::try_from(pgid) else {
        return;
    };
    let sig = match signal {
        Signal::Term => NixSignal::SIGTERM,
        Signal::Kill => NixSignal::SIGKILL,
    };
    if let Err(e) = signal::killpg(Pid::from_raw(raw), sig)
        && e != nix::errno::Errno::ESRCH
    {
        tracing::warn!(pgid, error = %e, "could not signal process group");
    }
}

/// Prepares the sandbox, starts the process, reports its start and its end.
pub(crate) async fn run(shared: Arc<Shared>, spec: LaunchSpec) {
    let container = spec
        .process
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    let child = match prepare(&spec, &container).await {
        Ok(()) => spawn(&spec),
        Err(e) => Err(e),
    };
    let mut child = match child {
        Ok(child) => child,
        Err(message) => {
            shared.process_failed(spec.agent, &spec.process, &message);
            return;
        }
    };
    let pid = child.id().unwrap_or(0);
    shared.process_started(spec.agent, &spec.process, pid);
    let exit = match child.wait().await {
        Ok(status) => ExitInfo {
            code: status.code(),
            signal: status.signal(),
            raw: status.into_raw(),
        },
        Err(e) => {
            tracing::warn!(error = %e, "could not wait for a child process");
            ExitInfo {
                code: None,
                signal: None,
                raw: -1,
            }
        }
    };
    shared.process_exited(spec.agent, &spec.process, exit);
}

async fn prepare(spec: &LaunchSpec, container: &str) -> Result<(), String> {
    tokio::fs::create_dir_all(&spec.sandbox)
        .await
        .map_err(|e| format!("Failed to create sandbox '{}': {e}", spec.sandbox.display()))?;
    for uri in &spec.uris {
        fetch(uri, &spec.sandbox)
            .await
            .map_err(|e| format!("Failed to fetch all URIs for container '{container}': {e}"))?;
    }
    for (container_path, target) in &spec.links {
        link(&spec.sandbox, container_path, target).await?;
    }
    Ok(())
}

/// The file name a URI is fetched to.
fn fetched_name(uri: &Uri) -> String {
    if let Some(name) = &uri.output_file {
        return name.clone();
    }
    let path = uri.value.split(['?', '#']).next().unwrap_or_default();
    path.rsplit('/').next().unwrap_or("fetched").to_owned()
}

fn is_archive(name: &str) -> bool {
    [
        ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip",
    ]
    .iter()
    .any(|ext| name.ends_with(ext))
}

/// One URI into the sandbox (the Mesos fetcher without its cache).
async fn fetch(uri: &Uri, sandbox: &Path) -> Result<(), String> {
    let name = fetched_name(uri);
    let dest = sandbox.join(&name);
    let value = uri.value.as_str();
    if value.starts_with("http://") || value.starts_with("https://") {
        let response = reqwest::get(value)
            .await
            .map_err(|e| format!("Failed to fetch '{value}': {e}"))?;
        if !response.status().is_success() {
            return Err(format!(
                "Failed to fetch '{value}': HTTP {}",
                response.status()
            ));
        }
        let body = response
            .bytes()
            .await
            .map_err(|e| format!("Failed to fetch '{value}': {e}"))?;
        tokio::fs::write(&dest, &body)
            .await
            .map_err(|e| format!("Failed to write '{}': {e}", dest.display()))?;
    } else {
        let source = value.strip_prefix("file://").unwrap_or(value);
        if !Path::new(source).is_absolute() {
            return Err(format!(
                "Failed to fetch '{value}': only absolute local paths, file:// and http:// URIs are supported"
            ));
        }
        tokio::fs::copy(source, &dest)
            .await
            .map_err(|e| format!("Failed to copy '{source}': {e}"))?;
    }
    let executable = uri.executable.unwrap_or(false);
    if executable {
        use std::os::unix::fs::PermissionsExt as _;
        tokio::fs::set_permissions(&dest, std::fs::Permissions::from_mode(0o755))
            .await
            .map_err(|e| format!("Failed to chmod '{}': {e}", dest.display()))?;
    } else if uri.extract.unwrap_or(true) && is_archive(&name) {
        let mut cmd = if name.ends_with(".zip") {
            let mut c = tokio::process::Command::new("unzip");
            c.arg("-o").arg("-q").arg(&dest).arg("-d").arg(sandbox);
            c
        } else {
            let mut c = tokio::process::Command::new("tar");
            c.arg("-xf").arg(&dest).arg("-C").arg(sandbox);
            c
        };
        let status = cmd
            .status()
            .await
            .map_err(|e| format!("Failed to extract '{name}': {e}"))?;
        if !status.success() {
            return Err(format!("Failed to extract '{name}': {status}"));
        }
    }
    Ok(())
}

/// Makes `<sandbox>/<container_path>` a symlink to `target` (created if missing), as the
/// agent does for persistent volumes.
async fn link(sandbox: &Path, container_path: &str, target: &PathBuf) -> Result<(), String> {
    tokio::fs::create_dir_all(target).await.map_err(|e| {
        format!(
            "Failed to create volume directory '{}': {e}",
            target.display()
        )
    })?;
    let path = sandbox.join(container_path.trim_start_matches('/'));
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| format!("Failed to create '{}': {e}", parent.display()))?;
    }
    let _ = tokio::fs::remove_file(&path).await;
    tokio::fs::symlink(target, &path)
        .await
        .map_err(|e| format!("Failed to mount volume at '{}': {e}", path.display()))
}

fn spawn(spec: &LaunchSpec) -> Result<tokio::process::Child, String> {
    let mut cmd = if spec.shell {
        let mut c = tokio::process::Command::new("/bin/sh");
        c.arg("-c").arg(&spec.value);
        c
    } else {
        let mut c = tokio::process::Command::new(&spec.value);
        c.args(spec.arguments.iter().skip(1));
        c
    };
    cmd.env_clear();
    for name in ["PATH", "HOME"] {
        if let Ok(v) = std::env::var(name) {
            cmd.env(name, v);
        }
    }
    cmd.envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    cmd.current_dir(&spec.sandbox);
    let stdout = std::fs::File::create(spec.sandbox.join("stdout"))
        .map_err(|e| format!("Failed to create stdout: {e}"))?;
    let stderr = std::fs::File::create(spec.sandbox.join("stderr"))
        .map_err(|e| format!("Failed to create stderr: {e}"))?;
    cmd.stdin(std::process::Stdio::null());
    cmd.stdout(stdout);
    cmd.stderr(stderr);
    cmd.process_group(0);
    cmd.spawn()
        .map_err(|e| format!("Failed to start '{}': {e}", spec.value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetched_names() {
        let uri = |v: &str| Uri {
            value: v.into(),
            ..Default::default()
        };
        assert_eq!(
            fetched_name(&uri("http://127.0.0.1:8765/fdx_custom_executor.py")),
            "fdx_custom_executor.py"
        );
        assert_eq!(fetched_name(&uri("/opt/bin/exec?x=1")), "exec");
        let mut named = uri("http://h/x");
        named.output_file = Some("y".into());
        assert_eq!(fetched_name(&named), "y");
        assert!(is_archive("a.tar.gz") && !is_archive("a.py"));
    }
}
