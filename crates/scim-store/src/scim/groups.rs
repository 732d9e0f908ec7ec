//! The Groups repository (RFC 7643 §4.2, RFC 7644 §3.3–§3.6).
//!
//! A group is one row of `groups` (its canonical attributes WITHOUT
//! `members`) plus one row of `group_members` per member. Entra ID sends
//! membership changes one member at a time to groups of any size, so every
//! membership function works on the members named in the request only:
//! validation is one indexed lookup per referenced table, an add is a
//! primary-key insert, a removal a primary-key delete, and the group row
//! gets one version bump ([`touch_group`]). Nothing here loads, diffs or
//! rewrites a group's member list, and [`find_group`] / [`list_groups`]
//! never read `group_members`: the caller fetches members
//! ([`list_group_members`]) only when the response includes them.
//!
//! Call the writing functions inside [`crate::engine::Store::write`], so that an
//! error (an unknown member, say) rolls back everything the request did.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::QueryableByName;
use serde_json::{Map, Value};

use scim_core::filter::Filter;
use scim_core::ScimError;

use crate::db::connection::{Backend, DbConnection};
use crate::db::schema::scim::{group_members, groups, users};
use crate::db::sql::{execute, load, SqlBuilder};
use crate::error::{is_unique_violation, StoreError};
use crate::scim::filter::{push_element_filter, Resource, PATCH_MEMBERS};
use crate::scim::list::{list_rows, ListQuery, Page};

/// Ids per `IN (…)` list and rows per multi-row `INSERT`: far below
/// SQLite's 32766 and PostgreSQL's 65535 bind parameters per statement.
const CHUNK: usize = 500;

/// How many unknown member ids an error message names before summarising.
const NAMED_IN_ERROR: usize = 10;

/// A stored Group: its canonical attributes (never `members`) plus what
/// the store manages.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    /// The server-assigned id (UUID text).
    pub id: String,
    /// The canonical attributes (`displayName`, `externalId`, …); never
    /// `members`, which live in their own table ([`list_group_members`]).
    pub attrs: Map<String, Value>,
    /// The version, bumped on every write including membership changes;
    /// the ETag is derived from it.
    pub version: i64,
    /// meta.created (fixed UTC text form).
    pub created: String,
    /// meta.lastModified (fixed UTC text form).
    pub last_modified: String,
}

pub use scim_core::members::{MemberRef, MemberType};

/// A member as stored and returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The member's id (`members.value`).
    pub value: String,
    /// `members.type`.
    pub member_type: MemberType,
    /// `members.display`: the member User's or Group's current displayName
    /// (read by a join, so it follows renames), `None` if it has none.
    pub display: Option<String>,
}

/// One of a User's groups (RFC 7643 §4.1.2 `groups`, direct membership).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupRef {
    /// The group's id (`groups.value`).
    pub value: String,
    /// The group's displayName (`groups.display`).
    pub display: String,
}

#[derive(Insertable)]
#[diesel(table_name = groups)]
struct NewGroupRow<'a> {
    id: &'a str,
    display_name: &'a str,
    display_name_ci: &'a str,
    external_id: Option<&'a str>,
    resource: &'a str,
    version: i64,
    created: &'a str,
    last_modified: &'a str,
}

#[derive(AsChangeset)]
#[diesel(table_name = groups)]
struct GroupChanges<'a> {
    display_name: &'a str,
    display_name_ci: &'a str,
    // `Some(None)` writes NULL; `None` would leave the column unchanged.
    external_id: Option<Option<&'a str>>,
    resource: &'a str,
    version: i64,
    last_modified: &'a str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = groups)]
