//! Administrators of scimd: accounts (Argon2id hashes, computed by the
//! caller), console sessions, admin API tokens, first-run setup codes and
//! the attempts of sign-ins, setup codes and OAuth client secrets, for
//! their limits.
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

use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::admin::{
    admin_sessions, admin_setup_codes, admin_tokens, admins, login_attempts,
};
use crate::error::{is_unique_violation, StoreError};

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
#[cfg(any(test, feature = "testing"))]
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
    crate::error::known_id(id)?;
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

// ---------------------------------------------------------------- attempt limits

/// Limits on guessing one credential (an administrator's password, the
/// setup code, an OAuth client secret), keyed on (credential, address) so
/// that nobody else's failures ever refuse a credential presented from a
/// clean address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Attempts that did not succeed allowed per (credential, address) in
    /// `window`; further ones from that pair are refused until the oldest
    /// leaves the window.
    pub max_failures: i64,
    /// How long an attempt counts.
    pub window: time::Duration,
    /// Beyond this many attempts in `window` for the credential (from all
    /// addresses) or from the address (for all credentials), an address
    /// that has attempts of its own in the window waits before each
    /// further one: 1 s, doubling per attempt beyond, up to `max_delay`.
    /// An address without attempts is never slowed.
    pub slow_after: i64,
    /// The longest such wait.
    pub max_delay: time::Duration,
}

impl Default for AttemptLimits {
    /// Administrators' sign-in: 5 per (account, address) in 15 minutes;
    /// beyond 20 for an account or from an address, up to 5 minutes apart.
    fn default() -> Self {
        AttemptLimits {
            max_failures: 5,
            window: time::Duration::minutes(15),
            slow_after: 20,
            max_delay: time::Duration::minutes(5),
        }
    }
}

/// An attempt counted (as a failure until it is known to have succeeded)
/// before its secret is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    id: String,
    credential: String,
    address: String,
}

/// How long an attempt is kept at most, whatever the window.
pub const FORGET_AFTER: time::Duration = time::Duration::days(1);

/// What [`reserve_attempt`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admission {
    /// Check the secret, then finish the attempt.
    Admitted(Attempt),
    /// Too many attempts: try again in this many seconds.
    Refused {
        /// Seconds until an attempt from this address can be admitted.
        retry_after_secs: u64,
    },
}

/// Longest credential or address key stored as it is in `login_attempts`.
const MAX_ATTEMPT_KEY_BYTES: usize = 256;

/// `key` as `login_attempts` stores it: as it is when short and free of
/// NUL, otherwise `sha256:` and its hash. Credentials and addresses come
/// from clients (a username, a client id, an `X-Forwarded-For` value), and
/// PostgreSQL refuses NUL in text and index entries over about 2.7 KB;
/// the hash gives every such key the same answer on both backends.
fn attempt_key(key: &str) -> String {
    if key.len() <= MAX_ATTEMPT_KEY_BYTES && !key.contains('\0') {
        return key.to_owned();
    }
    use sha2::Digest;
    format!(
        "sha256:{}",
        hex::encode(sha2::Sha256::digest(key.as_bytes()))
    )
}

/// PostgreSQL: a transaction-scoped advisory lock on `key`, so that the
/// check-and-count of concurrent attempts on one key (from any replica)
/// runs one at a time. SQLite needs none: its writes are serialised by
/// the one writer connection.
fn lock_key(conn: &mut DbConnection, class: &str, key: &str) -> Result<(), StoreError> {
    if let DbConnection::Postgres(pg) = conn {
        use sha2::Digest;
        let digest = sha2::Sha256::digest(format!("scimd-attempts\0{class}\0{key}").as_bytes());
        let mut first = [0u8; 8];
        first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(i64::from_be_bytes(first))
            .execute(pg)?;
    }
    Ok(())
}

fn secs_until(at: time::OffsetDateTime, now: time::OffsetDateTime) -> u64 {
    let d = at - now;
    let whole = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
    whole.max(1).unsigned_abs()
}

