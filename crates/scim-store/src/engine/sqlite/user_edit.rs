//! User edits on SQLite: decided before the writer, written by it.
//!
//! SQLite has one writer thread (`engine/sqlite/writer.rs`), and under a
//! stream of `PATCH /Users/{id}` it is the bottleneck. An edit run entirely
//! on the writer ([`edit_alone`]) spends much
//! of the writer's time on work that needs no write lock: parsing the
//! stored JSON, applying the PATCH, deriving the indexed columns and filter
//! rows, and serialising the result (docs/BENCHMARKS.md).
//!
//! So an edit ([`queue_edit`]) whose user has a hint (`engine/user_hints.rs`: the
//! user as the store last read or wrote it) is decided on the calling
//! thread, on that hint, and the writer only checks and writes:
//!
//! 1. the edit's closure runs on the hint; when it stores, the whole write
//!    is built there (`users::prepare_update`: the `UPDATE users` and the
//!    filter rows' statements);
//! 2. the writer runs it only if the user is still in the groups the
//!    closure was given (when it asked for them: they are in its answer,
//!    and a group write does not change the user's version), and only if
//!    the user is still the version of the hint and User Synchronization
//!    is still enabled (conditions of the `UPDATE`);
//! 3. if anything differs, nothing was written, and the writer runs the
//!    edit in full, as without a hint: it reads the user, calls the closure
//!    again, and writes, all under its write lock. That answer is final:
//!    there is no retry loop.
//!
//! An edit that would answer without writing on the hint (no change, a
//! stale `If-Match`, an invalid PATCH) is not answered from the hint,
//! which may be stale: the writer runs it in full. So is an edit without
//! a hint. Every answer thus comes from the user as stored when the
//! answer was decided, under the write lock or checked under it, and the
//! closure may be called twice (it is `Fn`, as on PostgreSQL, whose
//! batches may also call it again).

use std::sync::Arc;

use tokio::sync::oneshot;

use crate::changes::{record, NewChange};
use crate::db::connection::Backend;
use crate::db::connection::DbConnection;
use crate::engine::edit::{Edit, EditBy, Found};
use crate::engine::queue::catch;
use crate::engine::sqlite::writer::SqliteWriter;
use crate::engine::user_hints::UserHints;
use crate::error::StoreError;
use crate::scim::lookup::find_user_gated;
use crate::scim::members::{user_groups, GroupRef};
use crate::scim::unique::{carries_custom, check_unique};
use crate::scim::users::{
    apply_prepared_update, prepare_update, user_exists, PasswordChange, PreparedUpdate, UserRecord,
};

/// An edit decided (on a hint, or in full on the writer): the write, and
/// what to answer with the stored record.
struct Decided<T> {
    prepared: PreparedUpdate,
    /// Its change log rows, built here too.
    changes: Vec<NewChange>,
    /// The groups the closure was given, when it asked for them.
    groups: Option<Vec<GroupRef>>,
    /// The user's attributes before, when they hold custom extension
    /// values (`scim::unique`: values it already held are not checked).
    before: Option<serde_json::Map<String, serde_json::Value>>,
    then: Box<dyn FnOnce(UserRecord) -> T + Send>,
}

impl<T> Decided<T> {
    /// The write of `attrs` (and `password`) over `current`, with its
    /// change log rows by `by`; `gated`: with the User Synchronization
    /// gate as a condition of the `UPDATE` (an edit decided on a hint,
    /// before the gate was read).
    fn new(
        by: &EditBy,
        current: &UserRecord,
        attrs: serde_json::Map<String, serde_json::Value>,
        password: &PasswordChange,
        then: Box<dyn FnOnce(UserRecord) -> T + Send>,
        groups: Option<Vec<GroupRef>>,
        gated: bool,
    ) -> Result<Decided<T>, StoreError> {
        let prepared = prepare_update(
            Backend::Sqlite,
            by.actor.org,
            current,
            attrs,
            password,
            gated,
        )?;
        let changes = by.changes(&current.attrs, prepared.record(), password)?;
        Ok(Decided {
            prepared,
            changes,
            groups,
            before: carries_custom(&current.attrs).then(|| current.attrs.clone()),
            then,
        })
    }

