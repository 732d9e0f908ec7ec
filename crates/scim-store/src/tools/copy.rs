//! Copying a whole scimd database into another one, on either backend
//! (`scimd copy --from URL --to URL`): the way from SQLite to PostgreSQL
//! (or back) without losing the directory.
//!
//! - Every table is copied verbatim, row by row: users (soft-deleted ones
//!   and password hashes included), the filter index `user_values` (derived
//!   from each user's JSON by the same code on both backends, so copying it
//!   is the same as rebuilding it, and the checksum below proves it),
//!   groups and members, SCIM and admin tokens (their SHA-256 only: the
//!   secrets an identity provider holds stay valid), administrators and
//!   their console sessions, setup codes, login attempts, User
//!   Synchronization and its history, SAML, run-time settings, and the
//!   OAuth clients, grants, codes and tokens, and the change log (each row
//!   at its position, and the next position the source would draw, so a
//!   reader's cursor stays valid on the copy). [`TABLES`] lists them, and
//!   the copy refuses a source or a target whose tables or columns are not
//!   exactly those, so a table added by a later migration cannot be left
//!   behind in silence.
//! - The source is read in one consistent snapshot, in pages of [`PAGE`]
//!   rows in primary-key order (keyset paging: memory stays bounded
//!   whatever the size of the directory): a deferred transaction on SQLite
//!   (in WAL mode its first read fixes the snapshot, and a running scimd
//!   keeps writing meanwhile), `REPEATABLE READ READ ONLY` on PostgreSQL.
//!   Nothing is written to the source.
//! - The target is migrated with the embedded migrations first, then
//!   written in one transaction: it must hold no rows except the two that
//!   the migrations seed (`sync_state`, `runtime_settings`), unless
//!   `force`, which deletes its rows first, in the same transaction.
//! - Before that transaction commits, every table of the target is read
//!   back, and its row count and checksum must equal the source's; else
//!   the transaction is rolled back and the target is left as it was.
//!
//! The checksum of a table is the sum, modulo 2^256, of the SHA-256 of
//! each row's canonical encoding (every column in a fixed order, each value
//! tagged by its type and length-prefixed). It does not depend on the order
//! in which rows are read, which matters: each backend pages in its own
//! primary-key order (PostgreSQL compares text by its collation, SQLite by
//! bytes), and sorting the rows again in memory would defeat the paging.
//! With the row count it detects a missing, extra or altered row.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use diesel::connection::{AnsiTransactionManager, TransactionManager};
use diesel::expression::Expression;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use sha2::{Digest, Sha256};

use crate::db::connection::{Backend, ConnectionManager, DbConnection, Target};
use crate::db::schema::admin::{
    admin_organizations, admin_sessions, admin_setup_codes, admin_tokens, admins, login_attempts,
    organizations, provisioning_traffic, runtime_settings, saml_assertions, saml_requests,
    saml_settings, sync_events, sync_state,
};
use crate::db::schema::changes::change_log;
use crate::db::schema::events::{event_acks, event_keys, event_streams};
use crate::db::schema::oauth::{oauth_clients, oauth_codes, oauth_grants, oauth_tokens};
use crate::db::schema::scim::{
    group_members, groups, schema_extensions, scim_tokens, user_values, users,
};
use crate::error::StoreError;

/// Rows per page read from the source and per multi-row `INSERT` into the
/// target. The widest table (`user_values`, 14 columns) stays far below
/// SQLite's 32,766 bind parameters per statement; a page of users holds
/// 500 JSON documents at most.
pub const PAGE: i64 = 500;

/// Why a copy did not happen (nothing was written to the target then,
/// except its migrations).
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// A URL is invalid, the source does not exist, or both URLs name the
    /// same database.
    #[error("{0}")]
    Usage(String),
    /// A database cannot be reached.
    #[error("cannot connect to the {which} database: {message}")]
    Connect {
        /// `source` or `target`.
        which: &'static str,
        /// The connection error (never the URL).
        message: String,
    },
    /// The source was not migrated by this version of scimd.
    #[error("{0}")]
    Migrations(String),
    /// A database holds tables or columns this copy does not know.
    #[error("the {which} database does not have the schema this scimd copies: {detail}")]
    Schema {
        /// `source` or `target`.
        which: &'static str,
        /// What differs.
        detail: String,
    },
    /// The target already holds data and `force` was not given.
    #[error(
        "the target database is not empty ({tables}); copy into an empty database, or pass --force to replace what it holds"
    )]
    NotEmpty {
        /// The tables holding rows, with their counts.
        tables: String,
    },
    /// A statement failed; the target transaction was rolled back.
    #[error("{doing} table {table} failed: {message}")]
    Database {
        /// What the copy was doing (`reading source`, `writing target`, …).
        doing: &'static str,
        /// The table.
        table: &'static str,
        /// The database's message.
        message: String,
    },
    /// The rows read back from the target differ from the source's; the
    /// target transaction was rolled back.
    #[error("verification failed, nothing was copied: {0}")]
    Verification(String),
    /// Anything else from the store.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One table's row count and checksum, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableSummary {
    /// The table.
    pub table: &'static str,
    /// How many rows it holds.
    pub rows: u64,
    /// The checksum of its rows (see the module docs), lowercase hex.
    pub checksum: String,
}

