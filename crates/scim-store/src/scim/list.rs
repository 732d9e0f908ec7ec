//! The list machinery shared by every resource type (RFC 7644 §3.4.2):
//! filter, sort and page one resource table in the database. Which
//! attributes may be filtered or sorted on is the resource's allow-list in
//! [`crate::scim::filter`].

use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;

use scim_core::filter::{AttrPath, Filter};

use crate::db::connection::DbConnection;
use crate::db::sql::{load, Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::{
    push_filter, push_sort_key, push_sort_text, sort_key_is_bool, sort_key_number_type, Resource,
};

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

/// A position in a list's order, for keyset pages (RFC 9865 cursors): the
/// `sortBy` key's value (`None` without `sortBy`, or where the resource
/// has no value), the creation time and the id. The order is total (ids
/// are unique), so a page that starts after a position neither repeats
/// nor skips a resource that existed throughout, whatever was inserted or
/// deleted meanwhile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListKey {
    /// The `sortBy` key as stored (lowered where compared
    /// case-insensitively; booleans as text).
    pub sort: Option<String>,
    /// `meta.created` in the stored form.
    pub created: String,
    /// The resource id.
    pub id: String,
}

/// Where a keyset page reads from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seek<'a> {
    /// Forward, after this position (from the start with `None`).
    After(Option<&'a ListKey>),
    /// Backward, before this position (from the end with `None`); the page
    /// still comes in list order.
    Before(Option<&'a ListKey>),
}

/// A keyset page: the rows in list order, each with its position, and
/// whether more rows lie beyond the page in the direction read.
#[derive(Debug, Clone, PartialEq)]
pub struct KeysetPage<T> {
    /// This page, in list order.
    pub items: Vec<(T, ListKey)>,
    /// Whether rows remain past the page (after it reading forward, before
    /// it reading backward).
    pub more: bool,
}

/// A [`ListRow`] with its sort key.
#[derive(QueryableByName)]
struct KeysetRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    resource: String,
    #[diesel(sql_type = BigInt)]
    version: i64,
    #[diesel(sql_type = Text)]
    created: String,
    #[diesel(sql_type = Text)]
    last_modified: String,
    #[diesel(sql_type = Nullable<Text>)]
    sort_key: Option<String>,
}

