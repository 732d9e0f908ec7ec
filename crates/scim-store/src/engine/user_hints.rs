//! Users as last seen, kept as hints for SQLite's edits (`engine/sqlite/user_edit.rs`).
//!
//! A hint is a user (and its direct groups, when they were read with it)
//! as the store last read or wrote it. It is never answered to anyone as
//! it stands: an edit decided on a hint is written only if the user is
//! still that version and still in those groups, which the writer checks
//! under its lock. So a hint can be stale or missing at no cost but speed,
//! and nothing invalidates hints: a change made anywhere else (another
//! process on the same file, a group write, a delete) just makes the
//! writer's check fail, and the edit runs in full.
//!
//! The check relies on one invariant of the store: every write of a user
//! (update, replace, soft delete) bumps its version, so a user at a given
//! version has exactly the attributes, and the filter index rows, of that
//! version. Group memberships are the exception (a group write does not
//! touch its members' versions), hence the separate check of the groups.
//!
//! Hints are filled where the store already holds the user: by the writer
//! after each User edit and create, and by the readers after each user
//! lookup (`GET /Users/{id}`, and the `userName eq` filter with which an
//! identity provider matches a user before it PATCHes it). The newest
//! version wins: a reader that read an older snapshot does not overwrite
//! what the writer stored since.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, PoisonError};

use lru::LruCache;

use crate::db::org::OrgId;
use crate::scim::members::GroupRef;
use crate::scim::users::UserRecord;

/// Users kept at most, the least recently used going first. A user's hint
/// is its attributes (about a kilobyte for a typical Entra user), so this
/// bounds the hints to a few megabytes; an identity provider's
/// read-then-PATCH of a user finds its hint long before it is evicted.
pub(crate) const HINTS: usize = 8192;

/// One user as last seen.
struct Hint {
    /// The organization the user is in: a hint answers only an edit made
    /// in that organization.
    org: OrgId,
    record: Arc<UserRecord>,
    /// Its direct groups, when they were read with it.
    groups: Option<Vec<GroupRef>>,
}

/// The hints (see the module docs).
pub(crate) struct UserHints {
    hints: Mutex<LruCache<String, Hint>>,
}

impl UserHints {
    pub(crate) fn new(capacity: usize) -> Self {
        UserHints {
            hints: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity).unwrap_or(NonZeroUsize::MIN),
            )),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LruCache<String, Hint>> {
        // The map is consistent between calls (nothing here panics while
        // holding it), so a poison is no reason to stop using it.
        self.hints.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The user `id` as last seen, with its groups when `with_groups`
    /// (`None` if there is no hint, or none with groups when asked for).
    pub(crate) fn get(
        &self,
        org: OrgId,
        id: &str,
        with_groups: bool,
    ) -> Option<(Arc<UserRecord>, Option<Vec<GroupRef>>)> {
        let mut hints = self.lock();
        let hint = hints.get(id)?;
        if hint.org != org || (with_groups && hint.groups.is_none()) {
            return None;
        }
        Some((Arc::clone(&hint.record), hint.groups.clone()))
    }

    /// Records `record` as seen, with its `groups` when they were read with
    /// it, unless a newer version of the user is already kept. At the same
    /// version only the groups are taken (they may have changed without
    /// the user's version changing).
    pub(crate) fn offer(&self, org: OrgId, record: &UserRecord, groups: Option<&[GroupRef]>) {
        let mut hints = self.lock();
        if let Some(hint) = hints.get_mut(&record.id) {
            if hint.org == org && hint.record.version > record.version {
                return;
            }
            if hint.org == org && hint.record.version == record.version {
                if let Some(groups) = groups {
                    hint.groups = Some(groups.to_vec());
                }
                return;
            }
        }
        hints.put(
            record.id.clone(),
            Hint {
                org,
                record: Arc::new(record.clone()),
                groups: groups.map(<[GroupRef]>::to_vec),
            },
        );
    }

    /// Drops the hint of `id` (its user was deleted).
    pub(crate) fn forget(&self, id: &str) {
        self.lock().pop(id);
    }

    /// How many users are kept.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use serde_json::{json, Map, Value};

    fn user(id: &str, version: i64, title: &str) -> UserRecord {
        let attrs: Map<String, Value> = match json!({"userName": id, "title": title}) {
            Value::Object(m) => m,
            _ => unreachable!(),
        };
        UserRecord {
            id: id.to_owned(),
            attrs,
            version,
            created: "2026-11-27T00:00:00Z".to_owned(),
            last_modified: "2026-11-27T00:00:00Z".to_owned(),
        }
    }

    fn group(id: &str) -> GroupRef {
        GroupRef {
            value: id.to_owned(),
            display: id.to_owned(),
        }
    }

    #[test]
    fn the_newest_version_wins_and_groups_are_kept_apart() {
        let hints = UserHints::new(16);
        assert!(hints.get(OrgId::DEFAULT, "a", false).is_none());
        hints.offer(OrgId::DEFAULT, &user("a", 2, "two"), None);
        let (rec, groups) = hints.get(OrgId::DEFAULT, "a", false).unwrap();
        assert_eq!((rec.version, groups), (2, None));
        // Asked with groups, a hint without them is no hint.
        assert!(hints.get(OrgId::DEFAULT, "a", true).is_none());
        // An older read does not overwrite a newer write.
        hints.offer(OrgId::DEFAULT, &user("a", 1, "one"), Some(&[group("g")]));
        assert_eq!(hints.get(OrgId::DEFAULT, "a", false).unwrap().0.version, 2);
        assert!(hints.get(OrgId::DEFAULT, "a", true).is_none());
        // The same version brings its groups.
        hints.offer(OrgId::DEFAULT, &user("a", 2, "two"), Some(&[group("g")]));
        let (rec, groups) = hints.get(OrgId::DEFAULT, "a", true).unwrap();
        assert_eq!(rec.attrs["title"], "two");
        assert_eq!(groups.unwrap(), vec![group("g")]);
        // A newer version replaces the hint, groups included.
        hints.offer(OrgId::DEFAULT, &user("a", 3, "three"), None);
        let (rec, groups) = hints.get(OrgId::DEFAULT, "a", false).unwrap();
        assert_eq!((rec.version, groups), (3, None));
        hints.forget("a");
        assert!(hints.get(OrgId::DEFAULT, "a", false).is_none());
    }

    #[test]
    fn the_least_recently_used_user_goes_first() {
        let hints = UserHints::new(2);
        hints.offer(OrgId::DEFAULT, &user("a", 1, "x"), None);
        hints.offer(OrgId::DEFAULT, &user("b", 1, "x"), None);
        assert!(hints.get(OrgId::DEFAULT, "a", false).is_some());
        hints.offer(OrgId::DEFAULT, &user("c", 1, "x"), None);
        assert_eq!(hints.len(), 2);
        assert!(hints.get(OrgId::DEFAULT, "b", false).is_none());
        assert!(hints.get(OrgId::DEFAULT, "a", false).is_some());
        assert!(hints.get(OrgId::DEFAULT, "c", false).is_some());
    }
}
