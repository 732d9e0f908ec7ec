//! User creates and edits batched into shared transactions on PostgreSQL.
//!
//! An identity provider's provisioning cycle is a stream of small User
//! writes: `POST /Users` and `PATCH /Users/{id}` from many connections at
//! once. One transaction per write costs PostgreSQL five or six statements
//! (BEGIN, the gate, the read, the INSERT or UPDATE of `users`, the
//! `user_values` rows, COMMIT), each a round trip with its own executor
//! start-up and two context switches: that, not the row work, caps
//! PostgreSQL's rate of such creates (docs/BENCHMARKS.md).
//!
//! Here a few batcher threads take the writes queued by request handlers
//! ([`crate::engine::Store::queue_insert_user`], [`crate::engine::Store::queue_user_edit`])
//! and run every write that is waiting in ONE transaction, with one
//! statement per step for the whole batch, whatever its size:
//!
//! 1. the creates, in one statement: the User Synchronization gate, then
//!    `INSERT INTO users … SELECT FROM unnest(…) ON CONFLICT DO NOTHING
//!    RETURNING id` (a userName taken, by another transaction or by an
//!    earlier create of the same batch, returns no id and answers 409,
//!    exactly as a lone insert's unique violation would), and, as a
//!    data-modifying CTE, the `user_values` rows of the users inserted;
//! 2. the users being edited, with their groups when asked, locked
//!    (`FOR NO KEY UPDATE`, in id order so that two batches cannot
//!    deadlock), with the gate in the same statement; each edit's closure
//!    then decides on its user in memory;
//! 3. one `UPDATE users … FROM unnest(…)` for every edit that writes,
//!    with the `user_values` rows to delete, update and insert as
//!    data-modifying CTEs of the same statement;
//! 4. the change log rows of every write that stored, in one multi-row
//!    `INSERT` (`changes::record_each`, the last write of the transaction,
//!    which takes the change log's lock just before the commit);
//! 5. COMMIT, after which every write is answered.
//!
//! So a batch of edits is five round trips (BEGIN, the read, the write,
//! the change log's rows with its lock, COMMIT), and a batch of creates
//! four, where one transaction per write took six or seven each.
//!
//! The statement texts are fixed (arrays are bound, not rows), so each is
//! one cached prepared statement.
//!
//! A write the batch cannot take as planned (a database error anywhere,
//! such as an edit renaming a user to a taken userName, which aborts the
//! whole statement) rolls the batch back, and then every write of the
//! batch runs alone in a transaction of its own, as it would without
//! batching, so each gets exactly its own answer. That is also why an
//! edit's closure is `Fn`: it may be asked twice.
//!
//! Every write is answered only after the transaction holding it has
//! committed, and holds its own result; a batch is a commit unit, not a
//! semantic one.

use std::collections::{HashMap, HashSet};

use diesel::pg::{Pg, PgConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Untyped};
use diesel::{QueryResult, QueryableByName, RunQueryDsl};
use serde_json::{Map, Value};
use tokio::sync::oneshot;

use crate::changes::{record, record_each, Actor, NewChange};
use crate::db::connection::{ConnectionManager, DbConnection};
use crate::db::gate;
use crate::db::org::OrgId;
use crate::db::transaction::{transaction, transaction_begun_by};
use crate::engine::edit::{Edit, EditBy, Found};
use crate::engine::queue::{catch, Behind, Workers};
use crate::engine::user_hints::UserHints;
use crate::error::StoreError;
use crate::scim::lookup::{find_user_gated, UserColumns};
use crate::scim::members::user_groups_json_sql;
use crate::scim::recorded::user_created;
use crate::scim::unique::{check_unique, Written};
use crate::scim::user_values::{derive_values, diff_values, UserValueRow};
use crate::scim::users::{
    derive, insert_user, serialize, update_user_from, user_name_taken, PasswordChange, UserRecord,
};

type Pool = r2d2::Pool<ConnectionManager>;

/// The most writes one batch takes. Under load a batch holds what queued
/// while the previous one ran (with 16 clients, up to 16); the cap only
/// bounds the locks one transaction holds.
pub(crate) const MAX_BATCH: usize = 64;

/// Batcher threads. Two let one batch build while the other waits for its
/// COMMIT to reach the disk; more only split the queue into smaller
/// batches (docs/BENCHMARKS.md).
pub(crate) const BATCHERS: usize = 2;

/// How a batch transaction begins: its statements use generic plans.
/// Their texts are fixed, but PostgreSQL's plan cache would plan the
/// array-driven ones anew for every execution (a custom plan looks
/// cheaper once it knows the arrays' lengths), a large share of its CPU
/// under a PATCH load (docs/BENCHMARKS.md).
/// `SET LOCAL` ends with the transaction, so other statements on the
/// pooled connection keep the default.
const BATCH_BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_generic_plan";