struct GroupRow {
    id: String,
    resource: String,
    version: i64,
    created: String,
    last_modified: String,
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct MembershipRow {
    #[diesel(sql_type = Text)]
    member_id: String,
    #[diesel(sql_type = Text)]
    group_id: String,
    #[diesel(sql_type = Text)]
    display_name: String,
}

/// The columns of `groups` derived from the canonical attributes.
struct Derived {
    display_name: String,
    display_name_ci: String,
    external_id: Option<String>,
    /// The attributes as stored: without `members`.
    attrs: Map<String, Value>,
    resource: String,
}

/// A member of `map` by canonical name, falling back to a case-insensitive
/// match (RFC 7643 §2.1: attribute names are case-insensitive).
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}

fn derive(attrs: &Map<String, Value>) -> Result<Derived, StoreError> {
    let mut attrs = attrs.clone();
    // Members live in `group_members`; a copy in the JSON would be a second
    // source of truth as long as the group.
    attrs.retain(|k, _| !k.eq_ignore_ascii_case("members"));
    let display_name = match get_ci(&attrs, "displayName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        _ => {
            return Err(StoreError::Invalid(ScimError::invalid_value(
                "displayName is required and must be a non-empty string (RFC 7643 §4.2)",
            )))
        }
    };
    let external_id = match get_ci(&attrs, "externalId") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        _ => None,
    };
    let resource = serde_json::to_string(&attrs)
        .map_err(|e| StoreError::internal("serialising a group failed", &e))?;
    Ok(Derived {
        display_name_ci: display_name.to_lowercase(),
        display_name,
        external_id,
        attrs,
        resource,
    })
}

fn to_record(row: GroupRow) -> Result<GroupRecord, StoreError> {
    let attrs = match serde_json::from_str::<Value>(&row.resource) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(StoreError::internal(
                "a stored group is not a JSON object",
                &format_args!("group {}", row.id),
            ))
        }
        Err(e) => return Err(StoreError::internal("a stored group is not valid JSON", &e)),
    };
    Ok(GroupRecord {
        id: row.id,
        attrs,
        version: row.version,
        created: row.created,
        last_modified: row.last_modified,
    })
}

fn display_name_taken(display_name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "displayName \"{display_name}\" is already taken by another Group \
         (Group displayName is unique, case-insensitively)"
    ))
}

fn group_exists(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    Ok(
        diesel::select(diesel::dsl::exists(groups::table.filter(groups::id.eq(id))))
            .get_result(conn)?,
    )
}

/// `NotFound` or, when a version was expected and the group exists,
/// `PreconditionFailed`: why a guarded write matched no row.
fn missed(
    conn: &mut DbConnection,
    id: &str,
    expected_version: Option<i64>,
) -> Result<StoreError, StoreError> {
    Ok(if expected_version.is_some() && group_exists(conn, id)? {
        StoreError::PreconditionFailed
    } else {
        StoreError::NotFound
    })
}

/// Inserts a new Group with a fresh UUID v7 id
/// ([`crate::scim::new_resource_id`]), version 1, created =
/// lastModified = now, and `members` (validated as [`add_members`] does).
/// `displayName` is required (`invalidValue` otherwise) and unique
/// case-insensitively (`Conflict`; the database's unique index decides, so
/// two racing inserts cannot both win). A `members` key in `attrs` is
/// ignored: members are the `members` argument.
pub fn insert_group(
    conn: &mut DbConnection,
    attrs: &Map<String, Value>,
    members: &[MemberRef],
) -> Result<GroupRecord, StoreError> {
    let d = derive(attrs)?;
    let id = crate::scim::new_resource_id();
    let now = scim_core::datetime::now();
    diesel::insert_into(groups::table)
        .values(NewGroupRow {
            id: &id,
            display_name: &d.display_name,
            display_name_ci: &d.display_name_ci,
            external_id: d.external_id.as_deref(),
            resource: &d.resource,
            version: 1,
            created: &now,
            last_modified: &now,
        })
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                display_name_taken(&d.display_name)
            } else {
                e.into()
            }
        })?;
    add_members(conn, &id, members)?;
    Ok(GroupRecord {
        id,
        attrs: d.attrs,
        version: 1,
        created: now.clone(),
        last_modified: now,
    })
}

