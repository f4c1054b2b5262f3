//! Version bookkeeping for conditional writes: which version of each node this store last
//! read or wrote, and what a refused retry of a write really means. Pure: the store feeds it
//! the `Stat`s ZooKeeper returns.
//!
//! Several tasks may read and write through one store at once, so answers can arrive out
//! of order: a read that started before a write may finish after it. Every observation
//! carries the node's `mzxid` (the zxid of its last change, which only grows), and an
//! older observation never replaces a newer one. A deletion leaves a tombstone with the last
//! `mzxid` seen, so a read answered before the deletion does not bring the node back.

use std::collections::{BTreeSet, HashMap};

/// One observation of a node: ZooKeeper's data version and the zxid of the change that
/// produced it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NodeVersion {
    /// `Stat.version`: the number of changes to the node's data.
    pub version: i32,
    /// `Stat.mzxid`.
    pub mzxid: i64,
}

impl From<&zookeeper_client::Stat> for NodeVersion {
    fn from(stat: &zookeeper_client::Stat) -> Self {
        NodeVersion {
            version: stat.version,
            mzxid: stat.mzxid,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Present(NodeVersion),
    /// Deleted (by us, or found missing); observations up to this zxid are older.
    Deleted {
        last_mzxid: i64,
    },
}

/// The last version seen of each node.
#[derive(Debug, Default)]
pub(crate) struct VersionMap {
    seen: HashMap<String, Seen>,
}

impl VersionMap {
    /// The version a write must expect: `Some(version)` for `setData`/`delete`, `None` when
    /// this store believes the node absent (never seen, or deleted), so the write creates it.
    pub fn expected(&self, path: &str) -> Option<i32> {
        match self.seen.get(path) {
            Some(Seen::Present(seen)) => Some(seen.version),
            Some(Seen::Deleted { .. }) | None => None,
        }
    }

    /// Records a read or a write, unless a newer observation is already recorded.
    pub fn observe(&mut self, path: &str, observed: NodeVersion) {
        let newer = match self.seen.get(path) {
            None => true,
            Some(Seen::Present(seen)) => observed.mzxid >= seen.mzxid,
            Some(Seen::Deleted { last_mzxid }) => observed.mzxid > *last_mzxid,
        };
        if newer {
            self.seen.insert(path.to_owned(), Seen::Present(observed));
        }
    }

    /// Records that the node is gone.
    pub fn deleted(&mut self, path: &str) {
        let last_mzxid = match self.seen.get(path) {
            Some(Seen::Present(seen)) => seen.mzxid,
            Some(Seen::Deleted { last_mzxid }) => *last_mzxid,
            None => return,
        };
        self.seen
            .insert(path.to_owned(), Seen::Deleted { last_mzxid });
    }

    /// After listing `dir`'s children (`present`) with the listing's `pzxid` (the zxid of the
    /// last change to the set of children), marks every known child that the listing does
    /// not show as deleted. A child seen at a zxid after the listing was created after it
    /// and is kept.
    pub fn listed(&mut self, dir: &str, present: &BTreeSet<String>, pzxid: i64) {
        let prefix = format!("{dir}/");
        for (path, seen) in &mut self.seen {
            let Some(name) = path.strip_prefix(&prefix) else {
                continue;
            };
            if name.contains('/') || present.contains(name) {
                continue;
            }
            if let Seen::Present(version) = *seen
                && version.mzxid <= pzxid
            {
                *seen = Seen::Deleted {
                    last_mzxid: version.mzxid,
                };
            }
        }
    }

    /// Forgets everything (after `delete_all`).
    pub fn clear(&mut self) {
        self.seen.clear();
    }
}

/// A write was sent, its answer lost with the connection, and its retry refused
/// (`BadVersion`, `NodeExists` or `NoNode`). `current` is the node as read now. Returns the
/// node's version when the first attempt was in fact applied: the node holds exactly the
/// bytes written, at the version that write produced (`expected + 1`, or 0 for a create).
/// Anything else is someone else's change: a conflict.
pub(crate) fn first_attempt_applied(
    expected: Option<i32>,
    written: &[u8],
    current: Option<(&[u8], i32)>,
) -> Option<i32> {
    let (data, version) = current?;
    let produced = match expected {
        Some(expected) => expected.checked_add(1)?,
        None => 0,
    };
    (version == produced && data == written).then_some(version)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(version: i32, mzxid: i64) -> NodeVersion {
        NodeVersion { version, mzxid }
    }

    #[test]
    fn a_write_expects_the_last_version_seen() {
        let mut map = VersionMap::default();
        assert_eq!(map.expected("/a"), None, "never seen: create");
        map.observe("/a", seen(0, 10));
        assert_eq!(map.expected("/a"), Some(0));
        map.observe("/a", seen(1, 12));
        assert_eq!(map.expected("/a"), Some(1));
        assert_eq!(map.expected("/b"), None);
    }

    #[test]
    fn an_older_answer_does_not_replace_a_newer_one() {
        let mut map = VersionMap::default();
        // A read issued before our write, answered after it.
        map.observe("/a", seen(4, 40));
        map.observe("/a", seen(3, 30));
        assert_eq!(map.expected("/a"), Some(4));
        // The same change seen twice is fine.
        map.observe("/a", seen(4, 40));
        assert_eq!(map.expected("/a"), Some(4));
    }

    #[test]
    fn a_deletion_is_not_undone_by_an_older_read_but_a_recreation_counts() {
        let mut map = VersionMap::default();
        map.observe("/s/1", seen(2, 50));
        map.deleted("/s/1");
        assert_eq!(map.expected("/s/1"), None);
        map.observe("/s/1", seen(2, 50));
        assert_eq!(map.expected("/s/1"), None, "stale read after delete");
        map.observe("/s/1", seen(0, 70));
        assert_eq!(map.expected("/s/1"), Some(0), "recreated later");
        map.deleted("/never-seen");
        assert_eq!(map.expected("/never-seen"), None);
    }

    #[test]
    fn a_listing_forgets_children_gone_before_it_but_not_newer_ones() {
        let mut map = VersionMap::default();
        map.observe("/s/kept", seen(1, 10));
        map.observe("/s/gone", seen(3, 20));
        map.observe("/s/created-after-listing", seen(0, 200));
        map.observe("/s/kept/deeper", seen(0, 5));
        map.observe("/other/gone", seen(0, 5));
        let present: BTreeSet<String> = ["kept".to_owned()].into();
        map.listed("/s", &present, 100);
        assert_eq!(map.expected("/s/kept"), Some(1));
        assert_eq!(map.expected("/s/gone"), None);
        assert_eq!(map.expected("/s/created-after-listing"), Some(0));
        assert_eq!(map.expected("/s/kept/deeper"), Some(0), "not a child");
        assert_eq!(map.expected("/other/gone"), Some(0), "another directory");
        // The tombstone still orders: a stale answer does not revive it.
        map.observe("/s/gone", seen(3, 20));
        assert_eq!(map.expected("/s/gone"), None);
        map.clear();
        assert_eq!(map.expected("/s/kept"), None);
    }

    #[test]
    fn a_refused_retry_is_told_apart_from_a_conflict() {
        let ours = b"ours".as_slice();
        // (expected, current node) -> the version our first attempt produced, if it did
        type Case<'a> = (Option<i32>, Option<(&'a [u8], i32)>, Option<i32>);
        let cases: [Case<'_>; 8] = [
            (Some(3), Some((ours, 4)), Some(4)),
            (Some(3), Some((b"theirs", 4)), None),
            (Some(3), Some((ours, 5)), None),
            (Some(3), Some((ours, 3)), None),
            (Some(3), None, None),
            (None, Some((ours, 0)), Some(0)),
            (None, Some((ours, 1)), None),
            (Some(i32::MAX), Some((ours, i32::MIN)), None),
        ];
        for (expected, current, applied) in cases {
            assert_eq!(
                first_attempt_applied(expected, ours, current),
                applied,
                "{expected:?} {current:?}"
            );
        }
    }
}