/// An edit's write, as the batch needs it.
struct PendingWrite {
    current: UserRecord,
    attrs: Map<String, Value>,
    password: PasswordChange,
    /// Who, and which event, for the change log.
    by: EditBy,
}

/// An edit whose answer type has been erased, so that edits of different
/// handlers share a batch.
trait EditJob: Send {
    fn id(&self) -> &str;
    /// The organization the edit acts in (its actor's).
    fn org(&self) -> OrgId;
    fn with_groups(&self) -> bool;
    /// Runs the edit's closure on `found`: `Some` when it writes (the
    /// answer then waits for [`EditJob::stored`]), `None` when it has
    /// answered.
    fn decide(&mut self, found: Found) -> Option<PendingWrite>;
    /// The write of [`EditJob::decide`] was committed as `rec`.
    fn stored(&mut self, rec: UserRecord);
    /// Runs the whole edit alone, in a transaction of its own.
    fn alone(&mut self, conn: &mut DbConnection);
    /// Answers `e` without running the edit.
    fn force(&mut self, e: StoreError);
    /// Sends the answer (an error if there is none).
    fn answer(self: Box<Self>);
}

struct EditTask<T, F> {
    id: String,
    with_groups: bool,
    by: EditBy,
    f: F,
    then: Option<Box<dyn FnOnce(UserRecord) -> T + Send>>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> EditJob for EditTask<T, F>
where
    T: Send + 'static,
    F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
{
    fn id(&self) -> &str {
        &self.id
    }

    fn org(&self) -> OrgId {
        self.by.actor.org
    }

    fn with_groups(&self) -> bool {
        self.with_groups
    }

    fn decide(&mut self, found: Found) -> Option<PendingWrite> {
        self.then = None;
        match catch("user edit", || (self.f)(found)) {
            Ok(Edit::Answer(t)) => {
                self.result = Some(Ok(t));
                None
            }
            Ok(Edit::Store {
                current,
                attrs,
                password,
                then,
            }) => {
                self.result = None;
                self.then = Some(then);
                Some(PendingWrite {
                    current,
                    attrs,
                    password,
                    by: self.by.clone(),
                })
            }
            Err(e) => {
                self.result = Some(Err(e));
                None
            }
        }
    }

    fn stored(&mut self, rec: UserRecord) {
        self.result = Some(match self.then.take() {
            Some(then) => catch("user edit", || Ok(then(rec))),
            None => Err(StoreError::Internal(
                "a batched edit was stored without being decided".to_owned(),
            )),
        });
    }

    fn alone(&mut self, conn: &mut DbConnection) {
        let (id, with_groups, by, f) = (&self.id, self.with_groups, &self.by, &self.f);
        self.then = None;
        self.result = Some(catch("user edit", || {
            transaction(conn, |conn| edit_alone(conn, id, with_groups, by, f, None))
        }));
    }

    fn force(&mut self, e: StoreError) {
        self.then = None;
        self.result = Some(Err(e));
    }

    fn answer(self: Box<Self>) {
        let result = self.result.unwrap_or_else(|| {
            Err(StoreError::Internal(
                "a batched edit ended without an answer".to_owned(),
            ))
        });
        // The caller may have gone away (a dropped request).
        let _ = self.reply.send(result);
    }
}

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

/// A queued create.
struct InsertJob {
    attrs: Map<String, Value>,
    password_hash: Option<String>,
    actor: Actor,
    result: Option<Result<UserRecord, StoreError>>,
    reply: oneshot::Sender<Result<UserRecord, StoreError>>,
}

impl InsertJob {
    fn alone(&mut self, conn: &mut DbConnection) {
        let (attrs, hash, actor) = (&self.attrs, self.password_hash.as_deref(), &self.actor);
        self.result = Some(transaction(conn, |conn| {
            insert_alone(conn, attrs, hash, actor)
        }));
    }

    fn answer(self) {
        let result = self.result.unwrap_or_else(|| {
            Err(StoreError::Internal(
                "a batched create ended without an answer".to_owned(),
            ))
        });
        let _ = self.reply.send(result);
    }
}

enum Job {
    Insert(Box<InsertJob>),
    Edit(Box<dyn EditJob>),
}

impl Job {
    /// The organization the write acts in.
    fn org(&self) -> OrgId {
        match self {
            Job::Insert(j) => j.actor.org,
            Job::Edit(j) => j.org(),
        }
    }
}

/// The queue in front of the batcher threads. Dropping it closes the
/// queue: the batchers finish what was queued and exit (not joined).
pub(crate) struct UserBatcher {
    jobs: Workers<Job>,
}

impl UserBatcher {
    /// Starts [`BATCHERS`] threads writing through `pool`.
    pub(crate) fn start(pool: Pool) -> Result<UserBatcher, StoreError> {
        let jobs = Workers::start("user-batcher", BATCHERS, |_| {
            let pool = pool.clone();
            move |job, behind: &mut Behind<'_, Job>| serve(&pool, job, behind)
        })?;
        Ok(UserBatcher { jobs })
    }

