//! The filter index of Users: the rows of `user_values`, one per single
//! attribute's value and one per element of a multi-valued attribute
//! (RFC 7643 §2.4), derived from the canonical attributes on every write
//! ([`derive_values`]) so that filters (RFC 7644 §3.4.2.2) run as indexed
//! SQL. An update writes only the rows that differ ([`diff_values`]).
//! Every change to how rows are derived needs a migration that rebuilds
//! `user_values`, since updates diff against the stored rows.

use std::collections::{HashMap, HashSet};

#[cfg(any(test, feature = "testing"))]
use diesel::sql_types::{Bool, Integer, Nullable, Text};
#[cfg(any(test, feature = "testing"))]
use diesel::QueryableByName;
use serde_json::{Map, Value};

use crate::db::connection::Backend;
#[cfg(any(test, feature = "testing"))]
use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
#[cfg(any(test, feature = "testing"))]
use crate::db::sql::{execute, load};
use crate::db::sql::{Bind, SqlBuilder, INSERT_CHUNK};
#[cfg(any(test, feature = "testing"))]
use crate::error::StoreError;
use crate::scim::filter::{single_leaves, ElemCol, MULTI_ATTRS};
use crate::scim::get_ci;

/// One row of the filter index.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UserValueRow {
    pub(crate) user_id: String,
    pub(crate) attr: String,
    pub(crate) idx: i32,
    pub(crate) value: Option<String>,
    pub(crate) value_ci: Option<String>,
    pub(crate) display_ci: Option<String>,
    pub(crate) type_ci: Option<String>,
    pub(crate) is_primary: Option<bool>,
    pub(crate) formatted_ci: Option<String>,
    pub(crate) street_address_ci: Option<String>,
    pub(crate) locality_ci: Option<String>,
    pub(crate) region_ci: Option<String>,
    pub(crate) postal_code_ci: Option<String>,
    pub(crate) country_ci: Option<String>,
}

impl UserValueRow {
    fn new(user_id: &str, attr: &str, idx: i32) -> Self {
        Self {
            user_id: user_id.to_owned(),
            attr: attr.to_owned(),
            idx,
            value: None,
            value_ci: None,
            display_ci: None,
            type_ci: None,
            is_primary: None,
            formatted_ci: None,
            street_address_ci: None,
            locality_ci: None,
            region_ci: None,
            postal_code_ci: None,
            country_ci: None,
        }
    }
}

/// The text form of a scalar, or `None` for null, "", objects and arrays
/// (an empty string is treated as unassigned, RFC 7643 §2.5).
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The `user_values` rows for a user's attributes.
pub(crate) fn derive_values(user_id: &str, attrs: &Map<String, Value>) -> Vec<UserValueRow> {
    let mut rows = Vec::new();
    for (attr, keys, case_exact) in single_leaves() {
        let case_exact = *case_exact;
        let mut current: Option<&Value> = None;
        let mut map = Some(attrs);
        for key in keys {
            current = map.and_then(|m| get_ci(m, key));
            map = current.and_then(Value::as_object);
        }
        if let Some(text) = current.and_then(scalar_text) {
            let mut row = UserValueRow::new(user_id, attr, 0);
            row.value_ci = Some(if case_exact {
                text.clone()
            } else {
                text.to_lowercase()
            });
            row.value = Some(text);
            rows.push(row);
        }
    }
    for multi in MULTI_ATTRS {
        let Some(Value::Array(items)) = get_ci(attrs, multi.name) else {
            continue;
        };
        for (idx, item) in items.iter().enumerate() {
            let Ok(idx) = i32::try_from(idx) else {
                break;
            };
            let mut row = UserValueRow::new(user_id, multi.name, idx);
            let lower = |v: Option<&Value>| v.and_then(scalar_text).map(|s| s.to_lowercase());
            match item {
                Value::Object(el) => {
                    for col in multi.subs {
                        let v = get_ci(el, col.name());
                        match col {
                            ElemCol::Value => {
                                if let Some(text) = v.and_then(scalar_text) {
                                    row.value_ci = Some(if multi.value_case_exact {
                                        text.clone()
                                    } else {
                                        text.to_lowercase()
                                    });
                                    row.value = Some(text);
                                }
                            }
                            ElemCol::Display => row.display_ci = lower(v),
                            ElemCol::Type => row.type_ci = lower(v),
                            ElemCol::Primary => row.is_primary = v.and_then(Value::as_bool),
                            ElemCol::Formatted => row.formatted_ci = lower(v),
                            ElemCol::StreetAddress => row.street_address_ci = lower(v),
                            ElemCol::Locality => row.locality_ci = lower(v),
                            ElemCol::Region => row.region_ci = lower(v),
                            ElemCol::PostalCode => row.postal_code_ci = lower(v),
                            ElemCol::Country => row.country_ci = lower(v),
                        }
                    }
                }
                scalar => {
                    if let Some(text) = scalar_text(scalar) {
                        row.value_ci = Some(if multi.value_case_exact {
                            text.clone()
                        } else {
                            text.to_lowercase()
                        });
                        row.value = Some(text);
                    }
                }
            }
            rows.push(row);
        }
    }
    for (urn, ext) in attrs {
        if let (true, Value::Object(ext)) = (scim_core::extensions::is_custom(urn), ext) {
            custom_values(user_id, urn, ext, &mut rows);
        }
    }
    rows
}

