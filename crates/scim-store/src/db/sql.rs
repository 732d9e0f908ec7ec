//! Hand-built SQL with typed binds, for the queries the Diesel DSL cannot
//! express once for both backends (translated filters, paging with a
//! window count).
//!
//! Every dialect difference of such queries lives here: the placeholder
//! style (`?` for SQLite, `$n` for PostgreSQL), the pattern operator
//! (`GLOB` vs `LIKE … ESCAPE`), and [`load`], the one function that matches
//! on the connection variant to run the query. Client strings only ever
//! become bind values, never SQL text.

use std::collections::HashSet;
use std::sync::{LazyLock, RwLock};

use diesel::backend::Backend as DieselBackend;
use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::sql_types::{BigInt, Bool, HasSqlType, Integer, Nullable, Text, Untyped};
use diesel::sqlite::Sqlite;
use diesel::{QueryResult, QueryableByName};

use crate::db::connection::{Backend, DbConnection};

/// A typed bind value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    NullableText(Option<String>),
    Integer(i32),
    BigInt(i64),
    NullableBigInt(Option<i64>),
    Bool(bool),
    NullableBool(Option<bool>),
}

/// Where a pattern must match (RFC 7644 §3.4.2.2 `co`, `sw`, `ew`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PatternKind {
    Contains,
    StartsWith,
    EndsWith,
}

/// How many distinct client-shaped SQL texts (translated filters, sort
/// keys) the process lets Diesel keep as prepared statements. Diesel's
/// per-connection statement cache never evicts, and a filter's SQL text
/// follows its shape (attributes, operators, nesting), which the client
/// chooses: without this budget, endlessly varied filters would grow every
/// pooled connection's cache without bound. Real provisioning clients send
/// a handful of shapes (`userName eq`, `externalId eq`, `id eq`), so once
/// the budget is spent, further new shapes still run, just prepared per
/// request as before. Each connection therefore caches at most this many
/// client-shaped statements plus the store's own fixed ones.
pub(crate) const CLIENT_SHAPES: usize = 256;
/// Longer client-shaped SQL is never cached (it is also rare: one
/// `userName eq` list query is about 200 bytes).
pub(crate) const MAX_CACHED_SQL_LEN: usize = 2048;
/// Client-shaped SQL with more binds is never cached.
pub(crate) const MAX_CACHED_BINDS: usize = 32;

/// The set of client-shaped SQL texts admitted to the statement caches,
/// shared by every connection of the process, capped at `capacity`.
#[derive(Debug)]
pub(crate) struct ShapeBudget {
    capacity: usize,
    admitted: RwLock<HashSet<String>>,
}

impl ShapeBudget {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity,
            admitted: RwLock::new(HashSet::new()),
        }
    }

    /// Whether `sql` (with `binds` parameters) may be cached: it is small
    /// enough and either already admitted or admitted now because the
    /// budget has room.
    pub(crate) fn admit(&self, sql: &str, binds: usize) -> bool {
        if sql.len() > MAX_CACHED_SQL_LEN || binds > MAX_CACHED_BINDS {
            return false;
        }
        // A poisoned lock only means another thread panicked while holding
        // it; the set itself is still a valid set.
        if self
            .admitted
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(sql)
        {
            return true;
        }
        let mut admitted = self
            .admitted
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if admitted.contains(sql) {
            return true;
        }
        if admitted.len() >= self.capacity {
            return false;
        }
        admitted.insert(sql.to_owned());
        true
    }
}

static CLIENT_SHAPE_BUDGET: LazyLock<ShapeBudget> =
    LazyLock::new(|| ShapeBudget::new(CLIENT_SHAPES));

/// Whether a statement's SQL text has a bounded number of forms.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Built by the store from fixed text (a bounded number of variants,
    /// such as a multi-row INSERT of at most [`INSERT_CHUNK`] rows): always
    /// cached.
    Fixed,
    /// Follows a client's request (filters, sorting): cached only within
    /// the [`ShapeBudget`].
    Client,
}

/// SQL text plus its binds in order, for one backend.
///
/// The text is kept without placeholders: `cuts[i]` is where bind `i`
/// goes, and Diesel's query builder writes the placeholder (`?` or `$n`)
/// there when the statement is run.
#[derive(Debug, Clone)]
pub(crate) struct SqlBuilder {
    backend: Backend,
    text: String,
    cuts: Vec<usize>,
    binds: Vec<Bind>,
    shape: Shape,
}

