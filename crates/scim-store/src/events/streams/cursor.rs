//! A stream's cursor into the change log: replays that move it back, its
//! status against its organization's changes, the next changes it selects
//! after the cursor, and the poll acknowledgements (RFC 8936 §2.4) that
//! move it forward.

use diesel::prelude::*;

use crate::changes::{horizon, Change};
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::changes::change_log;
use crate::db::schema::events::{event_acks, event_streams};
use crate::error::StoreError;
use crate::events::streams::settings::{find_stream, invalid, Stream};

/// Moves the cursor of the stream `id` to `position`: the changes after
/// it are delivered (again). Clears the backoff and the acknowledgements.
pub fn replay_from_position(
    conn: &mut DbConnection,
    id: &str,
    position: i64,
) -> Result<Stream, StoreError> {
    if position < 0 {
        return Err(invalid("a replay position is 0 or more (0: the whole log)"));
    }
    let updated = diesel::update(event_streams::table.find(id))
        .set((
            event_streams::cursor_position.eq(position),
            event_streams::next_attempt_at.eq(None::<String>),
            event_streams::failures.eq(0),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    diesel::delete(event_acks::table.filter(event_acks::stream_id.eq(id))).execute(conn)?;
    find_stream(conn, id)
}

/// Moves the cursor of the stream `id` back to just before the first
/// change of its organization recorded at or after `at` (stored time
/// form), so that everything from `at` on is delivered (again).
pub fn replay_from_time(conn: &mut DbConnection, id: &str, at: &str) -> Result<Stream, StoreError> {
    let org = find_stream(conn, id)?.org;
    let first: Option<i64> = change_log::table
        .filter(change_log::org_id.eq(org.0))
        .filter(change_log::at.ge(at))
        .select(diesel::dsl::min(change_log::position))
        .first(conn)?;
    let position = match first {
        Some(p) => p - 1,
        None => crate::changes::last_position(conn)?,
    };
    replay_from_position(conn, id, position)
}

/// Where a stream stands against its organization's changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamStatus {
    /// The newest position of the organization's changes.
    pub last_position: i64,
    /// `last_position - cursor` (0 when the cursor is past it): how far,
    /// in log positions, it is behind its organization's newest change.
    pub lag: i64,
    /// When the oldest change after the cursor was recorded.
    pub oldest_pending_at: Option<String>,
    /// `paused`, `failing` (failed at least `failing_after` times in a
    /// row) or `active`.
    pub state: &'static str,
}

/// The status of `stream`: a stream counts as failing once it has failed
/// `failing_after` times in a row.
pub fn stream_status(
    conn: &mut DbConnection,
    stream: &Stream,
    failing_after: i32,
) -> Result<StreamStatus, StoreError> {
    let last = change_log::table
        .filter(change_log::org_id.eq(stream.org.0))
        .select(diesel::dsl::max(change_log::position))
        .first::<Option<i64>>(conn)?
        .unwrap_or(0);
    let oldest_pending_at = change_log::table
        .filter(change_log::org_id.eq(stream.org.0))
        .filter(change_log::position.gt(stream.cursor))
        .order(change_log::position.asc())
        .select(change_log::at)
        .first::<String>(conn)
        .optional()?;
    let state = if stream.paused {
        "paused"
    } else if stream.failures >= failing_after.max(1) {
        "failing"
    } else {
        "active"
    };
    Ok(StreamStatus {
        last_position: last,
        lag: (last - stream.cursor).max(0),
        oldest_pending_at,
        state,
    })
}

/// The most rows of the change log one read takes while looking for a
/// stream's next events ([`pending_changes`] takes no more than it still
/// needs).
const SCAN: i64 = 500;

/// Up to `limit` rows of the organization `org` after `after`
/// (exclusive) and up to `until` (inclusive, a [`horizon`] taken before),
/// oldest first: [`crate::changes::read_between`] for one organization,
/// served by `change_log_org (org_id, position)`.
fn read_org_between(
    conn: &mut DbConnection,
    org: OrgId,
    after: i64,
    until: i64,
    limit: i64,
) -> Result<Vec<Change>, StoreError> {
    Ok(change_log::table
        .filter(change_log::org_id.eq(org.0))
        .filter(change_log::position.gt(after))
        .filter(change_log::position.le(until))
        .order(change_log::position.asc())
        .limit(limit.max(0))
        .select(Change::as_select())
        .load(conn)?)
}

/// The next changes of its organization after the cursor of `stream`
/// that it selects, up to `max`, oldest first, skipping those
/// acknowledged already (poll); and the position up to which the log was
/// read (the cursor may move there once the changes returned are done
/// with: the rest it does not select, or another organization's). It
/// reads up to the change log's [`horizon`], so on PostgreSQL it must not
/// run inside a transaction.
pub fn pending_changes(
    conn: &mut DbConnection,
    stream: &Stream,
    max: usize,
) -> Result<(Vec<Change>, i64), StoreError> {
    let acked: std::collections::HashSet<i64> = event_acks::table
        .filter(event_acks::stream_id.eq(&stream.id))
        .select(event_acks::position)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let until = horizon(conn)?;
    let mut out = Vec::new();
    let mut read_to = stream.cursor;
    while out.len() < max {
        // No more rows than the changes still wanted: a stream that
        // selects every change (the usual one) reads its batch and no
        // more; one that skips most reads on in further rounds.
        let limit = i64::try_from(max - out.len()).map_or(SCAN, |n| n.min(SCAN));
        let rows = read_org_between(conn, stream.org, read_to, until, limit)?;
        let short = rows.len() < usize::try_from(limit).unwrap_or(usize::MAX);
        for change in rows {
            if out.len() >= max {
                return Ok((out, read_to));
            }
            read_to = change.position;
            if stream.selects(&change) && !acked.contains(&change.position) {
                out.push(change);
            }
        }
        if short {
            // Every row of the organization up to the horizon was read.
            read_to = read_to.max(until);
            break;
        }
    }
    Ok((out, read_to))
}

/// Acknowledges `positions` of the poll stream `stream` (RFC 8936 §2.4:
/// the receiver is done with those SETs, delivered or in error), then
/// moves its cursor over every change after it that is acknowledged or
/// not selected, up to the first still outstanding and at most to `until`,
/// the change log's [`horizon`] taken before the transaction this runs
/// in. Returns the new cursor.
pub fn acknowledge(
    conn: &mut DbConnection,
    stream: &Stream,
    until: i64,
    positions: &[i64],
) -> Result<i64, StoreError> {
    for &position in positions {
        if position <= stream.cursor {
            continue;
        }
        let exists: i64 = event_acks::table
            .filter(event_acks::stream_id.eq(&stream.id))
            .filter(event_acks::position.eq(position))
            .count()
            .get_result(conn)?;
        if exists == 0 {
            diesel::insert_into(event_acks::table)
                .values((
                    event_acks::stream_id.eq(&stream.id),
                    event_acks::position.eq(position),
                ))
                .execute(conn)?;
        }
    }
    let acked: std::collections::HashSet<i64> = event_acks::table
        .filter(event_acks::stream_id.eq(&stream.id))
        .select(event_acks::position)
        .load::<i64>(conn)?
        .into_iter()
        .collect();
    let mut cursor = stream.cursor;
    'scan: loop {
        let rows = read_org_between(conn, stream.org, cursor, until, SCAN)?;
        let short = rows.len() < usize::try_from(SCAN).unwrap_or(usize::MAX);
        for change in rows {
            if stream.selects(&change) && !acked.contains(&change.position) {
                break 'scan;
            }
            cursor = change.position;
        }
        if short {
            // Nothing outstanding of the organization up to the horizon.
            cursor = cursor.max(until);
            break;
        }
    }
    if cursor != stream.cursor {
        diesel::update(
            event_streams::table
                .find(&stream.id)
                .filter(event_streams::cursor_position.lt(cursor)),
        )
        .set(event_streams::cursor_position.eq(cursor))
        .execute(conn)?;
        diesel::delete(
            event_acks::table
                .filter(event_acks::stream_id.eq(&stream.id))
                .filter(event_acks::position.le(cursor)),
        )
        .execute(conn)?;
    }
    Ok(cursor)
}
