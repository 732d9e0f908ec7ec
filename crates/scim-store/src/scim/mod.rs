//! The SCIM repositories (RFC 7643, RFC 7644): Users, Groups and their
//! members, filter translation, lists, and the gated one-statement reads.
//! They may read the admin side's run-time settings and sync state; the
//! admin side never imports them.

pub(crate) mod filter;
pub mod groups;
pub(crate) mod list;
pub mod lookup;
pub mod users;