/// The Group with this id, if any. Reads only `groups`, never its members.
pub fn find_group(conn: &mut DbConnection, id: &str) -> Result<Option<GroupRecord>, StoreError> {
    let row: Option<GroupRow> = groups::table
        .filter(groups::id.eq(id))
        .select(GroupRow::as_select())
        .first(conn)
        .optional()?;
    row.map(to_record).transpose()
}

/// Reads a Group for a read-modify-write inside [`crate::engine::Store::write`],
/// locking its row until the transaction ends, so that concurrent PATCHes
/// of one group (Entra sends one membership change at a time, often in
/// parallel) queue on the lock instead of failing their version check.
/// PostgreSQL takes `FOR NO KEY UPDATE` (member rows' foreign keys still
/// resolve); SQLite's write transactions are already serialised
/// (`BEGIN IMMEDIATE` on one writer connection).
pub fn lock_group(conn: &mut DbConnection, id: &str) -> Result<Option<GroupRecord>, StoreError> {
    match conn {
        DbConnection::Postgres(pg) => {
            let row: Option<GroupRow> = groups::table
                .filter(groups::id.eq(id))
                .select(GroupRow::as_select())
                .for_no_key_update()
                .first(pg)
                .optional()?;
            row.map(to_record).transpose()
        }
        DbConnection::Sqlite(_) => find_group(conn, id),
    }
}

/// Replaces a Group's attributes (not its members) if its version is still
/// `expected_version` (RFC 7644 §3.14): bumps the version and lastModified.
/// A missing group is `NotFound`, a changed one `PreconditionFailed`, a
/// displayName taken by another group `Conflict`.
pub fn update_group(
    conn: &mut DbConnection,
    id: &str,
    expected_version: i64,
    attrs: &Map<String, Value>,
) -> Result<GroupRecord, StoreError> {
    let d = derive(attrs)?;
    let now = scim_core::datetime::now();
    let version = expected_version.saturating_add(1);
    let updated = diesel::update(
        groups::table
            .filter(groups::id.eq(id))
            .filter(groups::version.eq(expected_version)),
    )
    .set(GroupChanges {
        display_name: &d.display_name,
        display_name_ci: &d.display_name_ci,
        external_id: Some(d.external_id.as_deref()),
        resource: &d.resource,
        version,
        last_modified: &now,
    })
    .execute(conn)
    .map_err(|e| {
        if is_unique_violation(&e) {
            display_name_taken(&d.display_name)
        } else {
            e.into()
        }
    })?;
    if updated == 0 {
        return Err(missed(conn, id, Some(expected_version))?);
    }
    let created: String = groups::table
        .filter(groups::id.eq(id))
        .select(groups::created)
        .first(conn)?;
    Ok(GroupRecord {
        id: id.to_owned(),
        attrs: d.attrs,
        version,
        created,
        last_modified: now,
    })
}

/// Bumps a Group's version and lastModified after a membership change
/// (its `members` changed, so its ETag must, RFC 7644 §3.14), and returns
/// the group. With `expected_version`, only if the version still matches
/// (`PreconditionFailed` otherwise); a missing group is `NotFound`.
///
/// One UPDATE of the group row, whatever the group's size.
pub fn touch_group(
    conn: &mut DbConnection,
    id: &str,
    expected_version: Option<i64>,
) -> Result<GroupRecord, StoreError> {
    let now = scim_core::datetime::now();
    let changes = (
        groups::version.eq(groups::version + 1),
        groups::last_modified.eq(&now),
    );
    let updated = match expected_version {
        Some(v) => diesel::update(
            groups::table
                .filter(groups::id.eq(id))
                .filter(groups::version.eq(v)),
        )
        .set(changes)
        .execute(conn)?,
        None => diesel::update(groups::table.filter(groups::id.eq(id)))
            .set(changes)
            .execute(conn)?,
    };
    if updated == 0 {
        return Err(missed(conn, id, expected_version)?);
    }
    find_group(conn, id)?.ok_or(StoreError::NotFound)
}

