//! Integration tests of scim-store. Every storage test runs on SQLite and
//! PostgreSQL (`TEST_DATABASE_URL`; see `scim_store::testing`).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod changes;
mod connect;
mod filters;
mod groups;
mod migrations;
mod tokens;
mod transactions;
mod users;

use serde_json::{json, Map, Value};

/// A canonical attribute map from a JSON literal.
pub fn attrs(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

/// Returns as soon as the clock has passed `stamp` (a stored timestamp, to
/// the microsecond), so that the next write is stamped later: distinct,
/// ordered `meta` timestamps without sleeping.
pub fn after(stamp: &str) {
    while scim_core::datetime::now().as_str() <= stamp {
        std::hint::spin_loop();
    }
}

/// A minimal user.
pub fn user(name: &str) -> Map<String, Value> {
    attrs(json!({ "userName": name, "active": true }))
}