/// What a copy did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopyReport {
    /// The backend copied from.
    pub from: Backend,
    /// The backend copied to.
    pub to: Backend,
    /// The migrations the target needed first.
    pub migrations_applied: Vec<String>,
    /// Rows deleted from the target first (`force`).
    pub rows_replaced: u64,
    /// Every table, in copy order, as verified on the target.
    pub tables: Vec<TableSummary>,
}

/// Copies every row of the database at `from` into the database at `to`
/// (see the module docs); `force` replaces what the target holds.
pub fn copy_database(from: &str, to: &str, force: bool) -> Result<CopyReport, CopyError> {
    let source_target = parse(from, "--from")?;
    let target_target = parse(to, "--to")?;
    if same_database(&source_target, &target_target) {
        return Err(CopyError::Usage(
            "--from and --to name the same database".to_owned(),
        ));
    }
    if let Target::Sqlite(path) = &source_target {
        // Opening a missing file would create an empty database.
        if !Path::new(path).is_file() {
            return Err(CopyError::Usage(format!(
                "the source SQLite database {path} does not exist"
            )));
        }
    }
    let mut source = open(source_target, "source")?;
    let mut target = open(target_target, "target")?;
    let migrations_applied = crate::db::migrations::migrate_connection(&mut target)?;
    check_schema(&mut target).map_err(|detail| CopyError::Schema {
        which: "target",
        detail,
    })?;

    begin(
        &mut source,
        "BEGIN",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    )?;
    // The target's write lock is taken up front (SQLite: no lock upgrade
    // that could fail half-way).
    if let Err(e) = begin(&mut target, "BEGIN IMMEDIATE", "BEGIN") {
        roll_back(&mut source);
        return Err(e);
    }
    let copied = copy_tables(&mut source, &mut target, force);
    // The source was only read.
    roll_back(&mut source);
    match copied {
        Ok((rows_replaced, tables)) => {
            <DbConnection as TransactionManager<DbConnection>>::commit_transaction(&mut target)
                .map_err(|e| CopyError::Database {
                    doing: "committing",
                    table: "(all)",
                    message: e.to_string(),
                })?;
            Ok(CopyReport {
                from: source.backend(),
                to: target.backend(),
                migrations_applied,
                rows_replaced,
                tables,
            })
        }
        Err(e) => {
            roll_back(&mut target);
            Err(e)
        }
    }
}

/// Every table's row count and checksum in the database at `url`, read in
/// one snapshot (to compare two databases; the database must exist and be
/// migrated).
#[cfg(any(test, feature = "testing"))]
pub fn table_checksums(url: &str) -> Result<Vec<TableSummary>, CopyError> {
    let mut conn = open(parse(url, "the URL")?, "source")?;
    begin(
        &mut conn,
        "BEGIN",
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    )?;
    let mut out = Vec::with_capacity(TABLES.len());
    for spec in TABLES.iter() {
        match (spec.tally)(&mut conn) {
            Ok(tally) => out.push(tally.summary(spec.name)),
            Err(e) => {
                roll_back(&mut conn);
                return Err(e);
            }
        }
    }
    roll_back(&mut conn);
    Ok(out)
}

