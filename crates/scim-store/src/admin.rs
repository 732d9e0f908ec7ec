//! Administrators of scimd: accounts (Argon2id hashes, computed by the
//! caller), console sessions, admin API tokens, first-run setup codes and
//! login attempts for rate limiting.
//!
//! Every secret (session id, API token, setup code) is random, shown once,
//! and stored only as its SHA-256: a database leak yields nothing usable.
//! Admin API tokens live in their own table, so a SCIM token never opens
//! the admin API and an admin token never opens the SCIM API.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;
use subtle::ConstantTimeEq;

use crate::admin_schema::{
    admin_sessions, admin_setup_codes, admin_tokens, admins, login_attempts,
};
use crate::connection::DbConnection;
use crate::error::{is_unique_violation, StoreError};
use crate::tokens::hash_secret;

/// The fixed start of every admin API token secret (distinct from SCIM
/// tokens' `scimd_`, so leaked ones are recognisable).
pub const ADMIN_SECRET_PREFIX: &str = "scimd_admin_";
/// Characters of an admin token kept for display.
const DISPLAY_PREFIX_LEN: usize = 16;

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

/// An admin API token as listed (never the secret).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = admin_tokens)]
pub struct AdminTokenInfo {
    /// UUID text.
    pub id: String,
    /// The label.
    pub name: String,
    /// The first characters of the secret.
    pub prefix: String,
    /// Creation time.
    pub created_at: String,
    /// Who created it.
    pub created_by: String,
    /// Last successful authentication.
    pub last_used_at: Option<String>,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
}

/// Mints an admin API token; returns it and its secret (shown once).
/// `expires_at` is already normalised by the caller.
pub fn create_admin_token(
    conn: &mut DbConnection,
    name: &str,
    expires_at: Option<&str>,
    created_by: &str,
) -> Result<(AdminTokenInfo, String), StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Invalid(scim_core::ScimError::invalid_value(
            "a token needs a non-empty name",
        )));
    }
    let secret = format!("{ADMIN_SECRET_PREFIX}{}", random_secret());
    let info = AdminTokenInfo {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        prefix: secret.chars().take(DISPLAY_PREFIX_LEN).collect(),
        created_at: scim_core::datetime::now(),
        created_by: created_by.to_owned(),
        last_used_at: None,
        expires_at: expires_at.map(str::to_owned),
        revoked_at: None,
    };
    diesel::insert_into(admin_tokens::table)
        .values((
            admin_tokens::id.eq(&info.id),
            admin_tokens::name.eq(&info.name),
            admin_tokens::prefix.eq(&info.prefix),
            admin_tokens::secret_hash.eq(hash_secret(&secret)),
            admin_tokens::created_at.eq(&info.created_at),
            admin_tokens::created_by.eq(&info.created_by),
            admin_tokens::expires_at.eq(&info.expires_at),
        ))
        .execute(conn)?;
    Ok((info, secret))
}

/// Every admin API token, oldest first.
pub fn list_admin_tokens(conn: &mut DbConnection) -> Result<Vec<AdminTokenInfo>, StoreError> {
    Ok(admin_tokens::table
        .select(AdminTokenInfo::as_select())
        .order((admin_tokens::created_at, admin_tokens::id))
        .load(conn)?)
}

/// Revokes an admin API token; again is a no-op; unknown id → `NotFound`.
pub fn revoke_admin_token(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    let now = scim_core::datetime::now();
    let updated = diesel::update(
        admin_tokens::table
            .filter(admin_tokens::id.eq(id))
            .filter(admin_tokens::revoked_at.is_null()),
    )
    .set(admin_tokens::revoked_at.eq(&now))
    .execute(conn)?;
    if updated == 0 {
        let exists: bool = diesel::select(diesel::dsl::exists(
            admin_tokens::table.filter(admin_tokens::id.eq(id)),
        ))
        .get_result(conn)?;
        if !exists {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

/// The usable admin token whose secret is `secret` (not revoked, not
/// expired at `now`), recording its use.
pub fn authenticate_admin_token(
    conn: &mut DbConnection,
    secret: &str,
    now: &str,
) -> Result<Option<AdminTokenInfo>, StoreError> {
    let hash = hash_secret(secret);
    let found: Option<(AdminTokenInfo, String)> = admin_tokens::table
        .filter(admin_tokens::secret_hash.eq(&hash))
        .select((AdminTokenInfo::as_select(), admin_tokens::secret_hash))
        .first(conn)
        .optional()?;
    let Some((info, stored)) = found else {
        return Ok(None);
    };
    if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes()))
        || info.revoked_at.is_some()
        || info.expires_at.as_deref().is_some_and(|e| e <= now)
    {
        return Ok(None);
    }
    diesel::update(admin_tokens::table.filter(admin_tokens::id.eq(&info.id)))
        .set(admin_tokens::last_used_at.eq(now))
        .execute(conn)?;
    Ok(Some(info))
}

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
    let valid: bool = diesel::select(diesel::dsl::exists(
        admin_setup_codes::table
            .filter(admin_setup_codes::code_hash.eq(hash_secret(code)))
            .filter(admin_setup_codes::expires_at.gt(now)),
    ))
    .get_result(conn)?;
    if !valid {
        return Ok(None);
    }
    let admin = insert_admin(conn, username, password_hash)?;
    diesel::delete(admin_setup_codes::table).execute(conn)?;
    Ok(Some(admin))
}