    /// Queues the creation of a user (behind the gate).
    pub(crate) fn insert(
        &self,
        attrs: Map<String, Value>,
        password_hash: Option<String>,
        actor: Actor,
    ) -> oneshot::Receiver<Result<UserRecord, StoreError>> {
        let (reply, receiver) = oneshot::channel();
        self.submit(Job::Insert(Box::new(InsertJob {
            attrs,
            password_hash,
            actor,
            result: None,
            reply,
        })));
        receiver
    }

    /// Queues an edit of the user `id` (behind the gate).
    pub(crate) fn edit<T, F>(
        &self,
        id: String,
        with_groups: bool,
        by: EditBy,
        f: F,
    ) -> oneshot::Receiver<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(Found) -> Result<Edit<T>, StoreError> + Send + 'static,
    {
        let (reply, receiver) = oneshot::channel();
        self.submit(Job::Edit(Box::new(EditTask {
            id,
            with_groups,
            by,
            f,
            then: None,
            result: None,
            reply,
        })));
        receiver
    }

    fn submit(&self, job: Job) {
        if let Err(job) = self.jobs.push(job) {
            fail_all(
                vec![job],
                &StoreError::Unavailable("the user batcher threads have stopped".to_owned()),
            );
        }
    }
}

fn fail_all(jobs: Vec<Job>, e: &StoreError) {
    for job in jobs {
        match job {
            Job::Insert(mut j) => {
                j.result = Some(Err(e.clone()));
                j.answer();
            }
            Job::Edit(mut j) => {
                j.force(e.clone());
                j.answer();
            }
        }
    }
}

/// A batcher's turn: `first` and every write waiting behind it (at most
/// [`MAX_BATCH`]), run as one batch. At most one edit per user goes in a
/// batch: a second edit of the same user goes in the next batch, run
/// right after, so that it sees the first one's result.
fn serve(pool: &Pool, first: Job, behind: &mut Behind<'_, Job>) {
    let mut jobs = vec![first];
    while !jobs.is_empty() {
        while jobs.len() < MAX_BATCH {
            match behind.next() {
                Some(job) => jobs.push(job),
                None => break,
            }
        }
        let mut inserts = Vec::new();
        let mut edits: Vec<Box<dyn EditJob>> = Vec::new();
        let mut editing = HashSet::new();
        let mut next = Vec::new();
        // A batch is one organization's (its gate is read once): writes of
        // another organization go in the next batch.
        let org = jobs.first().map_or(OrgId::DEFAULT, Job::org);
        for job in jobs {
            match job {
                job if job.org() != org => next.push(job),
                Job::Insert(j) => inserts.push(*j),
                Job::Edit(j) if editing.contains(j.id()) => next.push(Job::Edit(j)),
                Job::Edit(j) => {
                    editing.insert(j.id().to_owned());
                    edits.push(j);
                }
            }
        }
        match pool.get() {
            Ok(mut conn) => run(&mut conn, org, &mut inserts, &mut edits),
            Err(e) => {
                let e = StoreError::from(e);
                for j in &mut inserts {
                    j.result = Some(Err(e.clone()));
                }
                for j in &mut edits {
                    j.force(e.clone());
                }
            }
        }
        for j in inserts {
            j.answer();
        }
        for j in edits {
            j.answer();
        }
        jobs = next;
    }
}

/// Runs a batch: in one transaction, or, if that fails, each write alone.
fn run(
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
        Err(e) => {
            if size > 1 {
                tracing::debug!(error = %e, "a user write batch failed; running its writes alone");
            }
            for j in inserts.iter_mut() {
                j.alone(conn);
            }
            for j in edits.iter_mut() {
                j.alone(conn);
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
    let (stored, edit_changes, gated) = {
        let DbConnection::Postgres(pg) = &mut *conn else {
            return Err(StoreError::Internal(
                "user write batches are for PostgreSQL".to_owned(),
            ));
        };
        let inserted = insert_users(pg, org, inserts)?;
        let edited = update_users(pg, org, edits)?;
        (edited.stored, edited.changes, inserted || edited.gated)
    };
    if !gated {
        crate::admin::sync::scim_gate(conn, org)?;
    }
    // Every write of the batch is written: two of them sharing a unique
    // value find each other, and the batch then runs each alone. Edits
    // are checked here on every value they store, which errs toward
    // running the batch alone, where `edit_alone` knows the values each
    // user held before.
    let written: Vec<Written<'_>> = inserts
        .iter()
        .filter_map(|j| match &j.result {
            Some(Ok(rec)) => Some((rec.id.as_str(), &rec.attrs, None)),
            _ => None,
        })
        .chain(
            stored
                .iter()
                .map(|(_, rec)| (rec.id.as_str(), &rec.attrs, None)),
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
        // batch is rolled back and each edit runs alone.
        return Err(StoreError::PreconditionFailed);
    }
    Ok(Edited {
        stored,
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

/// The columns of `user_values`, in table order.
const VALUE_COLUMNS: &str = "user_id, attr, idx, value, value_ci, display_ci, type_ci, \
     is_primary, formatted_ci, street_address_ci, locality_ci, region_ci, postal_code_ci, \
     country_ci";

/// One array bind per column of [`VALUE_COLUMNS`].
const VALUE_BINDS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

/// A bound parameter of an [`ArrayQuery`]: a PostgreSQL array (one
/// element per row), or one scalar.
enum ArrayBind {
    Text(Vec<String>),
    NullableText(Vec<Option<String>>),
    Integer(Vec<i32>),
    BigInt(Vec<i64>),
    Bool(Vec<bool>),
    NullableBool(Vec<Option<bool>>),
    ScalarText(String),
    ScalarInteger(i32),
}

/// A PostgreSQL statement with fixed text, where each `?` is a bind, run
/// as a cached prepared statement (as `sql::SqlBuilder`'s are: no static
/// query id, and safe to cache, so Diesel keys it by its text).
struct ArrayQuery<'a> {
    sql: &'a str,
    binds: Vec<ArrayBind>,
}

impl<'a> ArrayQuery<'a> {
    fn new(sql: &'a str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    fn bind(mut self, bind: ArrayBind) -> Self {
        self.binds.push(bind);
        self
    }

    /// Binds every column of `rows` as an array, in the order of
    /// [`VALUE_COLUMNS`].
    fn bind_values(self, rows: &[UserValueRow]) -> Self {
        let text = |f: fn(&UserValueRow) -> &Option<String>| {
            ArrayBind::NullableText(rows.iter().map(|r| f(r).clone()).collect())
        };
        self.bind(ArrayBind::Text(
            rows.iter().map(|r| r.user_id.clone()).collect(),
        ))
        .bind(ArrayBind::Text(
            rows.iter().map(|r| r.attr.clone()).collect(),
        ))
        .bind(ArrayBind::Integer(rows.iter().map(|r| r.idx).collect()))
        .bind(text(|r| &r.value))
        .bind(text(|r| &r.value_ci))
        .bind(text(|r| &r.display_ci))
        .bind(text(|r| &r.type_ci))
        .bind(ArrayBind::NullableBool(
            rows.iter().map(|r| r.is_primary).collect(),
        ))
        .bind(text(|r| &r.formatted_ci))
        .bind(text(|r| &r.street_address_ci))
        .bind(text(|r| &r.locality_ci))
        .bind(text(|r| &r.region_ci))
        .bind(text(|r| &r.postal_code_ci))
        .bind(text(|r| &r.country_ci))
    }
}

impl QueryId for ArrayQuery<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ArrayQuery<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for ArrayQuery<'_> {}

impl QueryFragment<Pg> for ArrayQuery<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut parts = self.sql.split('?');
        if let Some(first) = parts.next() {
            out.push_sql(first);
        }
        for (part, bind) in parts.zip(&self.binds) {
            match bind {
                ArrayBind::Text(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                ArrayBind::NullableText(v) => out.push_bind_param::<Array<Nullable<Text>>, _>(v)?,
                ArrayBind::Integer(v) => out.push_bind_param::<Array<Integer>, _>(v)?,
                ArrayBind::BigInt(v) => out.push_bind_param::<Array<BigInt>, _>(v)?,
                ArrayBind::Bool(v) => out.push_bind_param::<Array<Bool>, _>(v)?,
                ArrayBind::NullableBool(v) => out.push_bind_param::<Array<Nullable<Bool>>, _>(v)?,
                ArrayBind::ScalarText(s) => out.push_bind_param::<Text, _>(s)?,
                ArrayBind::ScalarInteger(n) => out.push_bind_param::<Integer, _>(n)?,
            }
            out.push_sql(part);
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use crate::admin::sync::{enable_sync, is_sync_disabled};
    use crate::testing::backends;
    use crate::{engine::Store, scim::users::find_password_hash, scim::users::find_user};
    use serde_json::json;

    /// A PATCH by the command line, as the tests' edits are attributed.
    pub(crate) fn patched_by_test() -> EditBy {
        EditBy {
            actor: Actor::cli("test"),
            event: crate::changes::Event::UserPatched,
        }
    }

    pub(crate) fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    /// Enables User Synchronization.
    pub(crate) fn enable(store: &Store) {
        store
            .write(|c| enable_sync(c, crate::db::org::OrgId::DEFAULT, "test", &[]).map(|_| ()))
            .unwrap();
    }

    fn create(store: &Store, name: &str) -> UserRecord {
        store
            .write(|c| {
                insert_user(
                    c,
                    crate::db::org::OrgId::DEFAULT,
                    &obj(json!({"userName": name})),
                    None,
                )
            })
            .unwrap()
    }

    /// The stored filter index rows of `rec` are exactly those its
    /// attributes derive, and the stored user is `rec`.
    fn assert_stored(store: &Store, rec: &UserRecord) {
        let found = store
            .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &rec.id))
            .unwrap()
            .unwrap();
        assert_eq!(&found, rec);
        let key = |r: &UserValueRow| (r.attr.clone(), r.idx);
        let mut stored = store
            .read(|c| crate::scim::user_values::stored_values(c, &rec.id))
            .unwrap();
        stored.sort_by_key(key);
        let mut want = derive_values(&rec.id, &rec.attrs);
        want.sort_by_key(key);
        assert_eq!(stored, want, "index rows of {}", rec.id);
    }

    /// An edit setting `title` (and, if given, the password).
    fn set_title(
        title: &'static str,
        password: PasswordChange,
    ) -> impl Fn(Found) -> Result<Edit<UserRecord>, StoreError> + Send + 'static {
        move |found| {
            let (current, _) = found.ok_or(StoreError::NotFound)?;
            let mut attrs = current.attrs.clone();
            attrs.insert("title".into(), json!(title));
            Ok(Edit::Store {
                current,
                attrs,
                password: password.clone(),
                then: Box::new(|rec| rec),
            })
        }
    }

    #[test]
    fn creates_queued_together_each_get_their_own_answer_and_a_name_wins_once() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            let refused = store
                .queue_insert_user(obj(json!({"userName": "early"})), None, Actor::cli("test"))
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            // The gate answers before the body is looked at.
            let refused = store
                .queue_insert_user(
                    obj(json!({"displayName": "nameless"})),
                    None,
                    Actor::cli("test"),
                )
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            assert_eq!(
                store.read(crate::scim::users::count_users).unwrap(),
                0,
                "{backend}"
            );
            let refused = store
                .queue_user_edit(
                    "any".into(),
                    false,
                    patched_by_test(),
                    set_title("t", PasswordChange::Keep),
                )
                .wait()
                .unwrap_err();
            assert!(is_sync_disabled(&refused), "{backend}: {refused:?}");
            enable(store);

            // 50 names, each sent 4 times in two cases, queued at once so
            // that they share batches, and one create without a userName.
            let answers: Vec<_> = (0..200)
                .map(|i| {
                    let name = format!("user-{}", i % 50);
                    let name = if i % 2 == 0 {
                        name.to_uppercase()
                    } else {
                        name
                    };
                    let attrs = json!({
                        "userName": name,
                        "name": {"givenName": "G", "familyName": format!("F{i}")},
                        "emails": [{"value": format!("{name}@example.com"), "type": "work"}],
                    });
                    let answer = store.queue_insert_user(
                        obj(attrs),
                        Some(format!("hash-{i}")),
                        Actor::cli("test"),
                    );
                    (i % 50, answer)
                })
                .collect();
            let invalid = store.queue_insert_user(
                obj(json!({"displayName": "nameless"})),
                None,
                Actor::cli("test"),
            );
            let mut won = [0; 50];
            for (k, answer) in answers {
                match answer.wait() {
                    Ok(rec) => {
                        won[k] += 1;
                        assert_eq!(rec.version, 1, "{backend}");
                        assert_stored(store, &rec);
                        let hash = store.read(|c| find_password_hash(c, &rec.id)).unwrap();
                        assert!(hash.unwrap().starts_with("hash-"), "{backend}");
                    }
                    Err(StoreError::Conflict(msg)) => {
                        assert!(msg.contains("already taken"), "{backend}: {msg}");
                    }
                    Err(e) => panic!("{backend}: {e:?}"),
                }
            }
            assert_eq!(won, [1; 50], "{backend}");
            assert!(
                matches!(invalid.wait(), Err(StoreError::Invalid(_))),
                "{backend}"
            );
            assert_eq!(
                store.read(crate::scim::users::count_users).unwrap(),
                50,
                "{backend}"
            );
        }
    }

    #[test]
    fn edits_of_one_user_queued_together_lose_no_update() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let user = create(store, "counted");
            // Each edit increments `title` and rewrites `emails` (0 to 2
            // elements), so the index rows are deleted, updated and
            // inserted along the way.
            let answers: Vec<_> = (0..100)
                .map(|i: usize| {
                    store.queue_user_edit(user.id.clone(), false, patched_by_test(), move |found: Found| {
                        let (current, _) = found.ok_or(StoreError::NotFound)?;
                        let n: u64 = current
                            .attrs
                            .get("title")
                            .and_then(Value::as_str)
                            .and_then(|t| t.parse().ok())
                            .unwrap_or(0);
                        let mut attrs = current.attrs.clone();
                        attrs.insert("title".into(), json!((n + 1).to_string()));
                        let emails: Vec<Value> = (0..i % 3)
                            .map(|k| json!({"value": format!("e{k}-{i}@example.com"), "type": "work"}))
                            .collect();
                        attrs.insert("emails".into(), Value::Array(emails));
                        Ok(Edit::Store {
                            current,
                            attrs,
                            password: PasswordChange::Keep,
                            then: Box::new(|rec| rec),
                        })
                    })
                })
                .collect();
            let mut versions: Vec<i64> = answers
                .into_iter()
                .map(|a| a.wait().unwrap().version)
                .collect();
            versions.sort_unstable();
            assert_eq!(versions, (2..=101).collect::<Vec<_>>(), "{backend}");
            let last = store
                .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &user.id))
                .unwrap()
                .unwrap();
            assert_eq!(last.attrs["title"], json!("100"), "{backend}");
            assert_eq!(last.version, 101, "{backend}");
            assert_stored(store, &last);
        }
    }

    #[test]
    fn a_write_that_fails_in_a_batch_fails_alone() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            create(store, "Taken");
            let renamed = create(store, "renamed");
            let others: Vec<UserRecord> = (0..20)
                .map(|i| create(store, &format!("other-{i}")))
                .collect();
            let grouped = create(store, "grouped");
            store
                .write(|c| {
                    crate::scim::groups::insert_group(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        &obj(json!({"displayName": "Team"})),
                        &[crate::scim::members::MemberRef {
                            value: grouped.id.clone(),
                            member_type: Some(crate::scim::members::MemberType::User),
                        }],
                    )
                })
                .unwrap();

            let mut blocked = Blocked::start(&db);

            // Queued at once: a rename to a taken userName (the batch's
            // UPDATE fails on the unique index), and around it edits and
            // creates that must still apply.
            let rename = store.queue_user_edit(
                renamed.id.clone(),
                false,
                patched_by_test(),
                |found: Found| {
                    let (current, _) = found.ok_or(StoreError::NotFound)?;
                    let mut attrs = current.attrs.clone();
                    attrs.insert("userName".into(), json!("TAKEN"));
                    Ok(Edit::Store {
                        current,
                        attrs,
                        password: PasswordChange::Keep,
                        then: Box::new(|rec| rec),
                    })
                },
            );
            let titles: Vec<_> = others
                .iter()
                .enumerate()
                .map(|(i, u)| {
                    let password = if i == 0 {
                        PasswordChange::Set("new-hash".into())
                    } else {
                        PasswordChange::Keep
                    };
                    store.queue_user_edit(
                        u.id.clone(),
                        false,
                        patched_by_test(),
                        set_title("edited", password),
                    )
                })
                .collect();
            let creates: Vec<_> = (0..10)
                .map(|i| {
                    store.queue_insert_user(
                        obj(json!({"userName": format!("new-{i}")})),
                        None,
                        Actor::cli("test"),
                    )
                })
                .collect();
            let missing = store.queue_user_edit(
                "no-such-id".into(),
                false,
                patched_by_test(),
                set_title("x", PasswordChange::Keep),
            );
            let untouched = store.queue_user_edit(
                others[2].id.clone(),
                false,
                patched_by_test(),
                |found: Found| Ok(Edit::Answer(found.map(|(rec, _)| rec.id))),
            );
            let groups = store.queue_user_edit(
                grouped.id.clone(),
                true,
                patched_by_test(),
                |found: Found| {
                    let (current, groups) = found.ok_or(StoreError::NotFound)?;
                    Ok(Edit::Store {
                        attrs: current.attrs.clone(),
                        current,
                        password: PasswordChange::Keep,
                        then: Box::new(move |_| groups),
                    })
                },
            );

            blocked.release_one();
            assert!(
                matches!(rename.wait(), Err(StoreError::Conflict(_))),
                "{backend}"
            );
            let after = store
                .read(|c| find_user(c, crate::db::org::OrgId::DEFAULT, &renamed.id))
                .unwrap()
                .unwrap();
            assert_eq!(after, renamed, "{backend}: the failed rename wrote nothing");
            for answer in titles {
                let rec = answer.wait().unwrap();
                assert_eq!(rec.attrs["title"], json!("edited"), "{backend}");
                assert_stored(store, &rec);
            }
            for answer in creates {
                assert_stored(store, &answer.wait().unwrap());
            }
            assert!(
                matches!(missing.wait(), Err(StoreError::NotFound)),
                "{backend}"
            );
            assert_eq!(
                untouched.wait().unwrap(),
                Some(others[2].id.clone()),
                "{backend}"
            );
            let groups = groups.wait().unwrap();
            blocked.release_rest();
            assert_eq!(groups.len(), 1, "{backend}");
            assert_eq!(groups[0].display, "Team", "{backend}");
            let hash = |id: &str| store.read(|c| find_password_hash(c, id)).unwrap();
            assert_eq!(
                hash(&others[0].id).as_deref(),
                Some("new-hash"),
                "{backend}"
            );
            assert_eq!(hash(&others[3].id), None, "{backend}");
            if backend == crate::db::connection::Backend::Postgres {
                // The failing rename shared their batch: each ran alone.
                let ids: Vec<&str> = others.iter().map(|u| u.id.as_str()).collect();
                assert_eq!(writers(store, &ids).len(), others.len(), "{backend}");
            }
        }
    }

    /// The transactions that last wrote the `users` rows of `ids`
    /// (PostgreSQL's `xmin`): one per batch that wrote them, one per
    /// write for writes that ran alone.
    fn writers(store: &Store, ids: &[&str]) -> std::collections::HashSet<String> {
        #[derive(diesel::QueryableByName)]
        struct Xmin {
            #[diesel(sql_type = diesel::sql_types::Text)]
            xmin: String,
        }
        store
            .read(|c| {
                let mut b = crate::db::sql::SqlBuilder::new(c.backend());
                b.push("SELECT xmin::text AS xmin FROM users WHERE id IN (");
                for (i, id) in ids.iter().enumerate() {
                    if i > 0 {
                        b.push(", ");
                    }
                    b.bind_text(*id);
                }
                b.push(")");
                Ok(crate::db::sql::load::<Xmin>(c, &b)?)
            })
            .unwrap()
            .into_iter()
            .map(|row| row.xmin)
            .collect()
    }

    /// On PostgreSQL, both batcher threads held up on a row lock each, so
    /// that every write queued until [`Blocked::release_one`] waits in the
    /// queue; the batcher released first then takes them all, in one batch.
    /// Nothing on SQLite.
    type Holder = std::thread::JoinHandle<Result<(), StoreError>>;

    struct Blocked {
        /// One per batcher: the thread holding its row lock, and what lets
        /// that thread commit.
        holders: Vec<(Holder, std::sync::mpsc::Sender<()>)>,
        edits: Vec<crate::engine::Answer<UserRecord>>,
    }

    /// Returns once `n` sessions of this database wait for a row lock
    /// (PostgreSQL says so in `pg_stat_activity`; there is no event to
    /// wait on).
    fn wait_for_lock_waits(store: &Store, n: usize) {
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            waiting: i64,
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let waiting = store
                .read(|c| {
                    let rows: Vec<Waiting> = diesel::sql_query(
                        "SELECT COUNT(*) AS waiting FROM pg_stat_activity \
                         WHERE datname = current_database() AND wait_event_type = 'Lock'",
                    )
                    .load(c)?;
                    Ok(rows.first().map_or(0, |r| r.waiting))
                })
                .unwrap();
            if usize::try_from(waiting).unwrap_or(0) >= n {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no batcher waited on the lock"
            );
            std::thread::yield_now();
        }
    }

    impl Blocked {
        fn start(db: &crate::testing::TestDb) -> Blocked {
            let store = db.store();
            if store.backend() != crate::db::connection::Backend::Postgres {
                return Blocked {
                    holders: Vec::new(),
                    edits: Vec::new(),
                };
            }
            let n = store.read(crate::scim::users::count_users).unwrap();
            let blockers = [
                create(store, &format!("blocker-{n}-0")),
                create(store, &format!("blocker-{n}-1")),
            ];
            // Each row locked by a transaction of its own, on a connection
            // of its own (the store's pool is the batchers'), so that each
            // can be let go alone.
            let target = crate::db::connection::Target::parse(db.url()).unwrap();
            let holders = blockers
                .iter()
                .map(|blocker| {
                    let (locked, wait) = std::sync::mpsc::channel();
                    let (release, released) = std::sync::mpsc::channel::<()>();
                    let mut conn = crate::db::connection::ConnectionManager::new(target.clone())
                        .establish()
                        .unwrap();
                    let sql = format!(
                        "BEGIN; SELECT 1 FROM users WHERE id = '{}' FOR UPDATE",
                        blocker.id
                    );
                    let holder = std::thread::spawn(move || {
                        use diesel::connection::SimpleConnection;
                        conn.batch_execute(&sql)?;
                        locked.send(()).unwrap();
                        let _ = released.recv();
                        conn.batch_execute("COMMIT")?;
                        Ok(())
                    });
                    wait.recv().unwrap();
                    (holder, release)
                })
                .collect();
            // Each batcher takes one of these and waits on its lock: the
            // next is queued once PostgreSQL shows the first one waiting.
            let edits = blockers
                .iter()
                .enumerate()
                .map(|(i, b)| {
                    let edit = store.queue_user_edit(
                        b.id.clone(),
                        false,
                        patched_by_test(),
                        set_title("b", PasswordChange::Keep),
                    );
                    wait_for_lock_waits(store, i + 1);
                    edit
                })
                .collect();
            Blocked { holders, edits }
        }

        /// Lets the first batcher go: it finishes its blocked edit, then
        /// takes everything queued since, while the other still waits.
        fn release_one(&mut self) {
            if self.holders.is_empty() {
                return;
            }
            let (holder, release) = self.holders.remove(0);
            let _ = release.send(());
            holder.join().unwrap().unwrap();
            self.edits.remove(0).wait().unwrap();
        }

        /// Lets the other batcher go, and waits for its blocked edit.
        fn release_rest(mut self) {
            while !self.holders.is_empty() {
                self.release_one();
            }
        }
    }

    #[test]
    fn creates_and_edits_share_one_batch_and_its_index_writes() {
        for db in backends() {
            let store = db.store();
            let backend = db.backend();
            enable(store);
            let email = |v: &str| json!({"value": v, "type": "work"});
            let users: Vec<UserRecord> = (0..6)
                .map(|i| {
                    let attrs = json!({
                        "userName": format!("member-{i}"),
                        "title": "Engineer",
                        "emails": [email(&format!("m{i}@example.com"))],
                    });
                    store
                        .write(|c| {
                            insert_user(
                                c,
                                crate::db::org::OrgId::DEFAULT,
                                &obj(attrs.clone()),
                                None,
                            )
                        })
                        .unwrap()
                })
                .collect();
            let mut blocked = Blocked::start(&db);

            // Queued at once, each with other index rows to write: an
            // email added (insert), the emails dropped (delete), the title
            // changed (update), all three at once, a rename, no change.
            let edit = |user: &UserRecord, f: fn(&mut Map<String, Value>)| {
                store.queue_user_edit(
                    user.id.clone(),
                    false,
                    patched_by_test(),
                    move |found: Found| {
                        let (current, _) = found.ok_or(StoreError::NotFound)?;
                        let mut attrs = current.attrs.clone();
                        f(&mut attrs);
                        Ok(Edit::Store {
                            current,
                            attrs,
                            password: PasswordChange::Keep,
                            then: Box::new(|rec| rec),
                        })
                    },
                )
            };
            let edits = vec![
                edit(&users[0], |a| {
                    a["emails"]
                        .as_array_mut()
                        .unwrap()
                        .push(json!({"value": "second@example.com", "type": "home"}));
                }),
                edit(&users[1], |a| {
                    a.remove("emails");
                }),
                edit(&users[2], |a| {
                    a.insert("title".into(), json!("Manager"));
                }),
                edit(&users[3], |a| {
                    a.remove("title");
                    a.insert("displayName".into(), json!("Four"));
                    a.insert(
                        "emails".into(),
                        json!([{"value": "FOUR@example.com", "primary": true}]),
                    );
                }),
                edit(&users[4], |a| {
                    a.insert("userName".into(), json!("Member-Renamed"));
                }),
                edit(&users[5], |_| {}),
            ];
            let creates: Vec<_> = (0..4)
                .map(|i| {
                    store.queue_insert_user(
                        obj(json!({
                            "userName": format!("joiner-{i}"),
                            "emails": [email(&format!("j{i}@example.com")), email("shared@example.com")],
                        })),
                        None,
                        Actor::cli("test"),
                    )
                })
                .collect();
            blocked.release_one();

            let mut written = Vec::new();
            for (answer, user) in edits.into_iter().zip(&users) {
                let rec = answer.wait().unwrap();
                assert_eq!(rec.version, user.version + 1, "{backend}");
                assert_stored(store, &rec);
                written.push(rec.id);
            }
            for answer in creates {
                let rec = answer.wait().unwrap();
                assert_stored(store, &rec);
                written.push(rec.id);
            }
            blocked.release_rest();
            let renamed = store
                .read(|c| {
                    crate::scim::lookup::find_user_by_name_gated(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "member-renamed",
                        false,
                    )
                })
                .unwrap()
                .found
                .unwrap();
            assert_eq!(renamed.0.id, users[4].id, "{backend}");
            if backend == crate::db::connection::Backend::Postgres {
                // All ten in one batch, which no write failed.
                let ids: Vec<&str> = written.iter().map(String::as_str).collect();
                assert_eq!(writers(store, &ids).len(), 1, "{backend}");
            }
        }
    }
}
