//! The Users repository (RFC 7643 §4.1, RFC 7644 §3.3–§3.6).
//!
//! The canonical attribute JSON (`users.resource`) is the source of truth
//! for reads. On every write the store also derives the filter columns of
//! `users` and the rows of `user_values` from it (delete, then one
//! multi-row insert), so filters run as indexed SQL. Call the writing
//! functions inside [`crate::Store::write`] so the row and its index rows
//! commit together.

use diesel::prelude::*;
use serde_json::{Map, Value};

use scim_core::ScimError;

use crate::connection::DbConnection;
use crate::error::{is_unique_violation, StoreError};
use crate::filter::{single_leaves, ElemCol, Resource, MULTI_ATTRS};
use crate::list::{count_matching, list_rows};
pub use crate::list::{ListQuery, Page};
use crate::schema::{user_values, users};
use crate::sql::{execute, Bind, SqlBuilder};

/// A stored User: the canonical attributes plus what the store manages.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    /// The server-assigned id (UUID text).
    pub id: String,
    /// The canonical attributes (no `id`, `meta`, `schemas`, `password`).
    pub attrs: Map<String, Value>,
    /// The version, bumped on every write; the ETag is derived from it.
    pub version: i64,
    /// meta.created (fixed UTC text form).
    pub created: String,
    /// meta.lastModified (fixed UTC text form).
    pub last_modified: String,
}

/// What an update does to the stored password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PasswordChange {
    /// Leave it as it is.
    Keep,
    /// Replace it with this hash (the caller hashes; the store never sees
    /// clear text).
    Set(String),
}

#[derive(Insertable)]
#[diesel(table_name = users)]
struct NewUserRow<'a> {
    id: &'a str,
    user_name: &'a str,
    user_name_ci: &'a str,
    external_id: Option<&'a str>,
    display_name_ci: Option<&'a str>,
    display_name: Option<&'a str>,
    active: bool,
    resource: &'a str,
    password_hash: Option<&'a str>,
    version: i64,
    created: &'a str,
    last_modified: &'a str,
}

#[derive(AsChangeset)]
#[diesel(table_name = users)]
struct UserChanges<'a> {
    user_name: &'a str,
    user_name_ci: &'a str,
    // `Some(None)` writes NULL; `None` would leave the column unchanged.
    external_id: Option<Option<&'a str>>,
    display_name_ci: Option<Option<&'a str>>,
    display_name: Option<Option<&'a str>>,
    active: bool,
    resource: &'a str,
    password_hash: Option<Option<&'a str>>,
    version: i64,
    last_modified: &'a str,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = users)]
struct UserRow {
    id: String,
    resource: String,
    version: i64,
    created: String,
    last_modified: String,
}

/// One row of the filter index.
#[derive(Debug, Clone, PartialEq)]
struct UserValueRow {
    user_id: String,
    attr: String,
    idx: i32,
    value: Option<String>,
    value_ci: Option<String>,
    display_ci: Option<String>,
    type_ci: Option<String>,
    is_primary: Option<bool>,
    formatted_ci: Option<String>,
    street_address_ci: Option<String>,
    locality_ci: Option<String>,
    region_ci: Option<String>,
    postal_code_ci: Option<String>,
    country_ci: Option<String>,
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

/// The columns of `users` derived from the canonical attributes.
struct Derived<'a> {
    user_name: &'a str,
    user_name_ci: String,
    external_id: Option<&'a str>,
    /// displayName as given: the `display` of the user's memberships
    /// (RFC 7643 §4.2), read by a join.
    display_name: Option<&'a str>,
    display_name_ci: Option<String>,
    active: bool,
    resource: String,
}

/// A member of `map` by canonical name, falling back to a case-insensitive
/// match (RFC 7643 §2.1: attribute names are case-insensitive).
fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
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

fn derive(attrs: &Map<String, Value>) -> Result<Derived<'_>, StoreError> {
    let user_name = match get_ci(attrs, "userName") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.as_str(),
        _ => {
            return Err(StoreError::Invalid(ScimError::invalid_value(
                "userName is required and must be a non-empty string (RFC 7643 §4.1.1)",
            )))
        }
    };
    let external_id = match get_ci(attrs, "externalId") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let display_name = match get_ci(attrs, "displayName") {
        Some(Value::String(s)) if !s.is_empty() => Some(s.as_str()),
        _ => None,
    };
    let display_name_ci = display_name.map(str::to_lowercase);
    // scimd treats a User without `active` as active; the column is NOT
    // NULL so `active eq true` is a plain indexed comparison.
    let active = !matches!(get_ci(attrs, "active"), Some(Value::Bool(false)));
    let resource = serde_json::to_string(attrs)
        .map_err(|e| StoreError::internal("serialising a user failed", &e))?;
    Ok(Derived {
        user_name,
        user_name_ci: user_name.to_lowercase(),
        external_id,
        display_name,
        display_name_ci,
        active,
        resource,
    })
}

