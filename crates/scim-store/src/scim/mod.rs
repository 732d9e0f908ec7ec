//! The SCIM repositories (RFC 7643, RFC 7644): Users, Groups and their
//! members, filter translation, lists, and the gated one-statement reads.
//! They may read the admin side's run-time settings and sync state; the
//! admin side never imports them.

pub(crate) mod filter;
pub mod groups;
pub(crate) mod list;
pub mod lookup;
pub mod users;

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
