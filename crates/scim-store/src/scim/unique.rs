//! `uniqueness` of custom extension attributes (RFC 7643 §2.2, §7):
//! `server` (and `global`, which for one scimd installation means the
//! same) makes a value of the attribute belong to at most one live User
//! of an organization (docs/ORGANIZATIONS.md).
//!
//! [`check_unique`] is the one check every User write path calls, inside
//! its transaction, after its own rows are written (a create, a PUT, both
//! PATCH dialects, `/Bulk`, on both backends): it reads the definitions
//! that ask for uniqueness from the database, in the same transaction, so
//! a write never relies on a process's cached copy; for each value of
//! such an attribute the write stores, it looks for another live User
//! holding the same value in the filter index `user_values` (attr
//! `<urn>:<name>` or `<urn>:<name>.<sub>`, compared as the attribute's
//! `caseExact` says). A write that stores no custom extension value costs
//! nothing here.
//!
//! Why two concurrent writes of one value cannot both succeed:
//!
//! - SQLite: every write runs on the one writer connection, one after the
//!   other (`engine/sqlite/writer.rs`), so each check sees every write
//!   before it, committed or in the writer's open transaction.
//! - PostgreSQL: before looking, a write takes a transaction-scoped
//!   advisory lock per (attribute, value) it stores, in key order (so two
//!   writes cannot deadlock on them), held to its commit. A second write
//!   of the same value waits for the first to commit, and its look, a
//!   statement begun after the lock was granted, sees the first's rows
//!   (READ COMMITTED). The writes of one batch
//!   (`engine/postgres/user_writes/`) are all written before the check,
//!   so two of them with one value find each other: the batch fails and
//!   each of its writes runs alone, each with its own answer.
//!
//! Making an existing attribute unique ([`lock_definitions`] then
//! [`find_duplicate`], `scim::extensions::update_extension`) is refused
//! while two live users share a value. On PostgreSQL a write holds the
//! definitions' advisory lock shared from before it reads them until it
//! commits, and that change takes it exclusively: either the write reads
//! the attribute as unique, or its value is committed before the change
//! looks for duplicates.

use diesel::sql_types::Text;
use diesel::QueryableByName;
use serde_json::{Map, Value};

use scim_core::extensions::{is_custom, ExtensionAttr, ExtensionDef};

use crate::db::connection::{Backend, DbConnection};
use crate::db::org::OrgId;
use crate::db::sql::{execute, load, Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::get_ci;

/// The advisory lock of the definitions' uniqueness on PostgreSQL
/// ("scimd_un"): writes hold it shared, a change that makes an attribute
/// unique exclusively.
const DEFINITIONS_LOCK: i64 = 0x7363_696d_645f_756e;

/// An attribute (or sub-attribute) whose values must be unique.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct UniqueLeaf {
    /// The extension URN.
    urn: String,
    /// The attribute's name.
    name: String,
    /// The sub-attribute's name, for a sub-attribute of a complex one.
    sub: Option<String>,
    case_exact: bool,
}

impl UniqueLeaf {
    /// Its `user_values.attr`.
    pub(crate) fn attr(&self) -> String {
        match &self.sub {
            Some(sub) => format!("{}:{}.{sub}", self.urn, self.name),
            None => format!("{}:{}", self.urn, self.name),
        }
    }
}

fn asks_uniqueness(a: &ExtensionAttr) -> bool {
    matches!(a.uniqueness.as_str(), "server" | "global")
}

/// The unique attributes and sub-attributes of `defs`.
pub(crate) fn unique_leaves(defs: &[ExtensionDef]) -> Vec<UniqueLeaf> {
    let mut leaves = Vec::new();
    for d in defs {
        for a in &d.attributes {
            if a.sub_attributes.is_empty() {
                if asks_uniqueness(a) {
                    leaves.push(UniqueLeaf {
                        urn: d.id.clone(),
                        name: a.name.clone(),
                        sub: None,
                        case_exact: a.case_exact,
                    });
                }
                continue;
            }
            for s in a.sub_attributes.iter().filter(|s| asks_uniqueness(s)) {
                leaves.push(UniqueLeaf {
                    urn: d.id.clone(),
                    name: a.name.clone(),
                    sub: Some(s.name.clone()),
                    case_exact: s.case_exact,
                });
            }
        }
    }
    leaves
}