/// The `user_values` rows for a user's attributes.
fn derive_values(user_id: &str, attrs: &Map<String, Value>) -> Vec<UserValueRow> {
    let mut rows = Vec::new();
    for (attr, keys, case_exact) in single_leaves() {
        let mut current: Option<&Value> = None;
        let mut map = Some(attrs);
        for key in &keys {
            current = map.and_then(|m| get_ci(m, key));
            map = current.and_then(Value::as_object);
        }
        if let Some(text) = current.and_then(scalar_text) {
            let mut row = UserValueRow::new(user_id, &attr, 0);
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
    rows
}

/// Replaces the filter index rows of `user_id`.
fn write_values(
    conn: &mut DbConnection,
    user_id: &str,
    attrs: &Map<String, Value>,
    replace: bool,
) -> Result<(), StoreError> {
    if replace {
        diesel::delete(user_values::table.filter(user_values::user_id.eq(user_id)))
            .execute(conn)?;
    }
    let rows = derive_values(user_id, attrs);
    // One multi-row INSERT (Diesel's batch insert is not available on the
    // multi-backend connection). Chunked so a pathological resource stays
    // under SQLite's 32766 bind parameters per statement.
    for chunk in rows.chunks(500) {
        let mut b = SqlBuilder::new(conn.backend());
        b.push(
            "INSERT INTO user_values (user_id, attr, idx, value, value_ci, display_ci, \
             type_ci, is_primary, formatted_ci, street_address_ci, locality_ci, region_ci, \
             postal_code_ci, country_ci) VALUES ",
        );
        for (i, row) in chunk.iter().enumerate() {
            b.push(if i == 0 { "(" } else { ", (" });
            b.bind_text(row.user_id.clone()).push(", ");
            b.bind_text(row.attr.clone()).push(", ");
            b.bind(Bind::Integer(row.idx)).push(", ");
            for (j, text) in [&row.value, &row.value_ci, &row.display_ci, &row.type_ci]
                .into_iter()
                .enumerate()
            {
                if j > 0 {
                    b.push(", ");
                }
                b.bind(Bind::NullableText(text.clone()));
            }
            b.push(", ").bind(Bind::NullableBool(row.is_primary));
            for text in [
                &row.formatted_ci,
                &row.street_address_ci,
                &row.locality_ci,
                &row.region_ci,
                &row.postal_code_ci,
                &row.country_ci,
            ] {
                b.push(", ").bind(Bind::NullableText(text.clone()));
            }
            b.push(")");
        }
        execute(conn, &b)?;
    }
    Ok(())
}

fn to_record(
    id: String,
    resource: &str,
    version: i64,
    created: String,
    last_modified: String,
) -> Result<UserRecord, StoreError> {
    let attrs = match serde_json::from_str::<Value>(resource) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(StoreError::internal(
                "a stored user is not a JSON object",
                &format_args!("user {id}"),
            ))
        }
        Err(e) => return Err(StoreError::internal("a stored user is not valid JSON", &e)),
    };
    Ok(UserRecord {
        id,
        attrs,
        version,
        created,
        last_modified,
    })
}

fn user_name_taken(user_name: &str) -> StoreError {
    StoreError::Conflict(format!(
        "userName \"{user_name}\" is already taken (userName is unique, case-insensitively)"
    ))
}

/// Inserts a new User with a fresh UUID v4 id, version 1, and
/// created = lastModified = now. A userName already taken (compared
/// case-insensitively, RFC 7643 §4.1.1) is `Conflict`; the database's
/// unique index decides, so two racing inserts cannot both win.
pub fn insert_user(
    conn: &mut DbConnection,
    attrs: &Map<String, Value>,
    password_hash: Option<&str>,
) -> Result<UserRecord, StoreError> {
    let d = derive(attrs)?;
    let id = uuid::Uuid::new_v4().to_string();
    let now = scim_core::datetime::now();
    diesel::insert_into(users::table)
        .values(NewUserRow {
            id: &id,
            user_name: d.user_name,
            user_name_ci: &d.user_name_ci,
            external_id: d.external_id,
            display_name_ci: d.display_name_ci.as_deref(),
            display_name: d.display_name,
            active: d.active,
            resource: &d.resource,
            password_hash,
            version: 1,
            created: &now,
            last_modified: &now,
        })
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                user_name_taken(d.user_name)
            } else {
                e.into()
            }
        })?;
    write_values(conn, &id, attrs, false)?;
    Ok(UserRecord {
        id,
        attrs: attrs.clone(),
        version: 1,
        created: now.clone(),
        last_modified: now,
    })
}

/// The User with this id, if any (an id that is not a UUID simply matches
/// nothing).
pub fn find_user(conn: &mut DbConnection, id: &str) -> Result<Option<UserRecord>, StoreError> {
    let row: Option<UserRow> = users::table
        .filter(users::id.eq(id))
        .select(UserRow::as_select())
        .first(conn)
        .optional()?;
    row.map(|r| to_record(r.id, &r.resource, r.version, r.created, r.last_modified))
        .transpose()
}

