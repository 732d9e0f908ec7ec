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
    /// The organization it acts within; `None`: every organization (an
    /// instance administrator's token).
    pub org_id: Option<i32>,
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
        org_id: None,
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
/// setup code, an OAuth client secret). They are built so that nobody
/// else's failures refuse the right password of an account that has
/// signed in from that address before, nor of any account from an address
/// without failures:
///
/// 1. per (credential, address) pair: `max_failures` in `window`, then that
///    pair is refused until the oldest failure leaves the window (other
///    pairs are untouched);
/// 2. per address, for all credentials: `address_max_failures` in
///    `window`, then the address is refused, except for a credential that
///    succeeded from it within [`REMEMBER_SUCCESS_FOR`] (a "known pair").
///    A known pair is made only by the right secret, so an attacker at a
///    shared address (behind a proxy, a NAT) cannot make one, and the
///    colleagues who signed in from there before still get in;
/// 3. per credential, from all addresses: beyond `slow_after` failures in
///    `window`, an address that has failed at that credential waits before
///    each further attempt (1 s, doubling per failure beyond, at most
///    `max_delay`). An address that has not failed at it is never slowed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptLimits {
    /// Failures allowed per (credential, address) in `window`.
    pub max_failures: i64,
    /// How long a failure counts.
    pub window: time::Duration,
    /// Failures allowed per address (all credentials) in `window` before
    /// the address is refused for every credential but its known pairs;
    /// 0: no such cap.
    pub address_max_failures: i64,
    /// Failures at one credential (all addresses) in `window` beyond which
    /// the addresses that failed at it are slowed down.
    pub slow_after: i64,
    /// The longest such wait.
    pub max_delay: time::Duration,
}

impl Default for AttemptLimits {
    /// Administrators' sign-in: 5 per (account, address) and 100 per
    /// address in 15 minutes; beyond 20 for an account, up to 5 minutes
    /// apart.
    fn default() -> Self {
        AttemptLimits {
            max_failures: 5,
            window: time::Duration::minutes(15),
            address_max_failures: 100,
            slow_after: 20,
            max_delay: time::Duration::minutes(5),
        }
    }
}

/// Which limit a failure locks, when the attempt turns out to fail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lockout {
    /// The (credential, address) pair reaches `max_failures`.
    Pair,
    /// The address reaches `address_max_failures`.
    Address,
}

/// An attempt counted (as a failure until it is known to have succeeded)
/// before its secret is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    id: String,
    credential: String,
    address: String,
    locks: Option<Lockout>,
}

impl Attempt {
    /// The limit this attempt's failure locks (to be logged), if any.
    pub fn lockout_if_failed(&self) -> Option<Lockout> {
        self.locks
    }
}

/// How long a failure is kept at most, whatever the window.
pub const FORGET_AFTER: time::Duration = time::Duration::days(1);

/// How long a success keeps its (credential, address) pair past the
/// address cap.
pub const REMEMBER_SUCCESS_FOR: time::Duration = time::Duration::days(90);

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
        diesel::sql_query("SELECT pg_advisory_xact_lock($1)")
            .bind::<diesel::sql_types::BigInt, _>(advisory_key(class, key))
            .execute(pg)?;
    }
    Ok(())
}

/// The advisory lock number of (`class`, `key`).
fn advisory_key(class: &str, key: &str) -> i64 {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(format!("scimd-attempts\0{class}\0{key}").as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    i64::from_be_bytes(first)
}

fn secs_until(at: time::OffsetDateTime, now: time::OffsetDateTime) -> u64 {
    let d = at - now;
    let whole = d.whole_seconds() + i64::from(d.subsec_nanoseconds() > 0);
    whole.max(1).unsigned_abs()
}

fn parse_at(at: &str) -> Option<time::OffsetDateTime> {
    time::OffsetDateTime::parse(at, &time::format_description::well_known::Rfc3339).ok()
}

/// Deletes failures older than the window (at least [`FORGET_AFTER`]) and
/// successes older than [`REMEMBER_SUCCESS_FOR`].
fn forget_old_attempts(
    conn: &mut DbConnection,
    now: time::OffsetDateTime,
    window: time::Duration,
) -> Result<(), StoreError> {
    use login_attempts::dsl as a;
    // Every limiter shares the table, each with its own window (at most a
    // day, `scimd` checks): what is older than a day counts for none.
    let failures_before = scim_core::datetime::format(now - window.max(FORGET_AFTER));
    let successes_before = scim_core::datetime::format(now - REMEMBER_SUCCESS_FOR);
    diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::at.lt(&failures_before)),
    )
    .execute(conn)?;
    diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(true))
            .filter(a::at.lt(&successes_before)),
    )
    .execute(conn)?;
    Ok(())
}

