//! Storage for scimd: Diesel 2 over SQLite or PostgreSQL, chosen at run
//! time by the database URL.
//!
//! [`Store`] owns the connection pools and the embedded migrations;
//! repository functions ([`scim::users`], [`scim::groups`], [`scim::members`], [`admin::tokens`]) take
//! `&mut DbConnection` and run inside [`Store::read`] or [`Store::write`],
//! so that several of them (and later an audit record) can share one
//! transaction.
//!
//! Filters (RFC 7644 §3.4.2.2) are evaluated in the database: the AST from
//! `scim_core::filter` is translated to SQL through an allow-list of
//! attributes; anything else is `invalidFilter`.
//!
//! The modules are folders by concern, and their imports point one way
//! (`scripts/store-graph.sh` fails on a cycle):
//! [`tools`] → [`engine`] → [`scim`] → [`admin`] → [`events`] → [`changes`] → [`db`] → [`error`].

pub mod admin;
pub mod changes;
pub mod db;
pub mod engine;
pub mod error;
pub mod events;
pub mod password;
pub mod scim;
pub mod tools;

#[cfg(feature = "testing")]
pub mod testing;

pub use admin::{health, oauth, organizations, saml, settings, sync, tokens};
pub use db::connection;
pub use db::org::OrgId;
pub use scim::{groups, lookup, members, recorded, users};
pub use tools::{backup, copy};

pub use admin::tokens::{
    authenticate_token, create_token_by, hash_secret, list_tokens, revoke_token, touch_token,
    TokenInfo,
};
pub use db::connection::{Backend, DbConnection};
pub use engine::{Answer, Edit, EditBy, Found, Store, StoreConfig};
pub use error::StoreError;
pub use password::{PasswordError, PasswordHasher};
pub use scim::groups::{
    delete_group, find_group, insert_group, list_groups, lock_group, touch_group, update_group,
    GroupRecord,
};
pub use scim::list::{KeysetPage, ListKey, ListQuery, Page, Seek};
pub use scim::members::{
    add_members, groups_of_users, list_group_members, remove_all_members, remove_members,
    remove_members_matching, replace_members, GroupRef, Member, MemberRef, MemberType,
    MembersChanged,
};
pub use scim::users::{
    delete_user, find_user, list_users, purge_deleted_users, soft_delete_user, PasswordChange,
    UserRecord,
};
pub use tools::backup::{backup_sqlite, BackupError};
pub use tools::purge::{purge_expired_changes, purge_expired_users};

// Functions only tests call: compiled for this crate's tests and for the
// crates above with the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub use admin::tokens::create_token;
#[cfg(any(test, feature = "testing"))]
pub use scim::users::{count_deleted_users, count_users, find_password_hash, update_user};