/// The stored password hash of a User (`None` if it has none);
/// `NotFound` if the user does not exist.
pub fn find_password_hash(conn: &mut DbConnection, id: &str) -> Result<Option<String>, StoreError> {
    users::table
        .filter(users::id.eq(id))
        .select(users::password_hash)
        .first::<Option<String>>(conn)
        .map_err(StoreError::from)
}

fn user_exists(conn: &mut DbConnection, id: &str) -> Result<bool, StoreError> {
    Ok(
        diesel::select(diesel::dsl::exists(users::table.filter(users::id.eq(id))))
            .get_result(conn)?,
    )
}

/// Replaces a User's attributes if its version is still `expected_version`
/// (optimistic concurrency, RFC 7644 §3.14): bumps the version and
/// lastModified. A missing user is `NotFound`, a changed one
/// `PreconditionFailed`, a userName taken by another user `Conflict`.
pub fn update_user(
    conn: &mut DbConnection,
    id: &str,
    expected_version: i64,
    attrs: &Map<String, Value>,
    password: PasswordChange,
) -> Result<UserRecord, StoreError> {
    let d = derive(attrs)?;
    let now = scim_core::datetime::now();
    let version = expected_version.saturating_add(1);
    let password_hash = match &password {
        PasswordChange::Keep => None,
        PasswordChange::Set(hash) => Some(Some(hash.as_str())),
    };
    let updated = diesel::update(
        users::table
            .filter(users::id.eq(id))
            .filter(users::version.eq(expected_version)),
    )
    .set(UserChanges {
        user_name: d.user_name,
        user_name_ci: &d.user_name_ci,
        external_id: Some(d.external_id),
        display_name_ci: Some(d.display_name_ci.as_deref()),
        display_name: Some(d.display_name),
        active: d.active,
        resource: &d.resource,
        password_hash,
        version,
        last_modified: &now,
    })
    .execute(conn)
    .map_err(|e| {
        if is_unique_violation(&e) {
            user_name_taken(d.user_name)
        } else {
            e.into()
        }
    })?;
    if updated == 0 {
        return Err(if user_exists(conn, id)? {
            StoreError::PreconditionFailed
        } else {
            StoreError::NotFound
        });
    }
    write_values(conn, id, attrs, true)?;
    let created: String = users::table
        .filter(users::id.eq(id))
        .select(users::created)
        .first(conn)?;
    Ok(UserRecord {
        id: id.to_owned(),
        attrs: attrs.clone(),
        version,
        created,
        last_modified: now,
    })
}

/// Deletes a User (and, by cascade, its index rows) and removes it from
/// every Group it belongs to, bumping those groups' version and
/// lastModified (their `members` changed, RFC 7644 §3.14), all in the
/// caller's transaction. With `expected_version`, only if the version still
/// matches (`PreconditionFailed` otherwise); a missing user is `NotFound`.
pub fn delete_user(
    conn: &mut DbConnection,
    id: &str,
    expected_version: Option<i64>,
) -> Result<(), StoreError> {
    let deleted = match expected_version {
        Some(v) => diesel::delete(
            users::table
                .filter(users::id.eq(id))
                .filter(users::version.eq(v)),
        )
        .execute(conn)?,
        None => diesel::delete(users::table.filter(users::id.eq(id))).execute(conn)?,
    };
    if deleted == 0 {
        return Err(if expected_version.is_some() && user_exists(conn, id)? {
            StoreError::PreconditionFailed
        } else {
            StoreError::NotFound
        });
    }
    // After the user row is gone (on PostgreSQL its row lock is now held):
    // a concurrent `add_members` either committed before (its row is
    // removed here) or now finds no such user.
    crate::groups::remove_from_all_groups(conn, id)?;
    Ok(())
}

/// How many Users exist.
pub fn count_users(conn: &mut DbConnection) -> Result<i64, StoreError> {
    count_matching(conn, Resource::User, None)
}

/// A page of Users matching `query.filter`, evaluated in the database
/// (RFC 7644 §3.4.2). Unsupported filter or sort attributes are
/// `Invalid` (`invalidFilter` / `invalidValue`).
pub fn list_users(
    conn: &mut DbConnection,
    query: &ListQuery<'_>,
) -> Result<Page<UserRecord>, StoreError> {
    let page = list_rows(conn, Resource::User, query)?;
    let items = page
        .items
        .into_iter()
        .map(|r| to_record(r.id, &r.resource, r.version, r.created, r.last_modified))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Page {
        total: page.total,
        items,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

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
    fn user_name_is_required() {
        let attrs = json!({"displayName": "x"});
        assert!(matches!(
            derive(attrs.as_object().unwrap()),
            Err(StoreError::Invalid(_))
        ));
        let attrs = json!({"userName": "  "});
        assert!(matches!(
            derive(attrs.as_object().unwrap()),
            Err(StoreError::Invalid(_))
        ));
    }
}