/// Compares the tables and columns of the database with [`TABLES`]; the
/// error says what differs.
pub fn check_schema(conn: &mut DbConnection) -> Result<(), String> {
    let actual = database_columns(conn).map_err(|e| format!("cannot list its tables: {e}"))?;
    let known: BTreeMap<String, BTreeSet<String>> = TABLES
        .iter()
        .map(|t| {
            (
                t.name.to_owned(),
                t.columns.iter().map(|c| (*c).to_owned()).collect(),
            )
        })
        .collect();
    let mut problems = Vec::new();
    for (table, columns) in &actual {
        match known.get(table) {
            None => problems.push(format!("table {table} is not copied")),
            Some(known_columns) => {
                for c in columns.difference(known_columns) {
                    problems.push(format!("column {table}.{c} is not copied"));
                }
                for c in known_columns.difference(columns) {
                    problems.push(format!("column {table}.{c} is missing"));
                }
            }
        }
    }
    for table in known.keys() {
        if !actual.contains_key(table) {
            problems.push(format!("table {table} is missing"));
        }
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn copy_tables(
    source: &mut DbConnection,
    target: &mut DbConnection,
    force: bool,
) -> Result<(u64, Vec<TableSummary>), CopyError> {
    check_source_migrations(source)?;
    check_schema(source).map_err(|detail| CopyError::Schema {
        which: "source",
        detail,
    })?;
    let rows_replaced = clear_target(target, force)?;
    let mut copied = Vec::with_capacity(TABLES.len());
    for spec in TABLES.iter() {
        copied.push((spec.copy)(source, target)?);
    }
    // Read back within the transaction, before it commits.
    let mut tables = Vec::with_capacity(TABLES.len());
    for (spec, read) in TABLES.iter().zip(copied) {
        let written = (spec.tally)(target)?;
        if written != read {
            return Err(CopyError::Verification(format!(
                "table {}: {} rows with checksum {} read from the source, {} rows with checksum {} read back from the target",
                spec.name,
                read.rows,
                read.sum.hex(),
                written.rows,
                written.sum.hex()
            )));
        }
        tables.push(written.summary(spec.name));
    }
    carry_next_position(source, target)?;
    Ok((rows_replaced, tables))
}

/// Gives the target's change log the source's next position: rows keep
/// their positions, and the next change on the target is numbered after
/// every position the source ever drew, purged rows included, so a reader
/// resuming from a cursor taken on the source misses nothing.
fn carry_next_position(
    source: &mut DbConnection,
    target: &mut DbConnection,
) -> Result<(), CopyError> {
    #[derive(QueryableByName)]
    struct Next {
        #[diesel(sql_type = BigInt)]
        next: i64,
    }
    let fail = |doing: &'static str| {
        move |e: diesel::result::Error| CopyError::Database {
            doing,
            table: "change_log",
            message: e.to_string(),
        }
    };
    // The sequence, which never goes back, or past the newest row.
    let next_sql = match source.backend() {
        Backend::Sqlite => {
            "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'change_log'), 0), \
             COALESCE((SELECT MAX(position) FROM change_log), 0)) + 1 AS next"
        }
        Backend::Postgres => {
            "SELECT GREATEST(COALESCE(pg_sequence_last_value(\
             pg_get_serial_sequence('change_log', 'position')::regclass), 0), \
             COALESCE((SELECT MAX(position) FROM change_log), 0)) + 1 AS next"
        }
    };
    let next = match source {
        DbConnection::Sqlite(c) => diesel::sql_query(next_sql).load::<Next>(c),
        DbConnection::Postgres(c) => diesel::sql_query(next_sql).load::<Next>(c),
    }
    .map_err(fail("reading source"))?
    .first()
    .map_or(1, |n| n.next);
    match target {
        DbConnection::Sqlite(c) => {
            diesel::sql_query("DELETE FROM sqlite_sequence WHERE name = 'change_log'")
                .execute(c)
                .map_err(fail("writing target"))?;
            diesel::sql_query("INSERT INTO sqlite_sequence (name, seq) VALUES ('change_log', ?)")
                .bind::<BigInt, _>(next - 1)
                .execute(c)
                .map_err(fail("writing target"))?;
        }
        DbConnection::Postgres(c) => {
            diesel::sql_query(
                "SELECT setval(pg_get_serial_sequence('change_log', 'position'), $1, false)",
            )
            .bind::<BigInt, _>(next)
            .execute(c)
            .map_err(fail("writing target"))?;
        }
    }
    Ok(())
}

/// Whether the target may be written: empty but for the rows the
/// migrations seed, or `force` (then its rows are deleted, children first).
fn clear_target(target: &mut DbConnection, force: bool) -> Result<u64, CopyError> {
    let mut held = Vec::new();
    let mut total = 0;
    for spec in TABLES.iter() {
        let rows = (spec.count)(target)?;
        total += rows;
        if rows > 0 && !SEEDED.contains(&spec.name) {
            held.push(format!("{}: {rows}", spec.name));
        }
    }
    if !held.is_empty() && !force {
        return Err(CopyError::NotEmpty {
            tables: held.join(", "),
        });
    }
    for spec in TABLES.iter().rev() {
        (spec.clear)(target)?;
    }
    // The seeded rows are replaced by the source's, so they count only
    // when something else was there too.
    Ok(if held.is_empty() { 0 } else { total })
}

/// The tables the migrations fill in (the default organization, its
/// synchronization state and settings).
const SEEDED: [&str; 3] = ["organizations", "sync_state", "runtime_settings"];

/// The source must have exactly the migrations this scimd embeds: older,
/// and `scimd migrate` on the source first; newer, and this scimd is too
/// old to know its schema.
fn check_source_migrations(source: &mut DbConnection) -> Result<(), CopyError> {
    #[derive(QueryableByName)]
    struct Version {
        #[diesel(sql_type = Text)]
        version: String,
    }
    let mut q = crate::db::sql::SqlBuilder::fixed(source.backend());
    q.push("SELECT version FROM __diesel_schema_migrations");
    let applied: BTreeSet<String> = crate::db::sql::load::<Version>(source, &q)
        .map_err(|_| {
            CopyError::Migrations(
                "the source is not a scimd database (it has no migrations table)".to_owned(),
            )
        })?
        .into_iter()
        .map(|v| v.version)
        .collect();
    let embedded: BTreeSet<String> =
        crate::db::migrations::embedded_migration_versions(source.backend())?
            .into_iter()
            .collect();
    let pending: Vec<_> = embedded.difference(&applied).cloned().collect();
    if !pending.is_empty() {
        return Err(CopyError::Migrations(format!(
            "the source lacks migrations {}: run `scimd migrate` on it first (with this scimd)",
            pending.join(", ")
        )));
    }
    let unknown: Vec<_> = applied.difference(&embedded).cloned().collect();
    if !unknown.is_empty() {
        return Err(CopyError::Migrations(format!(
            "the source has migrations this scimd does not know ({}): copy with the scimd that migrated it",
            unknown.join(", ")
        )));
    }
    Ok(())
}

/// Every table of the database (but Diesel's migration table) with its
/// columns.
fn database_columns(
    conn: &mut DbConnection,
) -> Result<BTreeMap<String, BTreeSet<String>>, StoreError> {
    #[derive(QueryableByName)]
    struct Column {
        #[diesel(sql_type = Text)]
        table_name: String,
        #[diesel(sql_type = Text)]
        column_name: String,
    }
    let backend = conn.backend();
    let mut q = crate::db::sql::SqlBuilder::fixed(backend);
    match backend {
        Backend::Sqlite => q.push(
            "SELECT m.name AS table_name, p.name AS column_name \
             FROM sqlite_master m, pragma_table_info(m.name) p \
             WHERE m.type = 'table' AND m.name NOT LIKE 'sqlite\\_%' ESCAPE '\\' \
             AND m.name <> '__diesel_schema_migrations'",
        ),
        Backend::Postgres => q.push(
            "SELECT c.table_name::text AS table_name, c.column_name::text AS column_name \
             FROM information_schema.columns c \
             JOIN information_schema.tables t \
               ON t.table_schema = c.table_schema AND t.table_name = c.table_name \
             WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE' \
             AND c.table_name <> '__diesel_schema_migrations'",
        ),
    };
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for c in crate::db::sql::load::<Column>(conn, &q)? {
        out.entry(c.table_name).or_default().insert(c.column_name);
    }
    Ok(out)
}

fn parse(url: &str, what: &str) -> Result<Target, CopyError> {
    Target::parse(url).map_err(|e| CopyError::Usage(format!("{what}: {e}")))
}

fn same_database(a: &Target, b: &Target) -> bool {
    match (a, b) {
        (Target::Sqlite(a), Target::Sqlite(b)) => {
            let canonical = |p: &str| std::fs::canonicalize(p).ok();
            a == b || matches!((canonical(a), canonical(b)), (Some(x), Some(y)) if x == y)
        }
        (Target::Postgres(a), Target::Postgres(b)) => a.trim() == b.trim(),
        _ => false,
    }
}

fn open(target: Target, which: &'static str) -> Result<DbConnection, CopyError> {
    ConnectionManager::new(target)
        .establish()
        .map_err(|e| CopyError::Connect {
            which,
            message: e.to_string(),
        })
}

/// Begins a transaction Diesel knows about (so nothing inside opens
/// another one), with the backend's own `BEGIN`.
fn begin(conn: &mut DbConnection, sqlite: &str, postgres: &str) -> Result<(), CopyError> {
    let begun = match conn {
        DbConnection::Sqlite(c) => AnsiTransactionManager::begin_transaction_sql(c, sqlite),
        DbConnection::Postgres(c) => AnsiTransactionManager::begin_transaction_sql(c, postgres),
    };
    begun.map_err(|e| CopyError::Database {
        doing: "beginning a transaction for",
        table: "(all)",
        message: e.to_string(),
    })
}

/// Rolls the transaction back; a failed rollback only means the
/// connection is gone, and it is dropped right after.
fn roll_back(conn: &mut DbConnection) {
    if let Err(e) = <DbConnection as TransactionManager<DbConnection>>::rollback_transaction(conn) {
        tracing::warn!(error = %e, "rolling back the copy's transaction failed");
    }
}

// ------------------------------------------------------------ checksums

/// The running count and checksum of a table's rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Tally {
    rows: u64,
    sum: Checksum,
}