/// The text a value has in `user_values.value` (`user_values::scalar_text`):
/// strings as written, numbers and booleans as their JSON text; an empty
/// string is unassigned (RFC 7643 §2.5).
fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The values of `leaf` in `attrs`.
fn values_of(leaf: &UniqueLeaf, attrs: &Map<String, Value>) -> Vec<String> {
    let Some(value) = get_ci(attrs, &leaf.urn)
        .and_then(Value::as_object)
        .and_then(|ext| get_ci(ext, &leaf.name))
    else {
        return Vec::new();
    };
    let items: Vec<&Value> = match value {
        Value::Array(items) => items.iter().collect(),
        one => vec![one],
    };
    let mut out: Vec<String> = items
        .into_iter()
        .filter_map(|item| match &leaf.sub {
            Some(sub) => item.as_object().and_then(|o| get_ci(o, sub)),
            None => Some(item),
        })
        .filter_map(text_of)
        .collect();
    out.sort();
    out.dedup();
    out
}

#[derive(QueryableByName)]
struct DefinitionRow {
    #[diesel(sql_type = Text)]
    definition: String,
}

/// The definitions that ask for uniqueness somewhere, as stored. The
/// definitions are stored as `serde_json` writes them, so the `LIKE`s
/// find every one that does (and may find one that only mentions it in
/// a description, which [`unique_leaves`] then ignores).
fn unique_definitions(conn: &mut DbConnection) -> Result<Vec<ExtensionDef>, StoreError> {
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push(
        "SELECT definition FROM schema_extensions \
         WHERE definition LIKE '%\"uniqueness\":\"server\"%' \
         OR definition LIKE '%\"uniqueness\":\"global\"%'",
    );
    let rows: Vec<DefinitionRow> = load(conn, &b)?;
    rows.into_iter()
        .map(|r| {
            serde_json::from_str(&r.definition).map_err(|e| {
                StoreError::internal("schema_extensions.definition is not a definition", &e)
            })
        })
        .collect()
}

/// PostgreSQL: takes the definitions' advisory lock, shared by writes or
/// exclusive for a change that makes an attribute unique, until the
/// transaction ends. SQLite serialises every write on one connection and
/// needs none.
pub(crate) fn lock_definitions(conn: &mut DbConnection, exclusive: bool) -> Result<(), StoreError> {
    if conn.backend() == Backend::Postgres {
        let mut b = SqlBuilder::fixed(Backend::Postgres);
        b.push(if exclusive {
            "SELECT pg_advisory_xact_lock("
        } else {
            "SELECT pg_advisory_xact_lock_shared("
        })
        .bind(Bind::BigInt(DEFINITIONS_LOCK))
        .push(")");
        execute(conn, &b)?;
    }
    Ok(())
}

/// The advisory lock number of one unique value of an organization on
/// PostgreSQL: the first 8 bytes of a SHA-256 of the organization, the
/// attribute and the value as compared.
fn value_lock_key(org: OrgId, attr: &str, key: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("scimd-unique\0{org}\0{attr}\0{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_be_bytes(first)
}

/// One value a write stores of a unique attribute.
struct Claim<'a> {
    user_id: &'a str,
    leaf: &'a UniqueLeaf,
    value: String,
}

impl Claim<'_> {
    /// The value as compared.
    fn key(&self) -> String {
        compared(self.leaf, &self.value)
    }
}

/// A value of `leaf` as compared: as written when caseExact, else lowered.
fn compared(leaf: &UniqueLeaf, value: &str) -> String {
    if leaf.case_exact {
        value.to_owned()
    } else {
        value.to_lowercase()
    }
}

#[derive(QueryableByName)]
struct TakenRow {
    #[diesel(sql_type = Text)]
    attr: String,
}

/// One User write as [`check_unique`] sees it: the user's id, the
/// attributes stored, and, for an edit, the attributes it had before
/// (`None`: every value counts as new).
pub(crate) type Written<'a> = (
    &'a str,
    &'a Map<String, Value>,
    Option<&'a Map<String, Value>>,
);

/// Whether `attrs` hold values of a custom extension.
pub(crate) fn carries_custom(attrs: &Map<String, Value>) -> bool {
    attrs.iter().any(|(k, v)| v.is_object() && is_custom(k))
}