/// Counts an attempt at `credential` from `address` at `now`, unless the
/// limits refuse it ([`AttemptLimits`]); run inside
/// [`crate::engine::Store::write`], so the check and the count are one
/// step no concurrent attempt can slip between (on PostgreSQL under
/// advisory locks on the credential and the address, taken in that order
/// by every caller). Old attempts are deleted on the way.
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
    forget_old_attempts(conn, now, limits.window)?;
    let since = scim_core::datetime::format(now - limits.window);
    let failures = a::login_attempts
        .filter(a::succeeded.eq(false))
        .filter(a::at.ge(&since));
    // The pair's most recent failures, newest first.
    let pair: Vec<String> = failures
        .filter(a::username_ci.eq(credential))
        .filter(a::address.eq(address))
        .select(a::at)
        .order(a::at.desc())
        .limit(limits.max_failures.max(1))
        .load(conn)?;
    let pair_count = i64::try_from(pair.len()).unwrap_or(i64::MAX);
    if pair_count >= limits.max_failures {
        // A slot frees when the oldest of the last `max_failures` leaves.
        let oldest = pair.last().and_then(|at| parse_at(at)).unwrap_or(now);
        return Ok(Admission::Refused {
            retry_after_secs: secs_until(oldest + limits.window, now),
        });
    }
    let mut locks = (pair_count + 1 == limits.max_failures).then_some(Lockout::Pair);
    if limits.address_max_failures > 0 {
        let known: bool = diesel::select(diesel::dsl::exists(
            a::login_attempts
                .filter(a::succeeded.eq(true))
                .filter(a::username_ci.eq(credential))
                .filter(a::address.eq(address)),
        ))
        .get_result(conn)?;
        if !known {
            let by_address: i64 = failures
                .filter(a::address.eq(address))
                .count()
                .get_result(conn)?;
            if by_address >= limits.address_max_failures {
                // A slot frees when the oldest of the last
                // `address_max_failures` leaves the window.
                let oldest: Option<String> = failures
                    .filter(a::address.eq(address))
                    .select(a::at)
                    .order(a::at.desc())
                    .offset(limits.address_max_failures - 1)
                    .first(conn)
                    .optional()?;
                let oldest = oldest.as_deref().and_then(parse_at).unwrap_or(now);
                return Ok(Admission::Refused {
                    retry_after_secs: secs_until(oldest + limits.window, now),
                });
            }
            if by_address + 1 == limits.address_max_failures {
                locks = Some(Lockout::Address);
            }
        }
    }
    if let Some(last) = pair.first().and_then(|at| parse_at(at)) {
        let by_credential: i64 = failures
            .filter(a::username_ci.eq(credential))
            .count()
            .get_result(conn)?;
        let beyond = by_credential - limits.slow_after;
        if beyond > 0 {
            let delay = time::Duration::seconds(1i64 << (beyond - 1).min(30)).min(limits.max_delay);
            if now < last + delay {
                return Ok(Admission::Refused {
                    retry_after_secs: secs_until(last + delay, now),
                });
            }
        }
    }
    let attempt = Attempt {
        id: uuid::Uuid::new_v4().to_string(),
        credential: credential.to_owned(),
        address: address.to_owned(),
        locks,
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

/// The attempt succeeded: the earlier failures of the same (credential,
/// address) stop counting (other addresses' failures stay), and the
/// attempt is kept as the pair's last success, which lets it past the
/// address cap for [`REMEMBER_SUCCESS_FOR`].
pub fn succeed_attempt(conn: &mut DbConnection, attempt: &Attempt) -> Result<(), StoreError> {
    use login_attempts::dsl as a;
    diesel::delete(
        a::login_attempts
            .filter(a::username_ci.eq(&attempt.credential))
            .filter(a::address.eq(&attempt.address))
            .filter(a::id.ne(&attempt.id)),
    )
    .execute(conn)?;
    diesel::update(a::login_attempts.filter(a::id.eq(&attempt.id)))
        .set(a::succeeded.eq(true))
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
        locks: None,
    };
    insert_attempt(conn, &attempt, now)
}