/// The rows of a custom extension's values (`scim::extensions`): attr
/// `<urn>:<name>` for a simple value and `<urn>:<name>.<sub>` for a
/// sub-attribute's, `idx` the element's position for a multi-valued
/// attribute; `value` as written (numbers and booleans as their JSON
/// text) and `value_ci` lowered, whatever the type and caseExact: the
/// filter translation picks the column and the comparison from the
/// definition, so the rows need none (and a changed definition needs no
/// rebuild of them).
fn custom_values(user_id: &str, urn: &str, ext: &Map<String, Value>, rows: &mut Vec<UserValueRow>) {
    let mut push = |attr: String, idx: usize, v: &Value| {
        let (Some(text), Ok(idx)) = (scalar_text(v), i32::try_from(idx)) else {
            return;
        };
        let mut row = UserValueRow::new(user_id, &attr, idx);
        row.value_ci = Some(text.to_lowercase());
        row.value = Some(text);
        rows.push(row);
    };
    for (name, value) in ext {
        let attr = format!("{urn}:{name}");
        let items: Vec<&Value> = match value {
            Value::Array(items) => items.iter().collect(),
            one => vec![one],
        };
        for (idx, item) in items.into_iter().enumerate() {
            match item {
                Value::Object(subs) => {
                    for (sub, v) in subs {
                        push(format!("{attr}.{sub}"), idx, v);
                    }
                }
                scalar => push(attr.clone(), idx, scalar),
            }
        }
    }
}

/// The `user_values` columns after `user_id, attr, idx`, in the order every
/// statement below binds them.
const VALUE_COLUMNS: [&str; 11] = [
    "value",
    "value_ci",
    "display_ci",
    "type_ci",
    "is_primary",
    "formatted_ci",
    "street_address_ci",
    "locality_ci",
    "region_ci",
    "postal_code_ci",
    "country_ci",
];

impl UserValueRow {
    /// Binds the columns of [`VALUE_COLUMNS`], comma-separated.
    fn bind_values(&self, b: &mut SqlBuilder) {
        for (j, text) in [&self.value, &self.value_ci, &self.display_ci, &self.type_ci]
            .into_iter()
            .enumerate()
        {
            if j > 0 {
                b.push(", ");
            }
            b.bind(Bind::NullableText(text.clone()));
        }
        b.push(", ").bind(Bind::NullableBool(self.is_primary));
        for text in [
            &self.formatted_ci,
            &self.street_address_ci,
            &self.locality_ci,
            &self.region_ci,
            &self.postal_code_ci,
            &self.country_ci,
        ] {
            b.push(", ").bind(Bind::NullableText(text.clone()));
        }
    }
}

/// A stored `user_values` row, as read back for diffing.
#[derive(QueryableByName)]
#[cfg(any(test, feature = "testing"))]
struct StoredValueRow {
    #[diesel(sql_type = Text)]
    attr: String,
    #[diesel(sql_type = Integer)]
    idx: i32,
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    value_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    display_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    type_ci: Option<String>,
    #[diesel(sql_type = Nullable<Bool>)]
    is_primary: Option<bool>,
    #[diesel(sql_type = Nullable<Text>)]
    formatted_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    street_address_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    locality_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    region_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    postal_code_ci: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    country_ci: Option<String>,
}

/// The filter index rows stored for `user_id` (one range scan of the
/// primary key).
#[cfg(any(test, feature = "testing"))]
pub(crate) fn stored_values(
    conn: &mut DbConnection,
    user_id: &str,
) -> Result<Vec<UserValueRow>, StoreError> {
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push("SELECT attr, idx, ")
        .push(&VALUE_COLUMNS.join(", "))
        .push(" FROM user_values WHERE user_id = ")
        .bind_text(user_id);
    let rows: Vec<StoredValueRow> = load(conn, &b)?;
    Ok(rows
        .into_iter()
        .map(|r| UserValueRow {
            user_id: user_id.to_owned(),
            attr: r.attr,
            idx: r.idx,
            value: r.value,
            value_ci: r.value_ci,
            display_ci: r.display_ci,
            type_ci: r.type_ci,
            is_primary: r.is_primary,
            formatted_ci: r.formatted_ci,
            street_address_ci: r.street_address_ci,
            locality_ci: r.locality_ci,
            region_ci: r.region_ci,
            postal_code_ci: r.postal_code_ci,
            country_ci: r.country_ci,
        })
        .collect())
}