impl Tally {
    fn add_row(&mut self, encoded: &[u8]) {
        self.rows += 1;
        self.sum.add(&Sha256::digest(encoded).into());
    }

    fn summary(self, table: &'static str) -> TableSummary {
        TableSummary {
            table,
            rows: self.rows,
            checksum: self.sum.hex(),
        }
    }
}

/// A 256-bit sum (big-endian) of row digests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Checksum([u8; 32]);

impl Checksum {
    fn add(&mut self, digest: &[u8; 32]) {
        let mut carry = 0u16;
        for (a, b) in self.0.iter_mut().rev().zip(digest.iter().rev()) {
            let s = u16::from(*a) + u16::from(*b) + carry;
            *a = s.to_be_bytes()[1];
            carry = s >> 8;
        }
    }

    fn hex(&self) -> String {
        hex::encode(self.0)
    }
}

/// The canonical encoding of a column value: a type tag, then the value
/// (text length-prefixed), so that no two rows encode alike.
trait Canonical {
    fn encode(&self, out: &mut Vec<u8>);
}

impl Canonical for String {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b't');
        out.extend_from_slice(&(self.len() as u64).to_le_bytes());
        out.extend_from_slice(self.as_bytes());
    }
}

impl Canonical for i32 {
    fn encode(&self, out: &mut Vec<u8>) {
        i64::from(*self).encode(out);
    }
}

impl Canonical for i64 {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'i');
        out.extend_from_slice(&self.to_le_bytes());
    }
}