impl SqlBuilder {
    /// A statement whose text follows a client's request; see
    /// [`ShapeBudget`].
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            text: String::with_capacity(256),
            cuts: Vec::new(),
            binds: Vec::new(),
            shape: Shape::Client,
        }
    }

    /// A statement built by the store from fixed text, with a bounded
    /// number of variants; always kept in the statement cache.
    pub(crate) fn fixed(backend: Backend) -> Self {
        let mut b = Self::new(backend);
        b.shape = Shape::Fixed;
        b
    }

    /// The backend the statement is written for.
    pub(crate) fn backend(&self) -> Backend {
        self.backend
    }

    /// Appends trusted SQL text (never client input).
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.text.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.cuts.push(self.text.len());
        self.binds.push(value);
        self
    }

    /// Appends a placeholder bound to a text value.
    pub(crate) fn bind_text(&mut self, value: impl Into<String>) -> &mut Self {
        self.bind(Bind::Text(value.into()))
    }

    /// Appends `column <matches> pattern` where the literal is matched
    /// verbatim: every wildcard character of the backend's pattern language
    /// in `literal` is escaped. Both forms are case-sensitive, which is right
    /// because case-insensitive columns hold pre-lowered text and the
    /// literal is lowered by the caller.
    pub(crate) fn push_pattern(&mut self, column: &str, kind: PatternKind, literal: &str) {
        match self.backend {
            Backend::Sqlite => {
                // GLOB: `*`, `?` and `[` are special; a one-character class
                // matches each literally.
                let mut escaped = String::with_capacity(literal.len() + 8);
                for c in literal.chars() {
                    match c {
                        '*' => escaped.push_str("[*]"),
                        '?' => escaped.push_str("[?]"),
                        '[' => escaped.push_str("[[]"),
                        c => escaped.push(c),
                    }
                }
                self.push(column).push(" GLOB ");
                self.bind_text(wrap(kind, &escaped, '*'));
            }
            Backend::Postgres => {
                let mut escaped = String::with_capacity(literal.len() + 8);
                for c in literal.chars() {
                    if matches!(c, '%' | '_' | '\\') {
                        escaped.push('\\');
                    }
                    escaped.push(c);
                }
                self.push(column).push(" LIKE ");
                self.bind_text(wrap(kind, &escaped, '%'));
                self.push(" ESCAPE '\\'");
            }
        }
    }

    /// Appends `column = literal` for a column whose PostgreSQL index is on
    /// `md5(column)` (migration `20261206000000_bounded_index_keys`: a
    /// B-tree entry holds at most about 2,704 bytes, and clients send longer
    /// values). On PostgreSQL the hashes are compared too, so that the index
    /// serves the lookup, and the values themselves, so that the match is
    /// exact. SQLite indexes hold the whole values (long keys go to overflow
    /// pages), so there the plain comparison uses them.
    pub(crate) fn push_hashed_eq(&mut self, column: &str, literal: String) -> &mut Self {
        if self.backend == Backend::Postgres {
            self.push("md5(")
                .push(column)
                .push(") = md5(")
                .bind_text(literal.clone())
                .push(") AND ");
        }
        self.push(column).push(" = ").bind_text(literal)
    }

    /// The binds, in order (to re-use them in another statement).
    pub(crate) fn into_binds(self) -> Vec<Bind> {
        self.binds
    }

    /// Whether Diesel may keep this statement prepared, keyed by its text.
    fn cacheable(&self) -> bool {
        match self.shape {
            Shape::Fixed => true,
            Shape::Client => CLIENT_SHAPE_BUDGET.admit(&self.text, self.binds.len()),
        }
    }

    fn query(&self, cache: bool) -> Prepared<'_> {
        Prepared {
            text: &self.text,
            cuts: &self.cuts,
            binds: &self.binds,
            cache,
        }
    }

    /// The SQL with the backend's placeholders, as it is sent.
    #[cfg(test)]
    pub(crate) fn sql(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 4 * self.cuts.len());
        let mut prev = 0;
        for (i, &cut) in self.cuts.iter().enumerate() {
            out.push_str(&self.text[prev..cut]);
            match self.backend {
                Backend::Sqlite => out.push('?'),
                Backend::Postgres => {
                    out.push('$');
                    out.push_str(&(i + 1).to_string());
                }
            }
            prev = cut;
        }
        out.push_str(&self.text[prev..]);
        out
    }

    #[cfg(test)]
    pub(crate) fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