/// The INSERTs of `rows`: multi-row, at most [`INSERT_CHUNK`] rows each
/// (Diesel's batch insert is not available on the multi-backend
/// connection). Each chunk size is one cached statement. The rows are the
/// organization `org`'s (the user's).
pub(crate) fn insert_values_sql(
    backend: Backend,
    org: OrgId,
    rows: &[UserValueRow],
) -> Vec<SqlBuilder> {
    rows.chunks(INSERT_CHUNK)
        .map(|chunk| {
            let mut b = SqlBuilder::fixed(backend);
            b.push("INSERT INTO user_values (org_id, user_id, attr, idx, ")
                .push(&VALUE_COLUMNS.join(", "))
                .push(") VALUES ");
            for (i, row) in chunk.iter().enumerate() {
                b.push(if i == 0 { "(" } else { ", (" });
                b.bind(Bind::Integer(org.0)).push(", ");
                b.bind_text(row.user_id.clone()).push(", ");
                b.bind_text(row.attr.clone()).push(", ");
                b.bind(Bind::Integer(row.idx)).push(", ");
                row.bind_values(&mut b);
                b.push(")");
            }
            b
        })
        .collect()
}

/// Rows to delete, rows to update (stored, new), rows to insert.
pub(crate) type ValueDiff<'a> = (
    Vec<&'a UserValueRow>,
    Vec<(&'a UserValueRow, &'a UserValueRow)>,
    Vec<UserValueRow>,
);

/// What turns the stored index rows `old` into `new`: rows to delete (by
/// key), rows to update in place, rows to insert. Rows equal in both are
/// left alone, so a PATCH of `title` touches one row.
/// Changed rows come as (stored, new).
pub(crate) fn diff_values<'a>(old: &'a [UserValueRow], new: &'a [UserValueRow]) -> ValueDiff<'a> {
    let key = |r: &'a UserValueRow| (r.attr.as_str(), r.idx);
    let old_by_key: HashMap<_, _> = old.iter().map(|r| (key(r), r)).collect();
    let new_keys: HashSet<_> = new.iter().map(key).collect();
    let removed = old.iter().filter(|r| !new_keys.contains(&key(r))).collect();
    let mut changed = Vec::new();
    let mut added = Vec::new();
    for row in new {
        match old_by_key.get(&key(row)) {
            Some(stored) if *stored == row => {}
            Some(stored) => changed.push((*stored, row)),
            None => added.push(row.clone()),
        }
    }
    (removed, changed, added)
}

/// Brings the filter index rows of `user_id` from `old` to `new`, writing
/// only the rows that differ.
#[cfg(any(test, feature = "testing"))]
pub(crate) fn write_value_diff(
    conn: &mut DbConnection,
    org: OrgId,
    user_id: &str,
    old: &[UserValueRow],
    new: &[UserValueRow],
) -> Result<(), StoreError> {
    for statement in value_diff_sql(conn.backend(), org, user_id, old, new) {
        execute(conn, &statement)?;
    }
    Ok(())
}

