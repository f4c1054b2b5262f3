//! Where each piece of state lives: the znode paths under `/dcos-service-<name>`, and which
//! names ZooKeeper accepts. Pure: no ZooKeeper calls here.

use std::collections::BTreeMap;

use super::StateError;
use crate::config::escape_service_name;

/// The Mesos framework id (text), as the DC/OS SDK names it.
pub const FRAMEWORK_ID: &str = "FrameworkID";
/// The layout's schema version, as the DC/OS SDK names it.
pub const SCHEMA_VERSION: &str = "SchemaVersion";
/// The schema this code writes and understands.
pub const SCHEMA_VERSION_VALUE: &str = "1";
/// Parent of the lock node.
pub const LOCK: &str = "lock";
/// The ephemeral lock node under [`LOCK`], holding its owner's name.
pub const LOCK_OWNER: &str = "owner";
/// The scaling configuration (JSON).
pub const SCALING: &str = "scaling";
/// The decision audit log (JSON).
pub const DECISIONS: &str = "decisions";
/// Parent of the slot records.
pub const SLOTS: &str = "slots";

/// Longest slot name accepted. ZooKeeper has no per-name limit, but a name is repeated in
/// every listing of `slots/`, which must stay well under `jute.maxbuffer`.
const MAX_SLOT_NAME_BYTES: usize = 200;

/// The paths of one service's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatePaths {
    root: String,
}

impl StatePaths {
    /// The paths for `service_name`, escaped as DC/OS SDK services do (`/a/b` → `a__b`).
    pub fn for_service(service_name: &str) -> Result<StatePaths, StateError> {
        let escaped = escape_service_name(service_name);
        check_node_name(&escaped).map_err(|reason| StateError::InvalidServiceName {
            name: service_name.to_owned(),
            reason,
        })?;
        Ok(StatePaths {
            root: format!("/dcos-service-{escaped}"),
        })
    }

    /// `/dcos-service-<name>`.
    pub fn root(&self) -> &str {
        &self.root
    }

    fn child(&self, name: &str) -> String {
        format!("{}/{name}", self.root)
    }

    /// The framework id node.
    pub fn framework_id(&self) -> String {
        self.child(FRAMEWORK_ID)
    }

    /// The schema version node.
    pub fn schema_version(&self) -> String {
        self.child(SCHEMA_VERSION)
    }

    /// The lock's parent.
    pub fn lock(&self) -> String {
        self.child(LOCK)
    }

    /// The ephemeral lock node.
    pub fn lock_owner(&self) -> String {
        format!("{}/{LOCK}/{LOCK_OWNER}", self.root)
    }

    /// The scaling configuration node.
    pub fn scaling(&self) -> String {
        self.child(SCALING)
    }

    /// The decision log node.
    pub fn decisions(&self) -> String {
        self.child(DECISIONS)
    }

    /// The slots' parent.
    pub fn slots(&self) -> String {
        self.child(SLOTS)
    }

    /// The node of slot `name`, if `name` can be a znode name.
    pub fn slot(&self, name: &str) -> Result<String, StateError> {
        let checked = if name.len() > MAX_SLOT_NAME_BYTES {
            Err("longer than 200 bytes")
        } else {
            check_node_name(name)
        };
        checked.map_err(|reason| StateError::InvalidSlotName {
            name: name.to_owned(),
            reason,
        })?;
        Ok(format!("{}/{SLOTS}/{name}", self.root))
    }

    /// The persistent children of the root created at connect when missing, with the data a
    /// new node starts with (empty = never set).
    pub(crate) fn layout(&self) -> Vec<(String, &'static [u8])> {
        vec![
            (self.framework_id(), b"".as_slice()),
            (self.schema_version(), SCHEMA_VERSION_VALUE.as_bytes()),
            (self.lock(), b""),
            (self.scaling(), b""),
            (self.decisions(), b""),
            (self.slots(), b""),
        ]
    }

    /// The order in which `delete_all` removes the tree it found (`tree` maps every node
    /// found, the root included, to its children's names). Batches run one after the other;
    /// the nodes of one batch can go at once. Children go before their parents (ZooKeeper
    /// refuses to delete a node with children); the lock's subtree goes after everything
    /// else, so the scheduler holds its lock until its state is gone; the root goes last.
    pub(crate) fn deletion_plan(&self, tree: &BTreeMap<String, Vec<String>>) -> Vec<Vec<String>> {
        let lock = self.lock();
        let lock_prefix = format!("{lock}/");
        let (lock_nodes, others): (Vec<&String>, Vec<&String>) = tree
            .keys()
            .filter(|path| **path != self.root)
            .partition(|path| **path == lock || path.starts_with(&lock_prefix));
        let mut plan = deepest_first(&others);
        plan.extend(deepest_first(&lock_nodes));
        if tree.contains_key(&self.root) {
            plan.push(vec![self.root.clone()]);
        }
        plan
    }
}

/// Groups paths by depth, deepest first.
fn deepest_first(paths: &[&String]) -> Vec<Vec<String>> {
    let mut by_depth: BTreeMap<usize, Vec<String>> = BTreeMap::new();
    for path in paths {
        let depth = path.matches('/').count();
        by_depth.entry(depth).or_default().push((*path).clone());
    }
    by_depth.into_values().rev().collect()
}

