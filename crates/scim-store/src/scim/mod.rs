//! The SCIM repositories (RFC 7643, RFC 7644): Users and their filter
//! index rows, Groups and their members, filter translation, lists, and
//! the gated one-statement reads.
//! They may read the admin side's run-time settings and sync state; the
//! admin side never imports them.

pub mod counts;
pub mod extensions;
pub(crate) mod filter;
pub mod groups;
pub(crate) mod list;
pub mod lookup;
pub mod members;
pub mod recorded;
pub(crate) mod unique;
pub(crate) mod user_values;
pub mod users;

use serde_json::{Map, Value};

/// A new User or Group id: a UUID v7 (RFC 9562), whose leading 48 bits
/// are the creation time in milliseconds and whose remaining 74 bits are
/// random. SCIM ids are opaque to clients (RFC 7643 §3.1); to the
/// database, time-ordered ids mean every index keyed by id (`users.id`,
/// `user_values` by user, `group_members` by group) grows at its end
/// instead of at a random leaf, so concurrent creates share the pages they
/// dirty (docs/BENCHMARKS.md). They reveal the creation time to
/// the millisecond, which `meta.created` already shows.
pub fn new_resource_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// A member of `map` by canonical name, falling back to a case-insensitive
/// match (RFC 7643 §2.1: attribute names are case-insensitive).
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| {
        map.iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    })
}