    /// The one write of a User edit on SQLite, on the writer inside its
    /// transaction: the prepared `UPDATE` and filter rows, the uniqueness
    /// check, the change log rows (the last write), and the user stored
    /// offered to `hints`. `None`: nothing was written, because the user
    /// is no longer the version the edit was decided on (or, for a gated
    /// write, synchronization was disabled since).
    fn write(
        self,
        conn: &mut DbConnection,
        by: &EditBy,
        hints: &UserHints,
    ) -> Result<Option<T>, StoreError> {
        let Decided {
            prepared,
            changes,
            groups,
            before,
            then,
        } = self;
        let Some(stored) = apply_prepared_update(conn, prepared)? else {
            return Ok(None);
        };
        check_unique(
            conn,
            by.actor.org,
            &[(&stored.id, &stored.attrs, before.as_ref())],
        )?;
        record(conn, &by.actor, &stored.last_modified, &changes)?;
        hints.offer(by.actor.org, &stored, groups.as_deref());
        Ok(Some(then(stored)))
    }
}

/// Queues the edit of user `id` (see the module docs): `f` gets the user
/// as stored (with its groups when `with_groups`), and the receiver the
/// answer once its write, if any, committed (with its change log rows,
/// by `by`).
pub(crate) fn queue_edit<T, F>(
    writes: &SqliteWriter,
    hints: Arc<UserHints>,
    id: String,
    with_groups: bool,
    by: EditBy,
    f: F,
) -> oneshot::Receiver<Result<T, StoreError>>
where
    T: Send + 'static,
    F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
{
    let decided = hints
        .get(by.actor.org, &id, with_groups)
        .and_then(|(record, groups)| {
            // A closure that panics here panics again on the writer, which
            // answers it as a failed write.
            catch("user edit", || {
                Ok(decide(&f, &by, &record, groups.filter(|_| with_groups)))
            })
            .ok()
            .flatten()
        });
    match decided {
        Some(decided) => writes.submit(move |conn| {
            if let Some(seen) = &decided.groups {
                if user_groups(conn, &id)? != *seen {
                    return edit_alone(conn, &id, with_groups, &by, &f, &hints);
                }
            }
            match decided.write(conn, &by, &hints)? {
                Some(answer) => Ok(answer),
                None => edit_alone(conn, &id, with_groups, &by, &f, &hints),
            }
        }),
        None => writes.submit(move |conn| edit_alone(conn, &id, with_groups, &by, &f, &hints)),
    }
}

/// An edit in full on the writer, inside its transaction: the gate and
/// the user (with its groups when asked) in one statement, the closure,
/// and the write it decides ([`Decided::write`], as a hinted edit's; the
/// single writer needs no row lock).
fn edit_alone<T, F>(
    conn: &mut DbConnection,
    id: &str,
    with_groups: bool,
    by: &EditBy,
    f: &F,
    hints: &UserHints,
) -> Result<T, StoreError>
where
    F: Fn(Found) -> Result<Edit<T>, StoreError>,
{
    let gated = find_user_gated(conn, by.actor.org, id, with_groups)?;
    // The groups read, for the hint of the user stored.
    let groups = match &gated.found {
        Some((_, groups)) if with_groups => Some(groups.clone()),
        _ => None,
    };
    match f(gated.found)? {
        Edit::Answer(t) => Ok(t),
        Edit::Store {
            current,
            attrs,
            password,
            then,
        } => {
            let decided = Decided::new(by, &current, attrs, &password, then, groups, false)?;
            match decided.write(conn, by, hints)? {
                Some(answer) => Ok(answer),
                // The closure was given the user as stored, under the
                // write lock: only a `current` of its own making differs.
                None => Err(if user_exists(conn, by.actor.org, &current.id)? {
                    StoreError::PreconditionFailed
                } else {
                    StoreError::NotFound
                }),
            }
        }
    }
}

