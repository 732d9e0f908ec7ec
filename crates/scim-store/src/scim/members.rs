//! Group membership (RFC 7643 §4.2 `members`, RFC 7643 §4.1.2 a User's
//! `groups`): the rows of `group_members`.
//!
//! Entra ID sends membership changes one member at a time to groups of
//! any size, so every membership function works on the members named in
//! the request only: validation is one indexed lookup per referenced
//! table, an add is a primary-key insert, a removal a primary-key delete,
//! and the group row gets one version bump
//! ([`crate::scim::groups::touch_group`], which the caller runs after a
//! change). Nothing here loads, diffs or rewrites a group's member list.
//!
//! Call the writing functions inside [`crate::engine::Store::write`], so that an
//! error (an unknown member, say) rolls back everything the request did.

use std::collections::{HashMap, HashSet};

use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::QueryableByName;

use scim_core::filter::Filter;
use scim_core::ScimError;

use crate::db::connection::{Backend, DbConnection};
use crate::db::org::OrgId;
use crate::db::schema::scim::{group_members, groups, users};
use crate::db::sql::{load, Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::{push_element_filter, PATCH_MEMBERS};

/// Ids per `IN (…)` list and rows per multi-row `INSERT`: far below
/// SQLite's 32766 and PostgreSQL's 65535 bind parameters per statement.
const CHUNK: usize = 500;

/// How many unknown member ids an error message names before summarising.
const NAMED_IN_ERROR: usize = 10;

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

/// Removes `member_id` (a User or Group being deleted) from every group it
/// belongs to and bumps those groups' version and lastModified; returns
/// those groups with their new versions. Work is proportional to the
/// member's memberships (index on `member_id`).
pub(crate) fn remove_from_all_groups(
    conn: &mut DbConnection,
    member_id: &str,
) -> Result<Vec<(String, i64)>, StoreError> {
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
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("UPDATE groups SET version = version + 1, last_modified = ")
        .bind_text(now)
        .push(" WHERE id IN (SELECT group_id FROM group_members WHERE member_id = ")
        .bind_text(member_id)
        .push(") RETURNING id, version");
    let mut left: Vec<(String, i64)> = load::<GroupVersionRow>(conn, &b)?
        .into_iter()
        .map(|r| (r.id, r.version))
        .collect();
    left.sort();
    diesel::delete(group_members::table.filter(group_members::member_id.eq(member_id)))
        .execute(conn)?;
    Ok(left)
}

#[derive(QueryableByName)]
struct GroupVersionRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    version: i64,
}

#[derive(QueryableByName)]
struct MemberIdRow {
    #[diesel(sql_type = Text)]
    member_id: String,
}

/// Which members a membership write added and removed (ids, in the order
/// the database returned them): what the change log records
/// (`group.members_added`, `group.members_removed`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembersChanged {
    /// Members that were not members before.
    pub added: Vec<String>,
    /// Members that are no longer members.
    pub removed: Vec<String>,
}

impl MembersChanged {
    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty()
    }

    /// How many memberships changed.
    pub fn len(&self) -> usize {
        self.added.len() + self.removed.len()
    }

    /// Adds what `other` changed to this.
    pub fn extend(&mut self, other: MembersChanged) {
        self.added.extend(other.added);
        self.removed.extend(other.removed);
    }

    fn added(added: Vec<String>) -> MembersChanged {
        MembersChanged {
            added,
            removed: Vec::new(),
        }
    }

    fn removed(removed: Vec<String>) -> MembersChanged {
        MembersChanged {
            added: Vec::new(),
            removed,
        }
    }
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
    org: OrgId,
    table: &'static str,
    ids: &[&str],
) -> Result<HashSet<String>, StoreError> {
    let mut found = HashSet::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        // Another organization's resource does not exist here (`+`: found
        // by the primary key, not through an index leading with `org_id`,
        // which SQLite would prefer for a long list of ids).
        b.push("SELECT id FROM ")
            .push(table)
            .push(" WHERE +org_id = ")
            .bind(Bind::Integer(org.0))
            .push(" AND id IN ");
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
    org: OrgId,
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
        existing_ids(conn, org, "users", &maybe_users)?
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
        existing_ids(conn, org, "groups", &maybe_groups)?
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

/// Inserts validated members; existing ones are left alone. Returns the
/// ids of those that were new. A group that does not exist is `NotFound`.
fn insert_members(
    conn: &mut DbConnection,
    group_id: &str,
    members: &[(String, MemberType)],
) -> Result<Vec<String>, StoreError> {
    let mut added = Vec::new();
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
        b.push(" ON CONFLICT (group_id, member_id) DO NOTHING RETURNING member_id");
        let rows: Vec<MemberIdRow> = load(conn, &b).map_err(|e| match e {
            diesel::result::Error::DatabaseError(
                diesel::result::DatabaseErrorKind::ForeignKeyViolation,
                _,
            ) => StoreError::NotFound,
            other => other.into(),
        })?;
        added.extend(rows.into_iter().map(|r| r.member_id));
    }
    Ok(added)
}