/// Forgets every failure at `credential`, from every address (an unlock);
/// returns how many. Known pairs stay.
pub fn unlock_credential(conn: &mut DbConnection, credential: &str) -> Result<usize, StoreError> {
    use login_attempts::dsl as a;
    Ok(diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::username_ci.eq(attempt_key(credential))),
    )
    .execute(conn)?)
}

/// Forgets every failure from `address`, at every credential (lifts the
/// address cap and every pair lock of that address); returns how many.
pub fn unlock_address(conn: &mut DbConnection, address: &str) -> Result<usize, StoreError> {
    use login_attempts::dsl as a;
    Ok(diesel::delete(
        a::login_attempts
            .filter(a::succeeded.eq(false))
            .filter(a::address.eq(attempt_key(address))),
    )
    .execute(conn)?)
}

/// The failures at `credential` since `since`, per address: (address,
/// failures), most failures first.
pub fn failures_by_address(
    conn: &mut DbConnection,
    credential: &str,
    since: time::OffsetDateTime,
) -> Result<Vec<(String, i64)>, StoreError> {
    use login_attempts::dsl as a;
    let mut rows: Vec<(String, i64)> = a::login_attempts
        .filter(a::succeeded.eq(false))
        .filter(a::username_ci.eq(attempt_key(credential)))
        .filter(a::at.ge(scim_core::datetime::format(since)))
        .group_by(a::address)
        .select((a::address, diesel::dsl::count_star()))
        .load(conn)?;
    rows.sort_by(|x, y| y.1.cmp(&x.1).then_with(|| x.0.cmp(&y.0)));
    Ok(rows)
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
    fn admins_are_disabled_deleted_and_reset_but_never_the_last() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let b = store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let (_, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            let (_, token) = store
                .write(|c| create_admin_token(c, "a's", None, "admin:a"))
                .unwrap();
            let (_, other_token) = store
                .write(|c| create_admin_token(c, "b's", None, "admin:b"))
                .unwrap();
            // Disabling ends the sessions and revokes the tokens it created.
            let disabled = store.write(|c| disable_admin(c, &a.id, &now)).unwrap();
            assert_eq!(disabled.disabled_at.as_deref(), Some(now.as_str()));
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
            assert_eq!(
                store
                    .write(|c| authenticate_admin_token(c, &token, &now))
                    .unwrap(),
                None
            );
            assert!(store
                .write(|c| authenticate_admin_token(c, &other_token, &now))
                .unwrap()
                .is_some());
            // A session of a disabled administrator is never accepted, even
            // one opened after it was disabled.
            let (_, late) = store.write(|c| create_session(c, &disabled, FAR)).unwrap();
            assert_eq!(store.read(|c| find_session(c, &late, &now)).unwrap(), None);
            // Again is a no-op.
            store.write(|c| disable_admin(c, &a.id, &now)).unwrap();
            // b is the last enabled administrator: neither disabled nor deleted.
            let err = store.write(|c| disable_admin(c, &b.id, &now)).unwrap_err();
            assert!(
                matches!(&err, StoreError::Conflict(m) if m.contains("last enabled administrator")),
                "{err}"
            );
            let err = store.write(|c| delete_admin(c, &b.id, &now)).unwrap_err();
            assert!(matches!(err, StoreError::Conflict(_)), "{err}");
            // Enabled again, a can sign in; then b can go.
            store.write(|c| enable_admin(c, &a.id)).unwrap();
            let (_, sid) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            assert!(store
                .read(|c| find_session(c, &sid, &now))
                .unwrap()
                .is_some());
            store.write(|c| delete_admin(c, &b.id, &now)).unwrap();
            assert_eq!(store.read(|c| find_admin(c, &b.id)).unwrap(), None);
            assert!(store
                .write(|c| authenticate_admin_token(c, &other_token, &now))
                .unwrap()
                .is_none());
            // A disabled administrator can always be deleted.
            let d = store.write(|c| insert_admin(c, "d", "h")).unwrap();
            store.write(|c| disable_admin(c, &d.id, &now)).unwrap();
            store.write(|c| delete_admin(c, &d.id, &now)).unwrap();
            // A new password ends every session but the one kept.
            let (_, keep) = store.write(|c| create_session(c, &a, FAR)).unwrap();
            store
                .write(|c| set_admin_password(c, &a.id, "h2", Some(&keep)))
                .unwrap();
            assert!(store
                .read(|c| find_session(c, &keep, &now))
                .unwrap()
                .is_some());
            assert_eq!(store.read(|c| find_session(c, &sid, &now)).unwrap(), None);
            assert_eq!(
                store
                    .read(|c| find_admin_credentials(c, "a"))
                    .unwrap()
                    .unwrap()
                    .1,
                "h2"
            );
            for err in [
                store.write(|c| disable_admin(c, "nope", &now)).unwrap_err(),
                store.write(|c| enable_admin(c, "nope")).unwrap_err(),
                store
                    .write(|c| delete_admin(c, "nope\0", &now))
                    .unwrap_err(),
                store
                    .write(|c| set_admin_password(c, "nope", "h", None))
                    .unwrap_err(),
            ] {
                assert!(matches!(err, StoreError::NotFound), "{err}");
            }
            assert_eq!(store.read(list_admins).unwrap().len(), 1);
        }
    }

    /// Two administrators disabling each other at once (threads released
    /// together, each with its own connection on PostgreSQL): one wins,
    /// and an enabled administrator remains.
    #[test]
    fn admins_disabling_each_other_at_once_leave_one_enabled() {
        for db in backends() {
            let store = db.store();
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            let b = store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let barrier = std::sync::Barrier::new(2);
            let results: Vec<bool> = std::thread::scope(|s| {
                let handles: Vec<_> = [&a.id, &b.id]
                    .into_iter()
                    .map(|id| {
                        let (barrier, now) = (&barrier, &now);
                        s.spawn(move || {
                            barrier.wait();
                            store.write(|c| disable_admin(c, id, now)).is_ok()
                        })
                    })
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            assert_eq!(results.iter().filter(|ok| **ok).count(), 1, "{results:?}");
            let enabled = store
                .read(list_admins)
                .unwrap()
                .into_iter()
                .filter(|x| x.disabled_at.is_none())
                .count();
            assert_eq!(enabled, 1);
        }
    }

    /// PostgreSQL: disabling holds the administrators' lock until its
    /// transaction ends, so a concurrent disable (any replica) waits and
    /// then sees the result: another connection cannot take the lock
    /// meanwhile.
    #[test]
    fn disabling_holds_the_administrators_lock_until_commit() {
        #[derive(diesel::QueryableByName)]
        struct Taken {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            taken: bool,
        }
        for db in backends() {
            let store = db.store();
            if !matches!(db.backend(), crate::db::connection::Backend::Postgres) {
                continue;
            }
            let now = scim_core::datetime::now();
            let a = store.write(|c| insert_admin(c, "a", "h")).unwrap();
            store.write(|c| insert_admin(c, "b", "h")).unwrap();
            let try_lock = |c: &mut DbConnection| {
                let DbConnection::Postgres(pg) = c else {
                    unreachable!()
                };
                let row: Taken = diesel::sql_query("SELECT pg_try_advisory_xact_lock($1) AS taken")
                    .bind::<diesel::sql_types::BigInt, _>(advisory_key("admins", "enabled"))
                    .get_result(pg)?;
                Ok(row.taken)
            };
            store
                .write(|c| {
                    disable_admin(c, &a.id, &now)?;
                    assert!(!store.read(try_lock)?, "the lock is free while disabling");
                    Ok(())
                })
                .unwrap();
            assert!(store.read(try_lock).unwrap());
        }
    }

    /// An attacker at a shared address reaches the address cap: accounts
    /// that signed in from there before still get in, others wait (or are
    /// unlocked), and other addresses are untouched.
    #[test]
    fn the_address_cap_spares_known_pairs_and_unlocks() {
        for db in backends() {
            let store = db.store();
            let t0 = time::macros::datetime!(2026-01-01 00:00:00 UTC);
            let secs = time::Duration::seconds;
            let limits = AttemptLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
                address_max_failures: 4,
                slow_after: 100,
                max_delay: time::Duration::minutes(1),
            };
            let reserve = |c: &str, a: &str, at: time::OffsetDateTime| {
                store
                    .write(|conn| reserve_attempt(conn, c, a, at, &limits))
                    .unwrap()
            };
            let admitted = |adm: Admission| match adm {
                Admission::Admitted(a) => a,
                other => panic!("refused: {other:?}"),
            };
            // alice signed in from the shared address before.
            let ok = admitted(reserve("alice", "shared", t0));
            store.write(|c| succeed_attempt(c, &ok)).unwrap();
            // The attacker: three failures at admin lock that pair (the
            // third says so), a fourth at x reaches the address cap.
            for i in 0..3 {
                let a = admitted(reserve("admin", "shared", t0 + secs(i)));
                let expected = (i == 2).then_some(Lockout::Pair);
                assert_eq!(a.lockout_if_failed(), expected);
            }
            let a = admitted(reserve("x", "shared", t0 + secs(10)));
            assert_eq!(a.lockout_if_failed(), Some(Lockout::Address));
            // bob never signed in from there: refused until the oldest of
            // the four failures leaves the window.
            assert_eq!(
                reserve("bob", "shared", t0 + secs(60)),
                Admission::Refused {
                    retry_after_secs: 840
                }
            );
            // alice is a known pair: admitted, and her success stays known.
            let ok = admitted(reserve("alice", "shared", t0 + secs(60)));
            store.write(|c| succeed_attempt(c, &ok)).unwrap();
            admitted(reserve("alice", "shared", t0 + secs(61)));
            // bob from his own address is untouched.
            admitted(reserve("bob", "home", t0 + secs(60)));
            assert_eq!(
                store.read(|c| failures_by_address(c, "admin", t0)).unwrap(),
                vec![("shared".to_owned(), 3)]
            );
            // Unlocking the account lifts its pair lock (and its share of
            // the cap); unlocking the address lifts the cap.
            assert_eq!(store.write(|c| unlock_credential(c, "admin")).unwrap(), 3);
            assert!(store
                .read(|c| failures_by_address(c, "admin", t0))
                .unwrap()
                .is_empty());
            admitted(reserve("bob", "shared", t0 + secs(62)));
            admitted(reserve("y", "shared", t0 + secs(63)));
            assert!(matches!(
                reserve("bob", "shared", t0 + secs(64)),
                Admission::Refused { .. }
            ));
            assert!(store.write(|c| unlock_address(c, "shared")).unwrap() >= 4);
            admitted(reserve("bob", "shared", t0 + secs(65)));
            // A success is remembered for REMEMBER_SUCCESS_FOR, no longer.
            let later = t0 + REMEMBER_SUCCESS_FOR + time::Duration::days(1);
            for i in 0..4 {
                admitted(reserve(&format!("z{i}"), "shared", later));
            }
            assert!(matches!(
                reserve("alice", "shared", later),
                Admission::Refused { .. }
            ));
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
                address_max_failures: 0,
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
                address_max_failures: 0,
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
            // An address that has not failed at the credential is not
            // slowed by failures elsewhere.
            assert!(matches!(
                store
                    .write(|conn| reserve_attempt(conn, "other", "a0", t0 + secs(5), &limits))
                    .unwrap(),
                Admission::Admitted(_)
            ));
        }
    }
}
