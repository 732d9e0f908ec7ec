//! Reads that check the User Synchronization gate in the statement that
//! also reads the data.
//!
//! Every SCIM request first asks the database whether synchronization is
//! enabled (and reads the run-time settings, `admin::sync::scim_gate`), so that
//! an administrator's change takes effect on the next request of every
//! replica. For the reads identity providers repeat most, that check
//! rides along in the same SQL statement instead of costing a statement
//! of its own: `GET /Users/{id}` is one statement (gate, user, and the
//! user's groups) instead of three. On PostgreSQL each statement is a
//! network round trip; on SQLite each is a read transaction of its own.

use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::QueryableByName;

use scim_core::filter::{CompValue, CompareOp, Filter};

use crate::admin::settings::ScimRuntime;
use crate::db::connection::{Backend, DbConnection};
use crate::db::gate;
use crate::db::org::OrgId;
use crate::db::sql::{load, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::CORE_USER_URN;
use crate::scim::members::{parse_user_groups, user_groups_json_sql, GroupRef};
use crate::scim::users::{to_record, UserRecord};

/// What [`find_user_gated`] found: the run-time settings (synchronization
/// is enabled, or it would have failed), and the user with its groups.
#[derive(Debug, Clone, PartialEq)]
pub struct GatedUser {
    /// The run-time settings, read with the gate.
    pub runtime: ScimRuntime,
    /// The user and its direct groups (ordered by displayName,
    /// case-insensitively; empty unless asked for), or `None` if there is
    /// no such (non-deleted) user.
    pub found: Option<(UserRecord, Vec<GroupRef>)>,
}

#[derive(QueryableByName)]
struct Row {
    #[diesel(sql_type = Bool)]
    enabled: bool,
    /// The key the user matched: its id, or its lowercased userName.
    #[diesel(sql_type = Nullable<Text>)]
    matched: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    deprovisioning: Option<String>,
    #[diesel(sql_type = Nullable<Integer>)]
    default_page_size: Option<i32>,
    #[diesel(sql_type = Nullable<Integer>)]
    max_page_size: Option<i32>,
    #[diesel(embed)]
    user: UserColumns,
}

/// A user's columns next to the gate's, all NULL when no user matched
/// (the user is outer-joined to the gate's row): `id`, `resource`,
/// `version`, `created`, `last_modified` and `groups`
/// (`members::user_groups_json_sql`, or NULL when not asked for).
#[derive(QueryableByName, Clone)]
pub(crate) struct UserColumns {
    #[diesel(sql_type = Nullable<Text>)]
    pub(crate) id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    resource: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    version: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    created: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    last_modified: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    groups: Option<String>,
}

impl UserColumns {
    /// The user and, when `with_groups`, its groups; `None` if no user
    /// matched.
    pub(crate) fn found(
        self,
        with_groups: bool,
    ) -> Result<Option<(UserRecord, Vec<GroupRef>)>, StoreError> {
        let (Some(id), Some(resource), Some(version), Some(created), Some(last_modified)) = (
            self.id,
            self.resource,
            self.version,
            self.created,
            self.last_modified,
        ) else {
            return Ok(None);
        };
        let rec = to_record(id, &resource, version, created, last_modified)?;
        let groups = match (self.groups, with_groups) {
            (Some(json), true) => parse_user_groups(&json)?,
            _ => Vec::new(),
        };
        Ok(Some((rec, groups)))
    }
}

/// The gate and `GET /Users/{id}` in one statement: fails with
/// `StoreError::SyncDisabled` while synchronization is disabled, else
/// returns the settings and the user (with its groups when `with_groups`).
/// The groups come back as one JSON array (`members::user_groups_json_sql`).
pub fn find_user_gated(
    conn: &mut DbConnection,
    org: OrgId,
    id: &str,
    with_groups: bool,
) -> Result<GatedUser, StoreError> {
    find_one(conn, org, LookupBy::Id, id, with_groups)
}

/// The gate and the user whose userName equals `user_name`
/// (case-insensitively, RFC 7643 §4.1.1) in one statement, as
/// [`find_user_gated`]. This is the filter `userName eq "…"` that identity
/// providers send to match a user before every create and on Test
/// Connection; userName being unique, it finds at most one user.
#[cfg(any(test, feature = "testing"))]
pub fn find_user_by_name_gated(
    conn: &mut DbConnection,
    org: OrgId,
    user_name: &str,
    with_groups: bool,
) -> Result<GatedUser, StoreError> {
    find_one(conn, org, LookupBy::UserName, user_name, with_groups)
}

/// The userName of a filter that is exactly `userName eq "…"` (any case
/// of the attribute name, optionally qualified with the core User URN):
/// the filter [`find_user_by_name_gated`] answers. It compares as the
/// general filter does (userName is not caseExact).
pub fn user_name_equality(filter: &Filter) -> Option<&str> {
    match filter {
        Filter::Compare(path, CompareOp::Eq, CompValue::String(name))
            if path.attr.eq_ignore_ascii_case("userName")
                && path.sub_attr.is_none()
                && path
                    .urn
                    .as_deref()
                    .is_none_or(|urn| urn.eq_ignore_ascii_case(CORE_USER_URN)) =>
        {
            Some(name)
        }
        _ => None,
    }
}

/// What a gated lookup finds users by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LookupBy {
    /// The user's id.
    Id,
    /// The user's userName, case-insensitively.
    UserName,
}