impl Canonical for bool {
    fn encode(&self, out: &mut Vec<u8>) {
        out.push(b'b');
        out.push(u8::from(*self));
    }
}

impl<T: Canonical> Canonical for Option<T> {
    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            None => out.push(b'n'),
            Some(v) => v.encode(out),
        }
    }
}

/// The Rust type a column of this SQL type is read into.
trait Native {
    type Rust: Canonical + Clone;
}

impl Native for Text {
    type Rust = String;
}
impl Native for Nullable<Text> {
    type Rust = Option<String>;
}
impl Native for Integer {
    type Rust = i32;
}
impl Native for Nullable<Integer> {
    type Rust = Option<i32>;
}
impl Native for BigInt {
    type Rust = i64;
}
impl Native for Nullable<BigInt> {
    type Rust = Option<i64>;
}
impl Native for Bool {
    type Rust = bool;
}
impl Native for Nullable<Bool> {
    type Rust = Option<bool>;
}

// --------------------------------------------------------------- tables

/// How one table is copied, counted and read back.
pub struct TableSpec {
    /// The table's name.
    pub name: &'static str,
    /// Its columns, in the order they are encoded.
    pub columns: &'static [&'static str],
    copy: fn(&mut DbConnection, &mut DbConnection) -> Result<Tally, CopyError>,
    tally: fn(&mut DbConnection) -> Result<Tally, CopyError>,
    count: fn(&mut DbConnection) -> Result<u64, CopyError>,
    clear: fn(&mut DbConnection) -> Result<(), CopyError>,
}

impl std::fmt::Debug for TableSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableSpec")
            .field("name", &self.name)
            .field("columns", &self.columns)
            .finish_non_exhaustive()
    }
}

/// Runs `$body` with `$c` bound to the inner connection of either backend
/// (the same Diesel statement, compiled for each).
macro_rules! on_inner {
    ($conn:expr, $c:ident => $body:expr) => {
        match $conn {
            DbConnection::Sqlite($c) => $body,
            DbConnection::Postgres($c) => $body,
        }
    };
}

