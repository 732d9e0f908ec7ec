//! Push delivery (RFC 8935): which push streams are due, the lease that
//! lets one replica deliver a stream at a time (claimed `FOR UPDATE SKIP
//! LOCKED` on PostgreSQL), and the outcome of a delivery: the cursor moved
//! on, a failure with its backoff, or a SET the receiver rejected.

use diesel::prelude::*;

use crate::db::connection::DbConnection;
use crate::db::schema::events::event_streams;
use crate::error::StoreError;
use crate::events::streams::settings::{find_with_authorization, Stream};

/// The push streams due for delivery at `now` against a change log whose
/// newest position is `last`: active, behind the log and past their
/// backoff (leases aside).
#[diesel::dsl::auto_type(no_type_alias)]
fn due_push_streams<'a>(last: i64, now: &'a str) -> _ {
    let push: &'static str = "push";
    let active: &'static str = "active";
    event_streams::table
        .filter(event_streams::delivery.eq(push))
        .filter(event_streams::state.eq(active))
        .filter(event_streams::cursor_position.lt(last))
        .filter(
            event_streams::next_attempt_at
                .is_null()
                .or(event_streams::next_attempt_at.le(now)),
        )
}

/// Whether a push stream waits for delivery at `now` (leases aside).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushDue {
    /// No active push stream exists.
    NoStreams,
    /// Active push streams exist, none due now.
    NotDue,
    /// At least one is due.
    Due,
}

/// Whether a push stream is due for delivery at `now` (leases aside): a
/// read, so that the deliverer, woken by every committed write, asks for a
/// write (the claim) only when there is something to deliver.
pub fn push_stream_due(conn: &mut DbConnection, now: &str) -> Result<PushDue, StoreError> {
    let active_push: bool = diesel::select(diesel::dsl::exists(
        event_streams::table
            .filter(event_streams::delivery.eq("push"))
            .filter(event_streams::state.eq("active")),
    ))
    .get_result(conn)?;
    if !active_push {
        return Ok(PushDue::NoStreams);
    }
    let last = crate::changes::last_position(conn)?;
    let due: bool =
        diesel::select(diesel::dsl::exists(due_push_streams(last, now))).get_result(conn)?;
    Ok(if due { PushDue::Due } else { PushDue::NotDue })
}

/// Claims a push stream that is due for delivery for `owner` until
/// `lease_until`: active, past its backoff, behind the log, and not leased
/// by another replica (or its lease expired). On PostgreSQL the candidate
/// row is locked `FOR UPDATE SKIP LOCKED`, so replicas claiming at the
/// same moment take different streams instead of waiting for each other.
/// On SQLite one process serves the database and delivers: a lease left
/// behind by a process that died is not waited out.
pub fn claim_due_stream(
    conn: &mut DbConnection,
    owner: &str,
    now: &str,
    lease_until: &str,
) -> Result<Option<(Stream, Option<String>)>, StoreError> {
    let last = crate::changes::last_position(conn)?;
    let due = due_push_streams(last, now)
        .order((event_streams::delivered_at.asc(), event_streams::id.asc()))
        .select(event_streams::id);
    let id: Option<String> = match conn {
        DbConnection::Postgres(pg) => due
            .filter(
                event_streams::lease_until
                    .is_null()
                    .or(event_streams::lease_until.lt(now))
                    .or(event_streams::lease_owner.eq(owner)),
            )
            .for_update()
            .skip_locked()
            .first(pg)
            .optional()?,
        DbConnection::Sqlite(lite) => due.first(lite).optional()?,
    };
    let Some(id) = id else {
        return Ok(None);
    };
    diesel::update(event_streams::table.find(&id))
        .set((
            event_streams::lease_owner.eq(owner),
            event_streams::lease_until.eq(lease_until),
        ))
        .execute(conn)?;
    find_with_authorization(conn, &id).map(Some)
}

/// Ends `owner`'s lease of the stream `id`.
pub fn release_lease(conn: &mut DbConnection, id: &str, owner: &str) -> Result<(), StoreError> {
    diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner)),
    )
    .set((
        event_streams::lease_owner.eq(None::<String>),
        event_streams::lease_until.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// After a successful push: the cursor moves to `position` (never back),
/// the failure count and backoff clear, and `owner`'s lease is extended to
/// `lease_until`. `false` when `owner` no longer holds the lease (another
/// replica took the stream over): the caller stops delivering it.
pub fn record_delivered(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    position: i64,
    now: &str,
    lease_until: &str,
) -> Result<bool, StoreError> {
    let updated = diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner))
            .filter(event_streams::cursor_position.le(position)),
    )
    .set((
        event_streams::cursor_position.eq(position),
        event_streams::failures.eq(0),
        event_streams::next_attempt_at.eq(None::<String>),
        event_streams::delivered_at.eq(now),
        event_streams::lease_until.eq(lease_until),
    ))
    .execute(conn)?;
    Ok(updated == 1)
}

/// After a failed push: the error (never a secret) is kept, the failure
/// count grows and no delivery is tried before `next_attempt_at`; the
/// lease ends. The cursor stays, so nothing is lost.
pub fn record_failure(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    error: &str,
    now: &str,
    next_attempt_at: &str,
) -> Result<(), StoreError> {
    diesel::update(
        event_streams::table
            .find(id)
            .filter(event_streams::lease_owner.eq(owner)),
    )
    .set((
        event_streams::failures.eq(event_streams::failures + 1),
        event_streams::last_error.eq(error),
        event_streams::last_error_at.eq(now),
        event_streams::next_attempt_at.eq(next_attempt_at),
        event_streams::lease_owner.eq(None::<String>),
        event_streams::lease_until.eq(None::<String>),
    ))
    .execute(conn)?;
    Ok(())
}

/// Keeps `error` as the stream's last error without counting a failure:
/// a SET the receiver rejected for good (RFC 8935 §2.3, RFC 8936 `setErrs`)
/// that delivery moved past.
pub fn record_rejected(
    conn: &mut DbConnection,
    id: &str,
    error: &str,
    now: &str,
) -> Result<(), StoreError> {
    diesel::update(event_streams::table.find(id))
        .set((
            event_streams::last_error.eq(error),
            event_streams::last_error_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}
