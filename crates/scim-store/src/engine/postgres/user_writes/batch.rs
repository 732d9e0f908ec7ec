//! One batch of User writes in one transaction: the creates' INSERT, the
//! edits' locking read and UPDATE, with their `user_values` rows, and the
//! change log rows of them all.

use std::collections::{HashMap, HashSet};

use diesel::pg::PgConnection;
use diesel::sql_types::{BigInt, Bool, Nullable, Text};
use diesel::{QueryableByName, RunQueryDsl};
use serde_json::{Map, Value};

use crate::changes::{record_each, Actor, NewChange};
use crate::db::connection::DbConnection;
use crate::db::gate;
use crate::db::org::OrgId;
use crate::db::transaction::transaction_begun_by;
use crate::engine::edit::EditBy;
use crate::engine::postgres::user_writes::array_query::{
    ArrayBind, ArrayQuery, VALUE_BINDS, VALUE_COLUMNS,
};
use crate::engine::postgres::user_writes::jobs::{EditJob, InsertJob};
use crate::error::StoreError;
use crate::scim::lookup::UserColumns;
use crate::scim::members::user_groups_json_sql;
use crate::scim::recorded::user_created;
use crate::scim::unique::{check_unique, Written};
use crate::scim::user_values::{derive_values, diff_values, UserValueRow};
use crate::scim::users::{derive, serialize, user_name_taken, PasswordChange, UserRecord};

/// How a batch transaction begins: its statements use generic plans.
/// Their texts are fixed, but PostgreSQL's plan cache would plan the
/// array-driven ones anew for every execution (a custom plan looks
/// cheaper once it knows the arrays' lengths), a large share of its CPU
/// under a PATCH load (docs/BENCHMARKS.md).
/// `SET LOCAL` ends with the transaction, so other statements on the
/// pooled connection keep the default.
const BATCH_BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// Runs a batch in one transaction. If that fails, each of its writes
/// runs again as a batch of its own, so that one write's failure (a
/// conflict, a closed gate) is its answer alone; a batch of one that
/// fails answers its write with the error.
pub(crate) fn run(
    conn: &mut DbConnection,
    org: OrgId,
    inserts: &mut [InsertJob],
    edits: &mut [Box<dyn EditJob>],
) {
    // The edits' closures run inside, each under `queue::catch`.
    let begun = std::time::Instant::now();
    let together = transaction_begun_by(conn, BATCH_BEGIN, |conn| {
        write_batch(conn, org, inserts, edits)
    });
    let size = inserts.len() + edits.len();
    metrics::histogram!("scimd_store_write_batch_seconds", "backend" => "postgres")
        .record(begun.elapsed());
    metrics::histogram!("scimd_store_write_batch_size", "backend" => "postgres")
        .record(size as f64);
    match together {
        Ok(stored) => {
            for (i, rec) in stored {
                edits[i].stored(rec);
            }
        }
        Err(e) if size == 1 => {
            for j in inserts.iter_mut() {
                j.result = Some(Err(e.clone()));
            }
            for j in edits.iter_mut() {
                j.force(e.clone());
            }
        }
        Err(e) => {
            tracing::debug!(error = %e, "a user write batch failed; running its writes one by one");
            for i in 0..inserts.len() {
                run(conn, org, &mut inserts[i..=i], &mut []);
            }
            for i in 0..edits.len() {
                run(conn, org, &mut [], &mut edits[i..=i]);
            }
        }
    }
}

/// A create's `users` row, with its index rows.
struct NewUser {
    job: usize,
    record: UserRecord,
    user_name: String,
    user_name_ci: String,
    external_id: Option<String>,
    display_name: Option<String>,
    display_name_ci: Option<String>,
    active: bool,
    resource: String,
}