/// A [`TableSpec`] for the Diesel table `$t`, whose primary key is
/// `$pk` and whose every column is listed in `$col` (the schema check
/// compares that list with the database).
macro_rules! table_spec {
    ($t:ident, pk: ($($pk:ident),+), columns: ($($col:ident),+ $(,)?)) => {{
        type Row = ($(<<$t::$col as Expression>::SqlType as Native>::Rust,)+);

        fn fail(doing: &'static str) -> impl Fn(diesel::result::Error) -> CopyError {
            move |e| CopyError::Database {
                doing,
                table: stringify!($t),
                message: e.to_string(),
            }
        }

        /// The next page after `after` (primary-key order).
        fn page(conn: &mut DbConnection, after: Option<&Row>, doing: &'static str)
            -> Result<Vec<Row>, CopyError>
        {
            let query = $t::table
                .select(($($t::$col,)+))
                .order(($($t::$pk.asc(),)+))
                .limit(PAGE);
            let rows = match after {
                None => on_inner!(conn, c => query.load::<Row>(c)),
                Some(last) => {
                    #[allow(unused_variables)]
                    let ($($col,)+) = last.clone();
                    let key = [$(stringify!($pk)),+].join(", ");
                    let mut first = true;
                    let mut sep = move || if std::mem::take(&mut first) { "" } else { ", " };
                    let after = diesel::dsl::sql::<Bool>(&format!("({key}) > ("))
                        $(.sql(sep()).bind::<<$t::$pk as Expression>::SqlType, _>($pk))+
                        .sql(")");
                    on_inner!(conn, c => query.filter(after).load::<Row>(c))
                }
            };
            rows.map_err(fail(doing))
        }

        /// Reads every row in pages, tallying them and handing each page
        /// to `each`.
        fn scan(
            conn: &mut DbConnection,
            doing: &'static str,
            mut each: impl FnMut(Vec<Row>) -> Result<(), CopyError>,
        ) -> Result<Tally, CopyError> {
            let mut tally = Tally::default();
            let mut buf = Vec::new();
            let mut after: Option<Row> = None;
            loop {
                let rows = page(conn, after.as_ref(), doing)?;
                let full = rows.len() as i64 == PAGE;
                for row in &rows {
                    buf.clear();
                    let ($($col,)+) = row;
                    $($col.encode(&mut buf);)+
                    tally.add_row(&buf);
                }
                after = rows.last().cloned();
                each(rows)?;
                if !full {
                    return Ok(tally);
                }
            }
        }

        fn insert(conn: &mut DbConnection, rows: Vec<Row>) -> Result<(), CopyError> {
            if rows.is_empty() {
                return Ok(());
            }
            let values: Vec<_> = rows
                .into_iter()
                .map(|($($col,)+)| ($($t::$col.eq($col),)+))
                .collect();
            on_inner!(conn, c => diesel::insert_into($t::table).values(values).execute(c))
                .map(|_| ())
                .map_err(fail("writing target"))
        }

        TableSpec {
            name: stringify!($t),
            columns: &[$(stringify!($col)),+],
            copy: |source, target| scan(source, "reading source", |rows| insert(target, rows)),
            tally: |conn| scan(conn, "reading back", |_| Ok(())),
            count: |conn| {
                $t::table
                    .count()
                    .get_result::<i64>(conn)
                    .map(|n| u64::try_from(n).unwrap_or(0))
                    .map_err(fail("counting target"))
            },
            clear: |conn| {
                diesel::delete($t::table)
                    .execute(conn)
                    .map(|_| ())
                    .map_err(fail("clearing target"))
            },
        }
    }};
}

/// Every table of the schema, parents before children (foreign keys).
pub static TABLES: std::sync::LazyLock<Vec<TableSpec>> = std::sync::LazyLock::new(|| {
    vec![
        table_spec!(organizations, pk: (id), columns: (
            id, slug, name, host, suspended_at, created_at, updated_at,
        )),
        table_spec!(scim_tokens, pk: (id), columns: (
            id, name, prefix, secret_hash, created_at, created_by, last_used_at, expires_at,
            revoked_at, org_id,
        )),
        table_spec!(users, pk: (id), columns: (
            id, user_name, user_name_ci, external_id, display_name_ci, active, resource,
            password_hash, version, created, last_modified, display_name, deleted_at, org_id,
        )),
        table_spec!(user_values, pk: (user_id, attr, idx), columns: (
            user_id, attr, idx, value, value_ci, display_ci, type_ci, is_primary, formatted_ci,
            street_address_ci, locality_ci, region_ci, postal_code_ci, country_ci, org_id,
        )),
        table_spec!(groups, pk: (id), columns: (
            id, display_name, display_name_ci, external_id, resource, version, created,
            last_modified, org_id,
        )),
        table_spec!(group_members, pk: (group_id, member_id), columns: (
            group_id, member_id, member_type,
        )),
        table_spec!(schema_extensions, pk: (id), columns: (
            id, definition, created_at, created_by, updated_at,
        )),
        table_spec!(sync_state, pk: (id), columns: (
            id, enabled, enabled_at, enabled_by, accepted_cautions, changed_at, changed_by,
        )),
        table_spec!(sync_events, pk: (id), columns: (id, at, actor, action, detail, org_id)),
        table_spec!(saml_settings, pk: (id), columns: (
            id, entity_id, sso_url, certificate_pem, updated_at, updated_by,
        )),
        table_spec!(saml_assertions, pk: (id), columns: (id, expires_at)),
        table_spec!(saml_requests, pk: (id), columns: (id, browser_hash, created_at, expires_at)),
        table_spec!(runtime_settings, pk: (id), columns: (
            id, deprovisioning, soft_delete_retention_days, default_page_size, max_page_size,
            version, updated_at, updated_by, change_log_retention_days, health_failure_percent,
            health_silence_minutes, health_window_requests, health_window_minutes,
        )),
        table_spec!(provisioning_traffic, pk: (replica_id, credential_kind, credential_id), columns: (
            replica_id, credential_kind, credential_id, credential_name, last_request_at, state,
            updated_at, org_id,
        )),
        table_spec!(admins, pk: (id), columns: (
            id, username, username_ci, password_hash, created_at, last_login_at, disabled_at,
            role,
        )),
        table_spec!(admin_organizations, pk: (admin_id, org_id), columns: (admin_id, org_id)),
        table_spec!(admin_sessions, pk: (id_hash), columns: (
            id_hash, admin_id, csrf_token, created_at, expires_at, org_id,
        )),
        table_spec!(admin_tokens, pk: (id), columns: (
            id, name, prefix, secret_hash, created_at, created_by, last_used_at, expires_at,
            revoked_at, org_id,
        )),
        table_spec!(admin_setup_codes, pk: (code_hash), columns: (
            code_hash, created_at, expires_at,
        )),
        table_spec!(login_attempts, pk: (id), columns: (
            id, username_ci, address, at, succeeded,
        )),
        table_spec!(oauth_clients, pk: (id), columns: (
            id, name, secret_hash, secret_prefix, redirect_uris, scopes, created_at,
            created_by, secret_rotated_at, org_id,
        )),
        table_spec!(oauth_grants, pk: (id), columns: (
            id, client_id, admin_id, admin_username, scope, created_at, last_used_at,
            revoked_at, revoked_reason,
        )),
        table_spec!(oauth_codes, pk: (code_hash), columns: (
            code_hash, grant_id, client_id, redirect_uri, code_challenge, created_at,
            expires_at, used_at,
        )),
        table_spec!(oauth_tokens, pk: (token_hash), columns: (
            token_hash, grant_id, kind, created_at, expires_at, used_at, revoked_at,
        )),
        table_spec!(change_log, pk: (position), columns: (
            position, at, event, resource_type, resource_id, resource_version, actor_kind,
            actor_id, actor_name, request_id, client_address, detail, data, org_id, external_id,
        )),
        table_spec!(event_streams, pk: (id), columns: (
            id, name, delivery, settings, receiver_authorization, receiver_token_hash, state,
            cursor_position, failures, last_error, last_error_at, next_attempt_at, delivered_at,
            lease_owner, lease_until, created_at, org_id,
        )),
        table_spec!(event_keys, pk: (kid), columns: (
            kid, stream_id, alg, secret, public_jwk, created_at, retired_at,
        )),
        table_spec!(event_acks, pk: (stream_id, position), columns: (stream_id, position)),
    ]
});

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::{backends, TestDb};
    use diesel::connection::SimpleConnection;
    use scim_core::members::MemberRef;

    #[test]
    fn the_change_log_keeps_its_positions_and_its_next_one() {
        use crate::changes::{
            last_position, purge_changes, read_after, record, Actor, Event, NewChange,
        };
        let add = |store: &crate::engine::Store, at: &str| {
            store
                .write(|c| {
                    record(
                        c,
                        &Actor::cli("root"),
                        at,
                        &[NewChange::new(Event::GroupCreated, "Group", Some("g"))],
                    )
                })
                .unwrap();
        };
        for source in backends() {
            add(source.store(), "2026-01-01T00:00:00.000Z");
            add(source.store(), "2026-12-01T00:00:00.000Z");
            add(source.store(), "2026-12-02T00:00:00.000Z");
            let drawn = source.store().read(last_position).unwrap();
            // The newest rows purged: the source's next position stays past them.
            source
                .store()
                .write(|c| {
                    purge_changes(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "2026-12-01T12:00:00.000Z",
                        10,
                    )
                })
                .unwrap();
            source
                .store()
                .write(|c| {
                    c.batch_execute(
                        "DELETE FROM change_log WHERE at > '2026-12-01T12:00:00.000Z'",
                    )?;
                    Ok(())
                })
                .unwrap();
            let kept = source.store().read(|c| read_after(c, 0, 10)).unwrap();
            assert!(kept.is_empty(), "{:?}", source.backend());
            add(source.store(), "2026-12-03T00:00:00.000Z");
            let kept = source.store().read(|c| read_after(c, 0, 10)).unwrap();
            assert_eq!(kept.len(), 1);
            assert!(kept[0].position > drawn);
            let mut targets = vec![TestDb::sqlite()];
            targets.extend(TestDb::postgres());
            for target in targets {
                copy_database(source.url(), target.url(), false).unwrap();
                let copied = target.store().read(|c| read_after(c, 0, 10)).unwrap();
                assert_eq!(
                    copied,
                    kept,
                    "{:?} -> {:?}",
                    source.backend(),
                    target.backend()
                );
                add(target.store(), "2026-12-04T00:00:00.000Z");
                let next = target
                    .store()
                    .read(|c| read_after(c, kept[0].position, 10))
                    .unwrap();
                assert_eq!(
                    next.len(),
                    1,
                    "{:?} -> {:?}",
                    source.backend(),
                    target.backend()
                );
            }
            // Emptied by the purge, the log still never reuses a position on a copy.
            source
                .store()
                .write(|c| {
                    purge_changes(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "2027-01-01T00:00:00.000Z",
                        10,
                    )
                })
                .unwrap();
            let target = TestDb::sqlite();
            copy_database(source.url(), target.url(), false).unwrap();
            add(target.store(), "2026-12-05T00:00:00.000Z");
            let next = target.store().read(|c| read_after(c, 0, 10)).unwrap();
            assert!(
                next[0].position > kept[0].position,
                "{:?}",
                source.backend()
            );
        }
    }

    #[test]
    fn the_copy_knows_every_table_and_column_of_the_schema() {
        for db in backends() {
            let store = db.store();
            assert_eq!(store.read(|c| Ok(check_schema(c))).unwrap(), Ok(()));
            // A later migration's table or column fails the check (and so
            // every copy) until TABLES copies it.
            store
                .write(|c| {
                    c.batch_execute("CREATE TABLE audit_log (id TEXT PRIMARY KEY NOT NULL)")?;
                    c.batch_execute("ALTER TABLE users ADD COLUMN nickname TEXT NULL")?;
                    Ok(())
                })
                .unwrap();
            let err = store.read(|c| Ok(check_schema(c))).unwrap().unwrap_err();
            assert!(err.contains("table audit_log is not copied"), "{err}");
            assert!(err.contains("column users.nickname is not copied"), "{err}");
            let target = TestDb::sqlite();
            let copied = copy_database(db.url(), target.url(), false);
            assert!(
                matches!(
                    copied,
                    Err(CopyError::Schema {
                        which: "source",
                        ..
                    })
                ),
                "{copied:?}"
            );
        }
    }

    /// `n` users with two emails each (several `user_values` rows per
    /// user, so its three-column key is paged), a soft-deleted one, and a
    /// group holding them all.
    fn fill(db: &TestDb, n: usize) {
        db.store()
            .write(|c| {
                let mut members = Vec::with_capacity(n);
                for i in 0..n {
                    let attrs = serde_json::json!({
                        "userName": format!("user{i}@example.com"),
                        "emails": [
                            {"value": format!("user{i}@example.com"), "type": "work", "primary": true},
                            {"value": format!("u{i}@home.example"), "type": "home"},
                        ],
                        "active": i % 3 != 0,
                    });
                    let rec = crate::scim::users::insert_user(c, crate::db::org::OrgId::DEFAULT, attrs.as_object().unwrap(), Some("$argon2id$x"))?;
                    members.push(MemberRef {
                        value: rec.id,
                        member_type: None,
                    });
                }
                let gone = serde_json::json!({"userName": "gone@example.com"});
                let gone = crate::scim::users::insert_user(c, crate::db::org::OrgId::DEFAULT, gone.as_object().unwrap(), None)?;
                crate::scim::users::soft_delete_user(c, crate::db::org::OrgId::DEFAULT, &gone.id, None)?;
                let group = serde_json::json!({"displayName": "Everyone"});
                crate::scim::groups::insert_group(c, crate::db::org::OrgId::DEFAULT, group.as_object().unwrap(), &members)?;
                crate::admin::tokens::create_token(c, "Entra ID", None)?;
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn a_copy_pages_through_every_table_and_verifies_it() {
        for source in backends() {
            // More than two pages of users, many of user_values.
            let n = usize::try_from(PAGE).unwrap() * 2 + 17;
            fill(&source, n);
            let target = TestDb::sqlite();
            let report = copy_database(source.url(), target.url(), false).unwrap();
            assert!(report.migrations_applied.is_empty());
            let rows = |t: &str| report.tables.iter().find(|s| s.table == t).unwrap().rows;
            assert_eq!(rows("users"), n as u64 + 1);
            // One row per email.
            assert_eq!(rows("user_values"), (n as u64) * 2);
            assert_eq!(rows("group_members"), n as u64);
            assert_eq!(table_checksums(source.url()).unwrap(), report.tables);
            assert_eq!(table_checksums(target.url()).unwrap(), report.tables);
            // The target now holds data: refused without force.
            let again = copy_database(source.url(), target.url(), false);
            assert!(
                matches!(&again, Err(CopyError::NotEmpty { tables }) if tables.contains("users: ")),
                "{again:?}"
            );
        }
    }

    #[test]
    fn a_failed_copy_leaves_the_target_as_it_was() {
        let source = TestDb::sqlite();
        fill(&source, 3);
        let target = TestDb::sqlite();
        target
            .store()
            .write(|c| {
                crate::admin::tokens::create_token(c, "kept", None)?;
                // Groups come after users and tokens: the copy fails half-way.
                c.batch_execute(
                    "CREATE TRIGGER refuse_groups BEFORE INSERT ON groups \
                     BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;",
                )?;
                Ok(())
            })
            .unwrap();
        let before = table_checksums(target.url()).unwrap();
        let copied = copy_database(source.url(), target.url(), true);
        assert!(
            matches!(&copied, Err(CopyError::Database { table: "groups", message, .. }) if message.contains("refused by the test")),
            "{copied:?}"
        );
        assert_eq!(table_checksums(target.url()).unwrap(), before);
    }

    #[test]
    fn sources_that_are_not_scimd_databases_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let missing = format!("sqlite://{}", dir.path().join("missing.db").display());
        let target = TestDb::sqlite();
        let err = copy_database(&missing, target.url(), false).unwrap_err();
        assert!(err.to_string().contains("does not exist"), "{err}");
        assert!(!dir.path().join("missing.db").exists());
        let err = copy_database(target.url(), target.url(), false).unwrap_err();
        assert!(err.to_string().contains("same database"), "{err}");
        let err = copy_database("mysql://u:secret@h/db", target.url(), false).unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
        // An empty SQLite file: no migrations table.
        let empty = dir.path().join("empty.db");
        std::fs::write(&empty, b"").unwrap();
        let err = copy_database(
            &format!("sqlite://{}", empty.display()),
            target.url(),
            false,
        )
        .unwrap_err();
        assert!(matches!(err, CopyError::Migrations(_)), "{err}");
    }

    #[test]
    fn checksums_ignore_row_order_and_see_every_byte() {
        let rows: [&[u8]; 3] = [b"a", b"b", b"c"];
        let mut forward = Tally::default();
        for r in rows {
            forward.add_row(r);
        }
        let mut backward = Tally::default();
        for r in rows.iter().rev() {
            backward.add_row(r);
        }
        assert_eq!(forward, backward);
        let mut changed = Tally::default();
        for r in [&b"a"[..], b"b", b"d"] {
            changed.add_row(r);
        }
        assert_ne!(forward, changed);
        // Values are length-prefixed: ("ab", "c") is not ("a", "bc").
        let encode = |a: &str, b: &str| {
            let mut out = Vec::new();
            a.to_owned().encode(&mut out);
            b.to_owned().encode(&mut out);
            out
        };
        assert_ne!(encode("ab", "c"), encode("a", "bc"));
        let mut none = Vec::new();
        Option::<String>::None.encode(&mut none);
        let mut empty = Vec::new();
        Some(String::new()).encode(&mut empty);
        assert_ne!(none, empty);
        // The sum carries across bytes.
        let mut sum = Checksum::default();
        let mut one = [0u8; 32];
        one[31] = 0xff;
        sum.add(&one);
        sum.add(&one);
        assert_eq!(&sum.0[30..], &[0x01, 0xfe]);
    }
}