/// Refuses (`Conflict`, 409 `uniqueness`) the `writes` if one of them
/// stores a value of a unique custom extension attribute that another live
/// User holds. A value the user already held before an edit is not
/// checked again: an edit of other attributes never fails on a value
/// shared before uniqueness was enforced. Call it inside the write's
/// transaction, after its rows are written (see the module docs).
pub(crate) fn check_unique(
    conn: &mut DbConnection,
    org: OrgId,
    writes: &[Written<'_>],
) -> Result<(), StoreError> {
    if !writes.iter().any(|(_, attrs, _)| carries_custom(attrs)) {
        return Ok(());
    }
    lock_definitions(conn, false)?;
    let leaves = unique_leaves(&unique_definitions(conn)?);
    if leaves.is_empty() {
        return Ok(());
    }
    let mut claims = Vec::new();
    for (user_id, attrs, before) in writes {
        for leaf in &leaves {
            let held: Vec<String> = before.map_or_else(Vec::new, |b| {
                values_of(leaf, b)
                    .into_iter()
                    .map(|value| compared(leaf, &value))
                    .collect()
            });
            for value in values_of(leaf, attrs) {
                if !held.contains(&compared(leaf, &value)) {
                    claims.push(Claim {
                        user_id,
                        leaf,
                        value,
                    });
                }
            }
        }
    }
    if claims.is_empty() {
        return Ok(());
    }
    let backend = conn.backend();
    if backend == Backend::Postgres {
        let mut keys: Vec<i64> = claims
            .iter()
            .map(|c| value_lock_key(org, &c.leaf.attr(), &c.key()))
            .collect();
        keys.sort_unstable();
        keys.dedup();
        for key in keys {
            let mut b = SqlBuilder::fixed(backend);
            b.push("SELECT pg_advisory_xact_lock(")
                .bind(Bind::BigInt(key))
                .push(")");
            execute(conn, &b)?;
        }
    }
    for claim in &claims {
        let attr = claim.leaf.attr();
        let mut b = SqlBuilder::fixed(backend);
        b.push(
            "SELECT v.attr AS attr FROM user_values v JOIN users u ON u.id = v.user_id \
             WHERE u.deleted_at IS NULL AND v.org_id = ",
        )
        .bind(Bind::Integer(org.0))
        .push(" AND v.attr = ")
        .bind_text(attr.clone())
        .push(" AND ");
        b.push_hashed_eq("v.value_ci", claim.value.to_lowercase());
        if claim.leaf.case_exact {
            b.push(" AND v.value = ").bind_text(claim.value.clone());
        }
        b.push(" AND v.user_id <> ")
            .bind_text(claim.user_id)
            .push(" LIMIT 1");
        let taken: Vec<TakenRow> = load(conn, &b)?;
        if let Some(row) = taken.first() {
            return Err(StoreError::Conflict(format!(
                "{} {:?} is already held by another user: {} has uniqueness \"server\" (RFC 7643 §2.2); choose another value",
                row.attr, claim.value, row.attr
            )));
        }
    }
    Ok(())
}

/// A value that two live users of one organization hold of `leaf`,
/// compared as its `caseExact` says, if any (uniqueness is per
/// organization; the definitions are every organization's): a definition making the attribute unique is refused
/// while one exists. Call [`lock_definitions`] exclusively first.
pub(crate) fn find_duplicate(
    conn: &mut DbConnection,
    leaf: &UniqueLeaf,
) -> Result<Option<String>, StoreError> {
    #[derive(QueryableByName)]
    struct Dup {
        #[diesel(sql_type = Text)]
        value: String,
    }
    let column = if leaf.case_exact {
        "v.value"
    } else {
        "v.value_ci"
    };
    let mut b = SqlBuilder::fixed(conn.backend());
    b.push(
        "SELECT MIN(v.value) AS value FROM user_values v JOIN users u ON u.id = v.user_id \
         WHERE u.deleted_at IS NULL AND v.attr = ",
    )
    .bind_text(leaf.attr())
    .push(" AND v.value IS NOT NULL GROUP BY v.org_id, ")
    .push(column)
    .push(" HAVING COUNT(DISTINCT v.user_id) > 1 LIMIT 1");
    let rows: Vec<Dup> = load(conn, &b)?;
    Ok(rows.into_iter().next().map(|d| d.value))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use serde_json::json;

    const URN: &str = "urn:ietf:params:scim:schemas:extension:Acme:2.0:User";

    /// PostgreSQL, two transactions writing one value: the second waits
    /// for the first's advisory lock, and once the first commits, finds
    /// its value (without the lock, neither would see the other's
    /// uncommitted row and both would commit).
    #[test]
    fn a_second_writer_of_a_value_waits_for_the_first_and_is_refused() {
        use std::sync::mpsc;
        let Some(db) = crate::testing::TestDb::postgres() else {
            return;
        };
        let store = db.store().clone();
        let def: ExtensionDef = serde_json::from_value(json!({
            "id": URN,
            "attributes": [{"name": "badge", "type": "string", "uniqueness": "server"}]
        }))
        .unwrap();
        store
            .write(|c| {
                use crate::db::schema::scim::schema_extensions as t;
                use diesel::{ExpressionMethods, RunQueryDsl};
                let now = scim_core::datetime::now();
                diesel::insert_into(t::table)
                    .values((
                        t::id.eq(&def.id),
                        t::definition.eq(serde_json::to_string(&def).unwrap()),
                        t::created_at.eq(&now),
                        t::created_by.eq("tests"),
                        t::updated_at.eq(&now),
                    ))
                    .execute(c)?;
                Ok(())
            })
            .unwrap();
        let attrs = |name: &str| {
            json!({"userName": name, URN: {"badge": "B-1"}})
                .as_object()
                .unwrap()
                .clone()
        };
        let write = |store: crate::engine::Store,
                     name: &'static str,
                     hold: Option<(mpsc::Sender<()>, mpsc::Receiver<()>)>| {
            let attrs = attrs(name);
            std::thread::spawn(move || {
                store.write(|c| {
                    let rec = crate::scim::users::insert_user(c, OrgId::DEFAULT, &attrs, None)?;
                    check_unique(c, OrgId::DEFAULT, &[(&rec.id, &rec.attrs, None)])?;
                    if let Some((checked, commit)) = &hold {
                        checked.send(()).unwrap();
                        commit.recv().unwrap();
                    }
                    Ok(rec.id)
                })
            })
        };
        let (checked_tx, checked) = mpsc::channel();
        let (commit, commit_rx) = mpsc::channel();
        let first = write(store.clone(), "first", Some((checked_tx, commit_rx)));
        checked.recv().unwrap();
        let second = write(store.clone(), "second", None);
        // The second waits on an advisory lock (or, without one, ends).
        #[derive(diesel::QueryableByName)]
        struct Waiting {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        loop {
            let waiting = store
                .read(|c| {
                    let mut b = SqlBuilder::fixed(Backend::Postgres);
                    b.push(
                        "SELECT COUNT(*) AS n FROM pg_locks WHERE NOT granted \
                         AND locktype = 'advisory' AND database = \
                         (SELECT oid FROM pg_database WHERE datname = current_database())",
                    );
                    Ok(load::<Waiting>(c, &b)?[0].n)
                })
                .unwrap();
            if waiting > 0 || second.is_finished() {
                break;
            }
            std::thread::yield_now();
        }
        assert!(!second.is_finished(), "the second writer did not wait");
        commit.send(()).unwrap();
        assert!(first.join().unwrap().is_ok());
        match second.join().unwrap() {
            Err(StoreError::Conflict(detail)) => {
                assert!(detail.contains(&format!("{URN}:badge")), "{detail}")
            }
            other => panic!("the second write must be refused: {other:?}"),
        }
    }

    #[test]
    fn leaves_are_the_unique_attributes_and_sub_attributes() {
        let def: ExtensionDef = serde_json::from_value(json!({
            "id": URN,
            "attributes": [
                {"name": "badge", "type": "string", "uniqueness": "server"},
                {"name": "code", "type": "string", "uniqueness": "global", "caseExact": true},
                {"name": "plain", "type": "string"},
                {"name": "desk", "type": "complex", "multiValued": true, "subAttributes": [
                    {"name": "tag", "type": "integer", "uniqueness": "server"},
                    {"name": "note", "type": "string"}]}
            ]
        }))
        .unwrap();
        let leaves = unique_leaves(&[def]);
        let attrs: Vec<String> = leaves.iter().map(UniqueLeaf::attr).collect();
        assert_eq!(
            attrs,
            [
                format!("{URN}:badge"),
                format!("{URN}:code"),
                format!("{URN}:desk.tag")
            ]
        );
        let user = json!({URN: {"badge": "B-1", "code": "", "desk": [{"tag": 7}, {"tag": 7}, {"note": "x"}]}});
        let user = user.as_object().unwrap();
        assert_eq!(values_of(&leaves[0], user), ["B-1"]);
        assert!(
            values_of(&leaves[1], user).is_empty(),
            "empty is unassigned"
        );
        assert_eq!(values_of(&leaves[2], user), ["7"]);
    }
}