/// The body of a batch transaction; returns the edits' stored records
/// (by index into `edits`). The creates' answers are set on their jobs.
///
/// The User Synchronization gate rides in the batch's first statement
/// (the INSERT of the creates, else the locking read of the edits), so
/// it costs no round trip of its own; a batch that runs neither (every
/// create invalid) asks it alone. A closed gate fails the batch, and each
/// write then gets the refusal from running alone.
///
/// Last, the change log rows of every create and edit stored, each by its
/// own request's actor, in one multi-row `INSERT` (`changes::record_each`:
/// the last write of the transaction, after every row lock was taken).
fn write_batch(
    conn: &mut DbConnection,
    org: OrgId,
    inserts: &mut [InsertJob],
    edits: &mut [Box<dyn EditJob>],
) -> Result<Vec<(usize, UserRecord)>, StoreError> {
    let (stored, before, edit_changes, gated) = {
        let DbConnection::Postgres(pg) = &mut *conn else {
            return Err(StoreError::Internal(
                "user write batches are for PostgreSQL".to_owned(),
            ));
        };
        let inserted = insert_users(pg, org, inserts)?;
        let edited = update_users(pg, org, edits)?;
        (
            edited.stored,
            edited.before,
            edited.changes,
            inserted || edited.gated,
        )
    };
    if !gated {
        crate::admin::sync::scim_gate(conn, org)?;
    }
    // Every write of the batch is written: two of them sharing a unique
    // value find each other, and the batch then runs each on its own. An
    // edit is not refused a value its user already held.
    let written: Vec<Written<'_>> = inserts
        .iter()
        .filter_map(|j| match &j.result {
            Some(Ok(rec)) => Some((rec.id.as_str(), &rec.attrs, None)),
            _ => None,
        })
        .chain(
            before
                .iter()
                .zip(&stored)
                .map(|(before, (_, rec))| (rec.id.as_str(), &rec.attrs, Some(before))),
        )
        .collect();
    check_unique(conn, org, &written)?;
    let mut changes: Vec<(&Actor, NewChange)> = Vec::new();
    for job in inserts.iter() {
        if let Some(Ok(rec)) = &job.result {
            for change in user_created(rec)? {
                changes.push((&job.actor, change));
            }
        }
    }
    let each: Vec<(&Actor, &NewChange)> = changes
        .iter()
        .map(|(a, c)| (*a, c))
        .chain(edit_changes.iter().map(|(by, c)| (&by.actor, c)))
        .collect();
    record_each(conn, &scim_core::datetime::now(), &each)?;
    Ok(stored)
}

#[derive(QueryableByName)]
struct GatedIdRow {
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(sql_type = Nullable<Text>)]
    id: Option<String>,
}

