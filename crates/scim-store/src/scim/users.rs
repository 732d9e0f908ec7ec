//! The Users repository (RFC 7643 §4.1, RFC 7644 §3.3–§3.6).
//!
//! The canonical attribute JSON (`users.resource`) is the source of truth
//! for reads. On every write the store also derives the filter columns of
//! `users` and the rows of `user_values` (`user_values.rs`) from it
//! (multi-row inserts; an update writes only the rows that differ), so
//! filters run as indexed SQL. Call the writing functions inside
//! [`crate::engine::Store::write`] so the row and its index rows commit
//! together.

use diesel::prelude::*;
#[cfg(any(test, feature = "testing"))]
use diesel::sql_types::Text;
use serde_json::{Map, Value};

use scim_core::schema::ResourceType;
use scim_core::ScimError;

use crate::db::connection::Backend;
use crate::db::connection::DbConnection;
use crate::db::gate;
use crate::db::org::OrgId;
use crate::db::schema::scim::users;
#[cfg(any(test, feature = "testing"))]
use crate::db::sql::load;
use crate::db::sql::{execute, Bind, SqlBuilder};
use crate::error::{is_unique_violation, StoreError};
use crate::scim::filter::Resource;
use crate::scim::get_ci;
use crate::scim::list::{list_rows, list_rows_keyset};
pub use crate::scim::list::{KeysetPage, ListKey, ListQuery, Page, Seek};
use crate::scim::user_values::{derive_values, insert_values_sql, value_diff_sql};
#[cfg(any(test, feature = "testing"))]
use crate::scim::user_values::{stored_values, write_value_diff};

/// A stored User: the canonical attributes plus what the store manages.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The server-assigned id (UUID text).
    pub id: String,
    /// The canonical attributes (no `id`, `meta`, `schemas`, `password`).
    pub attrs: Map<String, Value>,
    /// The version, bumped on every write; the ETag is derived from it.
    pub version: i64,
    /// meta.created (fixed UTC text form).
    pub created: String,
    /// meta.lastModified (fixed UTC text form).
    pub last_modified: String,
}

/// What an update does to the stored password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// Leave it as it is.
    Keep,
    /// Replace it with this hash (the caller hashes; the store never sees
    /// clear text).
    Set(String),
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    resource: String,
    version: i64,
    created: String,
    last_modified: String,
}

/// The columns of `users` derived from the canonical attributes.
pub(crate) struct Derived<'a> {
    pub(crate) user_name: &'a str,
    pub(crate) user_name_ci: String,
    pub(crate) external_id: Option<&'a str>,
    /// displayName as given: the `display` of the user's memberships
    /// (RFC 7643 §4.2), read by a join.
    pub(crate) display_name: Option<&'a str>,
    pub(crate) display_name_ci: Option<String>,
    pub(crate) active: bool,
}

/// The canonical JSON stored in `users.resource`.
pub(crate) fn serialize(attrs: &Map<String, Value>) -> Result<String, StoreError> {
    serde_json::to_string(attrs).map_err(|e| StoreError::internal("serialising a user failed", &e))
}

pub(crate) fn derive(attrs: &Map<String, Value>) -> Result<Derived<'_>, StoreError> {
    let user_name = match get_ci(attrs, "userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => {
            return Err(StoreError::Invalid(ScimError::invalid_value(
                "userName is required and must be a non-empty string (RFC 7643 §4.1.1)",
            )))
        }
    };
    let external_id = match get_ci(attrs, "externalId") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let display_name = match get_ci(attrs, "displayName") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let display_name_ci = display_name.map(str::to_lowercase);
    // scimd treats a User without `active` as active; the column is NOT
    // NULL so `active eq true` is a plain indexed comparison.
    let active = !matches!(get_ci(attrs, "active"), Some(Value::Bool(false)));
    Ok(Derived {
        user_name,
        user_name_ci: user_name.to_lowercase(),
        external_id,
        display_name,
        display_name_ci,
        active,
    })
}

pub(crate) fn to_record(
    id: String,
    resource: &str,
    version: i64,
    created: String,
    last_modified: String,
) -> Result<UserRecord, StoreError> {
    let attrs = match serde_json::from_str::<Value>(resource) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(StoreError::internal(
                "a stored user is not a JSON object",
                &format_args!("user {id}"),
            ))
        }
        Err(e) => return Err(StoreError::internal("a stored user is not valid JSON", &e)),
    };
    Ok(UserRecord {
        id,
        attrs,
        version,
        created,
        last_modified,
    })
}

/// A write's database error: `Conflict` when it is the unique index on
/// userName that refused `attrs`.
fn taken_or(e: diesel::result::Error, attrs: &Map<String, Value>) -> StoreError {
    if is_unique_violation(&e) {
        user_name_taken(
            get_ci(attrs, "userName")
                .and_then(Value::as_str)
                .unwrap_or(""),
        )
    } else {
        StoreError::from(e)
    }
}

pub(crate) fn user_name_taken(user_name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "userName \"{user_name}\" is already taken (userName is unique, case-insensitively)"
    ))
}

