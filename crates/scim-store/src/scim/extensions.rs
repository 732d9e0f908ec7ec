//! Custom schema extensions of the User (`scim_core::extensions`): their
//! definitions in `schema_extensions`, their removal with their data, and
//! the per-process cache of the User resource type they build.
//!
//! The values of an extension live where the enterprise extension's do:
//! in each user's resource JSON under the extension URN, and in the filter
//! index `user_values` (`scim::user_values` derives one row per value,
//! attr `<urn>:<name>[.<sub>]`), so filters and `sortBy` on them are the
//! same indexed SQL as on any other attribute.
//!
//! Every replica caches the definitions ([`ExtensionCache`]) and reads them
//! again at most [`REFRESH`] after it last did: a definition made through
//! another replica applies there within that time, one small query a
//! second per process, not per request. A change made through this
//! process applies to its next request ([`ExtensionCache::invalidate`]).

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use diesel::prelude::*;
use scim_core::extensions::{ExtensionAttr, ExtensionDef, UserSchemas};
use scim_core::ScimError;

use crate::db::connection::{Backend, DbConnection};
use crate::db::schema::scim::schema_extensions;
use crate::db::sql::{execute, SqlBuilder};
use crate::error::StoreError;
use crate::scim::unique::{find_duplicate, lock_definitions, unique_leaves, UniqueLeaf};

/// How long the cached definitions are used before they are read again.
pub const REFRESH: Duration = Duration::from_secs(1);

/// Every definition, in the order they were defined.
pub fn list_extensions(conn: &mut DbConnection) -> Result<Vec<ExtensionDef>, StoreError> {
    let rows: Vec<(String, String)> = schema_extensions::table
        .select((schema_extensions::id, schema_extensions::definition))
        .order((schema_extensions::created_at, schema_extensions::id))
        .load(conn)?;
    rows.into_iter()
        .map(|(id, text)| {
            serde_json::from_str(&text).map_err(|e| {
                StoreError::internal(
                    &format!("schema_extensions.definition of {id} is not a definition"),
                    &e,
                )
            })
        })
        .collect()
}

/// The definition of `urn` (case-insensitive), or `NotFound`.
pub fn find_extension(conn: &mut DbConnection, urn: &str) -> Result<ExtensionDef, StoreError> {
    list_extensions(conn)?
        .into_iter()
        .find(|d| d.id.eq_ignore_ascii_case(urn))
        .ok_or(StoreError::NotFound)
}

/// Stores a new definition after validating it against the others
/// (`Invalid` with the core's error: `invalidValue`, or `uniqueness` for
/// a URN already defined). Run inside `Store::write`.
pub fn create_extension(
    conn: &mut DbConnection,
    def: &ExtensionDef,
    by: &str,
) -> Result<(), StoreError> {
    let others = list_extensions(conn)?;
    def.validate(&others)?;
    let now = scim_core::datetime::now();
    let text = serde_json::to_string(def)
        .map_err(|e| StoreError::internal("serialising an extension definition", &e))?;
    diesel::insert_into(schema_extensions::table)
        .values((
            schema_extensions::id.eq(&def.id),
            schema_extensions::definition.eq(text),
            schema_extensions::created_at.eq(&now),
            schema_extensions::created_by.eq(by),
            schema_extensions::updated_at.eq(&now),
        ))
        .execute(conn)?;
    Ok(())
}

/// What [`update_extension`] changed.
#[derive(Debug, Clone, PartialEq)]
pub struct ExtensionUpdate {
    /// The definition now stored.
    pub def: ExtensionDef,
    /// The attributes it added.
    pub added: Vec<String>,
    /// The attributes whose characteristics changed.
    pub changed: Vec<String>,
}