/// Deletes a Group: its member rows go by cascade, and its own membership
/// in other groups is removed, bumping those groups' versions. With
/// `expected_version`, only if the version still matches
/// (`PreconditionFailed` otherwise); a missing group is `NotFound`.
pub fn delete_group(
    conn: &mut DbConnection,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let deleted = match expected_version {
        Some(v) => diesel::delete(
            groups::table
                .filter(groups::id.eq(id))
                .filter(groups::version.eq(v)),
        )
        .execute(conn)?,
        None => diesel::delete(groups::table.filter(groups::id.eq(id))).execute(conn)?,
    };
    if deleted == 0 {
        return Err(missed(conn, id, expected_version)?);
    }
    remove_from_all_groups(conn, id)
}

/// Removes `member_id` (a User or Group being deleted) from every group it
/// belongs to and bumps those groups' version and lastModified. Work is
/// proportional to the member's memberships (index on `member_id`).
pub(crate) fn remove_from_all_groups(
    conn: &mut DbConnection,
    member_id: &str,
) -> Result<(), StoreError> {
    let parents = || {
        group_members::table
            .filter(group_members::member_id.eq(member_id))
            .select(group_members::group_id)
    };
    if let DbConnection::Postgres(pg) = conn {
        // Lock the parent rows in id order first: two users deleted at once
        // that share groups would otherwise update those rows in different
        // orders and deadlock. (SQLite has a single writer.)
        groups::table
            .filter(groups::id.eq_any(parents()))
            .order(groups::id)
            .select(groups::id)
            .for_no_key_update()
            .load::<String>(pg)?;
    }
    let now = scim_core::datetime::now();
    diesel::update(groups::table.filter(groups::id.eq_any(parents())))
        .set((
            groups::version.eq(groups::version + 1),
            groups::last_modified.eq(&now),
        ))
        .execute(conn)?;
    diesel::delete(group_members::table.filter(group_members::member_id.eq(member_id)))
        .execute(conn)?;
    Ok(())
}

/// Appends `(?, ?, …)` binding `ids`.
fn push_in_list(b: &mut SqlBuilder, ids: &[&str]) {
    b.push("(");
    for (i, id) in ids.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.bind_text(*id);
    }
    b.push(")");
}

/// Which of `ids` exist in `table` ("users" or "groups"): one query per
/// [`CHUNK`] ids (soft-deleted users are not found). On PostgreSQL the found
/// rows are share-locked until the transaction ends, so a concurrent (soft)
/// delete of one of them waits for
/// this transaction and then removes the membership it added, instead of
/// leaving a member that no longer exists.
fn existing_ids(
    conn: &mut DbConnection,
    table: &'static str,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push("SELECT id FROM ").push(table).push(" WHERE id IN ");
        push_in_list(&mut b, chunk);
        let users = table == "users";
        if users {
            // A soft-deleted user is not an existing User.
            b.push(" AND deleted_at IS NULL");
        }
        if conn.backend() == Backend::Postgres {
            // Users: FOR SHARE, which also waits for a soft delete (an
            // UPDATE, which FOR KEY SHARE would let through) so that it
            // removes the membership added here.
            b.push(if users {
                " FOR SHARE"
            } else {
                " FOR KEY SHARE"
            });
        }
        let rows: Vec<IdRow> = load(conn, &b)?;
        found.extend(rows.into_iter().map(|r| r.id));
    }
    Ok(found)
}

