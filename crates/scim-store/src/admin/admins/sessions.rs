//! Console sessions: opened at sign-in with a CSRF token, found by their
//! id (stored only as its SHA-256) while unexpired and their administrator
//! enabled, ended at sign-out, purged once expired. Ending every session
//! of one administrator is `accounts.rs`'s `delete_sessions_of`, beside
//! the changes that call it.

use diesel::prelude::*;

use crate::admin::admins::accounts::{random_secret, AdminRecord};
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::admin::{admin_sessions, admins};
use crate::error::StoreError;

/// A console session (never its id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// The administrator.
    pub admin: AdminRecord,
    /// The CSRF token state-changing requests must echo in a header.
    pub csrf_token: String,
    /// Creation time.
    pub created_at: String,
    /// Expiry.
    pub expires_at: String,
}

/// Opens a session for administrator `admin` until `expires_at`; returns
/// it and its id (the cookie value), which is not stored.
pub fn create_session(
    conn: &mut DbConnection,
    admin: &AdminRecord,
    expires_at: &str,
) -> Result<(SessionInfo, String), StoreError> {
    let session_id = random_secret();
    let info = SessionInfo {
        admin: admin.clone(),
        csrf_token: random_secret(),
        created_at: scim_core::datetime::now(),
        expires_at: expires_at.to_owned(),
    };
    diesel::insert_into(admin_sessions::table)
        .values((
            admin_sessions::id_hash.eq(hash_secret(&session_id)),
            admin_sessions::admin_id.eq(&admin.id),
            admin_sessions::csrf_token.eq(&info.csrf_token),
            admin_sessions::created_at.eq(&info.created_at),
            admin_sessions::expires_at.eq(&info.expires_at),
        ))
        .execute(conn)?;
    Ok((info, session_id))
}

/// The unexpired session whose id is `session_id`.
pub fn find_session(
    conn: &mut DbConnection,
    session_id: &str,
    now: &str,
) -> Result<Option<SessionInfo>, StoreError> {
    let found: Option<(AdminRecord, String, String, String)> = admin_sessions::table
        .inner_join(admins::table)
        .filter(admin_sessions::id_hash.eq(hash_secret(session_id)))
        .filter(admin_sessions::expires_at.gt(now))
        .filter(admins::disabled_at.is_null())
        .select((
            AdminRecord::as_select(),
            admin_sessions::csrf_token,
            admin_sessions::created_at,
            admin_sessions::expires_at,
        ))
        .first(conn)
        .optional()?;
    Ok(
        found.map(|(admin, csrf_token, created_at, expires_at)| SessionInfo {
            admin,
            csrf_token,
            created_at,
            expires_at,
        }),
    )
}

/// Ends the session whose id is `session_id` (no-op when unknown).
pub fn delete_session(conn: &mut DbConnection, session_id: &str) -> Result<(), StoreError> {
    diesel::delete(
        admin_sessions::table.filter(admin_sessions::id_hash.eq(hash_secret(session_id))),
    )
    .execute(conn)?;
    Ok(())
}

/// Deletes sessions that expired before `now`; returns how many.
pub fn purge_expired_sessions(conn: &mut DbConnection, now: &str) -> Result<usize, StoreError> {
    Ok(
        diesel::delete(admin_sessions::table.filter(admin_sessions::expires_at.le(now)))
            .execute(conn)?,
    )
}