fn parse_at(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// Counts an attempt at `credential` from `address` at `now`, unless the
/// limits refuse it; run inside [`crate::engine::Store::write`], so the check and
/// the count are one step no concurrent attempt can slip between (on
/// PostgreSQL under advisory locks on the credential and the address,
/// taken in that order by every caller). Attempts older than
/// [`FORGET_AFTER`] are deleted on the way.
///
/// Refused when the pair already has `max_failures` attempts in the
/// window, or when the address has attempts in the window and the
/// credential or the address has more than `slow_after` and the address's
/// last attempt is more recent than the delay ([`AttemptLimits`]).
pub fn reserve_attempt(
    conn: &mut DbConnection,
    credential: &str,
    address: &str,
    now: time::OffsetDateTime,
    limits: &AttemptLimits,
) -> Result<Admission, StoreError> {
    use login_attempts::dsl as a;
    let credential = &attempt_key(credential);
    let address = &attempt_key(address);
    lock_key(conn, "credential", credential)?;
    lock_key(conn, "address", address)?;
    let since = scim_core::datetime::format(now - limits.window);
    // Every limiter shares the table, each with its own window (at most a
    // day, `scimd` checks): what is older than a day counts for none.
    let forget = scim_core::datetime::format(now - limits.window.max(FORGET_AFTER));
    diesel::delete(a::login_attempts.filter(a::at.lt(&forget))).execute(conn)?;
    let pair: Vec<String> = a::login_attempts
        .filter(a::username_ci.eq(credential))
        .filter(a::address.eq(address))
        .filter(a::at.ge(&since))
        .select(a::at)
        .order(a::at.desc())
        .limit(limits.max_failures.max(1))
        .load(conn)?;
    if i64::try_from(pair.len()).unwrap_or(i64::MAX) >= limits.max_failures {
        // A slot frees when the oldest of the last `max_failures` leaves.
        let oldest = pair.last().and_then(|at| parse_at(at)).unwrap_or(now);
        return Ok(Admission::Refused {
            retry_after_secs: secs_until(oldest + limits.window, now),
        });
    }
    let by_address: i64 = a::login_attempts
        .filter(a::address.eq(address))
        .filter(a::at.ge(&since))
        .count()
        .get_result(conn)?;
    if by_address > 0 {
        let by_credential: i64 = a::login_attempts
            .filter(a::username_ci.eq(credential))
            .filter(a::at.ge(&since))
            .count()
            .get_result(conn)?;
        let beyond = by_credential.max(by_address) - limits.slow_after;
        if beyond > 0 {
            let delay = time::Duration::seconds(1i64 << (beyond - 1).min(30)).min(limits.max_delay);
            let last: Option<String> = a::login_attempts
                .filter(a::address.eq(address))
                .filter(a::at.ge(&since))
                .select(diesel::dsl::max(a::at))
                .first(conn)?;
            if let Some(last) = last.as_deref().and_then(parse_at) {
                if now < last + delay {
                    return Ok(Admission::Refused {
                        retry_after_secs: secs_until(last + delay, now),
                    });
                }
            }
        }
    }
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        credential: credential.to_owned(),
        address: address.to_owned(),
    };
    insert_attempt(conn, &attempt, now)?;
    Ok(Admission::Admitted(attempt))
}

fn insert_attempt(
    conn: &mut DbConnection,
    attempt: &Attempt,
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    diesel::insert_into(login_attempts::table)
        .values((
            login_attempts::id.eq(&attempt.id),
            login_attempts::username_ci.eq(&attempt.credential),
            login_attempts::address.eq(&attempt.address),
            login_attempts::at.eq(scim_core::datetime::format(now)),
            login_attempts::succeeded.eq(false),
        ))
        .execute(conn)?;
    Ok(())
}

/// The attempt succeeded: it, and the earlier failures of the same
/// (credential, address), stop counting. Other addresses' failures stay.
pub fn succeed_attempt(conn: &mut DbConnection, attempt: &Attempt) -> Result<(), StoreError> {
    diesel::delete(
        login_attempts::table
            .filter(login_attempts::username_ci.eq(&attempt.credential))
            .filter(login_attempts::address.eq(&attempt.address)),
    )
    .execute(conn)?;
    Ok(())
}

/// The attempt was never decided (the request was malformed, or the
/// server too busy to check it): it stops counting.
pub fn abandon_attempt(conn: &mut DbConnection, attempt: &Attempt) -> Result<(), StoreError> {
    diesel::delete(login_attempts::table.filter(login_attempts::id.eq(&attempt.id)))
        .execute(conn)?;
    Ok(())
}

