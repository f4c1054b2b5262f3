//! Reading devcluster's `/state` document (the ground truth of what is on the cluster) and
//! setting up a scheduler against it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use serde_json::Value;

/// A task in the state document.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct TaskOnCluster {
    /// Task id.
    pub id: String,
    /// `TASK_RUNNING` ...
    pub state: String,
    /// Agent id.
    pub agent_id: String,
}

/// The tasks of `framework_id` whose id starts with `prefix`.
pub fn tasks(state: &Value, framework_id: &str, prefix: &str) -> Vec<TaskOnCluster> {
    let mut out: Vec<TaskOnCluster> = state["tasks"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|t| t["framework_id"] == framework_id)
        .filter(|t| t["id"].as_str().is_some_and(|id| id.starts_with(prefix)))
        .map(|t| TaskOnCluster {
            id: t["id"].as_str().unwrap_or_default().to_owned(),
            state: t["state"].as_str().unwrap_or_default().to_owned(),
            agent_id: t["agent_id"].as_str().unwrap_or_default().to_owned(),
        })
        .collect();
    out.sort();
    out
}

/// The running ones of [`tasks`].
pub fn running(state: &Value, framework_id: &str, prefix: &str) -> Vec<TaskOnCluster> {
    tasks(state, framework_id, prefix)
        .into_iter()
        .filter(|t| t.state == "TASK_RUNNING")
        .collect()
}

fn label<'a>(resource: &'a Value, key: &str) -> Option<&'a str> {
    resource["reservations"].as_array()?.last()?["labels"]["labels"]
        .as_array()?
        .iter()
        .find(|l| l["key"] == key)?["value"]
        .as_str()
}

/// Reservations on the cluster's live agents labelled with `framework_id`: slot label →
/// agents holding a reservation for it (one entry per distinct `resource_id`). A removed
/// agent's resources are gone with it.
pub fn reservations(
    state: &Value,
    framework_id: &str,
) -> BTreeMap<String, BTreeSet<(String, String)>> {
    let removed: BTreeSet<&str> = state["agents"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|a| a["presence"] == "unreachable" || a["presence"] == "gone")
        .filter_map(|a| a["id"].as_str())
        .collect();
    let mut out: BTreeMap<String, BTreeSet<(String, String)>> = BTreeMap::new();
    for entry in state["reservations"].as_array().into_iter().flatten() {
        if entry["agent_id"]
            .as_str()
            .is_some_and(|a| removed.contains(a))
        {
            continue;
        }
        let resource = &entry["resource"];
        if label(resource, "framework_id") != Some(framework_id) {
            continue;
        }
        let slot = label(resource, "slot").unwrap_or("?").to_owned();
        let id = label(resource, "resource_id").unwrap_or("?").to_owned();
        let agent = entry["agent_id"].as_str().unwrap_or_default().to_owned();
        out.entry(slot).or_default().insert((agent, id));
    }
    out
}

/// Docker volumes devcluster created (listed as `<driver>/<name>`): name → directory.
pub fn docker_volumes(state: &Value) -> BTreeMap<String, PathBuf> {
    state["volumes"]["docker"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| {
            let listed = v["name"].as_str()?;
            let name = listed.split_once('/').map_or(listed, |(_, name)| name);
            Some((name.to_owned(), PathBuf::from(v["path"].as_str()?)))
        })
        .collect()
}

/// The framework's entry, by id.
pub fn framework<'a>(state: &'a Value, framework_id: &str) -> Option<&'a Value> {
    state["frameworks"]
        .as_array()?
        .iter()
        .find(|f| f["id"] == framework_id)
}

/// The sandbox of the container running `task_id`.
pub fn sandbox_of(state: &Value, task_id: &str) -> Option<PathBuf> {
    state["agents"].as_array()?.iter().find_map(|agent| {
        agent["containers"].as_array()?.iter().find_map(|c| {
            c["tasks"]
                .as_array()?
                .iter()
                .any(|t| t["id"] == task_id)
                .then(|| PathBuf::from(c["sandbox"].as_str().unwrap_or_default()))
        })
    })
}