/// Records a login attempt for `username` from `address` at `now`. A
/// success clears the account's earlier failures; attempts older than
/// `forget_before` are deleted on the way.
pub fn record_login_attempt(
    conn: &mut DbConnection,
    username: &str,
    address: &str,
    succeeded: bool,
    now: &str,
    forget_before: &str,
) -> Result<(), StoreError> {
    let username_ci = username.to_lowercase();
    diesel::delete(login_attempts::table.filter(login_attempts::at.lt(forget_before)))
        .execute(conn)?;
    if succeeded {
        diesel::delete(
            login_attempts::table
                .filter(login_attempts::username_ci.eq(&username_ci))
                .filter(login_attempts::succeeded.eq(false)),
        )
        .execute(conn)?;
    }
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::id.eq(uuid::Uuid::new_v4().to_string()),
            login_attempts::username_ci.eq(&username_ci),
            login_attempts::address.eq(address),
            login_attempts::at.eq(now),
            login_attempts::succeeded.eq(succeeded),
        ))
        .execute(conn)?;
    Ok(())
}

/// Failed logins since `since`: `(for this account, from this address)`.
pub fn recent_login_failures(
    conn: &mut DbConnection,
    username: &str,
    address: &str,
    since: &str,
) -> Result<(i64, i64), StoreError> {
    let by_user: i64 = login_attempts::table
        .filter(login_attempts::username_ci.eq(username.to_lowercase()))
        .filter(login_attempts::succeeded.eq(false))
        .filter(login_attempts::at.ge(since))
        .count()
        .get_result(conn)?;
    let by_address: i64 = login_attempts::table
        .filter(login_attempts::address.eq(address))
        .filter(login_attempts::succeeded.eq(false))
        .filter(login_attempts::at.ge(since))
        .count()
        .get_result(conn)?;
    Ok((by_user, by_address))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    const FAR: &str = "2999-01-01T00:00:00.000000Z";
    const PAST: &str = "2000-01-01T00:00:00.000000Z";

    #[test]
    fn admins_are_unique_case_insensitively() {
        for db in backends() {
            let store = db.store();
            assert_eq!(store.read(count_admins).unwrap(), 0);
            let a = store.write(|c| insert_admin(c, "Alice", "h1")).unwrap();
            let err = store.write(|c| insert_admin(c, "alice", "h2")).unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            let (found, hash) = store
                .read(|c| find_admin_credentials(c, "ALICE"))
                .unwrap()
                .unwrap();
            assert_eq!(found, a);
            assert_eq!(hash, "h1");
            assert_eq!(
                store.read(|c| find_admin_credentials(c, "bob")).unwrap(),
                None
            );
            store
                .write(|c| record_admin_login(c, &a.id, "2026-01-01T00:00:00.000000Z"))
                .unwrap();
            let all = store.read(list_admins).unwrap();
            assert_eq!(all.len(), 1);
            assert!(all[0].last_login_at.is_some());
        }
    }

    #[test]
    fn sessions_expire_and_end() {
        for db in backends() {
            let store = db.store();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let (info, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            let now = scim_core::datetime::now();
            let found = store
                .read(|c| find_session(c, &sid, &now))
                .unwrap()
                .unwrap();
            assert_eq!(found.admin.id, a.id);
            assert_eq!(found.csrf_token, info.csrf_token);
            assert_eq!(store.read(|c| find_session(c, "nope", &now)).unwrap(), None);
            // After expiry it is not found and is purged.
            assert_eq!(store.read(|c| find_session(c, &sid, FAR)).unwrap(), None);
            let (_, old) = store.write(|c| create_session(c, &a, PAST)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &old, &now)).unwrap(), None);
            assert_eq!(store.write(|c| purge_expired_sessions(c, &now)).unwrap(), 1);
            store.write(|c| delete_session(c, &sid)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
        }
    }

    #[test]
    fn admin_tokens_authenticate_until_revoked_or_expired() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let (info, secret) = store
                .write(|c| create_admin_token(c, "ci", None, "admin:a"))
                .unwrap();
            assert!(secret.starts_with(ADMIN_SECRET_PREFIX));
            assert!(secret.starts_with(&info.prefix));
            let got = store
                .write(|c| authenticate_admin_token(c, &secret, &now))
                .unwrap()
                .unwrap();
            assert_eq!(got.id, info.id);
            // A SCIM token is not an admin token.
            let (_, scim) = store
                .write(|c| crate::tokens::create_token(c, "scim", None))
                .unwrap();
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &scim, &now))
                    .unwrap(),
                None
            );
            // …and an admin token is not a SCIM token.
            assert_eq!(
                store
                    .read(|c| crate::tokens::authenticate_token(c, &secret, &now))
                    .unwrap(),
                None
            );
            let listed = store.read(list_admin_tokens).unwrap();
            assert_eq!(listed.len(), 1);
            assert!(listed[0].last_used_at.is_some());
            store.write(|c| revoke_admin_token(c, &info.id)).unwrap();
            store.write(|c| revoke_admin_token(c, &info.id)).unwrap();
            assert!(matches!(
                store.write(|c| revoke_admin_token(c, "nope")).unwrap_err(),
                StoreError::NotFound
            ));
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &secret, &now))
                    .unwrap(),
                None
            );
            let (_, expired) = store
                .write(|c| create_admin_token(c, "old", Some(PAST), "cli:x"))
                .unwrap();
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &expired, &now))
                    .unwrap(),
                None
            );
            assert!(store
                .write(|c| create_admin_token(c, "  ", None, "cli:x"))
                .is_err());
        }
    }

    #[test]
    fn setup_codes_create_only_the_first_admin() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let code = store.write(|c| create_setup_code(c, FAR)).unwrap();
            let expired = store.write(|c| create_setup_code(c, PAST)).unwrap();
            assert_eq!(
                store
                    .write(|c| create_first_admin(c, &expired, "a", "h", &now))
                    .unwrap(),
                None
            );
            assert_eq!(
                store
                    .write(|c| create_first_admin(c, "wrong", "a", "h", &now))
                    .unwrap(),
                None
            );
            let admin = store
                .write(|c| create_first_admin(c, &code, "root", "h", &now))
                .unwrap()
                .unwrap();
            assert_eq!(admin.username, "root");
            // Once an admin exists, setup is over, whatever the code.
            let err = store
                .write(|c| create_first_admin(c, &code, "x", "h", &now))
                .unwrap_err();
            assert!(matches!(err, StoreError::PreconditionFailed));
        }
    }

    #[test]
    fn login_failures_count_per_account_and_address() {
        for db in backends() {
            let store = db.store();
            let t = |s: u32| format!("2026-01-01T00:{s:02}:00.000000Z");
            for i in 0..3 {
                store
                    .write(|c| record_login_attempt(c, "Alice", "10.0.0.1", false, &t(i), &t(0)))
                    .unwrap();
            }
            store
                .write(|c| record_login_attempt(c, "bob", "10.0.0.1", false, &t(3), &t(0)))
                .unwrap();
            let counts = store
                .read(|c| recent_login_failures(c, "alice", "10.0.0.1", &t(0)))
                .unwrap();
            assert_eq!(counts, (3, 4));
            // The window: only attempts at or after `since` count.
            let counts = store
                .read(|c| recent_login_failures(c, "alice", "10.0.0.2", &t(2)))
                .unwrap();
            assert_eq!(counts, (1, 0));
            // A success clears the account's failures, not the address's.
            store
                .write(|c| record_login_attempt(c, "ALICE", "10.0.0.9", true, &t(4), &t(0)))
                .unwrap();
            let counts = store
                .read(|c| recent_login_failures(c, "alice", "10.0.0.1", &t(0)))
                .unwrap();
            assert_eq!(counts, (0, 1));
            // Old attempts are forgotten.
            store
                .write(|c| record_login_attempt(c, "carol", "10.0.0.3", false, &t(30), &t(10)))
                .unwrap();
            let counts = store
                .read(|c| recent_login_failures(c, "bob", "10.0.0.1", &t(0)))
                .unwrap();
            assert_eq!(counts, (0, 0));
        }
    }
}