/// Counts a failure at `credential` from `address` found after the
/// credential itself was accepted (an invalid OAuth code or refresh
/// token), without a limit check.
pub fn record_failure(
    conn: &mut DbConnection,
    credential: &str,
    address: &str,
    now: time::OffsetDateTime,
) -> Result<(), StoreError> {
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        credential: attempt_key(credential),
        address: attempt_key(address),
    };
    insert_attempt(conn, &attempt, now)
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
                .write(|c| crate::admin::tokens::create_token(c, "scim", None))
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
                    .read(|c| crate::admin::tokens::authenticate_token(c, &secret, &now))
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
    fn attempts_are_limited_per_credential_and_address() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
                slow_after: 100,
                max_delay: time::Duration::minutes(1),
            };
            let reserve = |c: &str, a: &str, at: time::OffsetDateTime, l: &AttemptLimits| {
                store
                    .write(|conn| reserve_attempt(conn, c, a, at, l))
                    .unwrap()
            };
            let admitted = |adm: Admission| match adm {
                Admission::Admitted(a) => a,
                other => panic!("refused: {other:?}"),
            };
            for i in 0..3 {
                admitted(reserve("alice", "10.0.0.1", t0 + secs(i), &limits));
            }
            // The pair is refused until its oldest attempt leaves the window…
            assert_eq!(
                reserve("alice", "10.0.0.1", t0 + secs(60), &limits),
                Admission::Refused {
                    retry_after_secs: 840
                }
            );
            // …but not the credential from another address, nor the address
            // for another credential.
            let other = admitted(reserve("alice", "10.0.0.2", t0 + secs(60), &limits));
            admitted(reserve("bob", "10.0.0.1", t0 + secs(60), &limits));
            // A success clears its own pair only.
            store.write(|c| succeed_attempt(c, &other)).unwrap();
            for i in 0..3 {
                admitted(reserve("alice", "10.0.0.2", t0 + secs(61 + i), &limits));
            }
            assert!(matches!(
                reserve("alice", "10.0.0.2", t0 + secs(70), &limits),
                Admission::Refused { .. }
            ));
            // An abandoned attempt does not count.
            let carol = admitted(reserve("carol", "10.0.0.3", t0, &limits));
            store.write(|c| abandon_attempt(c, &carol)).unwrap();
            for _ in 0..3 {
                admitted(reserve("carol", "10.0.0.3", t0, &limits));
            }
            // Once the window has passed, the pair is admitted again.
            let later = t0 + time::Duration::minutes(15) + secs(1);
            admitted(reserve("alice", "10.0.0.1", later, &limits));
            // Failures found after the credential was accepted count too.
            store
                .write(|c| record_failure(c, "dave", "10.0.0.4", later))
                .unwrap();
            for _ in 0..2 {
                admitted(reserve("dave", "10.0.0.4", later, &limits));
            }
            assert!(matches!(
                reserve("dave", "10.0.0.4", later, &limits),
                Admission::Refused { .. }
            ));
        }
    }

    /// Concurrent attempts on one pair (threads released together, each
    /// with its own connection on PostgreSQL) never exceed the limit.
    #[test]
    fn concurrent_reservations_cannot_pass_the_limit() {
        for db in backends() {
            let store = db.store();
            let limits = AttemptLimits {
                max_failures: 3,
                ..AttemptLimits::default()
            };
            let now = time::OffsetDateTime::now_utc();
            let barrier = std::sync::Barrier::new(16);
            let admitted = std::sync::atomic::AtomicUsize::new(0);
            std::thread::scope(|s| {
                for _ in 0..16 {
                    s.spawn(|| {
                        barrier.wait();
                        for _ in 0..4 {
                            let got = store
                                .write(|c| reserve_attempt(c, "root", "10.9.9.9", now, &limits))
                                .unwrap();
                            if matches!(got, Admission::Admitted(_)) {
                                admitted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                            }
                        }
                    });
                }
            });
            assert_eq!(admitted.into_inner(), 3);
        }
    }

    /// Many addresses failing at one credential slow down the addresses
    /// that failed, exponentially, and never a clean address.
    #[test]
    fn a_credential_under_attack_slows_dirty_addresses_only() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 5,
                window: time::Duration::minutes(5),
                slow_after: 2,
                max_delay: secs(4),
            };
            let reserve = |a: &str, at: time::OffsetDateTime| {
                store
                    .write(|conn| reserve_attempt(conn, "client", a, at, &limits))
                    .unwrap()
            };
            // Ten addresses, one failure each: each was clean, so admitted.
            for i in 0..10 {
                assert!(matches!(
                    reserve(&format!("a{i}"), t0),
                    Admission::Admitted(_)
                ));
            }
            // A failed address must now wait: 10 attempts is 8 beyond 2,
            // so 2^7 s, capped at 4 s.
            assert_eq!(
                reserve("a0", t0 + secs(1)),
                Admission::Refused {
                    retry_after_secs: 3
                }
            );
            // The real client, from its own clean address, gets in at once.
            let Admission::Admitted(real) = reserve("entra", t0 + secs(1)) else {
                panic!("a clean address was refused")
            };
            store.write(|c| succeed_attempt(c, &real)).unwrap();
            // The failed address is slowed, not locked out.
            assert!(matches!(
                reserve("a0", t0 + secs(4)),
                Admission::Admitted(_)
            ));
            assert_eq!(
                reserve("a0", t0 + secs(5)),
                Admission::Refused {
                    retry_after_secs: 3
                }
            );
            // One address spraying many credentials is slowed the same way.
            for i in 0..3 {
                let c = format!("user{i}");
                let at = t0 + secs(100 + 4 * i);
                assert!(matches!(
                    store
                        .write(|conn| reserve_attempt(conn, &c, "sprayer", at, &limits))
                        .unwrap(),
                    Admission::Admitted(_)
                ));
            }
            assert!(matches!(
                store
                    .write(|conn| reserve_attempt(
                        conn,
                        "user9",
                        "sprayer",
                        t0 + secs(108),
                        &limits
                    ))
                    .unwrap(),
                Admission::Refused { .. }
            ));
        }
    }
}