/// Inserts a new User with a fresh UUID v7 id (time-ordered: see
/// [`crate::scim::new_resource_id`]), version 1, and
/// created = lastModified = now. A userName already taken (compared
/// case-insensitively, RFC 7643 §4.1.1) is `Conflict`; the database's
/// unique index decides, so two racing inserts cannot both win.
///
/// A row-level create for the store's own unit tests, which set up users
/// inside a transaction of theirs. Every other create goes through
/// [`crate::Store::queue_insert_user`], the one way in for User creates,
/// which passes the User Synchronization gate and is recorded in the
/// change log.
#[cfg(test)]
pub(crate) fn insert_user(
    conn: &mut DbConnection,
    org: OrgId,
    attrs: &Map<String, Value>,
    password_hash: Option<&str>,
) -> Result<UserRecord, StoreError> {
    let prepared = prepare_insert(conn.backend(), org, attrs.clone(), password_hash, false)?;
    apply_prepared_insert(conn, prepared)
}

/// A create built in full before the writer runs it
/// ([`apply_prepared_insert`]).
pub(crate) struct PreparedInsert {
    /// The `INSERT INTO users`.
    users: SqlBuilder,
    /// Whether it is conditional on User Synchronization being enabled.
    gated: bool,
    /// The filter index rows' INSERTs.
    values: Vec<SqlBuilder>,
    /// What is stored.
    record: UserRecord,
}

/// Builds the create of [`insert_user`]: a fresh id, the derived columns,
/// the resource and the filter rows. Pure: no connection, so the SQLite
/// writer gets it ready to run. When `gated`, the `INSERT` is conditional
/// on the User Synchronization gate (`admin::sync::scim_gate`), so the writer
/// needs no statement of its own for it.
pub(crate) fn prepare_insert(
    backend: Backend,
    org: OrgId,
    attrs: Map<String, Value>,
    password_hash: Option<&str>,
    gated: bool,
) -> Result<PreparedInsert, StoreError> {
    let d = derive(&attrs)?;
    let id = crate::scim::new_resource_id();
    let now = scim_core::datetime::now();
    let mut b = SqlBuilder::fixed(backend);
    b.push(
        "INSERT INTO users (org_id, id, user_name, user_name_ci, external_id, display_name_ci, \
         display_name, active, resource, password_hash, version, created, last_modified) ",
    );
    b.push(if gated { "SELECT " } else { "VALUES (" });
    for (i, bind) in [
        Bind::Integer(org.0),
        Bind::Text(id.clone()),
        Bind::Text(d.user_name.to_owned()),
        Bind::Text(d.user_name_ci.clone()),
        Bind::NullableText(d.external_id.map(str::to_owned)),
        Bind::NullableText(d.display_name_ci.clone()),
        Bind::NullableText(d.display_name.map(str::to_owned)),
        Bind::Bool(d.active),
        Bind::Text(serialize(&attrs)?),
        Bind::NullableText(password_hash.map(str::to_owned)),
        Bind::BigInt(1),
        Bind::Text(now.clone()),
        Bind::Text(now.clone()),
    ]
    .into_iter()
    .enumerate()
    {
        if i > 0 {
            b.push(", ");
        }
        b.bind(bind);
    }
    if gated {
        b.push(" WHERE ");
        gate::push_open(&mut b, org);
    } else {
        b.push(")");
    }
    let values = insert_values_sql(backend, org, &derive_values(&id, &attrs));
    Ok(PreparedInsert {
        users: b,
        gated,
        values,
        record: UserRecord {
            id,
            attrs,
            version: 1,
            created: now.clone(),
            last_modified: now,
        },
    })
}

impl PreparedInsert {
    /// What is stored when it applies.
    pub(crate) fn record(&self) -> &UserRecord {
        &self.record
    }
}

impl PreparedUpdate {
    /// What is stored when it applies.
    pub(crate) fn record(&self) -> &UserRecord {
        &self.record
    }
}

/// Runs a [`PreparedInsert`] in the caller's transaction. A gated one
/// fails with `StoreError::SyncDisabled`, writing nothing, while
/// synchronization is disabled.
pub(crate) fn apply_prepared_insert(
    conn: &mut DbConnection,
    prepared: PreparedInsert,
) -> Result<UserRecord, StoreError> {
    let PreparedInsert {
        users,
        gated,
        values,
        record,
    } = prepared;
    let inserted = execute(conn, &users).map_err(|e| taken_or(e, &record.attrs))?;
    if gated && inserted == 0 {
        return Err(StoreError::SyncDisabled);
    }
    for statement in &values {
        execute(conn, statement)?;
    }
    Ok(record)
}

/// The organization's User with this id, if any (an id that is not a
/// UUID, or another organization's, simply matches nothing).
pub fn find_user(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> = users::table
        .filter(users::id.eq(id))
        .filter(users::org_id.eq(org.0))
        .filter(users::deleted_at.is_null())
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|r| to_record(r.id, &r.resource, r.version, r.created, r.last_modified))
        .transpose()
}

/// The stored password hash of a User (`None` if it has none);
/// `NotFound` if the user does not exist.
#[cfg(any(test, feature = "testing"))]
pub fn find_password_hash(conn: &mut DbConnection, id: &str) -> Result<Option<String>, StoreError> {
    users::table
        .filter(users::id.eq(id))
        .filter(users::deleted_at.is_null())
        .select(users::password_hash)
        .first::<Option<String>>(conn)
        .map_err(StoreError::from)
}

pub(crate) fn user_exists(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        users::table
            .filter(users::id.eq(id))
            .filter(users::org_id.eq(org.0))
            .filter(users::deleted_at.is_null()),
    ))
    .get_result(conn)?)
}

