//! Storage for scimd: Diesel 2 over SQLite or PostgreSQL, chosen at run
//! time by the database URL.
//!
//! [`Store`] owns the connection pools and the embedded migrations;
//! repository functions ([`users`], [`groups`], [`tokens`]) take
//! `&mut DbConnection` and run inside [`Store::read`] or [`Store::write`],
//! so that several of them (and later an audit record) can share one
//! transaction.
//!
//! Filters (RFC 7644 §3.4.2.2) are evaluated in the database: the AST from
//! `scim_core::filter` is translated to SQL through an allow-list of
//! attributes; anything else is `invalidFilter`.

pub mod backup;
mod checkpoint;
pub mod connection;
pub mod copy;
pub mod error;
mod filter;
pub mod gated;
mod group_commit;
pub mod groups;
mod list;
pub mod oauth;
mod oauth_schema;
pub mod password;
mod queue;
mod read_queue;
mod schema;
mod sql;
mod sqlite_edit;
pub mod store;
pub mod tokens;
pub mod user_batch;
mod user_hints;
pub mod users;

#[cfg(feature = "testing")]
pub mod testing;

pub use backup::{backup_sqlite, BackupError};
pub use connection::{Backend, DbConnection};
pub use error::StoreError;
pub use groups::{
    add_members, delete_group, find_group, groups_of_users, insert_group, list_group_members,
    list_groups, lock_group, remove_all_members, remove_members, remove_members_matching,
    replace_members, touch_group, update_group, GroupRecord, GroupRef, Member, MemberRef,
    MemberType,
};
pub use password::{PasswordError, PasswordHasher};
pub use store::{Answer, Store, StoreConfig};
pub use tokens::{
    authenticate_token, create_token, create_token_by, hash_secret, list_tokens, revoke_token,
    touch_token, TokenInfo,
};
pub use users::{
    count_deleted_users, count_users, delete_user, find_password_hash, find_user, insert_user,
    list_users, purge_deleted_users, purge_expired_users, soft_delete_user, update_user,
    update_user_from, ListQuery, Page, PasswordChange, UserRecord,
};

// The admin side (issue 4): sync state, SAML, run-time settings, admins.
pub mod admin;
mod admin_schema;
pub mod saml;
pub mod settings;
pub mod sync;
