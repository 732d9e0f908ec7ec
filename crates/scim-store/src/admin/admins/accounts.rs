//! Administrators' accounts: the record and its role, creation, look-ups
//! by id or by name (case-insensitively), and disabling, enabling,
//! deleting and a new password. Those end the account's sessions and
//! revoke the admin API tokens it created, with the two functions here
//! that do it: `sessions.rs` and `api_tokens.rs` build on the account, not
//! the other way round. Also the random secret every admin-side secret is
//! made of.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;

use crate::admin::admins::attempts::lock_key;
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::admin::{admin_sessions, admin_tokens, admins};
use crate::error::{is_unique_violation, StoreError};

/// What an administrator is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Every organization, and the organizations themselves.
    Instance,
    /// Only the organizations granted to it.
    Organization,
}

impl Role {
    /// As stored in `admins.role` and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Instance => "instance",
            Role::Organization => "organization",
        }
    }

    /// The role named `s` (`instance` or `organization`).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "instance" => Some(Role::Instance),
            "organization" => Some(Role::Organization),
            _ => None,
        }
    }
}

/// 32 random bytes, base64url.
pub fn random_secret() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// An administrator (never the hash).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = admins)]
pub struct AdminRecord {
    /// UUID text.
    pub id: String,
    /// As given at creation.
    pub username: String,
    /// Creation time.
    pub created_at: String,
    /// Last successful login.
    pub last_login_at: Option<String>,
    /// When it was disabled (`None`: enabled). A disabled administrator
    /// cannot sign in and has no session.
    pub disabled_at: Option<String>,
}

/// How many administrators exist.
pub fn count_admins(conn: &mut DbConnection) -> Result<i64, StoreError> {
    Ok(admins::table.count().get_result(conn)?)
}

/// Every administrator, oldest first.
pub fn list_admins(conn: &mut DbConnection) -> Result<Vec<AdminRecord>, StoreError> {
    Ok(admins::table
        .select(AdminRecord::as_select())
        .order((admins::created_at, admins::id))
        .load(conn)?)
}

/// Creates an administrator. A username taken case-insensitively is
/// `Conflict`.
pub fn insert_admin(
    conn: &mut DbConnection,
    username: &str,
    password_hash: &str,
) -> Result<AdminRecord, StoreError> {
    let record = AdminRecord {
        id: uuid::Uuid::new_v4().to_string(),
        username: username.to_owned(),
        created_at: scim_core::datetime::now(),
        last_login_at: None,
        disabled_at: None,
    };
    diesel::insert_into(admins::table)
        .values((
            admins::id.eq(&record.id),
            admins::username.eq(&record.username),
            admins::username_ci.eq(username.to_lowercase()),
            admins::password_hash.eq(password_hash),
            admins::created_at.eq(&record.created_at),
        ))
        .execute(conn)
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::Conflict(format!(
                    "an administrator named {username:?} already exists"
                ))
            } else {
                e.into()
            }
        })?;
    Ok(record)
}

/// The administrator named `username` (case-insensitively) and its
/// password hash, to verify a login.
pub fn find_admin_credentials(
    conn: &mut DbConnection,
    username: &str,
) -> Result<Option<(AdminRecord, String)>, StoreError> {
    // No administrator's name holds NUL (usernames are checked when
    // created), and PostgreSQL refuses it in any text parameter.
    if username.contains('\0') {
        return Ok(None);
    }
    Ok(admins::table
        .filter(admins::username_ci.eq(username.to_lowercase()))
        .select((AdminRecord::as_select(), admins::password_hash))
        .first(conn)
        .optional()?)
}

