//! A User write on its own, in the caller's transaction: an edit
//! ([`edit_alone`], as SQLite's writer runs one in full and as each edit
//! of a failed PostgreSQL batch runs) and a create ([`insert_alone`], as
//! each create of a failed PostgreSQL batch runs).

use diesel::RunQueryDsl;
use serde_json::{Map, Value};

use crate::changes::{record, Actor};
use crate::db::connection::DbConnection;
use crate::engine::edit::{Edit, EditBy, Found};
use crate::engine::postgres::user_writes::array_query::{ArrayBind, ArrayQuery};
use crate::engine::user_hints::UserHints;
use crate::error::StoreError;
use crate::scim::lookup::find_user_gated;
use crate::scim::recorded::user_created;
use crate::scim::unique::check_unique;
use crate::scim::users::{insert_user, update_user_from, UserRecord};

/// An edit on its own, inside the caller's transaction: the gate and the
/// user (with its groups when asked) in one statement, the closure, and
/// the conditional write. On PostgreSQL the user's row is locked first, so
/// no other write can change it between the read and the write; SQLite's
/// single writer needs no lock. A write records its change log rows, by
/// `by`, as the last write. The user stored is offered to `hints`
/// (SQLite's, `engine/user_hints.rs`).
pub(crate) fn edit_alone<T, F>(
    conn: &mut DbConnection,
    id: &str,
    with_groups: bool,
    by: &EditBy,
    f: &F,
    hints: Option<&UserHints>,
) -> Result<T, StoreError>
where
    F: Fn(Found) -> Result<Edit<T>, StoreError>,
{
    if let DbConnection::Postgres(pg) = conn {
        ArrayQuery::new(
            "SELECT u.id AS id FROM users u WHERE u.id = ANY(?) AND u.deleted_at IS NULL \
             FOR NO KEY UPDATE",
        )
        .bind(ArrayBind::Text(vec![id.to_owned()]))
        .execute(pg)?;
    }
    let gated = find_user_gated(conn, by.actor.org, id, with_groups)?;
    // The groups read, for the hint of the user stored.
    let groups = match (hints, &gated.found) {
        (Some(_), Some((_, groups))) if with_groups => Some(groups.clone()),
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
            let stored = update_user_from(conn, by.actor.org, &current, &attrs, password.clone())?;
            check_unique(
                conn,
                by.actor.org,
                &[(&stored.id, &stored.attrs, Some(&current.attrs))],
            )?;
            let changes = by.changes(&current.attrs, &stored, &password)?;
            record(conn, &by.actor, &stored.last_modified, &changes)?;
            if let Some(hints) = hints {
                hints.offer(by.actor.org, &stored, groups.as_deref());
            }
            Ok(then(stored))
        }
    }
}

/// A create on its own, inside the caller's transaction: the gate,
/// `users::insert_user`, and its change log row, by `actor`.
pub(crate) fn insert_alone(
    conn: &mut DbConnection,
    attrs: &Map<String, Value>,
    password_hash: Option<&str>,
    actor: &Actor,
) -> Result<UserRecord, StoreError> {
    crate::admin::sync::scim_gate(conn, actor.org)?;
    let rec = insert_user(conn, actor.org, attrs, password_hash)?;
    check_unique(conn, actor.org, &[(&rec.id, &rec.attrs, None)])?;
    record(conn, actor, &rec.created, &user_created(&rec)?)?;
    Ok(rec)
}