/// The most keys one statement of [`find_users_gated`] looks up.
pub(crate) const MAX_LOOKUP_KEYS: usize = 32;

/// What [`find_users_gated`] found: the run-time settings, and the users
/// found, each with the key it matched (its id, or its lowercased
/// userName, as [`lookup_key`] gives it).
pub(crate) struct GatedUsers {
    pub(crate) runtime: ScimRuntime,
    pub(crate) found: Vec<(String, UserColumns)>,
}

/// `key` as [`find_users_gated`] matches it: a userName lowercased, as
/// every write lowercases the column its unique index is on
/// (`users::derive`).
pub(crate) fn lookup_key(by: LookupBy, key: &str) -> String {
    match by {
        LookupBy::Id => key.to_owned(),
        LookupBy::UserName => key.to_lowercase(),
    }
}

fn find_one(
    conn: &mut DbConnection,
    org: OrgId,
    by: LookupBy,
    key: &str,
    with_groups: bool,
) -> Result<GatedUser, StoreError> {
    let key = lookup_key(by, key);
    let GatedUsers { runtime, found } =
        find_users_gated(conn, org, by, std::slice::from_ref(&key), with_groups)?;
    let found = match found.into_iter().next() {
        Some((_, user)) => user.found(with_groups)?,
        None => None,
    };
    Ok(GatedUser { runtime, found })
}

/// The gate and the users of `keys` (at most [`MAX_LOOKUP_KEYS`], each as
/// [`lookup_key`] gives it) in one statement: fails with
/// `StoreError::SyncDisabled` while synchronization is disabled. The
/// reader threads answer several queued `GET /Users/{id}` (or
/// `userName eq`) requests with one of these (`engine/reader.rs`): one round
/// trip, one executor start-up and one gate check for all of them.
///
/// The key list is padded (repeating its last key) to a power of two, so
/// that there are few statement texts to prepare and cache, and each one's
/// generic plan expects as many keys as it gets. (With the keys as one
/// array parameter, `unnest($array)`, the generic plan expects 10 whatever
/// the array holds, and PostgreSQL re-plans the statement on every
/// execution; docs/BENCHMARKS.md.)
pub(crate) fn find_users_gated(
    conn: &mut DbConnection,
    org: OrgId,
    by: LookupBy,
    keys: &[String],
    with_groups: bool,
) -> Result<GatedUsers, StoreError> {
    if keys.is_empty() {
        return Err(StoreError::Internal("a lookup of no users".to_owned()));
    }
    if keys.len() > MAX_LOOKUP_KEYS {
        return Err(StoreError::Internal(format!(
            "a lookup of {} users (at most {MAX_LOOKUP_KEYS})",
            keys.len()
        )));
    }
    let mut b = SqlBuilder::fixed(conn.backend());
    push_lookup(&mut b, org, by, keys, with_groups);
    let rows: Vec<Row> = load(conn, &b)?;
    let first = gate::passed(rows.first(), |row| row.enabled)?;
    let runtime = ScimRuntime::from_stored(
        org,
        first.deprovisioning.as_deref(),
        first.default_page_size,
        first.max_page_size,
    )?;
    let found = rows
        .into_iter()
        .filter_map(|row| row.matched.map(|key| (key, row.user)))
        .collect();
    Ok(GatedUsers { runtime, found })
}