/// Replaces a User's attributes if its version is still `expected_version`
/// (optimistic concurrency, RFC 7644 §3.14): bumps the version and
/// lastModified. A missing user is `NotFound`, a changed one
/// `PreconditionFailed`, a userName taken by another user `Conflict`.
///
/// Only the filter index rows that differ are written; they are diffed
/// against the stored rows (one primary-key range read). A caller that has
/// just read the user in the same transaction can save that read with
/// `update_user_from`.
#[cfg(any(test, feature = "testing"))]
pub fn update_user(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: i64,
    attrs: &Map<String, Value>,
    password: PasswordChange,
) -> Result<UserRecord, StoreError> {
    let (created, version, now) =
        update_user_row(conn, org, id, expected_version, attrs, &password)?;
    let old = stored_values(conn, id)?;
    write_value_diff(conn, org, id, &old, &derive_values(id, attrs))?;
    Ok(UserRecord {
        id: id.to_owned(),
        attrs: attrs.clone(),
        version,
        created,
        last_modified: now,
    })
}

/// [`update_user`] for a caller holding the current record: replaces the
/// attributes of `current` if its version is still `current.version`,
/// diffing the filter index rows against `current.attrs` instead of reading
/// them back. `current` must have been read in the same
/// [`crate::engine::Store::write`] transaction (or the version check turns a stale
/// copy into `PreconditionFailed`); since every write derives the index
/// rows from the attributes it stores, the rows of that version are exactly
/// those derived from `current.attrs`.
///
/// The store's own unit tests write with it; SQLite's writer and
/// PostgreSQL's batches build their updates with [`prepare_update`] and
/// the batch statements.
#[cfg(test)]
pub fn update_user_from(
    conn: &mut DbConnection,
    org: OrgId,
    current: &UserRecord,
    attrs: &Map<String, Value>,
    password: PasswordChange,
) -> Result<UserRecord, StoreError> {
    let prepared = prepare_update(
        conn.backend(),
        org,
        current,
        attrs.clone(),
        &password,
        false,
    )?;
    match apply_prepared_update(conn, prepared)? {
        Some(stored) => Ok(stored),
        None => Err(if user_exists(conn, org, &current.id)? {
            StoreError::PreconditionFailed
        } else {
            StoreError::NotFound
        }),
    }
}