/// Up to `limit` `res` rows matching `query.filter`, in `query`'s order,
/// from `seek` (`query.start_index` and `query.count` are not used).
/// The condition on the position is a range over the same key the rows
/// are ordered by, so without `sortBy` it walks the `(created, id)` index
/// and costs the same at the end of the collection as at its start.
pub(crate) fn list_rows_keyset(
    conn: &mut DbConnection,
    res: Resource,
    query: &ListQuery<'_>,
    seek: Seek<'_>,
    limit: i64,
) -> Result<KeysetPage<ListRow>, StoreError> {
    let limit = limit.max(0);
    let a = res.alias();
    let (backward, key) = match seek {
        Seek::After(k) => (false, k),
        Seek::Before(k) => (true, k),
    };
    let mut b = SqlBuilder::new(conn.backend());
    let sort = query
        .sort_by
        .map(|path| (path, sort_key_is_bool(res, path)));
    // A custom number sorts as a number; its position keeps the value's
    // text, and each comparison casts it as the key is cast.
    let number = query
        .sort_by
        .and_then(|path| sort_key_number_type(&b, res, path));
    // The sort key, as text (booleans cast, so that the position reads
    // back and compares as text on both backends), or a custom number.
    let push_key = |b: &mut SqlBuilder| -> Result<(), StoreError> {
        if let Some((path, cast)) = sort {
            b.push(if cast { "CAST(" } else { "(" });
            push_sort_key(b, res, path)?;
            b.push(if cast { " AS TEXT)" } else { ")" });
        }
        Ok(())
    };
    // A position's key, as the key compares.
    let bind_position = |b: &mut SqlBuilder, v: &str| {
        match number {
            Some(ty) => b.push("CAST(").bind_text(v).push(" AS ").push(ty).push(")"),
            None => b.bind_text(v),
        };
    };
    b.push("SELECT ");
    for column in ["id", "resource", "version", "created", "last_modified"] {
        b.push(a).push(column).push(", ");
    }
    match (sort, number) {
        (Some((path, _)), Some(_)) => push_sort_text(&mut b, res, path)?,
        (Some(_), None) => push_key(&mut b)?,
        (None, _) => {
            b.push("CAST(NULL AS TEXT)");
        }
    }
    b.push(" AS sort_key FROM ").push(res.table());
    push_where(&mut b, res, query.filter)?;
    if let Some(key) = key {
        b.push(" AND (");
        // Ties on the sort key are broken by (created, id), always
        // ascending.
        let tie = |b: &mut SqlBuilder| {
            b.push("(")
                .push(a)
                .push("created, ")
                .push(a)
                .push(if backward { "id) < (" } else { "id) > (" })
                .bind_text(key.created.clone())
                .push(", ")
                .bind_text(key.id.clone())
                .push(")");
        };
        if sort.is_some() {
            // Resources without a value sort last ascending and first
            // descending: reading toward greater values, they lie ahead.
            let toward_greater = backward == query.descending;
            match &key.sort {
                Some(v) => {
                    push_key(&mut b)?;
                    b.push(if toward_greater { " > " } else { " < " });
                    bind_position(&mut b, v);
                    b.push(" OR (");
                    push_key(&mut b)?;
                    b.push(" = ");
                    bind_position(&mut b, v);
                    b.push(" AND ");
                    tie(&mut b);
                    b.push(")");
                    if toward_greater {
                        b.push(" OR ");
                        push_key(&mut b)?;
                        b.push(" IS NULL");
                    }
                }
                None => {
                    b.push("(");
                    push_key(&mut b)?;
                    b.push(" IS NULL AND ");
                    tie(&mut b);
                    b.push(")");
                    if !toward_greater {
                        b.push(" OR ");
                        push_key(&mut b)?;
                        b.push(" IS NOT NULL");
                    }
                }
            }
        } else {
            tie(&mut b);
        }
        b.push(")");
    }
    b.push(" ORDER BY ");
    let reverse = |ascending: bool| if ascending { " ASC" } else { " DESC" };
    if sort.is_some() {
        let dir = reverse(query.descending == backward);
        b.push("CASE WHEN ");
        push_key(&mut b)?;
        b.push(" IS NULL THEN 1 ELSE 0 END").push(dir).push(", ");
        push_key(&mut b)?;
        b.push(dir).push(", ");
    }
    let dir = reverse(!backward);
    b.push(a)
        .push("created")
        .push(dir)
        .push(", ")
        .push(a)
        .push("id")
        .push(dir)
        .push(" LIMIT ")
        .bind(Bind::BigInt(limit.saturating_add(1)));
    let mut rows: Vec<KeysetRow> = load(conn, &b)?;
    let more = i64::try_from(rows.len()).unwrap_or(i64::MAX) > limit;
    rows.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    if backward {
        rows.reverse();
    }
    let items = rows
        .into_iter()
        .map(|r| {
            let key = ListKey {
                sort: r.sort_key,
                created: r.created.clone(),
                id: r.id.clone(),
            };
            let row = ListRow {
                id: r.id,
                resource: r.resource,
                version: r.version,
                created: r.created,
                last_modified: r.last_modified,
            };
            (row, key)
        })
        .collect();
    Ok(KeysetPage { items, more })
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

/// ` WHERE …`: the resource's scope (its organization; live users) and
/// the filter, if any.
pub(crate) fn push_where(
    b: &mut SqlBuilder,
    res: Resource,
    filter: Option<&Filter>,
) -> Result<(), StoreError> {
    b.push(" WHERE ");
    res.push_scope(b, filter);
    if let Some(f) = filter {
        b.push(" AND (");
        push_filter(b, res, f)?;
        b.push(")");
    }
    Ok(())
}