/// The statements of [`write_value_diff`]: a DELETE per row gone, an
/// UPDATE per row changed (of the columns that change only, so an
/// unchanged `value_ci` leaves its index alone), and the INSERTs of the
/// rows added. Pure, so a write can be prepared off the writer thread.
pub(crate) fn value_diff_sql(
    backend: Backend,
    org: OrgId,
    user_id: &str,
    old: &[UserValueRow],
    new: &[UserValueRow],
) -> Vec<SqlBuilder> {
    let (removed, changed, added) = diff_values(old, new);
    let mut statements = Vec::with_capacity(removed.len() + changed.len() + 1);
    for row in removed {
        let mut b = SqlBuilder::fixed(backend);
        b.push("DELETE FROM user_values WHERE user_id = ")
            .bind_text(user_id)
            .push(" AND attr = ")
            .bind_text(row.attr.clone())
            .push(" AND idx = ")
            .bind(Bind::Integer(row.idx));
        statements.push(b);
    }
    for (stored, row) in changed {
        let mut b = SqlBuilder::fixed(backend);
        b.push("UPDATE user_values SET ");
        // `col = ?` pairs of the columns that change, in VALUE_COLUMNS
        // order: an unchanged `value_ci` then leaves its index alone.
        let mut before = SqlBuilder::fixed(backend);
        stored.bind_values(&mut before);
        let mut after = SqlBuilder::fixed(backend);
        row.bind_values(&mut after);
        let mut first = true;
        for ((column, old), new) in VALUE_COLUMNS
            .iter()
            .zip(before.into_binds())
            .zip(after.into_binds())
        {
            if old == new {
                continue;
            }
            if !first {
                b.push(", ");
            }
            first = false;
            b.push(column).push(" = ").bind(new);
        }
        b.push(" WHERE user_id = ")
            .bind_text(user_id)
            .push(" AND attr = ")
            .bind_text(row.attr.clone())
            .push(" AND idx = ")
            .bind(Bind::Integer(row.idx));
        statements.push(b);
    }
    statements.extend(insert_values_sql(backend, org, &added));
    statements
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn custom_extension_values_get_rows() {
        let urn = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
        let attrs = json!({
            "userName": "u",
            urn: {"CustomAttribute": "Blue", "tags": ["a", "B"], "site": {"floor": 3}, "ok": true}
        });
        let rows = derive_values("u1", attrs.as_object().unwrap());
        let got: Vec<(String, i32, Option<String>, Option<String>)> = rows
            .iter()
            .filter(|r| r.attr.starts_with(urn))
            .map(|r| {
                (
                    r.attr[urn.len()..].to_owned(),
                    r.idx,
                    r.value.clone(),
                    r.value_ci.clone(),
                )
            })
            .collect();
        let s = |x: &str| Some(x.to_owned());
        assert_eq!(
            got,
            vec![
                (":CustomAttribute".into(), 0, s("Blue"), s("blue")),
                (":ok".into(), 0, s("true"), s("true")),
                (":site.floor".into(), 0, s("3"), s("3")),
                (":tags".into(), 0, s("a"), s("a")),
                (":tags".into(), 1, s("B"), s("b")),
            ]
        );
    }

    #[test]
    fn index_rows_follow_the_canonical_form() {
        let attrs = json!({
            "userName": "Bob",
            "name": {"givenName": "Bob", "familyName": "O'Neil"},
            "title": "",
            "emails": [{"value": "Bob@X.com", "type": "Work", "primary": true}, {"value": "b@y"}],
            "photos": [{"value": "https://X/p.jpg"}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                "department": "R&D", "manager": {"value": "ABC-1"}
            }
        });
        let rows = derive_values("u1", attrs.as_object().unwrap());
        let get = |attr: &str, idx: i32| {
            rows.iter()
                .find(|r| r.attr == attr && r.idx == idx)
                .cloned()
        };
        assert_eq!(
            get("name.familyName", 0).unwrap().value_ci.as_deref(),
            Some("o'neil")
        );
        assert!(get("title", 0).is_none(), "empty strings are unassigned");
        let e0 = get("emails", 0).unwrap();
        assert_eq!(e0.value.as_deref(), Some("Bob@X.com"));
        assert_eq!(e0.value_ci.as_deref(), Some("bob@x.com"));
        assert_eq!(e0.type_ci.as_deref(), Some("work"));
        assert_eq!(e0.is_primary, Some(true));
        assert_eq!(get("emails", 1).unwrap().is_primary, None);
        assert_eq!(
            get("photos", 0).unwrap().value_ci.as_deref(),
            Some("https://X/p.jpg")
        );
        assert_eq!(
            get(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                0
            )
            .unwrap()
            .value_ci
            .as_deref(),
            Some("ABC-1")
        );
        assert_eq!(
            get(
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                0
            )
            .unwrap()
            .value_ci
            .as_deref(),
            Some("r&d")
        );
    }

    #[test]
    fn a_title_change_touches_one_row() {
        let old = json!({
            "userName": "a", "title": "Engineer",
            "emails": [{"value": "a@x"}, {"value": "b@x"}]
        });
        let mut new = old.clone();
        new["title"] = json!("Manager");
        let old = derive_values("u", old.as_object().unwrap());
        let new = derive_values("u", new.as_object().unwrap());
        let (removed, changed, added) = diff_values(&old, &new);
        assert!(removed.is_empty());
        assert!(added.is_empty());
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].1.attr, "title");
        assert_eq!(changed[0].0.value.as_deref(), Some("Engineer"));
        assert_eq!(changed[0].1.value.as_deref(), Some("Manager"));
        let (removed, changed, added) = diff_values(&new, &new);
        assert!(removed.is_empty() && changed.is_empty() && added.is_empty());
    }
}
