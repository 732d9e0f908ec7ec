//! First-run setup codes: while no administrator exists, an unexpired
//! code (only its SHA-256 is kept) lets the first one be created.

use diesel::prelude::*;

use crate::admin::admins::accounts::{count_admins, insert_admin, random_secret, AdminRecord};
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::admin::admin_setup_codes;
use crate::error::StoreError;

/// Stores a new first-run setup code valid until `expires_at`; returns the
/// code (not stored).
pub fn create_setup_code(conn: &mut DbConnection, expires_at: &str) -> Result<String, StoreError> {
    let code = random_secret();
    diesel::insert_into(admin_setup_codes::table)
        .values((
            admin_setup_codes::code_hash.eq(hash_secret(&code)),
            admin_setup_codes::created_at.eq(scim_core::datetime::now()),
            admin_setup_codes::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(code)
}

/// Whether `code` is a known setup code unexpired at `now`.
pub fn setup_code_valid(
    conn: &mut DbConnection,
    code: &str,
    now: &str,
) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        admin_setup_codes::table
            .filter(admin_setup_codes::code_hash.eq(hash_secret(code)))
            .filter(admin_setup_codes::expires_at.gt(now)),
    ))
    .get_result(conn)?)
}

/// Creates the first administrator with a setup code: the code must be
/// known and unexpired, and no administrator may exist yet (else
/// `PreconditionFailed`). Every setup code is then deleted. Run inside
/// `Store::write`, so two racing setups cannot both succeed.
pub fn create_first_admin(
    conn: &mut DbConnection,
    code: &str,
    username: &str,
    password_hash: &str,
    now: &str,
) -> Result<Option<AdminRecord>, StoreError> {
    if count_admins(conn)? > 0 {
        return Err(StoreError::PreconditionFailed);
    }
    if !setup_code_valid(conn, code, now)? {
        return Ok(None);
    }
    let admin = insert_admin(conn, username, password_hash)?;
    diesel::delete(admin_setup_codes::table).execute(conn)?;
    Ok(Some(admin))
}
