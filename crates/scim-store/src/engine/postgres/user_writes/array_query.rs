//! Fixed-text PostgreSQL statements bound with arrays (one element per
//! row), so that one prepared statement serves a batch of any size.

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Integer, Nullable, Text, Untyped};
use diesel::{QueryResult, RunQueryDsl};

use crate::scim::user_values::UserValueRow;

/// The columns of `user_values`, in table order.
pub(crate) const VALUE_COLUMNS: &str = "user_id, attr, idx, value, value_ci, display_ci, type_ci, \
     is_primary, formatted_ci, street_address_ci, locality_ci, region_ci, postal_code_ci, \
     country_ci";

/// One array bind per column of [`VALUE_COLUMNS`].
pub(crate) const VALUE_BINDS: &str = "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?";

/// A bound parameter of an [`ArrayQuery`]: a PostgreSQL array (one
/// element per row), or one scalar.
pub(crate) enum ArrayBind {
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
pub(crate) struct ArrayQuery<'a> {
    sql: &'a str,
    binds: Vec<ArrayBind>,
}

impl<'a> ArrayQuery<'a> {
    pub(crate) fn new(sql: &'a str) -> Self {
        Self {
            sql,
            binds: Vec::new(),
        }
    }

    pub(crate) fn bind(mut self, bind: ArrayBind) -> Self {
        self.binds.push(bind);
        self
    }

    /// Binds every column of `rows` as an array, in the order of
    /// [`VALUE_COLUMNS`].
    pub(crate) fn bind_values(self, rows: &[UserValueRow]) -> Self {
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