/// Validates the members a client names for `group_id` and resolves each
/// one's type: duplicates collapse (first wins), an empty id, the group
/// itself, or an id that is not an existing User or Group (of the given
/// type, if one is given) is `invalidValue` naming the ids. At most one
/// query per table (per [`CHUNK`] ids), none for the common all-Users case
/// beyond `users`.
fn resolve_members(
    conn: &mut DbConnection,
    group_id: &str,
    members: &[MemberRef],
) -> Result<Vec<(String, MemberType)>, StoreError> {
    let mut seen: HashSet<&str> = HashSet::with_capacity(members.len());
    let mut wanted: Vec<&MemberRef> = Vec::with_capacity(members.len());
    for m in members {
        if m.value.is_empty() {
            return Err(StoreError::Invalid(ScimError::invalid_value(
                "a member's value must be the id of a User or Group; it is empty",
            )));
        }
        if m.value == group_id {
            return Err(StoreError::Invalid(ScimError::invalid_value(format!(
                "a group cannot be a member of itself (member \"{}\")",
                m.value
            ))));
        }
        if seen.insert(m.value.as_str()) {
            wanted.push(m);
        }
    }
    let maybe_users: Vec<&str> = wanted
        .iter()
        .filter(|m| m.member_type != Some(MemberType::Group))
        .map(|m| m.value.as_str())
        .collect();
    let users_found = if maybe_users.is_empty() {
        HashSet::new()
    } else {
        existing_ids(conn, "users", &maybe_users)?
    };
    // Ask `groups` only about ids that can still be groups.
    let maybe_groups: Vec<&str> = wanted
        .iter()
        .filter(|m| match m.member_type {
            Some(MemberType::Group) => true,
            Some(MemberType::User) => false,
            None => !users_found.contains(&m.value),
        })
        .map(|m| m.value.as_str())
        .collect();
    let groups_found = if maybe_groups.is_empty() {
        HashSet::new()
    } else {
        existing_ids(conn, "groups", &maybe_groups)?
    };
    let mut resolved = Vec::with_capacity(wanted.len());
    let mut unknown: Vec<String> = Vec::new();
    for m in wanted {
        let is_user = users_found.contains(&m.value);
        let is_group = groups_found.contains(&m.value);
        match (m.member_type, is_user, is_group) {
            (Some(MemberType::User) | None, true, _) => {
                resolved.push((m.value.clone(), MemberType::User));
            }
            (Some(MemberType::Group) | None, _, true) => {
                resolved.push((m.value.clone(), MemberType::Group));
            }
            (Some(t), _, _) => unknown.push(format!(
                "member \"{}\" is not an existing User or Group (its type was given as \"{}\")",
                m.value,
                t.as_str()
            )),
            (None, _, _) => unknown.push(format!(
                "member \"{}\" is not an existing User or Group",
                m.value
            )),
        }
    }
    if !unknown.is_empty() {
        let more = unknown.len().saturating_sub(NAMED_IN_ERROR);
        unknown.truncate(NAMED_IN_ERROR);
        let mut detail = unknown.join("; ");
        if more > 0 {
            detail.push_str(&format!("; and {more} more unknown members"));
        }
        return Err(StoreError::Invalid(ScimError::invalid_value(detail)));
    }
    Ok(resolved)
}

/// Inserts validated members; existing ones are left alone. Returns how
/// many were new. A group that does not exist is `NotFound`.
fn insert_members(
    conn: &mut DbConnection,
    group_id: &str,
    members: &[(String, MemberType)],
) -> Result<usize, StoreError> {
    let mut added = 0;
    for chunk in members.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push("INSERT INTO group_members (group_id, member_id, member_type) VALUES ");
        for (i, (id, t)) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.bind_text(group_id)
                .push(", ")
                .bind_text(id.as_str())
                .push(", ")
                .bind_text(t.as_str())
                .push(")");
        }
        // Adding a member twice changes nothing (RFC 7644 §3.5.2.1: add
        // to a multi-valued attribute merges); not an error.
        b.push(" ON CONFLICT (group_id, member_id) DO NOTHING");
        added += execute(conn, &b).map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => StoreError::NotFound,
            other => other.into(),
        })?;
    }
    Ok(added)
}

