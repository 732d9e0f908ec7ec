//! The purges of soft-deleted Users and of the change log's expired rows,
//! as the background task and `scimd purge` run them: one write
//! transaction per batch, through the [`Store`].

use crate::admin::organizations::list_organizations;
use crate::admin::settings::get_runtime_settings;
use crate::changes::{purge_changes, record, Actor};
use crate::engine::Store;
use crate::error::StoreError;
use crate::scim::recorded::users_purged;
use crate::scim::users::purge_deleted_users;

/// The purge as the background task and `scimd purge` run it: reads the
/// retention period (`soft_delete_retention_days`, at purge time, so a
/// change applies to the next run), then hard-deletes the users
/// soft-deleted longer ago than that, in batches of `batch` (one write
/// transaction each) until a batch comes back short. Each batch records
/// `user.purged` for each user it removed, by the actor `System`
/// ("purge"), at `now`, in its own transaction. Each organization by its
/// own retention. Returns how many.
pub fn purge_expired_users(
    store: &Store,
    now: time::OffsetDateTime,
    batch: i64,
) -> Result<usize, StoreError> {
    let at = scim_core::datetime::format(now);
    let mut total = 0usize;
    for org in store.read(list_organizations)? {
        let org = org.id;
        let days = store
            .read(|c| get_runtime_settings(c, org))?
            .values
            .soft_delete_retention_days;
        let actor = Actor::system("purge").in_org(org);
        total = total.saturating_add(in_batches(
            store,
            cutoff(now, days),
            batch,
            |c, cutoff, batch| {
                let ids = purge_deleted_users(c, org, cutoff, batch)?;
                record(c, &actor, &at, &users_purged(&ids))?;
                Ok(ids.len())
            },
        )?);
    }
    Ok(total)
}

/// The retention purge of the change log, as the background task and
/// `scimd purge` run it: reads `change_log_retention_days` (at purge
/// time), then deletes the rows older than that, oldest first, in batches
/// of `batch` (one write transaction each) until a batch comes back
/// short. Each organization by its own retention. Returns how many.
pub fn purge_expired_changes(
    store: &Store,
    now: time::OffsetDateTime,
    batch: i64,
) -> Result<usize, StoreError> {
    let mut total = 0usize;
    for org in store.read(list_organizations)? {
        let org = org.id;
        let days = store
            .read(|c| get_runtime_settings(c, org))?
            .values
            .change_log_retention_days;
        total = total.saturating_add(in_batches(
            store,
            cutoff(now, days),
            batch,
            |c, cutoff, batch| purge_changes(c, org, cutoff, batch),
        )?);
    }
    Ok(total)
}

/// `days` before `now`, in the stored form.
fn cutoff(now: time::OffsetDateTime, days: i32) -> String {
    scim_core::datetime::format(now - time::Duration::days(i64::from(days.max(0))))
}

/// Runs `one` (which removes up to `batch` rows older than the cutoff and
/// says how many) in one write transaction per batch, until a batch comes
/// back short; returns the total.
fn in_batches(
    store: &Store,
    cutoff: String,
    batch: i64,
    one: impl Fn(&mut crate::db::connection::DbConnection, &str, i64) -> Result<usize, StoreError>,
) -> Result<usize, StoreError> {
    let batch = batch.max(1);
    let mut total = 0usize;
    loop {
        let purged = store.write(|c| one(c, &cutoff, batch))?;
        total = total.saturating_add(purged);
        if i64::try_from(purged).unwrap_or(i64::MAX) < batch {
            return Ok(total);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::admin::settings::update_runtime_settings;
    use crate::changes::{read_after, record, Actor, Event, NewChange};
    use crate::testing::backends;

    /// The retention is read at purge time and counted from the `now`
    /// given (an injected clock: nothing waits); batches run until one
    /// comes back short.
    #[test]
    fn the_change_log_keeps_what_the_retention_says() {
        let now = time::macros::datetime!(2026-12-06 12:00:00 UTC);
        for db in backends() {
            let store = db.store();
            let at =
                |days_ago: i64| scim_core::datetime::format(now - time::Duration::days(days_ago));
            for days_ago in [200, 100, 91, 89, 10, 0] {
                let rows: Vec<NewChange> = (0..3)
                    .map(|_| NewChange::new(Event::UserPatched, "User", Some("u1")))
                    .collect();
                store
                    .write(|c| record(c, &Actor::system("test"), &at(days_ago), &rows))
                    .unwrap();
            }
            // The default: 90 days; batches of 2 over 9 expired rows.
            assert_eq!(
                purge_expired_changes(store, now, 2).unwrap(),
                9,
                "{}",
                db.backend()
            );
            assert_eq!(purge_expired_changes(store, now, 2).unwrap(), 0);
            let left = store.read(|c| read_after(c, 0, 100)).unwrap();
            assert_eq!(left.len(), 9);
            assert!(left.iter().all(|c| c.at >= at(90)));
            let current = store
                .read(|c| get_runtime_settings(c, crate::db::org::OrgId::DEFAULT))
                .unwrap();
            let mut values = current.values.clone();
            values.change_log_retention_days = 5;
            store
                .write(|c| {
                    update_runtime_settings(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &values,
                        current.version,
                        "test",
                    )
                })
                .unwrap();
            assert_eq!(purge_expired_changes(store, now, 100).unwrap(), 6);
            let left = store.read(|c| read_after(c, 0, 100)).unwrap();
            assert_eq!(left.len(), 3);
            // A day later, with the same setting.
            let later = now + time::Duration::days(6);
            assert_eq!(purge_expired_changes(store, later, 100).unwrap(), 3);
        }
    }
}