/// Runs the edit on a hint: the write it decides, if it decides one.
fn decide<T, F>(
    f: &F,
    by: &EditBy,
    record: &UserRecord,
    groups: Option<Vec<GroupRef>>,
) -> Option<Decided<T>>
where
    F: Fn(Found) -> Result<Edit<T>, StoreError>,
{
    let found = Some((record.clone(), groups.clone().unwrap_or_default()));
    match f(found) {
        Ok(Edit::Store {
            current,
            attrs,
            password,
            then,
        }) => Decided::new(by, &current, attrs, &password, then, groups, true).ok(),
        // Not answered from a hint (see the module docs).
        Ok(Edit::Answer(_)) | Err(_) => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::json;

    use super::*;
    use crate::admin::sync::{disable_sync, is_sync_disabled};
    use crate::scim::lookup::LookupBy;
    use crate::scim::users::{update_user, PasswordChange};
    use crate::testing::{backends, enable_sync, obj, patched_by_test};
    use crate::{
        engine::Store, scim::members::MemberRef, scim::members::MemberType, scim::users::find_user,
        scim::users::insert_user,
    };

    fn enable(store: &Store) {
        enable_sync(store, crate::db::org::OrgId::DEFAULT);
    }

    /// An edit setting `attr` to `value`, counting its calls, answering
    /// with the stored user and the groups it was given; with `if_match`,
    /// it answers 412 unless the user is that version.
    fn set(
        attr: &'static str,
        value: &'static str,
        if_match: Option<i64>,
        calls: &Arc<AtomicUsize>,
    ) -> impl Fn(Found) -> Result<Edit<(UserRecord, Vec<GroupRef>)>, StoreError> + Send + 'static
    {
        let calls = Arc::clone(calls);
        move |found| {
            calls.fetch_add(1, Ordering::SeqCst);
            let (current, groups) = found.ok_or(StoreError::NotFound)?;
            if if_match.is_some_and(|v| v != current.version) {
                return Err(StoreError::PreconditionFailed);
            }
            let mut attrs = current.attrs.clone();
            attrs.insert(attr.into(), json!(value));
            Ok(Edit::Store {
                current,
                attrs,
                password: PasswordChange::Keep,
                then: Box::new(move |rec| (rec, groups)),
            })
        }
    }

    /// What an edit with [`set`] answered, and how many times its closure
    /// ran (twice when a hint turned out stale).
    type Edited = (Result<(UserRecord, Vec<GroupRef>), StoreError>, usize);

    /// Queues [`set`] on user `id` (showing its groups) and waits.
    fn edit(
        store: &Store,
        id: &str,
        attr: &'static str,
        value: &'static str,
        if_match: Option<i64>,
    ) -> Edited {
        let calls = Arc::new(AtomicUsize::new(0));
        let answer = store
            .queue_user_edit(
                id.to_owned(),
                true,
                patched_by_test(),
                set(attr, value, if_match, &calls),
            )
            .wait();
        (answer, calls.load(Ordering::SeqCst))
    }

    /// Changes `attr` of user `id` behind the hints' back (a plain write,
    /// which offers nothing to them).
    fn change_behind(store: &Store, id: &str, attr: &str, value: &str) -> UserRecord {
        store
            .write(|c| {
                let cur = find_user(c, crate::db::org::OrgId::DEFAULT, id)?.unwrap();
                let mut attrs = cur.attrs.clone();
                attrs.insert(attr.into(), json!(value));
                update_user(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    id,
                    cur.version,
                    &attrs,
                    PasswordChange::Keep,
                )
            })
            .unwrap()
    }

    /// Creates a user and edits it once through the queue, which leaves a
    /// hint of it (with its groups) on SQLite.
    fn hinted_user(store: &Store, name: &str) -> UserRecord {
        let user = store
            .write(|c| {
                insert_user(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &obj(json!({"userName": name})),
                    None,
                )
            })
            .unwrap();
        edit(store, &user.id, "title", "first", None).0.unwrap().0
    }

    #[test]
    fn an_edit_on_a_stale_hint_is_run_again_on_the_stored_user() {
        for db in backends() {
            let store = db.store();
            let sqlite = db.backend() == Backend::Sqlite;
            enable(store);
            let user = hinted_user(store, "stale");
            // The hint holds version 2; the user moves on to 3.
            let behind = change_behind(store, &user.id, "displayName", "Behind");
            assert_eq!(behind.version, 3);
            // The client's If-Match names the stored version, which the
            // hint does not have: a hint must not answer 412 for it.
            let (answer, calls) = edit(store, &user.id, "title", "second", Some(3));
            let (rec, _) = answer.unwrap();
            assert_eq!(rec.version, 4);
            // No lost update: the change made behind the hint is kept.
            assert_eq!(rec.attrs["displayName"], "Behind");
            assert_eq!(rec.attrs["title"], "second");
            assert_eq!(
                store
                    .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &user.id))
                    .unwrap()
                    .unwrap(),
                rec
            );
            if sqlite {
                // Once on the hint, once on the user as stored.
                assert_eq!(calls, 2);
                // The next edit finds the fresh hint and is decided once.
                let (answer, calls) = edit(store, &user.id, "title", "third", Some(4));
                let (rec, _) = answer.unwrap();
                assert_eq!((rec.version, calls), (5, 1));
                assert_eq!(rec.attrs["displayName"], "Behind");
            }
            // A stale If-Match is still refused, hint or not.
            let refused = edit(store, &user.id, "title", "x", Some(2)).0.unwrap_err();
            assert!(
                matches!(refused, StoreError::PreconditionFailed),
                "{refused:?}"
            );
            // Decided on a stale hint without a precondition: the write
            // built on it finds another version and falls back.
            let behind = change_behind(store, &user.id, "displayName", "Again");
            let (answer, calls) = edit(store, &user.id, "title", "fourth", None);
            assert_eq!(answer.unwrap().0.version, behind.version + 1);
            if sqlite {
                assert_eq!(calls, 2);
            }
            // One change log row per edit stored, at its version: the
            // write on the stale hint recorded nothing (the plain writes
            // behind the hints' back record nothing either).
            let versions: Vec<Option<i64>> = store
                .read(|c| crate::changes::read_after(c, 0, 100))
                .unwrap()
                .iter()
                .map(|r| r.resource_version)
                .collect();
            let want: &[Option<i64>] = if sqlite {
                &[Some(2), Some(4), Some(5), Some(7)]
            } else {
                &[Some(2), Some(4), Some(6)]
            };
            assert_eq!(versions, want, "{}", db.backend());
        }
    }

    #[test]
    fn an_edit_on_a_hint_answers_the_groups_the_user_is_in_when_written() {
        for db in backends() {
            let store = db.store();
            enable(store);
            let user = hinted_user(store, "member");
            // A group write adds the user behind the hint (the user's
            // version does not change).
            let group = store
                .write(|c| {
                    crate::scim::groups::insert_group(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &obj(json!({"displayName": "Joined"})),
                        &[MemberRef {
                            value: user.id.clone(),
                            member_type: Some(MemberType::User),
                        }],
                    )
                })
                .unwrap();
            let (answer, calls) = edit(store, &user.id, "title", "second", None);
            let (rec, groups) = answer.unwrap();
            assert_eq!(rec.version, user.version + 1);
            assert_eq!(
                groups.iter().map(|g| g.value.as_str()).collect::<Vec<_>>(),
                vec![group.id.as_str()]
            );
            if db.backend() == Backend::Sqlite {
                assert_eq!(calls, 2);
            }
        }
    }

    #[test]
    fn an_edit_on_a_hint_writes_nothing_once_the_gate_closed_or_the_user_went() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let user = hinted_user(store, "gated");
            store
                .write(|c| {
                    disable_sync(c, crate::db::org::OrgId::DEFAULT, "test", "a test").map(|_| ())
                })
                .unwrap();
            let refused = edit(store, &user.id, "title", "late", None).0.unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            assert_eq!(
                store
                    .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &user.id))
                    .unwrap()
                    .unwrap(),
                user
            );
            enable(store);
            store
                .write(|c| {
                    crate::scim::users::delete_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &user.id,
                        None,
                    )
                })
                .unwrap();
            let gone = edit(store, &user.id, "title", "late", None).0.unwrap_err();
            assert!(matches!(gone, StoreError::NotFound), "{backend}: {gone:?}");
        }
    }

    #[test]
    fn an_edit_on_a_hint_to_a_taken_user_name_is_a_conflict_and_writes_nothing() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let user = hinted_user(store, "renamed");
            store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &obj(json!({"userName": "Taken"})),
                        None,
                    )
                })
                .unwrap();
            let refused = edit(store, &user.id, "userName", "taken", None)
                .0
                .unwrap_err();
            assert!(
                matches!(refused, StoreError::Conflict(_)),
                "{backend}: {refused:?}"
            );
            assert_eq!(
                store
                    .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &user.id))
                    .unwrap()
                    .unwrap(),
                user
            );
        }
    }

    #[test]
    fn lookups_and_edits_leave_hints_and_a_delete_forgets_them() {
        for db in backends() {
            let store = db.store();
            enable(store);
            let user = store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &obj(json!({"userName": "looked"})),
                        None,
                    )
                })
                .unwrap();
            assert_eq!(store.user_hints(), 0);
            let found = store
                .queue_user_lookup(
                    crate::db::org::OrgId::DEFAULT,
                    LookupBy::UserName,
                    "LOOKED",
                    true,
                )
                .wait()
                .unwrap();
            assert!(found.found.is_some());
            let sqlite = db.backend() == Backend::Sqlite;
            assert_eq!(store.user_hints(), usize::from(sqlite));
            if sqlite {
                // The lookup's hint (with groups) decides the edit at once.
                let (answer, calls) = edit(store, &user.id, "title", "t", None);
                assert_eq!((answer.unwrap().0.version, calls), (2, 1));
            }
            store.forget_user(&user.id);
            assert_eq!(store.user_hints(), 0);
        }
    }
}