/// The creates' part of a batch, in one statement: the gate, the `users`
/// rows, and the `user_values` rows of those inserted. Returns whether it
/// ran (and so checked the gate).
fn insert_users(
    pg: &mut PgConnection,
    org: OrgId,
    inserts: &mut [InsertJob],
) -> Result<bool, StoreError> {
    let mut rows = Vec::with_capacity(inserts.len());
    for (i, job) in inserts.iter_mut().enumerate() {
        // What a failed batch had answered it is void.
        job.result = None;
        let prepared = derive(&job.attrs).and_then(|d| {
            let id = crate::scim::new_resource_id();
            let now = scim_core::datetime::now();
            Ok(NewUser {
                job: i,
                record: UserRecord {
                    id,
                    attrs: Map::new(),
                    version: 1,
                    created: now.clone(),
                    last_modified: now,
                },
                user_name: d.user_name.to_owned(),
                user_name_ci: d.user_name_ci,
                external_id: d.external_id.map(str::to_owned),
                display_name: d.display_name.map(str::to_owned),
                display_name_ci: d.display_name_ci,
                active: d.active,
                resource: serialize(&job.attrs)?,
            })
        });
        match prepared {
            Ok(row) => rows.push(row),
            Err(e) => job.result = Some(Err(e)),
        }
    }
    if rows.is_empty() {
        return Ok(false);
    }
    // In userName order, so that two batches creating the same names wait
    // for each other in one order and cannot deadlock.
    rows.sort_by(|a, b| a.user_name_ci.cmp(&b.user_name_ci));
    // Every create's index rows are bound; only those of the users
    // actually inserted (`ins`) are written.
    let values: Vec<UserValueRow> = rows
        .iter()
        .flat_map(|r| derive_values(&r.record.id, &inserts[r.job].attrs))
        .collect();
    let values_cte = if values.is_empty() {
        String::new()
    } else {
        format!(
            ", v AS (INSERT INTO user_values (org_id, {VALUE_COLUMNS}) SELECT ?, t.* \
             FROM unnest({VALUE_BINDS}) AS t({VALUE_COLUMNS}) \
             WHERE t.user_id IN (SELECT ins.id FROM ins))"
        )
    };
    let sql = format!(
        "WITH {gate_cte}, ins AS (INSERT INTO users (org_id, id, user_name, user_name_ci, \
         external_id, display_name_ci, display_name, active, resource, password_hash, version, \
         created, last_modified) \
         SELECT ?, t.id, t.user_name, t.user_name_ci, t.external_id, t.display_name_ci, \
         t.display_name, t.active, t.resource, t.password_hash, 1, t.created, t.created \
         FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AS t(id, user_name, user_name_ci, \
         external_id, display_name_ci, display_name, active, resource, password_hash, created) \
         WHERE (SELECT g.enabled FROM g) \
         ON CONFLICT DO NOTHING RETURNING id){values_cte} \
         SELECT g.enabled AS enabled, ins.id AS id FROM g LEFT JOIN ins ON true",
        gate_cte = gate::CTE
    );
    let mut query = ArrayQuery::new(&sql)
        .bind(ArrayBind::ScalarInteger(org.0))
        .bind(ArrayBind::ScalarInteger(org.0))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.record.id.clone()).collect(),
        ))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.user_name.clone()).collect(),
        ))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.user_name_ci.clone()).collect(),
        ))
        .bind(ArrayBind::NullableText(
            rows.iter().map(|r| r.external_id.clone()).collect(),
        ))
        .bind(ArrayBind::NullableText(
            rows.iter().map(|r| r.display_name_ci.clone()).collect(),
        ))
        .bind(ArrayBind::NullableText(
            rows.iter().map(|r| r.display_name.clone()).collect(),
        ))
        .bind(ArrayBind::Bool(rows.iter().map(|r| r.active).collect()))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.resource.clone()).collect(),
        ))
        .bind(ArrayBind::NullableText(
            rows.iter()
                .map(|r| inserts[r.job].password_hash.clone())
                .collect(),
        ))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.record.created.clone()).collect(),
        ));
    if !values.is_empty() {
        query = query
            .bind(ArrayBind::ScalarInteger(org.0))
            .bind_values(&values);
    }
    let answer = query.load::<GatedIdRow>(pg)?;
    gate::passed(answer.first(), |r| r.enabled)?;
    let inserted: HashSet<String> = answer.into_iter().filter_map(|r| r.id).collect();
    for row in rows {
        let job = &mut inserts[row.job];
        if inserted.contains(&row.record.id) {
            let mut record = row.record;
            record.attrs = job.attrs.clone();
            job.result = Some(Ok(record));
        } else {
            job.result = Some(Err(user_name_taken(&row.user_name)));
        }
    }
    Ok(true)
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// A row of the edits' locking read: the gate, and one locked user (none
/// when no user matched).
#[derive(QueryableByName)]
struct LockedRow {
    #[diesel(sql_type = Bool)]
    enabled: bool,
    #[diesel(embed)]
    user: UserColumns,
}

/// What the edits' part of a batch did.
struct Edited {
    /// The stored records, by index into the edits.
    stored: Vec<(usize, UserRecord)>,
    /// The attributes each of them held before, in the same order.
    before: Vec<Map<String, Value>>,
    /// Their change log rows, with who made each.
    changes: Vec<(EditBy, NewChange)>,
    /// Whether it read (and so checked) the gate.
    gated: bool,
}