/// Rows per multi-row INSERT the store builds: keeps a pathological
/// resource under SQLite's 32766 bind parameters per statement, and bounds
/// how many variants of such a statement the caches hold.
pub(crate) const INSERT_CHUNK: usize = 100;

fn wrap(kind: PatternKind, escaped: &str, any: char) -> String {
    match kind {
        PatternKind::Contains => format!("{any}{escaped}{any}"),
        PatternKind::StartsWith => format!("{escaped}{any}"),
        PatternKind::EndsWith => format!("{any}{escaped}"),
    }
}

/// A [`SqlBuilder`]'s statement as a Diesel query.
///
/// Unlike `diesel::sql_query` (which always marks itself unsafe to cache,
/// so SQLite re-parses and re-plans it on every call), this has no static
/// query id and does not call `unsafe_to_cache_prepared` unless told to:
/// Diesel then keeps the prepared statement in the connection's cache,
/// keyed by the SQL text and bind types.
struct Prepared<'a> {
    text: &'a str,
    cuts: &'a [usize],
    binds: &'a [Bind],
    cache: bool,
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

impl<DB> QueryFragment<DB> for Prepared<'_>
where
    DB: DieselBackend
        + HasSqlType<Text>
        + HasSqlType<BigInt>
        + HasSqlType<Bool>
        + HasSqlType<Integer>,
    String: diesel::serialize::ToSql<Text, DB>,
    Option<String>: diesel::serialize::ToSql<Nullable<Text>, DB>,
    i32: diesel::serialize::ToSql<Integer, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    bool: diesel::serialize::ToSql<Bool, DB>,
    Option<bool>: diesel::serialize::ToSql<Nullable<Bool>, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        if !self.cache {
            out.unsafe_to_cache_prepared();
        }
        let mut prev = 0;
        for (&cut, bind) in self.cuts.iter().zip(self.binds) {
            out.push_sql(&self.text[prev..cut]);
            match bind {
                Bind::Text(s) => out.push_bind_param::<Text, String>(s)?,
                Bind::NullableText(s) => {
                    out.push_bind_param::<Nullable<Text>, Option<String>>(s)?
                }
                Bind::Integer(n) => out.push_bind_param::<Integer, i32>(n)?,
                Bind::BigInt(n) => out.push_bind_param::<BigInt, i64>(n)?,
                Bind::NullableBigInt(n) => {
                    out.push_bind_param::<Nullable<BigInt>, Option<i64>>(n)?
                }
                Bind::Bool(v) => out.push_bind_param::<Bool, bool>(v)?,
                Bind::NullableBool(v) => out.push_bind_param::<Nullable<Bool>, Option<bool>>(v)?,
            }
            prev = cut;
        }
        out.push_sql(&self.text[prev..]);
        Ok(())
    }
}

/// Runs the built query on the connection's backend and loads its rows.
pub(crate) fn load<R>(conn: &mut DbConnection, q: &SqlBuilder) -> diesel::QueryResult<Vec<R>>
where
    R: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
{
    let query = q.query(q.cacheable());
    match conn {
        DbConnection::Sqlite(c) => {
            debug_assert_eq!(q.backend, Backend::Sqlite);
            query.load(c)
        }
        DbConnection::Postgres(c) => {
            debug_assert_eq!(q.backend, Backend::Postgres);
            query.load(c)
        }
    }
}