/// Adds members to a Group (RFC 7644 §3.5.2.1) and returns how many were
/// not members before; adding an existing member is not an error.
///
/// Every referenced id must be an existing User or Group (of the given
/// type, if any), and the group cannot contain itself: otherwise
/// `Invalid(invalidValue)` naming the ids, with nothing applied (the
/// caller's transaction rolls back). A missing group is `NotFound`. Cost
/// is proportional to `members`, never to the group's size. Call
/// [`touch_group`] afterwards.
pub fn add_members(
    conn: &mut DbConnection,
    group_id: &str,
    members: &[MemberRef],
) -> Result<usize, StoreError> {
    if members.is_empty() {
        return Ok(0);
    }
    let resolved = resolve_members(conn, group_id, members)?;
    insert_members(conn, group_id, &resolved)
}

/// Removes the members with these ids from a Group; returns how many were
/// members. Removing a non-member is not an error. Call [`touch_group`]
/// afterwards.
pub fn remove_members(
    conn: &mut DbConnection,
    group_id: &str,
    ids: &[String],
) -> Result<usize, StoreError> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut removed = 0;
    for chunk in ids.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push("DELETE FROM group_members WHERE group_id = ")
            .bind_text(group_id)
            .push(" AND member_id IN ");
        push_in_list(&mut b, chunk);
        removed += execute(conn, &b)?;
    }
    Ok(removed)
}

/// Removes every member of a Group (PATCH `remove` of `members`, RFC 7644
/// §3.5.2.2); returns how many there were. Call [`touch_group`] afterwards.
pub fn remove_all_members(conn: &mut DbConnection, group_id: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(group_members::table.filter(group_members::group_id.eq(group_id)))
            .execute(conn)?,
    )
}

/// Removes the members matching `filter`, the value filter of a PATCH path
/// `members[…]` (RFC 7644 §3.5.2.2), e.g. `value eq "a" or value eq "b"`.
/// Its paths name the sub-attributes `value` (the member id, compared
/// exactly), `type` and `display` (compared case-insensitively); anything
/// else is `invalidFilter`. Returns how many were removed; none matching
/// is not an error. Call [`touch_group`] afterwards.
pub fn remove_members_matching(
    conn: &mut DbConnection,
    group_id: &str,
    filter: &Filter,
) -> Result<usize, StoreError> {
    let mut b = SqlBuilder::new(conn.backend());
    b.push("DELETE FROM group_members WHERE group_members.group_id = ")
        .bind_text(group_id)
        .push(" AND ");
    push_element_filter(&mut b, &PATCH_MEMBERS, filter)?;
    Ok(execute(conn, &b)?)
}

/// Replaces a Group's members with `members` (PUT, or PATCH `replace` of
/// `members`, RFC 7644 §3.5.2.3). The new members are validated first, as
/// in [`add_members`]; returns how many members the group now has. Call
/// [`touch_group`] afterwards.
pub fn replace_members(
    conn: &mut DbConnection,
    group_id: &str,
    members: &[MemberRef],
) -> Result<usize, StoreError> {
    let resolved = resolve_members(conn, group_id, members)?;
    remove_all_members(conn, group_id)?;
    insert_members(conn, group_id, &resolved)
}

/// A Group's members ordered by id, each with its current `display` (the
/// member User's or Group's displayName), in one query (RFC 7643 §4.2). A
/// missing group has no members.
pub fn list_group_members(
    conn: &mut DbConnection,
    group_id: &str,
) -> Result<Vec<Member>, StoreError> {
    list_group_members_page(conn, group_id, 0, i64::MAX)
}

/// How many members a Group has (0 for a missing group), counted on the
/// membership table's primary key.
pub fn count_group_members(conn: &mut DbConnection, group_id: &str) -> Result<i64, StoreError> {
    Ok(group_members::table
        .filter(group_members::group_id.eq(group_id))
        .count()
        .get_result(conn)?)
}