/// The `UPDATE users` of an update, without `RETURNING`: the resource,
/// the version (`expected_version` + 1) and lastModified (`now`), where the
/// organization, the id and `expected_version` match a user not deleted. Given the
/// `previous` attributes, it sets only the derived columns whose value
/// changes: an indexed column in the `SET` list costs an index update even
/// when its value stays the same, so a PATCH of `title` leaves the
/// userName, externalId and displayName indexes alone. Pure, so a write
/// can be prepared off the writer thread.
fn users_update_sql(
    backend: Backend,
    (org, id, expected_version): (OrgId, &str, i64),
    previous: Option<&Map<String, Value>>,
    attrs: &Map<String, Value>,
    password: &PasswordChange,
    now: &str,
) -> Result<SqlBuilder, StoreError> {
    let d = derive(attrs)?;
    let old = previous.map(derive).transpose()?;
    let changed = |same: &dyn Fn(&Derived<'_>) -> bool| !old.as_ref().is_some_and(same);
    let mut b = SqlBuilder::fixed(backend);
    b.push("UPDATE users SET resource = ")
        .bind_text(serialize(attrs)?);
    if changed(&|o| o.user_name == d.user_name) {
        b.push(", user_name = ")
            .bind_text(d.user_name)
            .push(", user_name_ci = ")
            .bind_text(d.user_name_ci.clone());
    }
    if changed(&|o| o.external_id == d.external_id) {
        b.push(", external_id = ")
            .bind(Bind::NullableText(d.external_id.map(str::to_owned)));
    }
    if changed(&|o| o.display_name == d.display_name) {
        b.push(", display_name_ci = ")
            .bind(Bind::NullableText(d.display_name_ci.clone()))
            .push(", display_name = ")
            .bind(Bind::NullableText(d.display_name.map(str::to_owned)));
    }
    if changed(&|o| o.active == d.active) {
        b.push(", active = ").bind(Bind::Bool(d.active));
    }
    if let PasswordChange::Set(hash) = password {
        b.push(", password_hash = ").bind_text(hash.clone());
    }
    b.push(", version = ")
        .bind(Bind::BigInt(expected_version.saturating_add(1)))
        .push(", last_modified = ")
        .bind_text(now)
        .push(" WHERE id = ")
        .bind_text(id)
        .push(" AND org_id = ")
        .bind(Bind::Integer(org.0))
        .push(" AND version = ")
        .bind(Bind::BigInt(expected_version))
        .push(" AND deleted_at IS NULL");
    Ok(b)
}

/// An update of a user read earlier, built in full where it was decided
/// (see `Store::queue_user_edit`): [`apply_prepared_update`] only runs its
/// statements, on the condition that the user is still the version it
/// was built from and the User Synchronization gate still open.
pub(crate) struct PreparedUpdate {
    /// The `UPDATE users`, conditional on the version and the gate.
    users: SqlBuilder,
    /// The filter index rows' diff ([`value_diff_sql`]).
    values: Vec<SqlBuilder>,
    /// What is stored when it applies.
    record: UserRecord,
}

/// Builds the update of `current` (as read) to `attrs`, with lastModified
/// now: the `UPDATE users` of the derived columns that change, and the
/// filter rows that differ, diffed against `current.attrs` (the rows of a
/// version are exactly those its attributes derive, as every write
/// derives them). When `gated`, the `UPDATE` is also conditional on the
/// User Synchronization gate. Pure: no connection, so an edit can be
/// built before it is queued for the writer (`engine/sqlite/user_edit.rs`).
pub(crate) fn prepare_update(
    backend: Backend,
    org: OrgId,
    current: &UserRecord,
    attrs: Map<String, Value>,
    password: &PasswordChange,
    gated: bool,
) -> Result<PreparedUpdate, StoreError> {
    let now = scim_core::datetime::now();
    let mut users = users_update_sql(
        backend,
        (org, &current.id, current.version),
        Some(&current.attrs),
        &attrs,
        password,
        &now,
    )?;
    // The gate (`admin::sync::scim_gate`) as a condition: a write that finds
    // synchronization disabled changes nothing, and the caller falls back
    // to the full edit, which answers why.
    if gated {
        users.push(" AND ");
        gate::push_open(&mut users, org);
    }
    let values = value_diff_sql(
        backend,
        org,
        &current.id,
        &derive_values(&current.id, &current.attrs),
        &derive_values(&current.id, &attrs),
    );
    Ok(PreparedUpdate {
        users,
        values,
        record: UserRecord {
            id: current.id.clone(),
            attrs,
            version: current.version.saturating_add(1),
            created: current.created.clone(),
            last_modified: now,
        },
    })
}

/// Runs a [`PreparedUpdate`] in the caller's transaction: the stored
/// record, or `None` (nothing written) when the user is no longer the
/// version it was built from (changed, deleted) or synchronization was
/// disabled since. A userName taken since is `Conflict`.
pub(crate) fn apply_prepared_update(
    conn: &mut DbConnection,
    prepared: PreparedUpdate,
) -> Result<Option<UserRecord>, StoreError> {
    let PreparedUpdate {
        users,
        values,
        record,
    } = prepared;
    if execute(conn, &users).map_err(|e| taken_or(e, &record.attrs))? != 1 {
        return Ok(None);
    }
    for statement in &values {
        execute(conn, statement)?;
    }
    Ok(Some(record))
}

#[derive(QueryableByName)]
#[cfg(any(test, feature = "testing"))]
struct CreatedRow {
    #[diesel(sql_type = Text)]
    created: String,
}

/// The `users` row half of [`update_user`]: one `UPDATE … WHERE id = ?
/// AND version = ? RETURNING created` (both backends support RETURNING;
/// SQLite since 3.35), so no second round trip reads `created`. Returns
/// (created, new version, lastModified).
#[cfg(any(test, feature = "testing"))]
fn update_user_row(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: i64,
    attrs: &Map<String, Value>,
    password: &PasswordChange,
) -> Result<(String, i64, String), StoreError> {
    let now = scim_core::datetime::now();
    let version = expected_version.saturating_add(1);
    let mut b = users_update_sql(
        conn.backend(),
        (org, id, expected_version),
        None,
        attrs,
        password,
        &now,
    )?;
    b.push(" RETURNING created");
    let rows: Vec<CreatedRow> = load(conn, &b).map_err(|e| taken_or(e, attrs))?;
    match rows.into_iter().next() {
        Some(row) => Ok((row.created, version, now)),
        None => Err(if user_exists(conn, org, id)? {
            StoreError::PreconditionFailed
        } else {
            StoreError::NotFound
        }),
    }
}

/// Deletes a User (and, by cascade, its index rows) and removes it from
/// every Group it belongs to, bumping those groups' version and
/// lastModified (their `members` changed, RFC 7644 §3.14), all in the
/// caller's transaction; returns those groups with their new versions.
/// With `expected_version`, only if the version still matches
/// (`PreconditionFailed` otherwise); a missing user is `NotFound`.
pub fn delete_user(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: Option<i64>,
) -> Result<Vec<(String, i64)>, StoreError> {
    // A soft-deleted user is gone as far as the SCIM API is concerned: only
    // the purge removes its row.
    let live = users::table
        .filter(users::id.eq(id))
        .filter(users::org_id.eq(org.0))
        .filter(users::deleted_at.is_null());
    let deleted = match expected_version {
        Some(v) => diesel::delete(live.filter(users::version.eq(v))).execute(conn)?,
        None => diesel::delete(live).execute(conn)?,
    };
    if deleted == 0 {
        return Err(
            if expected_version.is_some() && user_exists(conn, org, id)? {
                StoreError::PreconditionFailed
            } else {
                StoreError::NotFound
            },
        );
    }
    // After the user row is gone (on PostgreSQL its row lock is now held):
    // a concurrent `add_members` either committed before (its row is
    // removed here) or now finds no such user.
    crate::scim::members::remove_from_all_groups(conn, id)
}

/// How many times [`soft_delete_user`] re-reads a user that another
/// transaction changed between its read and its write (PostgreSQL).
const SOFT_DELETE_RETRIES: usize = 5;

/// Soft-deletes a User (the `soft` deprovisioning policy): sets
/// `deleted_at`, sets `active` to false (column and attributes), bumps the
/// version and lastModified, keeps every other attribute, and removes it
/// from every Group it belongs to as [`delete_user`] does (bumping those
/// groups' version). From then on the user is invisible to the SCIM API
/// (every read here filters `deleted_at IS NULL`), its userName is free
/// again, and [`purge_deleted_users`] removes the row after the retention
/// period. With `expected_version`, only if the version still matches
/// (`PreconditionFailed` otherwise); a missing or already deleted user is
/// `NotFound`. Returns the user's version after the delete, and the groups
/// it left with their new versions. Call inside
/// [`crate::engine::Store::write`].
pub fn soft_delete_user(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(i64, Vec<(String, i64)>), StoreError> {
    for _ in 0..SOFT_DELETE_RETRIES {
        let current = find_user(conn, org, id)?.ok_or(StoreError::NotFound)?;
        if expected_version.is_some_and(|v| v != current.version) {
            return Err(StoreError::PreconditionFailed);
        }
        let mut attrs = current.attrs;
        attrs.insert("active".into(), Value::Bool(false));
        let resource = serde_json::to_string(&attrs)
            .map_err(|e| StoreError::internal("serialising a user failed", &e))?;
        let now = scim_core::datetime::now();
        // The store's own SQL, kept prepared (diesel never caches an
        // UPDATE of its query builder).
        let mut b = SqlBuilder::fixed(conn.backend());
        b.push("UPDATE users SET active = ")
            .bind(Bind::Bool(false))
            .push(", resource = ")
            .bind_text(resource)
            .push(", version = ")
            .bind(Bind::BigInt(current.version.saturating_add(1)))
            .push(", last_modified = ")
            .bind_text(now.clone())
            .push(", deleted_at = ")
            .bind_text(now)
            .push(" WHERE id = ")
            .bind_text(id)
            .push(" AND version = ")
            .bind(Bind::BigInt(current.version))
            .push(" AND deleted_at IS NULL");
        let updated = execute(conn, &b)?;
        if updated == 1 {
            let left = crate::scim::members::remove_from_all_groups(conn, id)?;
            return Ok((current.version.saturating_add(1), left));
        }
        // Changed (or deleted) since our read: read again, which answers
        // NotFound or PreconditionFailed, or retries with the new version.
    }
    Err(StoreError::Unavailable(
        "the user is being modified concurrently".into(),
    ))
}

/// Hard-deletes at most `limit` soft-deleted Users whose `deleted_at` is
/// before `cutoff` (fixed UTC text form, see `scim_core::datetime`), oldest
/// first, and returns their ids. Their index rows go by cascade; their
/// memberships went at the soft delete. Bounded, so one call holds the
/// (SQLite) writer briefly: call it in a loop, one [`crate::engine::Store::write`]
/// per batch.
///
/// Several replicas may purge at once. On PostgreSQL the batch is chosen
/// `FOR UPDATE SKIP LOCKED`: a batch skips the users another purge's
/// uncommitted batch holds, so concurrent purges share the work instead
/// of queueing behind each other's locks, and each user is deleted (and
/// counted) by exactly one of them. A short batch therefore means that
/// nothing is left but what other purges are deleting right now. SQLite
/// runs one write transaction at a time, so its batches never overlap.
pub fn purge_deleted_users(
    conn: &mut DbConnection,
    org: OrgId,
    cutoff: &str,
    limit: i64,
) -> Result<Vec<String>, StoreError> {
    let backend = conn.backend();
    let mut b = SqlBuilder::fixed(backend);
    b.push("DELETE FROM users WHERE id IN (SELECT id FROM users WHERE org_id = ")
        .bind(Bind::Integer(org.0))
        .push(" AND deleted_at IS NOT NULL AND deleted_at < ")
        .bind_text(cutoff)
        .push(" ORDER BY deleted_at LIMIT ")
        .bind(Bind::BigInt(limit.max(0)));
    if backend == Backend::Postgres {
        b.push(" FOR UPDATE SKIP LOCKED");
    }
    b.push(") RETURNING id");
    #[derive(QueryableByName)]
    struct IdRow {
        #[diesel(sql_type = diesel::sql_types::Text)]
        id: String,
    }
    Ok(crate::db::sql::load::<IdRow>(conn, &b)?
        .into_iter()
        .map(|r| r.id)
        .collect())
}

/// How many soft-deleted Users await the purge.
#[cfg(any(test, feature = "testing"))]
pub fn count_deleted_users(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(users::table
        .filter(users::deleted_at.is_not_null())
        .count()
        .get_result(conn)?)
}

/// How many Users the default organization has (soft-deleted ones are
/// not counted).
#[cfg(any(test, feature = "testing"))]
pub fn count_users(conn: &mut DbConnection) -> Result<i64, StoreError> {
    crate::scim::list::count_matching(conn, Resource::USER, None)
}

/// A page of Users matching `query.filter`, evaluated in the database
/// (RFC 7644 §3.4.2). Unsupported filter or sort attributes are
/// `Invalid` (`invalidFilter` / `invalidValue`).
pub fn list_users(
    conn: &mut DbConnection,
    org: OrgId,
    query: &ListQuery<'_>,
) -> Result<Page<UserRecord>, StoreError> {
    list_users_of(conn, org, &scim_core::schema::USER, query)
}

/// [`list_users`] with the filter and `sortBy` resolved against `rt`, a
/// User type with custom schema extensions (`scim::extensions`).
pub fn list_users_of(
    conn: &mut DbConnection,
    org: OrgId,
    rt: &'static ResourceType,
    query: &ListQuery<'_>,
) -> Result<Page<UserRecord>, StoreError> {
    let page = list_rows(conn, Resource::user(rt, org), query)?;
    let items = page
        .items
        .into_iter()
        .map(|r| to_record(r.id, &r.resource, r.version, r.created, r.last_modified))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        total: page.total,
        items,
    })
}

