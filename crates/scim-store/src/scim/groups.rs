//! The Groups repository (RFC 7643 §4.2, RFC 7644 §3.3–§3.6): the Group
//! resource itself.
//!
//! A group is one row of `groups` (its canonical attributes WITHOUT
//! `members`); its members are rows of `group_members`, written and read
//! by [`crate::scim::members`]. A membership change bumps the group row's
//! version once ([`touch_group`]). [`find_group`] / [`list_groups`] never
//! read `group_members`: the caller fetches members
//! ([`crate::scim::members::list_group_members`]) only when the response
//! includes them.
//!
//! Call the writing functions inside [`crate::engine::Store::write`], so that an
//! error (an unknown member, say) rolls back everything the request did.

use diesel::prelude::*;
use serde_json::{Map, Value};

use scim_core::ScimError;

use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::scim::groups;
use crate::db::sql::{load, Bind, SqlBuilder};
use crate::error::{is_unique_violation, StoreError};
use crate::scim::filter::Resource;
use crate::scim::get_ci;
use crate::scim::list::{list_rows, list_rows_keyset, KeysetPage, ListQuery, Page, Seek};
use crate::scim::members::{add_members, remove_from_all_groups, MemberRef};

/// A stored Group: its canonical attributes (never `members`) plus what
/// the store manages.
#[derive(Debug, Clone, PartialEq)]
pub struct GroupRecord {
    /// The server-assigned id (UUID text).
    pub id: String,
    /// The canonical attributes (`displayName`, `externalId`, …); never
    /// `members`, which live in their own table ([`crate::scim::members::list_group_members`]).
    pub attrs: Map<String, Value>,
    /// The version, bumped on every write including membership changes;
    /// the ETag is derived from it.
    pub version: i64,
    /// meta.created (fixed UTC text form).
    pub created: String,
    /// meta.lastModified (fixed UTC text form).
    pub last_modified: String,
}

#[derive(Insertable)]
#[diesel(table_name = groups)]
struct NewGroupRow<'a> {
    org_id: i32,
    id: &'a str,
    display_name: &'a str,
    display_name_ci: &'a str,
    external_id: Option<&'a str>,
    resource: &'a str,
    version: i64,
    created: &'a str,
    last_modified: &'a str,
}

#[derive(Queryable, Selectable, QueryableByName)]
#[diesel(table_name = groups)]
struct GroupRow {
    id: String,
    resource: String,
    version: i64,
    created: String,
    last_modified: String,
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

fn group_exists(conn: &mut DbConnection, org: OrgId, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        groups::table
            .filter(groups::id.eq(id))
            .filter(groups::org_id.eq(org.0)),
    ))
    .get_result(conn)?)
}