/// [`list_group_members`], `limit` members from the `offset`-th (0-based)
/// in the same order: a page of a large group without loading the rest.
pub fn list_group_members_page(
    conn: &mut DbConnection,
    group_id: &str,
    offset: i64,
    limit: i64,
) -> Result<Vec<Member>, StoreError> {
    // A compact positional row (no per-column name lookup, a bool for the
    // type): this may return 100,000 rows.
    let rows: Vec<(String, bool, Option<String>, Option<String>)> = group_members::table
        .left_join(
            users::table.on(users::id
                .eq(group_members::member_id)
                .and(group_members::member_type.eq("User"))),
        )
        .left_join(
            groups::table.on(groups::id
                .eq(group_members::member_id)
                .and(group_members::member_type.eq("Group"))),
        )
        .filter(group_members::group_id.eq(group_id))
        .order(group_members::member_id.asc())
        .select((
            group_members::member_id,
            group_members::member_type.eq("User"),
            users::display_name.nullable(),
            groups::display_name.nullable(),
        ))
        .limit(limit.max(0))
        .offset(offset.max(0))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(value, is_user, user_display, group_display)| {
            if is_user {
                Member {
                    value,
                    member_type: MemberType::User,
                    display: user_display,
                }
            } else {
                Member {
                    value,
                    member_type: MemberType::Group,
                    display: group_display,
                }
            }
        })
        .collect())
}

/// The groups each of `user_ids` belongs to directly (a User's read-only
/// `groups`, RFC 7643 §4.1.2), ordered by displayName: one query per
/// [`CHUNK`] users, so a whole page of users costs one query. Every
/// requested id is a key (with an empty list if it has no groups).
pub fn groups_of_users(
    conn: &mut DbConnection,
    user_ids: &[&str],
) -> Result<HashMap<String, Vec<GroupRef>>, StoreError> {
    let mut out: HashMap<String, Vec<GroupRef>> = HashMap::with_capacity(user_ids.len());
    let mut unique: Vec<&str> = Vec::with_capacity(user_ids.len());
    for id in user_ids {
        if !out.contains_key(*id) {
            out.insert((*id).to_owned(), Vec::new());
            unique.push(id);
        }
    }
    for chunk in unique.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push(
            "SELECT gm.member_id AS member_id, g.id AS group_id, g.display_name AS display_name \
             FROM group_members gm JOIN groups g ON g.id = gm.group_id \
             WHERE gm.member_type = 'User' AND gm.member_id IN ",
        );
        push_in_list(&mut b, chunk);
        b.push(" ORDER BY gm.member_id, g.display_name_ci");
        let rows: Vec<MembershipRow> = load(conn, &b)?;
        for r in rows {
            out.entry(r.member_id).or_default().push(GroupRef {
                value: r.group_id,
                display: r.display_name,
            });
        }
    }
    Ok(out)
}

/// A text SQL expression: the direct groups of the user whose id is the
/// column `user_id` (e.g. `u.id`), as a JSON array of `[id, displayName,
/// displayName lowercased]`, `[]` for none. `GET /Users/{id}` selects it
/// next to the user (`scim/lookup.rs`) instead of asking a second query;
/// [`parse_user_groups`] turns it into ordered `GroupRef`s. (Lists keep
/// [`groups_of_users`], one query per page: in a list statement the
/// subquery makes PostgreSQL re-plan it on every execution;
/// docs/BENCHMARKS.md.)
pub(crate) fn user_groups_json_sql(backend: Backend, user_id: &str) -> String {
    let agg = match backend {
        Backend::Sqlite => "json_group_array(json_array(g.id, g.display_name, g.display_name_ci))",
        Backend::Postgres => {
            "COALESCE(json_agg(json_build_array(g.id, g.display_name, g.display_name_ci)), \
             '[]'::json)::text"
        }
    };
    format!(
        "(SELECT {agg} FROM group_members gm JOIN groups g ON g.id = gm.group_id \
         WHERE gm.member_type = 'User' AND gm.member_id = {user_id})"
    )
}