/// Records a successful login of administrator `id`.
pub fn record_admin_login(conn: &mut DbConnection, id: &str, now: &str) -> Result<(), StoreError> {
    diesel::update(admins::table.filter(admins::id.eq(id)))
        .set(admins::last_login_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// The administrator whose id is `id`.
pub fn find_admin(conn: &mut DbConnection, id: &str) -> Result<Option<AdminRecord>, StoreError> {
    crate::error::known_id(id)?;
    Ok(admins::table
        .filter(admins::id.eq(id))
        .select(AdminRecord::as_select())
        .first(conn)
        .optional()?)
}

/// The administrator named `username` (case-insensitively).
pub fn find_admin_by_name(
    conn: &mut DbConnection,
    username: &str,
) -> Result<Option<AdminRecord>, StoreError> {
    Ok(find_admin_credentials(conn, username)?.map(|(admin, _)| admin))
}

/// PostgreSQL: serialises the changes that could leave no enabled
/// administrator (disable, delete), so that two administrators disabling
/// each other at once cannot both succeed, on any replica. SQLite's writes
/// are serialised by its one writer connection.
pub(crate) fn lock_admins(conn: &mut DbConnection) -> Result<(), StoreError> {
    lock_key(conn, "admins", "enabled")
}

/// `Conflict` when `admin` is an instance administrator and no other
/// enabled instance administrator exists: someone must always be able to
/// sign in and manage every organization. An organization administrator
/// can always go (an instance administrator remains).
pub(crate) fn ensure_another_enabled(
    conn: &mut DbConnection,
    admin: &AdminRecord,
) -> Result<(), StoreError> {
    let role: String = admins::table
        .filter(admins::id.eq(&admin.id))
        .select(admins::role)
        .first(conn)?;
    if role != Role::Instance.as_str() {
        return Ok(());
    }
    let others: i64 = admins::table
        .filter(admins::id.ne(&admin.id))
        .filter(admins::disabled_at.is_null())
        .filter(admins::role.eq(Role::Instance.as_str()))
        .count()
        .get_result(conn)?;
    if others == 0 {
        return Err(StoreError::Conflict(format!(
            "{:?} is the last enabled administrator with the instance role: create or enable another instance administrator first, so that someone can still sign in and manage every organization",
            admin.username
        )));
    }
    Ok(())
}

/// The actor string an administrator's own changes are recorded under
/// (`admin:NAME`), which its admin API tokens carry in `created_by`.
pub(crate) fn actor_of(admin: &AdminRecord) -> String {
    format!("admin:{}", admin.username)
}

/// Ends every session of administrator `admin_id` except `keep` (a session
/// id, not stored: compared by hash); returns how many ended.
pub fn delete_sessions_of(
    conn: &mut DbConnection,
    admin_id: &str,
    keep: Option<&str>,
) -> Result<usize, StoreError> {
    let keep = keep.map(hash_secret).unwrap_or_default();
    Ok(diesel::delete(
        admin_sessions::table
            .filter(admin_sessions::admin_id.eq(admin_id))
            .filter(admin_sessions::id_hash.ne(keep)),
    )
    .execute(conn)?)
}

/// Revokes the admin API tokens that `admin` created (`created_by` is
/// `admin:NAME`): what an administrator set up stops working with it.
fn revoke_tokens_of(
    conn: &mut DbConnection,
    admin: &AdminRecord,
    now: &str,
) -> Result<usize, StoreError> {
    Ok(diesel::update(
        admin_tokens::table
            .filter(admin_tokens::created_by.eq(actor_of(admin)))
            .filter(admin_tokens::revoked_at.is_null()),
    )
    .set(admin_tokens::revoked_at.eq(now))
    .execute(conn)?)
}

/// Disables administrator `id` at `now`: it can no longer sign in, its
/// sessions end and the admin API tokens it created are revoked. Again is
/// a no-op; unknown id → `NotFound`; the last enabled administrator →
/// `Conflict`. Run inside [`crate::engine::Store::write`].
pub fn disable_admin(
    conn: &mut DbConnection,
    id: &str,
    now: &str,
) -> Result<AdminRecord, StoreError> {
    lock_admins(conn)?;
    let mut admin = find_admin(conn, id)?.ok_or(StoreError::NotFound)?;
    if admin.disabled_at.is_some() {
        return Ok(admin);
    }
    ensure_another_enabled(conn, &admin)?;
    diesel::update(admins::table.filter(admins::id.eq(id)))
        .set(admins::disabled_at.eq(now))
        .execute(conn)?;
    delete_sessions_of(conn, id, None)?;
    revoke_tokens_of(conn, &admin, now)?;
    admin.disabled_at = Some(now.to_owned());
    Ok(admin)
}

/// Enables administrator `id` again (its password is unchanged; revoked
/// tokens stay revoked). Unknown id → `NotFound`.
pub fn enable_admin(conn: &mut DbConnection, id: &str) -> Result<AdminRecord, StoreError> {
    let mut admin = find_admin(conn, id)?.ok_or(StoreError::NotFound)?;
    diesel::update(admins::table.filter(admins::id.eq(id)))
        .set(admins::disabled_at.eq(None::<String>))
        .execute(conn)?;
    admin.disabled_at = None;
    Ok(admin)
}

/// Deletes administrator `id`, its sessions, and revokes the admin API
/// tokens it created. Unknown id → `NotFound`; the last enabled
/// administrator → `Conflict`. Run inside [`crate::engine::Store::write`].
pub fn delete_admin(
    conn: &mut DbConnection,
    id: &str,
    now: &str,
) -> Result<AdminRecord, StoreError> {
    lock_admins(conn)?;
    let admin = find_admin(conn, id)?.ok_or(StoreError::NotFound)?;
    if admin.disabled_at.is_none() {
        ensure_another_enabled(conn, &admin)?;
    }
    delete_sessions_of(conn, id, None)?;
    revoke_tokens_of(conn, &admin, now)?;
    diesel::delete(admins::table.filter(admins::id.eq(id))).execute(conn)?;
    Ok(admin)
}

/// Replaces the password hash of administrator `id` and ends its
/// sessions, except `keep` (the session that changed its own password).
/// Unknown id → `NotFound`.
pub fn set_admin_password(
    conn: &mut DbConnection,
    id: &str,
    password_hash: &str,
    keep: Option<&str>,
) -> Result<AdminRecord, StoreError> {
    let admin = find_admin(conn, id)?.ok_or(StoreError::NotFound)?;
    diesel::update(admins::table.filter(admins::id.eq(id)))
        .set(admins::password_hash.eq(password_hash))
        .execute(conn)?;
    delete_sessions_of(conn, id, keep)?;
    Ok(admin)
}