/// A keyset page of Users matching `query.filter` in `query`'s order,
/// from `seek`, of at most `limit` (RFC 9865 cursors; see
/// [`crate::scim::list::ListKey`]).
pub fn list_users_keyset(
    conn: &mut DbConnection,
    org: OrgId,
    query: &ListQuery<'_>,
    seek: Seek<'_>,
    limit: i64,
) -> Result<KeysetPage<UserRecord>, StoreError> {
    list_users_keyset_of(conn, org, &scim_core::schema::USER, query, seek, limit)
}

/// [`list_users_keyset`] against `rt` (see [`list_users_of`]).
pub fn list_users_keyset_of(
    conn: &mut DbConnection,
    org: OrgId,
    rt: &'static ResourceType,
    query: &ListQuery<'_>,
    seek: Seek<'_>,
    limit: i64,
) -> Result<KeysetPage<UserRecord>, StoreError> {
    let page = list_rows_keyset(conn, Resource::user(rt, org), query, seek, limit)?;
    let items = page
        .items
        .into_iter()
        .map(|(r, key)| {
            to_record(r.id, &r.resource, r.version, r.created, r.last_modified).map(|u| (u, key))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeysetPage {
        items,
        more: page.more,
    })
}

/// How many Users match `filter` (`totalResults` of a keyset page).
pub fn count_matching_users(
    conn: &mut DbConnection,
    org: OrgId,
    filter: Option<&scim_core::filter::Filter>,
) -> Result<i64, StoreError> {
    count_matching_users_of(conn, org, &scim_core::schema::USER, filter)
}

/// [`count_matching_users`] against `rt` (see [`list_users_of`]).
pub fn count_matching_users_of(
    conn: &mut DbConnection,
    org: OrgId,
    rt: &'static ResourceType,
    filter: Option<&scim_core::filter::Filter>,
) -> Result<i64, StoreError> {
    crate::scim::list::count_matching(conn, Resource::user(rt, org), filter)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::scim::user_values::UserValueRow;
    use serde_json::json;

    #[test]
    fn ids_are_time_ordered_uuid_v7() {
        for db in crate::testing::backends() {
            let ids: Vec<String> = db
                .store()
                .write(|c| {
                    (0..50)
                        .map(|i| {
                            let attrs = json!({"userName": format!("v7-{i}")});
                            insert_user(
                                c,
                                crate::db::org::OrgId::DEFAULT,
                                attrs.as_object().unwrap(),
                                None,
                            )
                            .map(|u| u.id)
                        })
                        .collect()
                })
                .unwrap();
            for id in &ids {
                let parsed = uuid::Uuid::parse_str(id).unwrap();
                assert_eq!(parsed.get_version_num(), 7, "{id}");
            }
            let mut sorted = ids.clone();
            sorted.sort();
            assert_eq!(sorted, ids, "{}: ids sort in creation order", db.backend());
        }
    }

    fn sorted(mut rows: Vec<UserValueRow>) -> Vec<UserValueRow> {
        rows.sort_by(|a, b| (&a.attr, a.idx).cmp(&(&b.attr, b.idx)));
        rows
    }

    fn user_names(conn: &mut DbConnection, filter: &str) -> Vec<String> {
        let f = scim_core::filter::parse_filter(filter).unwrap();
        let page = list_users(
            conn,
            crate::db::org::OrgId::DEFAULT,
            &ListQuery {
                filter: Some(&f),
                sort_by: None,
                descending: false,
                start_index: 1,
                count: 50,
            },
        )
        .unwrap();
        let mut names: Vec<String> = page
            .items
            .iter()
            .map(|u| u.attrs["userName"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    /// After each kind of update, the stored index rows are exactly those
    /// derived from the new attributes, and filters see the new values and
    /// no longer the old ones.
    #[test]
    fn diffed_updates_leave_exactly_the_derived_rows() {
        for db in crate::testing::backends() {
            let store = db.store();
            let v1 = json!({
                "userName": "Diff", "title": "Engineer", "nickName": "Dee",
                "name": {"givenName": "Dana", "familyName": "Iff"},
                "emails": [
                    {"value": "one@x.com", "type": "work", "primary": true},
                    {"value": "two@x.com", "type": "home"},
                    {"value": "three@x.com"}
                ]
            });
            let mut v2 = v1.clone();
            // Changed single value, removed single value, a multi-valued
            // element changed, one removed, and a new attribute.
            v2["title"] = json!("Manager");
            v2.as_object_mut().unwrap().remove("nickName");
            v2["emails"] = json!([
                {"value": "one@x.com", "type": "work", "primary": true},
                {"value": "TWO@y.com", "type": "other"}
            ]);
            v2["phoneNumbers"] = json!([{"value": "+1 555", "type": "work"}]);
            let mut v3 = v2.clone();
            v3["emails"] = json!([{"value": "four@x.com"}]);
            v3["title"] = json!("");
            let other = json!({"userName": "Other", "title": "Engineer"});
            let other = store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        other.as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();
            let rec = store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        v1.as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();

            // The wrapper that reads the stored rows back…
            let rec2 = store
                .write(|c| {
                    update_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &rec.id,
                        rec.version,
                        v2.as_object().unwrap(),
                        PasswordChange::Keep,
                    )
                })
                .unwrap();
            assert_eq!(rec2.created, rec.created);
            assert_eq!(rec2.version, 2);
            store
                .read(|c| {
                    assert_eq!(
                        sorted(stored_values(c, &rec.id)?),
                        sorted(derive_values(&rec.id, v2.as_object().unwrap()))
                    );
                    assert_eq!(user_names(c, "title eq \"manager\""), ["Diff"]);
                    assert_eq!(user_names(c, "title eq \"engineer\""), ["Other"]);
                    assert!(user_names(c, "nickName pr").is_empty());
                    assert!(user_names(c, "emails.value eq \"three@x.com\"").is_empty());
                    assert!(user_names(c, "emails.value eq \"two@x.com\"").is_empty());
                    assert_eq!(user_names(c, "emails[type eq \"other\"]"), ["Diff"]);
                    assert_eq!(user_names(c, "emails.value eq \"one@x.com\""), ["Diff"]);
                    assert_eq!(user_names(c, "phoneNumbers.type eq \"work\""), ["Diff"]);
                    Ok(())
                })
                .unwrap();

            // …and the one diffing against the record read in the same
            // transaction.
            let rec3 = store
                .write(|c| {
                    let current = find_user(c, crate::db::org::OrgId::DEFAULT, &rec.id)?
                        .ok_or(StoreError::NotFound)?;
                    update_user_from(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &current,
                        v3.as_object().unwrap(),
                        PasswordChange::Keep,
                    )
                })
                .unwrap();
            assert_eq!(rec3.version, 3);
            assert_eq!(rec3.created, rec.created);
            store
                .read(|c| {
                    assert_eq!(
                        sorted(stored_values(c, &rec.id)?),
                        sorted(derive_values(&rec.id, v3.as_object().unwrap()))
                    );
                    assert!(user_names(c, "title pr").contains(&"Other".to_owned()));
                    assert!(!user_names(c, "title pr").contains(&"Diff".to_owned()));
                    assert_eq!(user_names(c, "emails.value eq \"four@x.com\""), ["Diff"]);
                    assert!(user_names(c, "emails.value eq \"one@x.com\"").is_empty());
                    // The other user's rows were never touched.
                    assert_eq!(
                        sorted(stored_values(c, &other.id)?),
                        sorted(derive_values(&other.id, &other.attrs))
                    );
                    Ok(())
                })
                .unwrap();

            // A stale record is refused, and writes nothing.
            let stale = store.write(|c| {
                update_user_from(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &rec2,
                    v1.as_object().unwrap(),
                    PasswordChange::Keep,
                )
            });
            assert!(
                matches!(stale, Err(StoreError::PreconditionFailed)),
                "{stale:?}"
            );
            let gone = UserRecord {
                id: uuid::Uuid::new_v4().to_string(),
                ..rec3.clone()
            };
            let missing = store.write(|c| {
                update_user_from(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &gone,
                    v1.as_object().unwrap(),
                    PasswordChange::Keep,
                )
            });
            assert!(matches!(missing, Err(StoreError::NotFound)), "{missing:?}");
            store
                .read(|c| {
                    assert_eq!(
                        sorted(stored_values(c, &rec.id)?),
                        sorted(derive_values(&rec.id, v3.as_object().unwrap()))
                    );
                    Ok(())
                })
                .unwrap();
        }
    }

    /// A userName taken by another user is `Conflict` on the RETURNING
    /// update too, and the failed statement leaves the user as it was.
    #[test]
    fn update_to_a_taken_user_name_is_a_conflict() {
        for db in crate::testing::backends() {
            let store = db.store();
            let a = json!({"userName": "alpha"});
            let b = json!({"userName": "beta", "title": "t"});
            store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        a.as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();
            let rec = store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        b.as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();
            let clash = json!({"userName": "ALPHA", "title": "u"});
            let err = store.write(|c| {
                update_user(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &rec.id,
                    1,
                    clash.as_object().unwrap(),
                    PasswordChange::Keep,
                )
            });
            assert!(matches!(err, Err(StoreError::Conflict(_))), "{err:?}");
            let found = store
                .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &rec.id))
                .unwrap()
                .unwrap();
            assert_eq!(found.version, 1);
            assert_eq!(found.attrs["title"], "t");
        }
    }

    /// `update_user_from` sets only the derived columns that change: the
    /// ones it leaves out keep their values, the ones it sets take the new
    /// ones, and the userName uniqueness check still applies.
    #[test]
    fn an_update_from_the_current_record_sets_exactly_the_changed_columns() {
        for db in crate::testing::backends() {
            let store = db.store();
            let v1 = json!({
                "userName": "Cols", "externalId": "e1", "displayName": "Col One",
                "active": true, "title": "t1"
            });
            let rec = store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        v1.as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();
            store
                .write(|c| {
                    insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        json!({"userName": "taken"}).as_object().unwrap(),
                        None,
                    )
                })
                .unwrap();
            let step = |current: &UserRecord, next: Value| {
                let next = next.as_object().unwrap().clone();
                store
                    .write(|c| {
                        update_user_from(
                            c,
                            crate::db::org::OrgId::DEFAULT,
                            current,
                            &next,
                            PasswordChange::Keep,
                        )
                    })
                    .unwrap()
            };
            let names = |filter: &str| store.read(|c| Ok(user_names(c, filter))).unwrap();
            // Only title: every indexed column keeps its value.
            let mut v2 = v1.clone();
            v2["title"] = json!("t2");
            let rec = step(&rec, v2.clone());
            assert_eq!(names(r#"userName eq "cols""#), ["Cols"], "{}", db.backend());
            assert_eq!(names(r#"externalId eq "e1""#), ["Cols"]);
            assert_eq!(names(r#"displayName eq "col one""#), ["Cols"]);
            assert_eq!(names(r#"title eq "t2""#), ["Cols"]);
            // Each column alone.
            let mut v3 = v2.clone();
            v3["userName"] = json!("COLS2");
            let rec = step(&rec, v3.clone());
            assert_eq!(names(r#"userName eq "cols2""#), ["COLS2"]);
            assert!(names(r#"userName eq "cols""#).is_empty());
            let mut v4 = v3.clone();
            v4["externalId"] = json!("e2");
            v4["active"] = json!(false);
            let rec = step(&rec, v4.clone());
            assert_eq!(names(r#"externalId eq "e2""#), ["COLS2"]);
            assert_eq!(names("active eq false"), ["COLS2"]);
            assert_eq!(names(r#"displayName eq "col one""#), ["COLS2"]);
            let mut v5 = v4.clone();
            v5.as_object_mut().unwrap().remove("displayName");
            let rec = step(&rec, v5.clone());
            assert!(names("displayName pr").is_empty());
            assert_eq!(names(r#"userName eq "cols2""#), ["COLS2"]);
            // A userName already taken is still a conflict.
            let mut v6 = v5.clone();
            v6["userName"] = json!("TAKEN");
            let taken = store.write(|c| {
                update_user_from(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &rec,
                    v6.as_object().unwrap(),
                    PasswordChange::Keep,
                )
            });
            assert!(
                matches!(taken, Err(StoreError::Conflict(_))),
                "{}",
                db.backend()
            );
        }
    }

    #[test]
    fn user_name_is_required() {
        let attrs = json!({"displayName": "x"});
        assert!(matches!(
            derive(attrs.as_object().unwrap()),
            Err(StoreError::Invalid(_))
        ));
        let attrs = json!({"userName": "  "});
        assert!(matches!(
            derive(attrs.as_object().unwrap()),
            Err(StoreError::Invalid(_))
        ));
    }
}

/// The list queries' plans: here rather than in `list.rs`, whose layer
/// cannot create users.
#[cfg(test)]
mod list_plans {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use crate::db::connection::Backend;
    use crate::db::connection::DbConnection;
    use crate::db::sql::{load, SqlBuilder};
    use crate::scim::filter::Resource;
    use crate::scim::list::push_where;
    use crate::testing::backends;
    use diesel::connection::SimpleConnection;
    use diesel::sql_types::Text;
    use diesel::QueryableByName;

    #[derive(QueryableByName)]
    struct SqlitePlan {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    #[derive(QueryableByName)]
    struct PgPlan {
        #[diesel(sql_type = Text)]
        #[diesel(column_name = "QUERY PLAN")]
        line: String,
    }

    /// The plan of `select … FROM users u WHERE <live> AND (<filter>) tail`,
    /// as generated for lists. On PostgreSQL sequential scans are disabled
    /// first: a test table is tiny, and the question is whether the index
    /// CAN be used.
    fn plan(conn: &mut DbConnection, select: &str, filter: Option<&str>, tail: &str) -> String {
        let f = filter.map(|f| scim_core::filter::parse_filter(f).unwrap());
        let backend = conn.backend();
        let mut b = SqlBuilder::new(backend);
        b.push(match backend {
            Backend::Sqlite => "EXPLAIN QUERY PLAN ",
            Backend::Postgres => "EXPLAIN ",
        })
        .push(select)
        .push(" FROM users u");
        push_where(&mut b, Resource::USER, f.as_ref()).unwrap();
        b.push(tail);
        match backend {
            Backend::Sqlite => load::<SqlitePlan>(conn, &b)
                .unwrap()
                .into_iter()
                .map(|r| r.detail)
                .collect::<Vec<_>>()
                .join("\n"),
            Backend::Postgres => {
                conn.batch_execute("SET enable_seqscan = off").unwrap();
                let out = load::<PgPlan>(conn, &b)
                    .unwrap()
                    .into_iter()
                    .map(|r| r.line)
                    .collect::<Vec<_>>()
                    .join("\n");
                conn.batch_execute("RESET enable_seqscan").unwrap();
                out
            }
        }
    }

    /// Every list query says `deleted_at IS NULL`, so the partial indexes
    /// (the unique userName index, creation order) serve it.
    #[test]
    fn list_queries_use_the_partial_indexes() {
        for db in backends() {
            // Enough rows, with statistics, for PostgreSQL's costs to mean
            // something.
            db.store()
                .write(|conn| {
                    for i in 0..300 {
                        let attrs = serde_json::json!({ "userName": format!("user{i}") });
                        super::insert_user(
                            conn,
                            crate::db::org::OrgId::DEFAULT,
                            attrs.as_object().unwrap(),
                            None,
                        )?;
                    }
                    Ok(())
                })
                .unwrap();
            db.store()
                .write(|conn| {
                    conn.batch_execute("ANALYZE").unwrap();
                    Ok(())
                })
                .unwrap();
            db.store()
                .read(|conn| {
                    let p = plan(conn, "SELECT u.id", Some("userName eq \"Bob\""), "");
                    assert!(p.contains("users_user_name_ci"), "{:?}: {p}", db.backend());
                    let p = plan(
                        conn,
                        "SELECT u.id",
                        None,
                        " ORDER BY u.created ASC, u.id ASC LIMIT 10",
                    );
                    assert!(p.contains("users_created_id"), "{:?}: {p}", db.backend());
                    let p = plan(conn, "SELECT COUNT(*)", None, "");
                    if db.backend() == Backend::Sqlite {
                        // An index scan (the smallest partial index), not
                        // a scan of the rows with their JSON.
                        assert!(p.contains("USING INDEX users_"), "{p}");
                    }
                    Ok(())
                })
                .unwrap();
        }
    }
}
