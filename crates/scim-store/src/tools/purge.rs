//! The purge of soft-deleted Users, as the background task and `scimd
//! purge` run it: one write transaction per batch, through the [`Store`].

use crate::admin::settings::get_runtime_settings;
use crate::changes::{record, Actor};
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
/// ("purge"), in its own transaction. Returns how many.
pub fn purge_expired_users(
    store: &Store,
    now: time::OffsetDateTime,
    batch: i64,
) -> Result<usize, StoreError> {
    let days = store
        .read(get_runtime_settings)?
        .values
        .soft_delete_retention_days;
    let cutoff = scim_core::datetime::format(now - time::Duration::days(i64::from(days.max(0))));
    let batch = batch.max(1);
    let mut total = 0usize;
    loop {
        let purged = store.write(|c| {
            let ids = purge_deleted_users(c, &cutoff, batch)?;
            let at = scim_core::datetime::now();
            record(c, &Actor::system("purge"), &at, &users_purged(&ids))?;
            Ok(ids.len())
        })?;
        total = total.saturating_add(purged);
        if i64::try_from(purged).unwrap_or(i64::MAX) < batch {
            return Ok(total);
        }
    }
}