/// Adds members to a Group (RFC 7644 §3.5.2.1) and returns those that were
/// not members before; adding an existing member is not an error.
///
/// Every referenced id must be an existing User or Group of the
/// organization `org` (of the given type, if any), and the group cannot contain itself: otherwise
/// `Invalid(invalidValue)` naming the ids, with nothing applied (the
/// caller's transaction rolls back). A missing group is `NotFound`. Cost
/// is proportional to `members`, never to the group's size. Call
/// [`touch_group`](crate::scim::groups::touch_group) afterwards.
pub fn add_members(
    conn: &mut DbConnection,
    org: OrgId,
    group_id: &str,
    members: &[MemberRef],
) -> Result<MembersChanged, StoreError> {
    if members.is_empty() {
        return Ok(MembersChanged::default());
    }
    let resolved = resolve_members(conn, org, group_id, members)?;
    Ok(MembersChanged::added(insert_members(
        conn, group_id, &resolved,
    )?))
}

/// Removes the members with these ids from a Group; returns those that
/// were members. Removing a non-member is not an error. Call [`touch_group`](crate::scim::groups::touch_group)
/// afterwards.
pub fn remove_members(
    conn: &mut DbConnection,
    group_id: &str,
    ids: &[String],
) -> Result<MembersChanged, StoreError> {
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    let mut removed = Vec::new();
    for chunk in ids.chunks(CHUNK) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push("DELETE FROM group_members WHERE group_id = ")
            .bind_text(group_id)
            .push(" AND member_id IN ");
        push_in_list(&mut b, chunk);
        b.push(" RETURNING member_id");
        let rows: Vec<MemberIdRow> = load(conn, &b)?;
        removed.extend(rows.into_iter().map(|r| r.member_id));
    }
    Ok(MembersChanged::removed(removed))
}

/// Removes every member of a Group (PATCH `remove` of `members`, RFC 7644
/// §3.5.2.2); returns those there were. Call [`touch_group`](crate::scim::groups::touch_group) afterwards.
pub fn remove_all_members(
    conn: &mut DbConnection,
    group_id: &str,
) -> Result<MembersChanged, StoreError> {
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("DELETE FROM group_members WHERE group_id = ")
        .bind_text(group_id)
        .push(" RETURNING member_id");
    let rows: Vec<MemberIdRow> = load(conn, &b)?;
    Ok(MembersChanged::removed(
        rows.into_iter().map(|r| r.member_id).collect(),
    ))
}

/// Removes the members matching `filter`, the value filter of a PATCH path
/// `members[…]` (RFC 7644 §3.5.2.2), e.g. `value eq "a" or value eq "b"`.
/// Its paths name the sub-attributes `value` (the member id, compared
/// exactly), `type` and `display` (compared case-insensitively); anything
/// else is `invalidFilter`. Returns those removed; none matching is not an
/// error. Call [`touch_group`](crate::scim::groups::touch_group) afterwards.
pub fn remove_members_matching(
    conn: &mut DbConnection,
    group_id: &str,
    filter: &Filter,
) -> Result<MembersChanged, StoreError> {
    let mut b = SqlBuilder::new(conn.backend());
    b.push("DELETE FROM group_members WHERE group_members.group_id = ")
        .bind_text(group_id)
        .push(" AND ");
    push_element_filter(&mut b, &PATCH_MEMBERS, filter)?;
    b.push(" RETURNING member_id");
    let rows: Vec<MemberIdRow> = load(conn, &b)?;
    Ok(MembersChanged::removed(
        rows.into_iter().map(|r| r.member_id).collect(),
    ))
}

/// Replaces a Group's members with `members` (PUT, or PATCH `replace` of
/// `members`, RFC 7644 §3.5.2.3). The new members are validated first, as
/// in [`add_members`]; returns the members added and removed (those kept
/// are in neither). Call [`touch_group`](crate::scim::groups::touch_group)
/// afterwards.
pub fn replace_members(
    conn: &mut DbConnection,
    org: OrgId,
    group_id: &str,
    members: &[MemberRef],
) -> Result<MembersChanged, StoreError> {
    let resolved = resolve_members(conn, org, group_id, members)?;
    let before = remove_all_members(conn, group_id)?.removed;
    let after = insert_members(conn, group_id, &resolved)?;
    let (was, now): (HashSet<&str>, HashSet<&str>) = (
        before.iter().map(String::as_str).collect(),
        after.iter().map(String::as_str).collect(),
    );
    Ok(MembersChanged {
        added: after
            .iter()
            .filter(|id| !was.contains(id.as_str()))
            .cloned()
            .collect(),
        removed: before
            .iter()
            .filter(|id| !now.contains(id.as_str()))
            .cloned()
            .collect(),
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn member_types_parse_case_insensitively() {
        assert_eq!(MemberType::parse("user"), Some(MemberType::User));
        assert_eq!(MemberType::parse("GROUP"), Some(MemberType::Group));
        assert_eq!(MemberType::parse("direct"), None);
        assert_eq!(MemberType::Group.as_str(), "Group");
    }
}