/// Replaces the definition of an existing extension with `new` (same URN),
/// keeping every value users hold: attributes may be added, and the
/// characteristics of existing ones changed where the values stored stay
/// valid as they are (`description`, `canonicalValues`, `returned`,
/// `mutability`, `required`, `caseExact`, `uniqueness`; sub-attributes
/// added). Refused, with what to do instead:
///
/// - an attribute left out, or renamed (`invalidValue`): removing one
///   deletes its values, which [`delete_extension_attribute`] does behind
///   a confirmation;
/// - `type` or `multiValued` changed, or a sub-attribute left out, while
///   some user holds values of it (`Conflict`): the stored values would
///   no longer fit; with no values stored, it is allowed;
/// - `uniqueness` set (or `caseExact` changed on a unique attribute) while
///   two live users share a value (`Conflict`, naming the value).
///
/// Values outside new `canonicalValues`, and users lacking a newly
/// `required` attribute, stay as they are: the rules apply to writes made
/// after the change. Run inside `Store::write`.
pub fn update_extension(
    conn: &mut DbConnection,
    new: &ExtensionDef,
) -> Result<ExtensionUpdate, StoreError> {
    let all = list_extensions(conn)?;
    let old = all
        .iter()
        .find(|d| d.id.eq_ignore_ascii_case(&new.id))
        .cloned()
        .ok_or(StoreError::NotFound)?;
    let invalid = |detail: String| StoreError::Invalid(ScimError::invalid_value(detail));
    if new.id != old.id {
        return Err(invalid(format!(
            "id must stay {} (the URN of an extension cannot change)",
            old.id
        )));
    }
    let others: Vec<ExtensionDef> = all.into_iter().filter(|d| d.id != old.id).collect();
    new.validate(&others)?;
    let mut added = Vec::new();
    let mut changed = Vec::new();
    let mut newly_unique = Vec::new();
    for a in &old.attributes {
        let Some(b) = new
            .attributes
            .iter()
            .find(|b| b.name.eq_ignore_ascii_case(&a.name))
        else {
            return Err(invalid(format!(
                "attributes no longer lists {name}: removing an attribute deletes the values users hold of it; remove it with DELETE /admin/api/v1/schema-extensions/{urn}/attributes/{name}?confirm={urn}:{name} (scimd schema remove-attribute)",
                name = a.name,
                urn = old.id
            )));
        };
        if b.name != a.name {
            return Err(invalid(format!(
                "{} cannot be renamed {} (values are stored under the name)",
                a.name, b.name
            )));
        }
        if a == b {
            continue;
        }
        check_attr_change(conn, &old.id, a, b)?;
        changed.push(a.name.clone());
        newly_unique.extend(unique_now(&old.id, a, b));
    }
    for b in &new.attributes {
        if !old
            .attributes
            .iter()
            .any(|a| a.name.eq_ignore_ascii_case(&b.name))
        {
            added.push(b.name.clone());
        }
    }
    if !newly_unique.is_empty() {
        // Writes hold this lock shared from before they read the
        // definitions until they commit (`scim::unique`).
        lock_definitions(conn, true)?;
        for leaf in &newly_unique {
            if let Some(value) = find_duplicate(conn, leaf)? {
                return Err(StoreError::Conflict(format!(
                    "{} cannot be made unique: more than one user holds the value {value:?}; change those users' values first",
                    leaf.attr()
                )));
            }
        }
    }
    let text = serde_json::to_string(new)
        .map_err(|e| StoreError::internal("serialising an extension definition", &e))?;
    diesel::update(schema_extensions::table.filter(schema_extensions::id.eq(&old.id)))
        .set((
            schema_extensions::definition.eq(text),
            schema_extensions::updated_at.eq(scim_core::datetime::now()),
        ))
        .execute(conn)?;
    Ok(ExtensionUpdate {
        def: new.clone(),
        added,
        changed,
    })
}

/// The unique leaves `b` has and `a` did not have with the same
/// comparison: those whose stored values must be checked for duplicates.
fn unique_now(urn: &str, a: &ExtensionAttr, b: &ExtensionAttr) -> Vec<UniqueLeaf> {
    let single = |x: &ExtensionAttr| ExtensionDef {
        id: urn.to_owned(),
        description: String::new(),
        attributes: vec![x.clone()],
    };
    let before = unique_leaves(&[single(a)]);
    unique_leaves(&[single(b)])
        .into_iter()
        .filter(|leaf| !before.contains(leaf))
        .collect()
}

/// Refuses a change of `a` into `b` that the values stored would not fit
/// (`Conflict`): `type` or `multiValued`, or a sub-attribute dropped or
/// retyped, while some user (deleted ones included: they keep their
/// values until purged) holds values of it.
fn check_attr_change(
    conn: &mut DbConnection,
    urn: &str,
    a: &ExtensionAttr,
    b: &ExtensionAttr,
) -> Result<(), StoreError> {
    let refuse = |what: String| {
        StoreError::Conflict(format!(
            "{urn}:{}: {what} while users hold values of it; remove the attribute with its values and define it again",
            a.name
        ))
    };
    // A complex attribute's values are its sub-attributes' rows.
    let attrs_of = |x: &ExtensionAttr| -> Vec<String> {
        if x.sub_attributes.is_empty() {
            vec![format!("{urn}:{}", x.name)]
        } else {
            x.sub_attributes
                .iter()
                .map(|s| format!("{urn}:{}.{}", x.name, s.name))
                .collect()
        }
    };
    if a.ty != b.ty || a.multi_valued != b.multi_valued {
        if holds_values(conn, &attrs_of(a))? {
            return Err(refuse(format!(
                "type and multiValued cannot change (from {}{} to {}{})",
                a.ty,
                if a.multi_valued { ", multiValued" } else { "" },
                b.ty,
                if b.multi_valued { ", multiValued" } else { "" }
            )));
        }
        return Ok(());
    }
    for s in &a.sub_attributes {
        let kept = b
            .sub_attributes
            .iter()
            .find(|t| t.name.eq_ignore_ascii_case(&s.name));
        let fits = kept.is_some_and(|t| t.name == s.name && t.ty == s.ty);
        if !fits && holds_values(conn, &[format!("{urn}:{}.{}", a.name, s.name)])? {
            return Err(refuse(format!(
                "its sub-attribute {} cannot be removed, renamed or retyped",
                s.name
            )));
        }
    }
    Ok(())
}