/// Runs the built statement on the connection's backend; returns the
/// number of rows affected.
pub(crate) fn execute(conn: &mut DbConnection, q: &SqlBuilder) -> diesel::QueryResult<usize> {
    let query = q.query(q.cacheable());
    match conn {
        DbConnection::Sqlite(c) => {
            debug_assert_eq!(q.backend, Backend::Sqlite);
            query.execute(c)
        }
        DbConnection::Postgres(c) => {
            debug_assert_eq!(q.backend, Backend::Postgres);
            query.execute(c)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use diesel::connection::{Instrumentation, InstrumentationEvent};
    use diesel::Connection;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    #[derive(QueryableByName)]
    struct One {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    /// An in-memory SQLite connection that counts the statements Diesel
    /// prepares for its cache.
    fn counting_connection() -> (DbConnection, Arc<AtomicUsize>) {
        let cached = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&cached);
        let mut conn = diesel::SqliteConnection::establish(":memory:").unwrap();
        let instrumentation = move |event: InstrumentationEvent<'_>| {
            if let InstrumentationEvent::CacheQuery { .. } = event {
                counter.fetch_add(1, Ordering::SeqCst);
            }
        };
        conn.set_instrumentation(Box::new(instrumentation) as Box<dyn Instrumentation>);
        (DbConnection::Sqlite(conn), cached)
    }

    #[test]
    fn statements_are_prepared_once_and_reused() {
        let (mut conn, cached) = counting_connection();
        for n in 0..5_i64 {
            let mut b = SqlBuilder::new(Backend::Sqlite);
            b.push("SELECT ")
                .bind(Bind::BigInt(n))
                .push(" + 0 AS n /* statements_are_prepared_once */");
            let rows: Vec<One> = load(&mut conn, &b).unwrap();
            assert_eq!(rows[0].n, n);
            let mut f = SqlBuilder::fixed(Backend::Sqlite);
            f.push("SELECT ").bind(Bind::BigInt(n)).push(" + 1 AS n");
            let rows: Vec<One> = load(&mut conn, &f).unwrap();
            assert_eq!(rows[0].n, n + 1);
        }
        // One preparation per distinct text, not one per call.
        assert_eq!(cached.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn oversized_client_statements_are_not_cached() {
        let (mut conn, cached) = counting_connection();
        let mut long = SqlBuilder::new(Backend::Sqlite);
        long.push("SELECT 1 AS n /*")
            .push(&"x".repeat(MAX_CACHED_SQL_LEN))
            .push("*/");
        let mut many = SqlBuilder::new(Backend::Sqlite);
        many.push("SELECT 1 AS n WHERE 1 IN (");
        for i in 0..=MAX_CACHED_BINDS {
            if i > 0 {
                many.push(", ");
            }
            many.bind(Bind::Integer(1));
        }
        many.push(")");
        for _ in 0..3 {
            for q in [&long, &many] {
                let rows: Vec<One> = load(&mut conn, q).unwrap();
                assert_eq!(rows[0].n, 1);
            }
        }
        assert_eq!(cached.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn the_shape_budget_is_capped() {
        let budget = ShapeBudget::new(3);
        for i in 0..3 {
            assert!(budget.admit(&format!("SELECT {i}"), 0));
        }
        // Full: a new shape is refused, admitted ones stay admitted.
        assert!(!budget.admit("SELECT 3", 0));
        assert!(budget.admit("SELECT 1", 0));
        assert!(!budget.admit("SELECT 4", 0));
        let budget = ShapeBudget::new(10);
        assert!(!budget.admit(&"x".repeat(MAX_CACHED_SQL_LEN + 1), 0));
        assert!(!budget.admit("SELECT 1", MAX_CACHED_BINDS + 1));
        assert!(budget.admit("SELECT 1", MAX_CACHED_BINDS));
    }

    #[test]
    fn placeholders_follow_the_backend() {
        let mut s = SqlBuilder::new(Backend::Sqlite);
        s.push("a = ")
            .bind_text("x")
            .push(" AND b = ")
            .bind(Bind::BigInt(1));
        assert_eq!(s.sql(), "a = ? AND b = ?");
        let mut p = SqlBuilder::new(Backend::Postgres);
        p.push("a = ")
            .bind_text("x")
            .push(" AND b = ")
            .bind(Bind::BigInt(1));
        assert_eq!(p.sql(), "a = $1 AND b = $2");
        assert_eq!(p.binds().len(), 2);
    }

    #[test]
    fn pattern_metacharacters_are_escaped() {
        let mut s = SqlBuilder::new(Backend::Sqlite);
        s.push_pattern("c", PatternKind::Contains, "a*b?c[d]%_");
        assert_eq!(s.sql(), "c GLOB ?");
        assert_eq!(s.binds(), &[Bind::Text("*a[*]b[?]c[[]d]%_*".into())]);
        let mut p = SqlBuilder::new(Backend::Postgres);
        p.push_pattern("c", PatternKind::StartsWith, "a%b_c\\d*");
        assert_eq!(p.sql(), "c LIKE $1 ESCAPE '\\'");
        assert_eq!(p.binds(), &[Bind::Text("a\\%b\\_c\\\\d*%".into())]);
        let mut e = SqlBuilder::new(Backend::Postgres);
        e.push_pattern("c", PatternKind::EndsWith, "x");
        assert_eq!(e.binds(), &[Bind::Text("%x".into())]);
    }
}