/// The edits' part of a batch: one statement reads the gate and locks and
/// reads their users; each edit decides in memory; one more statement
/// writes those that store (`users` and their `user_values` rows).
fn update_users(
    pg: &mut PgConnection,
    org: OrgId,
    edits: &mut [Box<dyn EditJob>],
) -> Result<Edited, StoreError> {
    if edits.is_empty() {
        return Ok(Edited {
            stored: Vec::new(),
            before: Vec::new(),
            changes: Vec::new(),
            gated: false,
        });
    }
    let with_groups = edits.iter().any(|e| e.with_groups());
    let ids: Vec<String> = edits.iter().map(|e| e.id().to_owned()).collect();
    let groups = if with_groups {
        user_groups_json_sql(crate::db::connection::Backend::Postgres, "u.id")
    } else {
        "CAST(NULL AS TEXT)".to_owned()
    };
    // Row locks in id order: two batches cannot deadlock on them. The
    // gate's one row is joined to the locked users, so it comes back even
    // when no user matched.
    let sql = format!(
        "WITH {gate_cte} \
         SELECT g.enabled AS enabled, l.id AS id, l.resource AS resource, l.version AS version, \
         l.created AS created, l.last_modified AS last_modified, l.groups AS groups \
         FROM g LEFT JOIN (SELECT u.id, u.resource, u.version, u.created, u.last_modified, \
         {groups} AS groups FROM users u WHERE u.org_id = ? AND u.id = ANY(?) AND u.deleted_at IS NULL \
         ORDER BY u.id FOR NO KEY UPDATE OF u) l ON true",
        gate_cte = gate::CTE
    );
    let rows = ArrayQuery::new(&sql)
        .bind(ArrayBind::ScalarInteger(org.0))
        .bind(ArrayBind::ScalarInteger(org.0))
        .bind(ArrayBind::Text(ids))
        .load::<LockedRow>(pg)?;
    gate::passed(rows.first(), |r| r.enabled)?;
    let mut locked: HashMap<String, UserColumns> = rows
        .into_iter()
        .filter_map(|r| Some((r.user.id.clone()?, r.user)))
        .collect();
    let mut pending = Vec::new();
    for (i, edit) in edits.iter_mut().enumerate() {
        let found = match locked.remove(edit.id()) {
            Some(user) => user.found(edit.with_groups())?,
            None => None,
        };
        if let Some(write) = edit.decide(found) {
            pending.push((i, write));
        }
    }
    if pending.is_empty() {
        return Ok(Edited {
            stored: Vec::new(),
            before: Vec::new(),
            changes: Vec::new(),
            gated: true,
        });
    }
    let now = scim_core::datetime::now();
    let mut cols = UpdateColumns::default();
    for (_, w) in &pending {
        let d = derive(&w.attrs)?;
        cols.id.push(w.current.id.clone());
        cols.expected.push(w.current.version);
        cols.user_name.push(d.user_name.to_owned());
        cols.user_name_ci.push(d.user_name_ci.clone());
        cols.external_id.push(d.external_id.map(str::to_owned));
        cols.display_name_ci.push(d.display_name_ci.clone());
        cols.display_name.push(d.display_name.map(str::to_owned));
        cols.active.push(d.active);
        cols.resource.push(serialize(&w.attrs)?);
        match &w.password {
            PasswordChange::Keep => {
                cols.set_password.push(false);
                cols.password_hash.push(None);
            }
            PasswordChange::Set(hash) => {
                cols.set_password.push(true);
                cols.password_hash.push(Some(hash.clone()));
            }
        }
    }
    let expected = pending.len();
    let mut removed: Vec<UserValueRow> = Vec::new();
    let mut changed: Vec<UserValueRow> = Vec::new();
    let mut added: Vec<UserValueRow> = Vec::new();
    let mut stored = Vec::with_capacity(pending.len());
    let mut before = Vec::with_capacity(pending.len());
    let mut changes = Vec::with_capacity(pending.len());
    for (i, w) in pending {
        let id = &w.current.id;
        let old = derive_values(id, &w.current.attrs);
        let new = derive_values(id, &w.attrs);
        let (gone, differ, fresh) = diff_values(&old, &new);
        removed.extend(gone.into_iter().cloned());
        changed.extend(differ.into_iter().map(|(_, row)| row.clone()));
        added.extend(fresh);
        let rec = UserRecord {
            id: id.clone(),
            attrs: w.attrs,
            version: w.current.version.saturating_add(1),
            created: w.current.created.clone(),
            last_modified: now.clone(),
        };
        for change in w.by.changes(&w.current.attrs, &rec, &w.password)? {
            changes.push((w.by.clone(), change));
        }
        stored.push((i, rec));
        before.push(w.current.attrs);
    }
    // One statement: the `users` UPDATE and, as data-modifying CTEs of
    // it, the `user_values` rows to delete, update and insert (each only
    // when there are some, so at most eight statement texts, each cached).
    // Their keys are disjoint (`diff_values`), so the sub-statements,
    // which see one snapshot, never touch the same row.
    let mut sql = String::from(
        "WITH upd AS (UPDATE users AS u SET resource = t.resource, user_name = t.user_name, \
         user_name_ci = t.user_name_ci, external_id = t.external_id, \
         display_name_ci = t.display_name_ci, display_name = t.display_name, \
         active = t.active, \
         password_hash = CASE WHEN t.set_password THEN t.password_hash ELSE u.password_hash END, \
         version = t.expected + 1, last_modified = ? \
         FROM unnest(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) AS t(id, expected, user_name, \
         user_name_ci, external_id, display_name_ci, display_name, active, resource, \
         set_password, password_hash) \
         WHERE u.id = t.id AND u.version = t.expected AND u.deleted_at IS NULL \
         RETURNING u.id AS id)",
    );
    if !removed.is_empty() {
        sql.push_str(
            ", d AS (DELETE FROM user_values AS v USING unnest(?, ?, ?) AS t(user_id, attr, idx) \
             WHERE v.user_id = t.user_id AND v.attr = t.attr AND v.idx = t.idx)",
        );
    }
    if !changed.is_empty() {
        sql.push_str(&format!(
            ", c AS (UPDATE user_values AS v SET value = t.value, value_ci = t.value_ci, \
             display_ci = t.display_ci, type_ci = t.type_ci, is_primary = t.is_primary, \
             formatted_ci = t.formatted_ci, street_address_ci = t.street_address_ci, \
             locality_ci = t.locality_ci, region_ci = t.region_ci, \
             postal_code_ci = t.postal_code_ci, country_ci = t.country_ci \
             FROM unnest({VALUE_BINDS}) AS t({VALUE_COLUMNS}) \
             WHERE v.user_id = t.user_id AND v.attr = t.attr AND v.idx = t.idx)"
        ));
    }
    if !added.is_empty() {
        sql.push_str(&format!(
            ", i AS (INSERT INTO user_values (org_id, {VALUE_COLUMNS}) \
             SELECT ?, t.* FROM unnest({VALUE_BINDS}) AS t({VALUE_COLUMNS}))"
        ));
    }
    sql.push_str(" SELECT count(*) AS n FROM upd");
    let mut query = ArrayQuery::new(&sql)
        .bind(ArrayBind::ScalarText(now.clone()))
        .bind(ArrayBind::Text(cols.id))
        .bind(ArrayBind::BigInt(cols.expected))
        .bind(ArrayBind::Text(cols.user_name))
        .bind(ArrayBind::Text(cols.user_name_ci))
        .bind(ArrayBind::NullableText(cols.external_id))
        .bind(ArrayBind::NullableText(cols.display_name_ci))
        .bind(ArrayBind::NullableText(cols.display_name))
        .bind(ArrayBind::Bool(cols.active))
        .bind(ArrayBind::Text(cols.resource))
        .bind(ArrayBind::Bool(cols.set_password))
        .bind(ArrayBind::NullableText(cols.password_hash));
    if !removed.is_empty() {
        query = query
            .bind(ArrayBind::Text(
                removed.iter().map(|r| r.user_id.clone()).collect(),
            ))
            .bind(ArrayBind::Text(
                removed.iter().map(|r| r.attr.clone()).collect(),
            ))
            .bind(ArrayBind::Integer(removed.iter().map(|r| r.idx).collect()));
    }
    if !changed.is_empty() {
        query = query.bind_values(&changed);
    }
    if !added.is_empty() {
        query = query
            .bind(ArrayBind::ScalarInteger(org.0))
            .bind_values(&added);
    }
    let updated = query.load::<CountRow>(pg)?.first().map_or(0, |r| r.n);
    if usize::try_from(updated).ok() != Some(expected) {
        // The rows are locked, so this cannot happen; if it does, the
        // batch is rolled back and each edit runs on its own.
        return Err(StoreError::PreconditionFailed);
    }
    Ok(Edited {
        stored,
        before,
        changes,
        gated: true,
    })
}

/// The columns of the batch UPDATE of `users`, one array each.
#[derive(Default)]
struct UpdateColumns {
    id: Vec<String>,
    expected: Vec<i64>,
    user_name: Vec<String>,
    user_name_ci: Vec<String>,
    external_id: Vec<Option<String>>,
    display_name_ci: Vec<Option<String>>,
    display_name: Vec<Option<String>>,
    active: Vec<bool>,
    resource: Vec<String>,
    set_password: Vec<bool>,
    password_hash: Vec<Option<String>>,
}