/// Whether `name` can be one component of a znode path, by the rules of ZooKeeper's
/// `PathUtils.validatePath`: not empty, not `.` or `..`, no `/`, no NUL, no control
/// characters (U+0001–U+001F, U+007F–U+009F) and nothing in U+D800–U+F8FF or U+FFF0–U+FFFF.
pub fn check_node_name(name: &str) -> Result<(), &'static str> {
    if name.is_empty() {
        return Err("empty");
    }
    if name == "." || name == ".." {
        return Err("'.' and '..' are not node names");
    }
    for c in name.chars() {
        let code = u32::from(c);
        if c == '/' {
            return Err("contains '/'");
        }
        if code == 0 || (0x01..=0x1f).contains(&code) || (0x7f..=0x9f).contains(&code) {
            return Err("contains a control character");
        }
        if (0xd800..=0xf8ff).contains(&code) || (0xfff0..=0xffff).contains(&code) {
            return Err("contains a character ZooKeeper refuses in paths");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_follow_the_dcos_sdk_layout() {
        let paths = StatePaths::for_service("fastdata").expect("valid");
        assert_eq!(paths.root(), "/dcos-service-fastdata");
        assert_eq!(paths.framework_id(), "/dcos-service-fastdata/FrameworkID");
        assert_eq!(
            paths.schema_version(),
            "/dcos-service-fastdata/SchemaVersion"
        );
        assert_eq!(paths.lock(), "/dcos-service-fastdata/lock");
        assert_eq!(paths.lock_owner(), "/dcos-service-fastdata/lock/owner");
        assert_eq!(paths.scaling(), "/dcos-service-fastdata/scaling");
        assert_eq!(paths.decisions(), "/dcos-service-fastdata/decisions");
        assert_eq!(paths.slots(), "/dcos-service-fastdata/slots");
        assert_eq!(
            paths.slot("consumer-3").expect("valid"),
            "/dcos-service-fastdata/slots/consumer-3"
        );
        let layout = paths.layout();
        let layout: Vec<&str> = layout.iter().map(|(path, _)| path.as_str()).collect();
        assert_eq!(
            layout,
            vec![
                "/dcos-service-fastdata/FrameworkID",
                "/dcos-service-fastdata/SchemaVersion",
                "/dcos-service-fastdata/lock",
                "/dcos-service-fastdata/scaling",
                "/dcos-service-fastdata/decisions",
                "/dcos-service-fastdata/slots",
            ]
        );
    }

    #[test]
    fn folder_names_are_escaped_like_the_sdk() {
        let cases = [
            ("/prod/fastdata", "/dcos-service-prod__fastdata"),
            ("prod/fastdata/", "/dcos-service-prod__fastdata"),
            ("/a/b/c", "/dcos-service-a__b__c"),
            ("sensors.v2", "/dcos-service-sensors.v2"),
        ];
        for (name, root) in cases {
            assert_eq!(
                StatePaths::for_service(name).expect(name).root(),
                root,
                "{name}"
            );
        }
    }

    #[test]
    fn names_zookeeper_refuses_are_errors() {
        for name in [
            "", "/", "a\u{0}b", "a\nb", "x\u{7f}", "\u{e000}", "\u{fff5}",
        ] {
            let err = StatePaths::for_service(name).expect_err(name);
            assert!(
                matches!(err, StateError::InvalidServiceName { .. }),
                "{name:?}: {err}"
            );
        }
        let paths = StatePaths::for_service("fastdata").expect("valid");
        let long = "x".repeat(201);
        for name in ["", ".", "..", "a/b", "tab\there", long.as_str()] {
            let err = paths.slot(name).expect_err(name);
            assert!(
                err.to_string().contains("cannot name a ZooKeeper node"),
                "{name:?}: {err}"
            );
        }
        for name in [
            "0",
            "consumer-17",
            "producer_0",
            "...",
            "é",
            &"x".repeat(200),
        ] {
            assert!(paths.slot(name).is_ok(), "{name:?}");
        }
    }

    #[test]
    fn deletion_goes_children_first_lock_and_root_last() {
        let paths = StatePaths::for_service("svc").expect("valid");
        let root = paths.root().to_owned();
        let mut tree: BTreeMap<String, Vec<String>> = BTreeMap::new();
        tree.insert(
            root.clone(),
            vec!["FrameworkID".into(), "lock".into(), "slots".into()],
        );
        tree.insert(paths.framework_id(), vec![]);
        tree.insert(paths.lock(), vec!["owner".into()]);
        tree.insert(paths.lock_owner(), vec![]);
        tree.insert(paths.slots(), vec!["0".into(), "1".into()]);
        tree.insert(paths.slot("0").expect("valid"), vec![]);
        tree.insert(paths.slot("1").expect("valid"), vec![]);
        tree.insert(format!("{root}/lockdown"), vec![]);
        let plan = paths.deletion_plan(&tree);
        assert_eq!(
            plan,
            vec![
                vec![
                    "/dcos-service-svc/slots/0".to_owned(),
                    "/dcos-service-svc/slots/1".to_owned()
                ],
                vec![
                    "/dcos-service-svc/FrameworkID".to_owned(),
                    "/dcos-service-svc/lockdown".to_owned(),
                    "/dcos-service-svc/slots".to_owned()
                ],
                vec!["/dcos-service-svc/lock/owner".to_owned()],
                vec!["/dcos-service-svc/lock".to_owned()],
                vec!["/dcos-service-svc".to_owned()],
            ]
        );
        assert!(paths.deletion_plan(&BTreeMap::new()).is_empty());
    }
}