/// The direct groups of one user, ordered as [`groups_of_users`] orders
/// them: one fixed statement (a cached prepared statement).
pub(crate) fn user_groups(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Vec<GroupRef>, StoreError> {
    // The shared subquery, with a marker where the bound user id goes.
    let sql = user_groups_json_sql(conn.backend(), "\u{0}");
    let (before, after) = sql.split_once('\u{0}').unwrap_or((sql.as_str(), ""));
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("SELECT ")
        .push(before)
        .bind_text(user_id)
        .push(after)
        .push(" AS groups");
    let rows: Vec<GroupsJsonRow> = load(conn, &b)?;
    match rows.into_iter().next().and_then(|r| r.groups) {
        Some(json) => parse_user_groups(&json),
        None => Ok(Vec::new()),
    }
}

#[derive(QueryableByName)]
struct GroupsJsonRow {
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    groups: Option<String>,
}

/// The groups of [`user_groups_json_sql`], ordered as [`groups_of_users`]
/// orders them (displayName, case-insensitively; then id).
pub(crate) fn parse_user_groups(json: &str) -> Result<Vec<GroupRef>, StoreError> {
    let mut triples: Vec<(String, String, String)> = serde_json::from_str(json)
        .map_err(|e| StoreError::internal("a user's groups did not aggregate as JSON", &e))?;
    triples.sort_by(|a, b| (&a.2, &a.0).cmp(&(&b.2, &b.0)));
    Ok(triples
        .into_iter()
        .map(|(value, display, _)| GroupRef { value, display })
        .collect())
}

/// A page of Groups matching `query.filter`, evaluated in the database
/// (RFC 7644 §3.4.2), without members: this never reads `group_members`
/// unless the filter names `members`. Filterable: id, displayName
/// (case-insensitive), externalId (exact), meta.created,
/// meta.lastModified, meta.resourceType, members / members.value /
/// members.type and `members[…]` over value and type; sortable:
/// displayName, externalId, id, meta.created, meta.lastModified. Anything
/// else is `Invalid` (`invalidFilter` / `invalidValue`).
pub fn list_groups(
    conn: &mut DbConnection,
    query: &ListQuery<'_>,
) -> Result<Page<GroupRecord>, StoreError> {
    let page = list_rows(conn, Resource::Group, query)?;
    let items = page
        .items
        .into_iter()
        .map(|r| {
            to_record(GroupRow {
                id: r.id,
                resource: r.resource,
                version: r.version,
                created: r.created,
                last_modified: r.last_modified,
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        total: page.total,
        items,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn members_never_reach_the_stored_json() {
        let attrs = json!({
            "displayName": "Engineering",
            "externalId": "E-1",
            "Members": [{"value": "x"}]
        });
        let d = derive(attrs.as_object().unwrap()).unwrap();
        assert_eq!(d.display_name, "Engineering");
        assert_eq!(d.display_name_ci, "engineering");
        assert_eq!(d.external_id.as_deref(), Some("E-1"));
        assert!(!d.attrs.contains_key("Members"));
        assert!(!d.resource.contains("members") && !d.resource.contains("Members"));
    }

    #[test]
    fn display_name_is_required() {
        for attrs in [
            json!({}),
            json!({"displayName": ""}),
            json!({"displayName": "  "}),
            json!({"displayName": 5}),
        ] {
            match derive(attrs.as_object().unwrap()) {
                Err(StoreError::Invalid(e)) => {
                    assert_eq!(e.scim_type, scim_core::ScimType::InvalidValue)
                }
                other => panic!("{attrs}: {:?}", other.map(|d| d.resource)),
            }
        }
    }

    #[test]
    fn member_types_parse_case_insensitively() {
        assert_eq!(MemberType::parse("user"), Some(MemberType::User));
        assert_eq!(MemberType::parse("GROUP"), Some(MemberType::Group));
        assert_eq!(MemberType::parse("direct"), None);
        assert_eq!(MemberType::Group.as_str(), "Group");
    }
}