/// `NotFound` or, when a version was expected and the group exists,
/// `PreconditionFailed`: why a guarded write matched no row.
fn missed(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: Option<i64>,
) -> Result<StoreError, StoreError> {
    Ok(
        if expected_version.is_some() && group_exists(conn, org, id)? {
            StoreError::PreconditionFailed
        } else {
            StoreError::NotFound
        },
    )
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
    org: OrgId,
    attrs: &Map<String, Value>,
    members: &[MemberRef],
) -> Result<GroupRecord, StoreError> {
    let d = derive(attrs)?;
    let id = crate::scim::new_resource_id();
    let now = scim_core::datetime::now();
    diesel::insert_into(groups::table)
        .values(NewGroupRow {
            org_id: org.0,
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
    add_members(conn, org, &id, members)?;
    Ok(GroupRecord {
        id,
        attrs: d.attrs,
        version: 1,
        created: now.clone(),
        last_modified: now,
    })
}

/// The organization's Group with this id, if any. Reads only `groups`,
/// never its members.
pub fn find_group(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
) -> Result<Option<GroupRecord>, StoreError> {
    let row: Option<GroupRow> = groups::table
        .filter(groups::id.eq(id))
        .filter(groups::org_id.eq(org.0))
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
pub fn lock_group(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
) -> Result<Option<GroupRecord>, StoreError> {
    match conn {
        DbConnection::Postgres(pg) => {
            let row: Option<GroupRow> = groups::table
                .filter(groups::id.eq(id))
                .filter(groups::org_id.eq(org.0))
                .select(GroupRow::as_select())
                .for_no_key_update()
                .first(pg)
                .optional()?;
            row.map(to_record).transpose()
        }
        DbConnection::Sqlite(_) => find_group(conn, org, id),
    }
}

/// Replaces a Group's attributes (not its members) if its version is still
/// `expected_version` (RFC 7644 §3.14): bumps the version and lastModified.
/// A missing group is `NotFound`, a changed one `PreconditionFailed`, a
/// displayName taken by another group `Conflict`.
pub fn update_group(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: i64,
    attrs: &Map<String, Value>,
) -> Result<GroupRecord, StoreError> {
    let d = derive(attrs)?;
    let now = scim_core::datetime::now();
    let version = expected_version.saturating_add(1);
    // The store's own SQL, kept prepared (diesel never caches an UPDATE of
    // its query builder), returning `created` in the same statement.
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("UPDATE groups SET display_name = ")
        .bind_text(d.display_name.clone())
        .push(", display_name_ci = ")
        .bind_text(d.display_name_ci.clone())
        .push(", external_id = ")
        .bind(Bind::NullableText(d.external_id.clone()))
        .push(", resource = ")
        .bind_text(d.resource.clone())
        .push(", version = ")
        .bind(Bind::BigInt(version))
        .push(", last_modified = ")
        .bind_text(now.clone())
        .push(" WHERE id = ")
        .bind_text(id)
        .push(" AND org_id = ")
        .bind(Bind::Integer(org.0))
        .push(" AND version = ")
        .bind(Bind::BigInt(expected_version))
        .push(" RETURNING created");
    let created = load::<CreatedRow>(conn, &b).map_err(|e| {
        if is_unique_violation(&e) {
            display_name_taken(&d.display_name)
        } else {
            e.into()
        }
    })?;
    let Some(CreatedRow { created }) = created.into_iter().next() else {
        return Err(missed(conn, org, id, Some(expected_version))?);
    };
    Ok(GroupRecord {
        id: id.to_owned(),
        attrs: d.attrs,
        version,
        created,
        last_modified: now,
    })
}

#[derive(QueryableByName)]
struct CreatedRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    created: String,
}

/// Bumps a Group's version and lastModified after a membership change
/// (its `members` changed, so its ETag must, RFC 7644 §3.14), and returns
/// the group. With `expected_version`, only if the version still matches
/// (`PreconditionFailed` otherwise); a missing group is `NotFound`.
///
/// One UPDATE of the group row, whatever the group's size.
pub fn touch_group(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: Option<i64>,
) -> Result<GroupRecord, StoreError> {
    // The store's own SQL, kept prepared (diesel never caches an UPDATE of
    // its query builder), returning the group in the same statement.
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("UPDATE groups SET version = version + 1, last_modified = ")
        .bind_text(scim_core::datetime::now())
        .push(" WHERE id = ")
        .bind_text(id)
        .push(" AND org_id = ")
        .bind(Bind::Integer(org.0));
    if let Some(v) = expected_version {
        b.push(" AND version = ").bind(Bind::BigInt(v));
    }
    b.push(" RETURNING id, resource, version, created, last_modified");
    match load::<GroupRow>(conn, &b)?.into_iter().next() {
        Some(row) => to_record(row),
        None => Err(missed(conn, org, id, expected_version)?),
    }
}

/// Deletes a Group: its member rows go by cascade, and its own membership
/// in other groups is removed, bumping those groups' versions; returns
/// those groups with their new versions. With `expected_version`, only if
/// the version still matches (`PreconditionFailed` otherwise); a missing
/// group is `NotFound`.
pub fn delete_group(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    expected_version: Option<i64>,
) -> Result<Vec<(String, i64)>, StoreError> {
    let of_org = groups::table
        .filter(groups::id.eq(id))
        .filter(groups::org_id.eq(org.0));
    let deleted = match expected_version {
        Some(v) => diesel::delete(of_org.filter(groups::version.eq(v))).execute(conn)?,
        None => diesel::delete(of_org).execute(conn)?,
    };
    if deleted == 0 {
        return Err(missed(conn, org, id, expected_version)?);
    }
    remove_from_all_groups(conn, id)
}

/// A keyset page of Groups matching `query.filter` in `query`'s order,
/// from `seek`, of at most `limit`, without members (RFC 9865 cursors;
/// see [`crate::scim::list::ListKey`]).
pub fn list_groups_keyset(
    conn: &mut DbConnection,
    org: OrgId,
    query: &ListQuery<'_>,
    seek: Seek<'_>,
    limit: i64,
) -> Result<KeysetPage<GroupRecord>, StoreError> {
    let page = list_rows_keyset(conn, Resource::Group(org), query, seek, limit)?;
    let items = page
        .items
        .into_iter()
        .map(|(r, key)| {
            to_record(GroupRow {
                id: r.id,
                resource: r.resource,
                version: r.version,
                created: r.created,
                last_modified: r.last_modified,
            })
            .map(|g| (g, key))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(KeysetPage {
        items,
        more: page.more,
    })
}

/// How many Groups match `filter` (`totalResults` of a keyset page).
pub fn count_matching_groups(
    conn: &mut DbConnection,
    org: OrgId,
    filter: Option<&scim_core::filter::Filter>,
) -> Result<i64, StoreError> {
    crate::scim::list::count_matching(conn, Resource::Group(org), filter)
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
    org: OrgId,
    query: &ListQuery<'_>,
) -> Result<Page<GroupRecord>, StoreError> {
    let page = list_rows(conn, Resource::Group(org), query)?;
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
    use crate::db::connection::{ConnectionManager, Target};
    use crate::scim::members::remove_members;
    use crate::testing::{backends, create_user};
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use serde_json::json;
    use std::collections::HashSet;
    use std::sync::{Arc, Mutex};

    /// The SQL texts a connection started, and those it prepared for its
    /// statement cache.
    #[derive(Default)]
    struct Seen {
        started: Vec<String>,
        cached: HashSet<String>,
    }

    /// A new connection to `url` that records into the returned [`Seen`].
    fn watched(url: &str) -> (DbConnection, Arc<Mutex<Seen>>) {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let sink = Arc::clone(&seen);
        let instrumentation = move |event: InstrumentationEvent<'_>| {
            let mut seen = sink.lock().unwrap();
            match event {
                InstrumentationEvent::StartQuery { query, .. } => {
                    let text = query.to_string();
                    let sql = text.split(" -- binds: ").next().unwrap_or_default();
                    seen.started.push(sql.to_owned());
                }
                InstrumentationEvent::CacheQuery { sql, .. } => {
                    seen.cached.insert(sql.to_owned());
                }
                _ => {}
            }
        };
        let target = Target::parse(url).unwrap();
        let mut conn = ConnectionManager::new(target).establish().unwrap();
        let boxed = Box::new(instrumentation) as Box<dyn Instrumentation>;
        match &mut conn {
            DbConnection::Sqlite(c) => c.set_instrumentation(boxed),
            DbConnection::Postgres(c) => c.set_instrumentation(boxed),
        }
        (conn, seen)
    }

    /// The UPDATEs of a membership change and of a group update (the
    /// writes an identity provider repeats most on groups) are prepared
    /// once per connection and then taken from its cache: none is built
    /// with diesel's UPDATE DSL, which diesel never caches.
    #[test]
    fn group_writes_reuse_their_prepared_statements() {
        for db in backends() {
            let org = OrgId::DEFAULT;
            crate::testing::enable_sync(db.store(), org);
            let user = |name: &str| {
                let attrs = json!({"userName": name}).as_object().unwrap().clone();
                create_user(db.store(), org, attrs).wait().unwrap().id
            };
            let members = [user("ada"), user("grace")];
            let (mut conn, seen) = watched(db.url());
            let attrs = json!({"displayName": "Pilots"})
                .as_object()
                .unwrap()
                .clone();
            let group = insert_group(&mut conn, org, &attrs, &[]).unwrap();
            for round in 0..3 {
                if round == 2 {
                    seen.lock().unwrap().started.clear();
                }
                crate::db::transaction::transaction(&mut conn, |c| {
                    for id in &members {
                        let current = lock_group(c, org, &group.id)?.unwrap();
                        let member = MemberRef {
                            value: id.clone(),
                            member_type: None,
                        };
                        add_members(c, org, &group.id, &[member])?;
                        touch_group(c, org, &group.id, Some(current.version))?;
                        remove_members(c, &group.id, std::slice::from_ref(id))?;
                        touch_group(c, org, &group.id, None)?;
                    }
                    let current = lock_group(c, org, &group.id)?.unwrap();
                    let renamed = json!({"displayName": format!("Pilots {round}")});
                    update_group(
                        c,
                        org,
                        &group.id,
                        current.version,
                        renamed.as_object().unwrap(),
                    )
                })
                .unwrap();
            }
            let seen = seen.lock().unwrap();
            // The UPDATEs: the membership statements' texts follow the
            // request (its number of members), and are cached within the
            // process's budget of such texts (`db/sql.rs`), which other
            // tests of this process share.
            let prepared_again: Vec<&String> = seen
                .started
                .iter()
                .filter(|sql| sql.starts_with("UPDATE") && !seen.cached.contains(*sql))
                .collect();
            assert!(
                seen.started
                    .iter()
                    .any(|sql| sql.starts_with("UPDATE groups")),
                "{}: {:?}",
                db.backend(),
                seen.started
            );
            assert!(
                prepared_again.is_empty(),
                "{}: prepared again: {prepared_again:?}",
                db.backend()
            );
        }
    }

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
}
