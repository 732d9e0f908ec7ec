//! The list machinery shared by every resource type (RFC 7644 §3.4.2):
//! filter, sort and page one resource table in the database. Which
//! attributes may be filtered or sorted on is the resource's allow-list in
//! [`crate::scim::filter`].

use diesel::sql_types::{BigInt, Text};
use diesel::QueryableByName;

use scim_core::filter::{AttrPath, Filter};

use crate::db::connection::DbConnection;
use crate::db::sql::{load, Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::{push_filter, push_sort_key, Resource};

/// A page of a list query (RFC 7644 §3.4.2).
#[derive(Debug, Clone, PartialEq)]
pub struct ListQuery<'a> {
    /// Only resources matching this filter.
    pub filter: Option<&'a Filter>,
    /// Sort by this attribute (default: creation order).
    pub sort_by: Option<&'a AttrPath>,
    /// Sort descending (`sortOrder=descending`).
    pub descending: bool,
    /// 1-based index of the first result; values below 1 mean 1
    /// (RFC 7644 §3.4.2.4).
    pub start_index: i64,
    /// Maximum results; 0 returns only the total, negative means 0.
    pub count: i64,
}

/// One page of results and the total number of matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// All matches, not just this page (`totalResults`).
    pub total: i64,
    /// This page.
    pub items: Vec<T>,
}

/// The stored columns every listed resource has.
#[derive(QueryableByName)]
pub(crate) struct ListRow {
    #[diesel(sql_type = Text)]
    pub(crate) id: String,
    #[diesel(sql_type = Text)]
    pub(crate) resource: String,
    #[diesel(sql_type = BigInt)]
    pub(crate) version: i64,
    #[diesel(sql_type = Text)]
    pub(crate) created: String,
    #[diesel(sql_type = Text)]
    pub(crate) last_modified: String,
}

#[derive(QueryableByName)]
struct CountRow {
    #[diesel(sql_type = BigInt)]
    total: i64,
}

/// A page of `res` rows matching `query`, evaluated in the database.
/// Unsupported filter or sort attributes are `Invalid` (`invalidFilter` /
/// `invalidValue`).
pub(crate) fn list_rows(
    conn: &mut DbConnection,
    res: Resource,
    query: &ListQuery<'_>,
) -> Result<Page<ListRow>, StoreError> {
    let start_index = query.start_index.max(1);
    let count = query.count.max(0);
    if count == 0 {
        return Ok(Page {
            total: count_matching(conn, res, query.filter)?,
            items: Vec::new(),
        });
    }
    let offset = start_index - 1;
    let a = res.alias();
    let mut b = SqlBuilder::new(conn.backend());
    b.push("SELECT ");
    for (i, column) in ["id", "resource", "version", "created", "last_modified"]
        .iter()
        .enumerate()
    {
        if i > 0 {
            b.push(", ");
        }
        b.push(a).push(column);
    }
    b.push(" FROM ").push(res.table());
    push_where(&mut b, res, query.filter)?;
    b.push(" ORDER BY ");
    if let Some(path) = query.sort_by {
        let dir = if query.descending { " DESC" } else { " ASC" };
        // Resources without a value sort last ascending, first descending,
        // the same on both backends (whose NULL ordering differs).
        b.push("CASE WHEN ");
        push_sort_key(&mut b, res, path)?;
        b.push(" IS NULL THEN 1 ELSE 0 END").push(dir).push(", ");
        push_sort_key(&mut b, res, path)?;
        b.push(dir).push(", ");
    }
    // Creation order, then id, makes paging stable (and is indexed).
    b.push(a)
        .push("created ASC, ")
        .push(a)
        .push("id ASC LIMIT ")
        .bind(Bind::BigInt(count))
        .push(" OFFSET ")
        .bind(Bind::BigInt(offset));
    let rows: Vec<ListRow> = load(conn, &b)?;
    // The total needs no second query when the page is not full: then it
    // is the offset plus what was fetched (the common case of a filter
    // matching one resource). Otherwise count. A `COUNT(*) OVER ()` column
    // would make it one query, but it materialises every match, which
    // costs far more than LIMIT plus a separate COUNT (docs/BENCHMARKS.md).
    let fetched = i64::try_from(rows.len()).unwrap_or(i64::MAX);
    let total = if fetched > 0 && fetched < count {
        offset.saturating_add(fetched)
    } else if fetched == 0 && offset == 0 {
        0
    } else {
        count_matching(conn, res, query.filter)?
    };
    Ok(Page { total, items: rows })
}

/// How many `res` rows match `filter` (all of them without one).
pub(crate) fn count_matching(
    conn: &mut DbConnection,
    res: Resource,
    filter: Option<&Filter>,
) -> Result<i64, StoreError> {
    let mut b = SqlBuilder::new(conn.backend());
    b.push("SELECT COUNT(*) AS total FROM ").push(res.table());
    push_where(&mut b, res, filter)?;
    let rows: Vec<CountRow> = load(conn, &b)?;
    Ok(rows.first().map_or(0, |r| r.total))
}

/// ` WHERE …`: the resource's live condition and the filter, if any.
pub(crate) fn push_where(
    b: &mut SqlBuilder,
    res: Resource,
    filter: Option<&Filter>,
) -> Result<(), StoreError> {
    match (res.live_condition(), filter) {
        (None, None) => {}
        (Some(live), None) => {
            b.push(" WHERE ").push(live);
        }
        (None, Some(f)) => {
            b.push(" WHERE ");
            push_filter(b, res, f)?;
        }
        (Some(live), Some(f)) => {
            b.push(" WHERE ").push(live).push(" AND (");
            push_filter(b, res, f)?;
            b.push(")");
        }
    }
    Ok(())
}
