//! Hand-built SQL with typed binds, for the queries the Diesel DSL cannot
//! express once for both backends (translated filters, paging with a
//! window count).
//!
//! Every dialect difference of such queries lives here: the placeholder
//! style (`?` for SQLite, `$n` for PostgreSQL), the pattern operator
//! (`GLOB` vs `LIKE … ESCAPE`), and [`load`], the one function that matches
//! on the connection variant to run the query. Client strings only ever
//! become bind values, never SQL text.

use diesel::pg::Pg;
use diesel::query_builder::BoxedSqlQuery;
use diesel::query_builder::SqlQuery;
use diesel::query_dsl::RunQueryDsl;
use diesel::sql_types::{BigInt, Bool, Integer, Nullable, Text};
use diesel::sqlite::Sqlite;
use diesel::QueryableByName;

use crate::connection::{Backend, DbConnection};

/// A typed bind value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Bind {
    Text(String),
    NullableText(Option<String>),
    Integer(i32),
    BigInt(i64),
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

/// SQL text plus its binds in order, for one backend.
#[derive(Debug, Clone)]
pub(crate) struct SqlBuilder {
    backend: Backend,
    sql: String,
    binds: Vec<Bind>,
}

impl SqlBuilder {
    pub(crate) fn new(backend: Backend) -> Self {
        Self {
            backend,
            sql: String::with_capacity(256),
            binds: Vec::new(),
        }
    }

    /// Appends trusted SQL text (never client input).
    pub(crate) fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    /// Appends a placeholder bound to `value`.
    pub(crate) fn bind(&mut self, value: Bind) -> &mut Self {
        self.binds.push(value);
        match self.backend {
            Backend::Sqlite => self.sql.push('?'),
            Backend::Postgres => {
                self.sql.push('$');
                self.sql.push_str(&self.binds.len().to_string());
            }
        }
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

    #[cfg(test)]
    pub(crate) fn sql(&self) -> &str {
        &self.sql
    }

    #[cfg(test)]
    pub(crate) fn binds(&self) -> &[Bind] {
        &self.binds
    }
}

fn wrap(kind: PatternKind, escaped: &str, any: char) -> String {
    match kind {
        PatternKind::Contains => format!("{any}{escaped}{any}"),
        PatternKind::StartsWith => format!("{escaped}{any}"),
        PatternKind::EndsWith => format!("{any}{escaped}"),
    }
}

fn with_binds<'f, DB>(
    mut query: BoxedSqlQuery<'f, DB, SqlQuery>,
    binds: &[Bind],
) -> BoxedSqlQuery<'f, DB, SqlQuery>
where
    DB: diesel::backend::Backend
        + diesel::sql_types::HasSqlType<Text>
        + diesel::sql_types::HasSqlType<BigInt>
        + diesel::sql_types::HasSqlType<Bool>
        + diesel::sql_types::HasSqlType<Integer>,
    String: diesel::serialize::ToSql<Text, DB>,
    Option<String>: diesel::serialize::ToSql<Nullable<Text>, DB>,
    i32: diesel::serialize::ToSql<Integer, DB>,
    i64: diesel::serialize::ToSql<BigInt, DB>,
    bool: diesel::serialize::ToSql<Bool, DB>,
    Option<bool>: diesel::serialize::ToSql<Nullable<Bool>, DB>,
{
    for b in binds {
        query = match b {
            Bind::Text(s) => query.bind::<Text, _>(s.clone()),
            Bind::NullableText(s) => query.bind::<Nullable<Text>, _>(s.clone()),
            Bind::Integer(n) => query.bind::<Integer, _>(*n),
            Bind::BigInt(n) => query.bind::<BigInt, _>(*n),
            Bind::Bool(v) => query.bind::<Bool, _>(*v),
            Bind::NullableBool(v) => query.bind::<Nullable<Bool>, _>(*v),
        };
    }
    query
}

/// Runs the built query on the connection's backend and loads its rows.
pub(crate) fn load<R>(conn: &mut DbConnection, q: &SqlBuilder) -> diesel::QueryResult<Vec<R>>
where
    R: QueryableByName<Pg> + QueryableByName<Sqlite> + 'static,
{
    match conn {
        DbConnection::Sqlite(c) => {
            debug_assert_eq!(q.backend, Backend::Sqlite);
            with_binds(
                diesel::sql_query(q.sql.as_str()).into_boxed::<Sqlite>(),
                &q.binds,
            )
            .load(c)
        }
        DbConnection::Postgres(c) => {
            debug_assert_eq!(q.backend, Backend::Postgres);
            with_binds(
                diesel::sql_query(q.sql.as_str()).into_boxed::<Pg>(),
                &q.binds,
            )
            .load(c)
        }
    }
}

/// Runs the built statement on the connection's backend; returns the
/// number of rows affected.
pub(crate) fn execute(conn: &mut DbConnection, q: &SqlBuilder) -> diesel::QueryResult<usize> {
    match conn {
        DbConnection::Sqlite(c) => {
            debug_assert_eq!(q.backend, Backend::Sqlite);
            with_binds(
                diesel::sql_query(q.sql.as_str()).into_boxed::<Sqlite>(),
                &q.binds,
            )
            .execute(c)
        }
        DbConnection::Postgres(c) => {
            debug_assert_eq!(q.backend, Backend::Postgres);
            with_binds(
                diesel::sql_query(q.sql.as_str()).into_boxed::<Pg>(),
                &q.binds,
            )
            .execute(c)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