/// The statement of [`find_users_gated`] (`keys` not empty).
fn push_lookup(b: &mut SqlBuilder, org: OrgId, by: LookupBy, keys: &[String], with_groups: bool) {
    let backend = b.backend();
    let Some(last) = keys.last() else {
        return;
    };
    b.push("SELECT ").push(gate::COLUMNS).push(
        ", u.id AS id, u.resource AS resource, u.version AS version, u.created AS created, \
         u.last_modified AS last_modified, ",
    );
    if with_groups {
        b.push(&user_groups_json_sql(backend, "u.id"));
    } else {
        b.push("CAST(NULL AS TEXT)");
    }
    // The column the key is on: the primary key, or the lowercased
    // userName the unique index is on.
    let column = match by {
        LookupBy::Id => "u.id",
        LookupBy::UserName => "u.user_name_ci",
    };
    b.push(" AS groups, ")
        .push(column)
        .push(" AS matched FROM ")
        .push(gate::FROM)
        // The user is the organization's; by id, the organization is
        // checked but not used to find the row (`+`: SQLite would
        // otherwise read the organization's users through an index
        // leading with `org_id` when many ids are asked at once, instead
        // of the primary key; PostgreSQL plans both the same).
        .push(match by {
            LookupBy::Id => " LEFT JOIN users u ON +u.org_id = s.id AND ",
            LookupBy::UserName => " LEFT JOIN users u ON u.org_id = s.id AND ",
        });
    let padded = keys
        .iter()
        .chain(std::iter::repeat(last))
        .take(keys.len().next_power_of_two());
    // On PostgreSQL the userName index is on md5(user_name_ci) (a B-tree
    // entry cannot hold a long userName): the hashes find the rows through
    // it, the values make the match exact (`SqlBuilder::push_hashed_eq`).
    if by == LookupBy::UserName && backend == Backend::Postgres {
        b.push("md5(").push(column).push(") IN (");
        for (i, key) in padded.clone().enumerate() {
            if i > 0 {
                b.push(", ");
            }
            b.push("md5(").bind_text(key.as_str()).push(")");
        }
        b.push(") AND ");
    }
    b.push(column).push(" IN (");
    for (i, key) in padded.enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.bind_text(key.as_str());
    }
    b.push(") AND u.deleted_at IS NULL WHERE ");
    gate::push_where(b, org);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;
    use crate::{scim::members::MemberRef, scim::members::MemberType};
    use serde_json::json;

    fn names(groups: &[GroupRef]) -> Vec<&str> {
        groups.iter().map(|g| g.display.as_str()).collect()
    }

    #[derive(diesel::QueryableByName)]
    struct Plans {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        generic_plans: i64,
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        custom_plans: i64,
    }

    /// A batch of userName lookups keeps one plan: on PostgreSQL the
    /// prepared statement's generic plan is used once it has been planned
    /// 5 times. That needs statistics on `md5(user_name_ci)` (the userName
    /// index is partial, so its expression gets none of its own): without
    /// them the planner expected 0.5% of the users per key, costed the
    /// generic plan above the custom ones, and planned the statement again
    /// at every execution (migration 20261208000010_user_name_statistics).
    #[test]
    fn a_batch_of_user_names_keeps_its_plan() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            if backend == Backend::Postgres {
                // A fresh install's empty table is left unanalyzed (the
                // migration's comment says why): never analyzed is -1.
                #[derive(diesel::QueryableByName)]
                struct Tuples {
                    #[diesel(sql_type = diesel::sql_types::Float)]
                    reltuples: f32,
                }
                let tuples = store
                    .read(|c| {
                        use diesel::RunQueryDsl;
                        let rows: Vec<Tuples> = diesel::sql_query(
                            "SELECT reltuples FROM pg_class WHERE relname = 'users'",
                        )
                        .load(c)?;
                        Ok(rows.first().map(|r| r.reltuples))
                    })
                    .unwrap();
                assert_eq!(
                    tuples,
                    Some(-1.0),
                    "{backend}: the empty users table was analyzed"
                );
            }
            // Enough users for the estimates to matter, written directly.
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) \
                 INSERT INTO users (id, user_name, user_name_ci, active, resource, version, \
                 created, last_modified) \
                 SELECT 'u' || i, 'Person' || i, 'person' || i, TRUE, \
                 '{\"userName\":\"Person' || i || '\"}', 1, '2026-01-01T00:00:00Z', \
                 '2026-01-01T00:00:00Z' FROM n",
            );
            let keys: Vec<String> = (0..32).map(|i| format!("person{}", 1 + i * 600)).collect();
            let plans = store
                .write(|c| {
                    crate::admin::sync::enable_sync(c, OrgId::DEFAULT, "test", &[])?;
                    Ok(())
                })
                .and_then(|()| {
                    store.read(|c| {
                        if backend == Backend::Postgres {
                            diesel::connection::SimpleConnection::batch_execute(
                                c,
                                "ANALYZE users",
                            )?;
                        }
                        for _ in 0..10 {
                            let found = find_users_gated(
                                c,
                                OrgId::DEFAULT,
                                LookupBy::UserName,
                                &keys,
                                true,
                            )?;
                            assert_eq!(found.found.len(), 32, "{backend}");
                        }
                        if backend == Backend::Sqlite {
                            return Ok(None);
                        }
                        use diesel::RunQueryDsl;
                        let rows: Vec<Plans> = diesel::sql_query(
                            "SELECT generic_plans, custom_plans FROM pg_prepared_statements \
                             WHERE statement LIKE '%md5(u.user_name_ci) IN%'",
                        )
                        .load(c)?;
                        Ok(rows
                            .into_iter()
                            .next()
                            .map(|p| (p.generic_plans, p.custom_plans)))
                    })
                })
                .unwrap();
            if backend == Backend::Postgres {
                let (generic, custom) = plans.expect("the lookup is a prepared statement");
                // The first 5 executions are planned for their values; the
                // generic plan then serves the rest.
                assert!(
                    generic >= 4 && custom <= 6,
                    "{backend}: planned again at every execution: {generic} generic, {custom} custom plans"
                );
            }
        }
    }

    #[test]
    fn one_statement_reads_the_gate_the_user_and_its_groups() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            let (user, lonely) = store
                .write(|c| {
                    let u = crate::scim::users::insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        json!({"userName": "a"}).as_object().unwrap(),
                        None,
                    )?;
                    let l = crate::scim::users::insert_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        json!({"userName": "b"}).as_object().unwrap(),
                        None,
                    )?;
                    let member = [MemberRef {
                        value: u.id.clone(),
                        member_type: Some(MemberType::User),
                    }];
                    for name in ["beta", "Alpha", "gamma"] {
                        crate::scim::groups::insert_group(
                            c,
                            crate::db::org::OrgId::DEFAULT,
                            json!({"displayName": name}).as_object().unwrap(),
                            &member,
                        )?;
                    }
                    Ok((u, l))
                })
                .unwrap();

            // Disabled (a fresh database): refused, whatever the id.
            for id in [user.id.as_str(), "no-such-id"] {
                let err = store
                    .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, id, true))
                    .unwrap_err();
                assert!(
                    crate::admin::sync::is_sync_disabled(&err),
                    "{backend}: {err:?}"
                );
            }

            store
                .write(|c| {
                    crate::admin::sync::enable_sync(c, crate::db::org::OrgId::DEFAULT, "test", &[])
                        .map(|_| ())
                })
                .unwrap();
            let got = store
                .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, &user.id, true))
                .unwrap();
            assert_eq!(
                got.runtime,
                ScimRuntime::from_stored(crate::db::org::OrgId::DEFAULT, None, None, None).unwrap()
            );
            let (rec, groups) = got.found.unwrap();
            assert_eq!(rec, user, "{backend}");
            // Ordered by displayName, case-insensitively.
            assert_eq!(names(&groups), ["Alpha", "beta", "gamma"], "{backend}");
            // Without groups asked for, none are read.
            let (_, groups) = store
                .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, &user.id, false))
                .unwrap()
                .found
                .unwrap();
            assert!(groups.is_empty(), "{backend}");
            // A user in no group; an unknown id; a soft-deleted user.
            let (_, groups) = store
                .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, &lonely.id, true))
                .unwrap()
                .found
                .unwrap();
            assert!(groups.is_empty(), "{backend}");
            let got = store
                .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, "no-such-id", true))
                .unwrap();
            assert!(got.found.is_none(), "{backend}");
            store
                .write(|c| {
                    crate::scim::users::soft_delete_user(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &lonely.id,
                        None,
                    )
                    .map(|_| ())
                })
                .unwrap();
            let got = store
                .read(|c| find_user_gated(c, crate::db::org::OrgId::DEFAULT, &lonely.id, true))
                .unwrap();
            assert!(got.found.is_none(), "{backend}");
        }
    }
}