/// Whether any user holds a value of one of `attrs` (`user_values.attr`).
fn holds_values(conn: &mut DbConnection, attrs: &[String]) -> Result<bool, StoreError> {
    #[derive(diesel::QueryableByName)]
    struct Count {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
    for attr in attrs {
        let mut b = SqlBuilder::fixed(conn.backend());
        b.push("SELECT COUNT(*) AS n FROM (SELECT 1 FROM user_values WHERE attr = ")
            .bind_text(attr.clone())
            .push(" LIMIT 1) AS s");
        let rows: Vec<Count> = crate::db::sql::load(conn, &b)?;
        if rows.first().is_some_and(|r| r.n > 0) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Deletes the extension `urn` and its values from every user (their
/// version bumped); returns the definition removed and how many users
/// held values. Run inside `Store::write`.
pub fn delete_extension(
    conn: &mut DbConnection,
    urn: &str,
) -> Result<(ExtensionDef, usize), StoreError> {
    let def = find_extension(conn, urn)?;
    diesel::delete(schema_extensions::table.filter(schema_extensions::id.eq(&def.id)))
        .execute(conn)?;
    let users = strip_values(conn, &def.id, None)?;
    Ok((def, users))
}

/// Deletes the attribute `name` of extension `urn` and its values from
/// every user; returns the definition left and how many users held
/// values. An extension keeps at least one attribute: removing the last
/// one is `invalidValue` (delete the extension instead). Run inside
/// `Store::write`.
pub fn delete_extension_attribute(
    conn: &mut DbConnection,
    urn: &str,
    name: &str,
) -> Result<(ExtensionDef, usize), StoreError> {
    let mut def = find_extension(conn, urn)?;
    let Some(pos) = def
        .attributes
        .iter()
        .position(|a| a.name.eq_ignore_ascii_case(name))
    else {
        return Err(StoreError::NotFound);
    };
    if def.attributes.len() == 1 {
        return Err(StoreError::Invalid(ScimError::invalid_value(format!(
            "{name} is the last attribute of {}; delete the extension instead",
            def.id
        ))));
    }
    let removed = def.attributes.remove(pos);
    let text = serde_json::to_string(&def)
        .map_err(|e| StoreError::internal("serialising an extension definition", &e))?;
    diesel::update(schema_extensions::table.filter(schema_extensions::id.eq(&def.id)))
        .set((
            schema_extensions::definition.eq(text),
            schema_extensions::updated_at.eq(scim_core::datetime::now()),
        ))
        .execute(conn)?;
    let users = strip_values(conn, &def.id, Some(&removed.name))?;
    Ok((def, users))
}

/// Removes the values of extension `urn` (or of its attribute `attr`)
/// from every user's JSON, bumping the version and `last_modified` of each
/// user changed (so ETags and SQLite's user hints see the change), then
/// the extension object left empty, then the filter index rows. Returns
/// how many users held values.
fn strip_values(
    conn: &mut DbConnection,
    urn: &str,
    attr: Option<&str>,
) -> Result<usize, StoreError> {
    let backend = conn.backend();
    let now = scim_core::datetime::now();
    let mut b = SqlBuilder::new(backend);
    match (backend, attr) {
        // The JSON path quotes the URN, whose dots and colons are not
        // path syntax; attribute names are letters, digits, '-' and '_'.
        (Backend::Sqlite, Some(a)) => {
            let path = format!("$.\"{urn}\".\"{a}\"");
            b.push("UPDATE users SET resource = json_remove(resource, ")
                .bind_text(path.clone())
                .push("), version = version + 1, last_modified = ")
                .bind_text(now.clone())
                .push(" WHERE json_type(resource, ")
                .bind_text(path)
                .push(") IS NOT NULL");
        }
        (Backend::Sqlite, None) => {
            let path = format!("$.\"{urn}\"");
            b.push("UPDATE users SET resource = json_remove(resource, ")
                .bind_text(path.clone())
                .push("), version = version + 1, last_modified = ")
                .bind_text(now.clone())
                .push(" WHERE json_type(resource, ")
                .bind_text(path)
                .push(") IS NOT NULL");
        }
        (Backend::Postgres, Some(a)) => {
            b.push("UPDATE users SET resource = (resource::jsonb #- ARRAY[")
                .bind_text(urn)
                .push(", ")
                .bind_text(a)
                .push("])::text, version = version + 1, last_modified = ")
                .bind_text(now.clone())
                .push(" WHERE resource::jsonb -> ")
                .bind_text(urn)
                .push(" ? ")
                .bind_text(a);
        }
        (Backend::Postgres, None) => {
            b.push("UPDATE users SET resource = (resource::jsonb - ")
                .bind_text(urn)
                .push(")::text, version = version + 1, last_modified = ")
                .bind_text(now.clone())
                .push(" WHERE resource::jsonb ? ")
                .bind_text(urn);
        }
    }
    let users = execute(conn, &b)?;
    if attr.is_some() {
        // The canonical form holds no empty extension object.
        let mut e = SqlBuilder::new(backend);
        match backend {
            Backend::Sqlite => {
                let path = format!("$.\"{urn}\"");
                e.push("UPDATE users SET resource = json_remove(resource, ")
                    .bind_text(path.clone())
                    .push(") WHERE json_extract(resource, ")
                    .bind_text(path)
                    .push(") = '{}'");
            }
            Backend::Postgres => {
                e.push("UPDATE users SET resource = (resource::jsonb - ")
                    .bind_text(urn)
                    .push(")::text WHERE resource::jsonb -> ")
                    .bind_text(urn)
                    .push(" = '{}'::jsonb");
            }
        }
        execute(conn, &e)?;
    }
    // user_values rows of the extension are `<urn>:<attr>` and
    // `<urn>:<attr>.<sub>`; compared by prefix with substr, not LIKE,
    // whose `_` would match any character.
    let prefix = match attr {
        Some(a) => format!("{urn}:{a}"),
        None => format!("{urn}:"),
    };
    let mut d = SqlBuilder::new(backend);
    d.push("DELETE FROM user_values WHERE substr(attr, 1, ")
        .push(&prefix.chars().count().to_string())
        .push(") = ")
        .bind_text(prefix.clone());
    if attr.is_some() {
        d.push(" AND (attr = ")
            .bind_text(prefix.clone())
            .push(" OR substr(attr, 1, ")
            .push(&(prefix.chars().count() + 1).to_string())
            .push(") = ")
            .bind_text(format!("{prefix}."))
            .push(")");
    }
    execute(conn, &d)?;
    Ok(users)
}

/// The User resource type in force for one process: the definitions as
/// last read, read again when older than [`REFRESH`] or invalidated.
#[derive(Debug)]
pub struct ExtensionCache {
    state: RwLock<Cached>,
}

#[derive(Debug)]
struct Cached {
    schemas: Arc<UserSchemas>,
    /// When the definitions were last read; `None`: read them now.
    read_at: Option<Instant>,
}

impl Default for ExtensionCache {
    fn default() -> Self {
        Self {
            state: RwLock::new(Cached {
                schemas: Arc::new(UserSchemas::builtin()),
                read_at: None,
            }),
        }
    }
}

impl ExtensionCache {
    /// The cached User type if it is fresh.
    pub(crate) fn fresh(&self) -> Option<Arc<UserSchemas>> {
        let s = self.state.read().ok()?;
        s.read_at
            .is_some_and(|at| at.elapsed() < REFRESH)
            .then(|| Arc::clone(&s.schemas))
    }

    /// Records the definitions just read; builds a new User type only when
    /// they differ from the cached ones.
    pub(crate) fn store(&self, defs: Vec<ExtensionDef>, read_at: Instant) -> Arc<UserSchemas> {
        let Ok(mut s) = self.state.write() else {
            return Arc::new(UserSchemas::build(0, defs));
        };
        if s.schemas.defs != defs {
            s.schemas = Arc::new(UserSchemas::build(s.schemas.version + 1, defs));
        }
        s.read_at = Some(read_at);
        Arc::clone(&s.schemas)
    }

    /// Makes the next request read the definitions again.
    pub fn invalidate(&self) {
        if let Ok(mut s) = self.state.write() {
            s.read_at = None;
        }
    }
}
