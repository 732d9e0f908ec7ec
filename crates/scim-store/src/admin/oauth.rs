//! The OAuth 2.0 authorization server's storage (RFC 6749 §4.1, the
//! authorization code grant, with PKCE, RFC 7636, and refresh token
//! rotation per the OAuth 2.0 Security BCP §4.14).
//!
//! - A **client** is registered by an administrator for one identity
//!   provider: its exact redirect URIs and allowed scopes; its secret is
//!   shown once.
//! - A **grant** is one approval on the consent page (which client, which
//!   administrator, when); every code and token belongs to one, and
//!   revoking it (an administrator, RFC 7009, or reuse detection) stops
//!   all of them at once.
//! - **Codes** are single-use and short-lived; **refresh tokens** are
//!   rotated on every use, and presenting a rotated one again revokes the
//!   whole grant (it has leaked: either the thief or the client used it).
//!
//! Client secrets, codes and tokens are random (256 bits) and stored only
//! as SHA-256 hashes; comparisons of secret material are constant-time.
//! Single use is race-proof: `UPDATE … SET used_at WHERE used_at IS NULL`
//! succeeds for exactly one caller.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;

use crate::admin::admins::random_secret;
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::oauth::{oauth_clients, oauth_codes, oauth_grants, oauth_tokens};
use crate::error::StoreError;

/// The start of every client secret.
pub const CLIENT_SECRET_PREFIX: &str = "scimd_cs_";
/// The start of every access token.
pub const ACCESS_TOKEN_PREFIX: &str = "scimd_at_";
/// The start of every refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "scimd_rt_";
/// Characters of a client secret kept for display.
const DISPLAY_PREFIX_LEN: usize = 14;

const ACCESS: &str = "access";
/// Hash, grant id, expiry, and two optional timestamps of a token row.
type TokenRow = (String, String, String, Option<String>, Option<String>);
const REFRESH: &str = "refresh";

fn now_text(now: OffsetDateTime) -> String {
    scim_core::datetime::format(now)
}

fn ct_eq(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The PKCE S256 challenge of `verifier`: BASE64URL(SHA256(verifier))
/// without padding (RFC 7636 §4.2).
pub fn pkce_s256(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()))
}

/// Whether `value` has the form of a PKCE code verifier or S256 challenge:
/// 43 to 128 characters of `[A-Za-z0-9-._~]` (RFC 7636 §4.1, §4.2).
pub fn is_pkce_value(value: &str) -> bool {
    (43..=128).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

// ---------------------------------------------------------------- clients

/// A registered client (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRecord {
    /// The public client_id.
    pub id: String,
    /// A label, shown on the consent page.
    pub name: String,
    /// The first characters of the secret.
    pub secret_prefix: String,
    /// The exact redirect URIs.
    pub redirect_uris: Vec<String>,
    /// The scopes the client may ask for.
    pub scopes: Vec<String>,
    /// Creation time.
    pub created_at: String,
    /// Who registered it.
    pub created_by: String,
    /// Last secret rotation.
    pub secret_rotated_at: Option<String>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = oauth_clients)]
struct ClientRow {
    id: String,
    name: String,
    secret_prefix: String,
    redirect_uris: String,
    scopes: String,
    created_at: String,
    created_by: String,
    secret_rotated_at: Option<String>,
}

impl ClientRow {
    fn into_record(self) -> ClientRecord {
        ClientRecord {
            id: self.id,
            name: self.name,
            secret_prefix: self.secret_prefix,
            // Written by this module only; an unreadable value lists nothing
            // rather than failing every request.
            redirect_uris: serde_json::from_str(&self.redirect_uris).unwrap_or_default(),
            scopes: self.scopes.split_whitespace().map(str::to_owned).collect(),
            created_at: self.created_at,
            created_by: self.created_by,
            secret_rotated_at: self.secret_rotated_at,
        }
    }
}

fn new_client_secret() -> (String, String, String) {
    let secret = format!("{CLIENT_SECRET_PREFIX}{}", random_secret());
    let prefix = secret.chars().take(DISPLAY_PREFIX_LEN).collect();
    let hash = hash_secret(&secret);
    (secret, prefix, hash)
}

/// Registers a client; returns it and its secret (shown once). The
/// caller has validated the name, the redirect URIs and the scopes.
pub fn create_client(
    conn: &mut DbConnection,
    name: &str,
    redirect_uris: &[String],
    scopes: &[String],
    created_by: &str,
) -> Result<(ClientRecord, String), StoreError> {
    let (secret, prefix, hash) = new_client_secret();
    let record = ClientRecord {
        id: uuid::Uuid::new_v4().to_string(),
        name: name.to_owned(),
        secret_prefix: prefix,
        redirect_uris: redirect_uris.to_vec(),
        scopes: scopes.to_vec(),
        created_at: scim_core::datetime::now(),
        created_by: created_by.to_owned(),
        secret_rotated_at: None,
    };
    let uris = serde_json::to_string(&record.redirect_uris)
        .map_err(|e| StoreError::internal("encoding redirect URIs failed", &e))?;
    diesel::insert_into(oauth_clients::table)
        .values((
            oauth_clients::id.eq(&record.id),
            oauth_clients::name.eq(&record.name),
            oauth_clients::secret_hash.eq(&hash),
            oauth_clients::secret_prefix.eq(&record.secret_prefix),
            oauth_clients::redirect_uris.eq(&uris),
            oauth_clients::scopes.eq(record.scopes.join(" ")),
            oauth_clients::created_at.eq(&record.created_at),
            oauth_clients::created_by.eq(&record.created_by),
        ))
        .execute(conn)?;
    Ok((record, secret))
}

/// Every client, oldest first.
pub fn list_clients(conn: &mut DbConnection) -> Result<Vec<ClientRecord>, StoreError> {
    let rows: Vec<ClientRow> = oauth_clients::table
        .select(ClientRow::as_select())
        .order((oauth_clients::created_at, oauth_clients::id))
        .load(conn)?;
    Ok(rows.into_iter().map(ClientRow::into_record).collect())
}

/// The client whose client_id is `id`.
pub fn find_client(conn: &mut DbConnection, id: &str) -> Result<Option<ClientRecord>, StoreError> {
    // Client ids are UUIDs; PostgreSQL refuses NUL in any text parameter.
    if id.contains('\0') {
        return Ok(None);
    }
    let row: Option<ClientRow> = oauth_clients::table
        .filter(oauth_clients::id.eq(id))
        .select(ClientRow::as_select())
        .first(conn)
        .optional()?;
    Ok(row.map(ClientRow::into_record))
}

/// The client `id` if `secret` is its secret (RFC 6749 §2.3.1); the
/// hashes are compared in constant time.
pub fn authenticate_client(
    conn: &mut DbConnection,
    id: &str,
    secret: &str,
) -> Result<Option<ClientRecord>, StoreError> {
    let found: Option<(ClientRow, String)> = oauth_clients::table
        .filter(oauth_clients::id.eq(id))
        .select((ClientRow::as_select(), oauth_clients::secret_hash))
        .first(conn)
        .optional()?;
    // Hash even when the client is unknown, so timing does not tell
    // which client ids exist.
    let presented = hash_secret(secret);
    let Some((row, stored)) = found else {
        return Ok(None);
    };
    Ok(ct_eq(&stored, &presented).then(|| row.into_record()))
}

/// Replaces the secret of client `id`; returns the client and the new
/// secret (shown once). The old secret stops working at once; tokens
/// already issued keep working until they expire or are revoked.
pub fn rotate_client_secret(
    conn: &mut DbConnection,
    id: &str,
) -> Result<(ClientRecord, String), StoreError> {
    crate::error::known_id(id)?;
    let (secret, prefix, hash) = new_client_secret();
    let updated = diesel::update(oauth_clients::table.filter(oauth_clients::id.eq(id)))
        .set((
            oauth_clients::secret_hash.eq(&hash),
            oauth_clients::secret_prefix.eq(&prefix),
            oauth_clients::secret_rotated_at.eq(scim_core::datetime::now()),
        ))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    let client = find_client(conn, id)?.ok_or(StoreError::NotFound)?;
    Ok((client, secret))
}

/// Deletes client `id` with its grants, codes and tokens (they stop
/// working at once). Unknown id → `NotFound`.
pub fn delete_client(conn: &mut DbConnection, id: &str) -> Result<(), StoreError> {
    crate::error::known_id(id)?;
    let grants = oauth_grants::table
        .filter(oauth_grants::client_id.eq(id))
        .select(oauth_grants::id);
    diesel::delete(oauth_tokens::table.filter(oauth_tokens::grant_id.eq_any(grants)))
        .execute(conn)?;
    diesel::delete(oauth_codes::table.filter(oauth_codes::client_id.eq(id))).execute(conn)?;
    diesel::delete(oauth_grants::table.filter(oauth_grants::client_id.eq(id))).execute(conn)?;
    let deleted =
        diesel::delete(oauth_clients::table.filter(oauth_clients::id.eq(id))).execute(conn)?;
    if deleted == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

// ---------------------------------------------------------------- grants

/// A grant as listed to administrators.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = oauth_grants)]
pub struct GrantRecord {
    /// UUID text.
    pub id: String,
    /// The client.
    pub client_id: String,
    /// The approving administrator's id.
    pub admin_id: String,
    /// The approving administrator's username.
    pub admin_username: String,
    /// The granted scope (space-separated).
    pub scope: String,
    /// When it was approved.
    pub created_at: String,
    /// Last use of one of its tokens.
    pub last_used_at: Option<String>,
    /// Revocation time.
    pub revoked_at: Option<String>,
    /// Why it was revoked.
    pub revoked_reason: Option<String>,
}

/// Every grant with its client's name, newest first.
pub fn list_grants(conn: &mut DbConnection) -> Result<Vec<(GrantRecord, String)>, StoreError> {
    Ok(oauth_grants::table
        .inner_join(oauth_clients::table)
        .select((GrantRecord::as_select(), oauth_clients::name))
        .order((oauth_grants::created_at.desc(), oauth_grants::id))
        .load(conn)?)
}

/// Revokes grant `id` (every code and token of it stops working); again
/// is a no-op. Unknown id → `NotFound`.
pub fn revoke_grant(
    conn: &mut DbConnection,
    id: &str,
    reason: &str,
    now: &str,
) -> Result<(), StoreError> {
    crate::error::known_id(id)?;
    let updated = diesel::update(
        oauth_grants::table
            .filter(oauth_grants::id.eq(id))
            .filter(oauth_grants::revoked_at.is_null()),
    )
    .set((
        oauth_grants::revoked_at.eq(now),
        oauth_grants::revoked_reason.eq(reason),
    ))
    .execute(conn)?;
    if updated == 0 {
        let exists: bool = diesel::select(diesel::dsl::exists(
            oauth_grants::table.filter(oauth_grants::id.eq(id)),
        ))
        .get_result(conn)?;
        if !exists {
            return Err(StoreError::NotFound);
        }
    }
    Ok(())
}

/// Records that a token of grant `id` was used at `now`.
pub fn touch_grant(conn: &mut DbConnection, id: &str, now: &str) -> Result<(), StoreError> {
    diesel::update(oauth_grants::table.filter(oauth_grants::id.eq(id)))
        .set(oauth_grants::last_used_at.eq(now))
        .execute(conn)?;
    Ok(())
}

/// An approval to record (the consent page's "Approve").
#[derive(Debug, Clone)]
pub struct NewAuthorization<'a> {
    /// The client (already validated).
    pub client_id: &'a str,
    /// The exact redirect URI the code is bound to.
    pub redirect_uri: &'a str,
    /// The granted scope (space-separated).
    pub scope: &'a str,
    /// The PKCE S256 challenge, if the client sent one.
    pub code_challenge: Option<&'a str>,
    /// The approving administrator's id.
    pub admin_id: &'a str,
    /// The approving administrator's username.
    pub admin_username: &'a str,
}

/// Records a grant and its authorization code, valid for `code_ttl`;
/// returns the grant's id and the code (not stored).
pub fn create_authorization(
    conn: &mut DbConnection,
    new: &NewAuthorization<'_>,
    now: OffsetDateTime,
    code_ttl: time::Duration,
) -> Result<(String, String), StoreError> {
    let grant_id = uuid::Uuid::new_v4().to_string();
    let created = now_text(now);
    diesel::insert_into(oauth_grants::table)
        .values((
            oauth_grants::id.eq(&grant_id),
            oauth_grants::client_id.eq(new.client_id),
            oauth_grants::admin_id.eq(new.admin_id),
            oauth_grants::admin_username.eq(new.admin_username),
            oauth_grants::scope.eq(new.scope),
            oauth_grants::created_at.eq(&created),
        ))
        .execute(conn)?;
    let code = random_secret();
    diesel::insert_into(oauth_codes::table)
        .values((
            oauth_codes::code_hash.eq(hash_secret(&code)),
            oauth_codes::grant_id.eq(&grant_id),
            oauth_codes::client_id.eq(new.client_id),
            oauth_codes::redirect_uri.eq(new.redirect_uri),
            oauth_codes::code_challenge.eq(new.code_challenge),
            oauth_codes::created_at.eq(&created),
            oauth_codes::expires_at.eq(now_text(now + code_ttl)),
        ))
        .execute(conn)?;
    Ok((grant_id, code))
}

// ---------------------------------------------------------------- tokens

/// How long issued tokens live.
#[derive(Debug, Clone, Copy)]
pub struct TokenLifetimes {
    /// Access tokens.
    pub access: time::Duration,
    /// Refresh tokens (each rotation starts a new lifetime).
    pub refresh: time::Duration,
}

/// A freshly issued token pair (RFC 6749 §5.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedTokens {
    /// The grant.
    pub grant_id: String,
    /// The access token.
    pub access_token: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
    /// The refresh token.
    pub refresh_token: String,
    /// The granted scope.
    pub scope: String,
}

/// Why a code or refresh token was refused: every case is `invalid_grant`
/// (RFC 6749 §5.2); the description is safe to send to the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GrantFailure {
    /// Unknown, or issued to another client.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// The grant was revoked.
    Revoked,
    /// The redirect URI differs from the authorization request's.
    RedirectUriMismatch,
    /// The PKCE verifier is missing, malformed or does not match.
    PkceFailed,
    /// A code verifier was sent for a code issued without a challenge.
    UnexpectedVerifier,
    /// The code was used before: the grant is now revoked (RFC 6749 §4.1.2).
    CodeReused,
    /// The refresh token was rotated before: the grant is now revoked.
    RefreshReused,
}

impl GrantFailure {
    /// The `error_description` sent to the client.
    pub fn description(self) -> &'static str {
        match self {
            GrantFailure::Unknown => "the code or refresh token is invalid or was not issued to this client",
            GrantFailure::Expired => "the code or refresh token has expired",
            GrantFailure::Revoked => "the authorization was revoked; authorize again",
            GrantFailure::RedirectUriMismatch => {
                "redirect_uri does not match the one of the authorization request"
            }
            GrantFailure::PkceFailed => "the PKCE code_verifier does not match the code_challenge",
            GrantFailure::UnexpectedVerifier => {
                "a code_verifier was sent but the authorization request had no code_challenge"
            }
            GrantFailure::CodeReused => {
                "the code was already used; the authorization and every token issued from it are revoked"
            }
            GrantFailure::RefreshReused => {
                "the refresh token was already used; the authorization and every token issued from it are revoked"
            }
        }
    }
}

fn insert_token(
    conn: &mut DbConnection,
    grant_id: &str,
    kind: &str,
    prefix: &str,
    now: OffsetDateTime,
    ttl: time::Duration,
) -> Result<String, StoreError> {
    let token = format!("{prefix}{}", random_secret());
    diesel::insert_into(oauth_tokens::table)
        .values((
            oauth_tokens::token_hash.eq(hash_secret(&token)),
            oauth_tokens::grant_id.eq(grant_id),
            oauth_tokens::kind.eq(kind),
            oauth_tokens::created_at.eq(now_text(now)),
            oauth_tokens::expires_at.eq(now_text(now + ttl)),
        ))
        .execute(conn)?;
    Ok(token)
}

fn issue(
    conn: &mut DbConnection,
    grant_id: &str,
    scope: &str,
    now: OffsetDateTime,
    lifetimes: TokenLifetimes,
) -> Result<IssuedTokens, StoreError> {
    let access_token = insert_token(
        conn,
        grant_id,
        ACCESS,
        ACCESS_TOKEN_PREFIX,
        now,
        lifetimes.access,
    )?;
    let refresh_token = insert_token(
        conn,
        grant_id,
        REFRESH,
        REFRESH_TOKEN_PREFIX,
        now,
        lifetimes.refresh,
    )?;
    touch_grant(conn, grant_id, &now_text(now))?;
    Ok(IssuedTokens {
        grant_id: grant_id.to_owned(),
        access_token,
        expires_in: lifetimes.access.whole_seconds(),
        refresh_token,
        scope: scope.to_owned(),
    })
}

/// Loads grant `id`: its client, scope and whether it is revoked.
fn grant_state(
    conn: &mut DbConnection,
    id: &str,
) -> Result<Option<(String, String, bool)>, StoreError> {
    let found: Option<(String, String, Option<String>)> = oauth_grants::table
        .filter(oauth_grants::id.eq(id))
        .select((
            oauth_grants::client_id,
            oauth_grants::scope,
            oauth_grants::revoked_at,
        ))
        .first(conn)
        .optional()?;
    Ok(found.map(|(client, scope, revoked)| (client, scope, revoked.is_some())))
}

/// Exchanges an authorization code (RFC 6749 §4.1.3) for client
/// `client_id` (already authenticated). Run inside `Store::write`: a
/// reused code revokes its grant, and that revocation must be committed
/// even though the request fails, hence the nested `Result`.
pub fn exchange_code(
    conn: &mut DbConnection,
    client_id: &str,
    code: &str,
    redirect_uri: Option<&str>,
    code_verifier: Option<&str>,
    now: OffsetDateTime,
    lifetimes: TokenLifetimes,
) -> Result<Result<IssuedTokens, GrantFailure>, StoreError> {
    type CodeRow = (
        String,
        String,
        String,
        Option<String>,
        String,
        Option<String>,
    );
    let hash = hash_secret(code);
    let found: Option<CodeRow> = oauth_codes::table
        .filter(oauth_codes::code_hash.eq(&hash))
        .select((
            oauth_codes::code_hash,
            oauth_codes::grant_id,
            oauth_codes::client_id,
            oauth_codes::code_challenge,
            oauth_codes::redirect_uri,
            oauth_codes::used_at,
        ))
        .first(conn)
        .optional()?;
    let Some((stored_hash, grant_id, code_client, challenge, code_redirect, used_at)) = found
    else {
        return Ok(Err(GrantFailure::Unknown));
    };
    if !ct_eq(&stored_hash, &hash) || code_client != client_id {
        return Ok(Err(GrantFailure::Unknown));
    }
    let now_s = now_text(now);
    if used_at.is_some() {
        // RFC 6749 §4.1.2: a code used twice means it leaked; revoke
        // every token issued from it.
        revoke_grant(conn, &grant_id, "authorization code reused", &now_s)?;
        return Ok(Err(GrantFailure::CodeReused));
    }
    let expires_at: String = oauth_codes::table
        .filter(oauth_codes::code_hash.eq(&hash))
        .select(oauth_codes::expires_at)
        .first(conn)?;
    if expires_at <= now_s {
        return Ok(Err(GrantFailure::Expired));
    }
    // RFC 6749 §4.1.3: redirect_uri is required and must be identical
    // when it was included in the authorization request (it always is).
    if redirect_uri != Some(code_redirect.as_str()) {
        return Ok(Err(GrantFailure::RedirectUriMismatch));
    }
    match (&challenge, code_verifier) {
        (Some(challenge), Some(verifier)) => {
            if !is_pkce_value(verifier) || !ct_eq(&pkce_s256(verifier), challenge) {
                return Ok(Err(GrantFailure::PkceFailed));
            }
        }
        (Some(_), None) => return Ok(Err(GrantFailure::PkceFailed)),
        // Security BCP §4.8.2: refuse a verifier without a challenge
        // (a PKCE downgrade).
        (None, Some(_)) => return Ok(Err(GrantFailure::UnexpectedVerifier)),
        (None, None) => {}
    }
    let Some((_, scope, revoked)) = grant_state(conn, &grant_id)? else {
        return Ok(Err(GrantFailure::Unknown));
    };
    if revoked {
        return Ok(Err(GrantFailure::Revoked));
    }
    let claimed = diesel::update(
        oauth_codes::table
            .filter(oauth_codes::code_hash.eq(&hash))
            .filter(oauth_codes::used_at.is_null()),
    )
    .set(oauth_codes::used_at.eq(&now_s))
    .execute(conn)?;
    if claimed == 0 {
        revoke_grant(conn, &grant_id, "authorization code reused", &now_s)?;
        return Ok(Err(GrantFailure::CodeReused));
    }
    Ok(Ok(issue(conn, &grant_id, &scope, now, lifetimes)?))
}

/// Rotates a refresh token (RFC 6749 §6) for client `client_id` (already
/// authenticated): the presented token is used up and a new pair is
/// issued. A token presented again after its rotation revokes the grant
/// (Security BCP §4.14.2). Run inside `Store::write`.
pub fn refresh(
    conn: &mut DbConnection,
    client_id: &str,
    refresh_token: &str,
    now: OffsetDateTime,
    lifetimes: TokenLifetimes,
) -> Result<Result<IssuedTokens, GrantFailure>, StoreError> {
    let hash = hash_secret(refresh_token);
    let found: Option<TokenRow> = oauth_tokens::table
        .filter(oauth_tokens::token_hash.eq(&hash))
        .filter(oauth_tokens::kind.eq(REFRESH))
        .select((
            oauth_tokens::token_hash,
            oauth_tokens::grant_id,
            oauth_tokens::expires_at,
            oauth_tokens::used_at,
            oauth_tokens::revoked_at,
        ))
        .first(conn)
        .optional()?;
    let Some((stored_hash, grant_id, expires_at, used_at, token_revoked)) = found else {
        return Ok(Err(GrantFailure::Unknown));
    };
    let Some((grant_client, scope, grant_revoked)) = grant_state(conn, &grant_id)? else {
        return Ok(Err(GrantFailure::Unknown));
    };
    if !ct_eq(&stored_hash, &hash) || grant_client != client_id {
        return Ok(Err(GrantFailure::Unknown));
    }
    let now_s = now_text(now);
    if used_at.is_some() {
        revoke_grant(conn, &grant_id, "refresh token reused", &now_s)?;
        return Ok(Err(GrantFailure::RefreshReused));
    }
    if grant_revoked || token_revoked.is_some() {
        return Ok(Err(GrantFailure::Revoked));
    }
    if expires_at <= now_s {
        return Ok(Err(GrantFailure::Expired));
    }
    let claimed = diesel::update(
        oauth_tokens::table
            .filter(oauth_tokens::token_hash.eq(&hash))
            .filter(oauth_tokens::used_at.is_null()),
    )
    .set(oauth_tokens::used_at.eq(&now_s))
    .execute(conn)?;
    if claimed == 0 {
        revoke_grant(conn, &grant_id, "refresh token reused", &now_s)?;
        return Ok(Err(GrantFailure::RefreshReused));
    }
    Ok(Ok(issue(conn, &grant_id, &scope, now, lifetimes)?))
}

/// A valid access token, as the SCIM API sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessTokenInfo {
    /// The grant it belongs to.
    pub grant_id: String,
    /// Its expiry.
    pub expires_at: String,
}

/// The access token whose secret is `secret`, if it is unexpired at `now`,
/// not revoked, and its grant is not revoked.
pub fn authenticate_access_token(
    conn: &mut DbConnection,
    secret: &str,
    now: &str,
) -> Result<Option<AccessTokenInfo>, StoreError> {
    let hash = hash_secret(secret);
    let found: Option<TokenRow> = oauth_tokens::table
        .inner_join(oauth_grants::table)
        .filter(oauth_tokens::token_hash.eq(&hash))
        .filter(oauth_tokens::kind.eq(ACCESS))
        .select((
            oauth_tokens::token_hash,
            oauth_tokens::grant_id,
            oauth_tokens::expires_at,
            oauth_tokens::revoked_at,
            oauth_grants::revoked_at,
        ))
        .first(conn)
        .optional()?;
    let Some((stored, grant_id, expires_at, token_revoked, grant_revoked)) = found else {
        return Ok(None);
    };
    if !ct_eq(&stored, &hash)
        || token_revoked.is_some()
        || grant_revoked.is_some()
        || expires_at.as_str() <= now
    {
        return Ok(None);
    }
    Ok(Some(AccessTokenInfo {
        grant_id,
        expires_at,
    }))
}

/// What [`revoke_token`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Revocation {
    /// A refresh token: its whole grant is revoked (RFC 7009 §2.1).
    Grant,
    /// An access token: that token is revoked.
    AccessToken,
    /// Unknown (or already gone): nothing to do, still a success
    /// (RFC 7009 §2.2).
    Unknown,
    /// The token belongs to another client: refused.
    OtherClient,
}

/// Revokes `token` on behalf of client `client_id` (RFC 7009).
pub fn revoke_token(
    conn: &mut DbConnection,
    client_id: &str,
    token: &str,
    now: &str,
) -> Result<Revocation, StoreError> {
    let hash = hash_secret(token);
    let found: Option<(String, String, String)> = oauth_tokens::table
        .inner_join(oauth_grants::table)
        .filter(oauth_tokens::token_hash.eq(&hash))
        .select((
            oauth_tokens::token_hash,
            oauth_tokens::kind,
            oauth_grants::client_id,
        ))
        .first(conn)
        .optional()?;
    let Some((stored, kind, owner)) = found else {
        return Ok(Revocation::Unknown);
    };
    if !ct_eq(&stored, &hash) {
        return Ok(Revocation::Unknown);
    }
    if owner != client_id {
        return Ok(Revocation::OtherClient);
    }
    if kind == REFRESH {
        let grant_id: String = oauth_tokens::table
            .filter(oauth_tokens::token_hash.eq(&hash))
            .select(oauth_tokens::grant_id)
            .first(conn)?;
        revoke_grant(conn, &grant_id, "revoked by the client (RFC 7009)", now)?;
        return Ok(Revocation::Grant);
    }
    diesel::update(
        oauth_tokens::table
            .filter(oauth_tokens::token_hash.eq(&hash))
            .filter(oauth_tokens::revoked_at.is_null()),
    )
    .set(oauth_tokens::revoked_at.eq(now))
    .execute(conn)?;
    Ok(Revocation::AccessToken)
}

/// Deletes codes and tokens that expired before `before` (they can never
/// be used again; a reused expired refresh token is then simply unknown).
/// Returns how many rows went.
pub fn purge_expired(conn: &mut DbConnection, before: &str) -> Result<usize, StoreError> {
    let codes = diesel::delete(oauth_codes::table.filter(oauth_codes::expires_at.lt(before)))
        .execute(conn)?;
    let tokens = diesel::delete(oauth_tokens::table.filter(oauth_tokens::expires_at.lt(before)))
        .execute(conn)?;
    Ok(codes + tokens)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    const URI: &str = "https://portal.azure.com/TokenAuthorize";
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

    fn lifetimes() -> TokenLifetimes {
        TokenLifetimes {
            access: time::Duration::hours(1),
            refresh: time::Duration::days(90),
        }
    }

    fn client(store: &crate::engine::Store) -> (ClientRecord, String) {
        store
            .write(|c| {
                create_client(
                    c,
                    "Entra ID",
                    &[URI.to_owned()],
                    &["scim".to_owned()],
                    "admin:root",
                )
            })
            .unwrap()
    }

    fn authorize(store: &crate::engine::Store, client_id: &str, challenge: Option<&str>) -> String {
        let new = NewAuthorization {
            client_id,
            redirect_uri: URI,
            scope: "scim",
            code_challenge: challenge,
            admin_id: "a1",
            admin_username: "root",
        };
        store
            .write(|c| {
                create_authorization(
                    c,
                    &new,
                    OffsetDateTime::now_utc(),
                    time::Duration::seconds(60),
                )
            })
            .unwrap()
            .1
    }

    fn exchange(
        store: &crate::engine::Store,
        client_id: &str,
        code: &str,
        verifier: Option<&str>,
    ) -> Result<IssuedTokens, GrantFailure> {
        store
            .write(|c| {
                exchange_code(
                    c,
                    client_id,
                    code,
                    Some(URI),
                    verifier,
                    OffsetDateTime::now_utc(),
                    lifetimes(),
                )
            })
            .unwrap()
    }

    fn access_ok(store: &crate::engine::Store, token: &str) -> bool {
        let now = scim_core::datetime::now();
        store
            .read(|c| authenticate_access_token(c, token, &now))
            .unwrap()
            .is_some()
    }

    #[test]
    fn pkce_matches_rfc_7636_appendix_b() {
        assert_eq!(
            pkce_s256(VERIFIER),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert!(is_pkce_value(VERIFIER));
        assert!(!is_pkce_value("short"));
        assert!(!is_pkce_value(&"a".repeat(129)));
        assert!(!is_pkce_value(&format!("{}+", &VERIFIER[1..])));
    }

    #[test]
    fn clients_are_authenticated_rotated_and_deleted() {
        for db in backends() {
            let store = db.store();
            let (client, secret) = client(store);
            assert!(secret.starts_with(CLIENT_SECRET_PREFIX));
            assert!(secret.starts_with(&client.secret_prefix));
            assert_eq!(client.redirect_uris, vec![URI.to_owned()]);
            let listed = store.read(list_clients).unwrap();
            assert_eq!(listed, vec![client.clone()]);
            let ok = |s: &str| {
                store
                    .read(|c| authenticate_client(c, &client.id, s))
                    .unwrap()
                    .is_some()
            };
            assert!(ok(&secret));
            assert!(!ok("wrong"));
            let (rotated, new_secret) = store
                .write(|c| rotate_client_secret(c, &client.id))
                .unwrap();
            assert!(rotated.secret_rotated_at.is_some());
            assert!(!ok(&secret) && ok(&new_secret));
            // Deleting the client revokes everything issued to it.
            let code = authorize(store, &client.id, None);
            let tokens = exchange(store, &client.id, &code, None).unwrap();
            assert!(access_ok(store, &tokens.access_token));
            store.write(|c| delete_client(c, &client.id)).unwrap();
            assert!(!access_ok(store, &tokens.access_token));
            assert!(store.read(list_grants).unwrap().is_empty());
            let err = store.write(|c| delete_client(c, &client.id)).unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
            let err = store
                .write(|c| rotate_client_secret(c, "nope"))
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
        }
    }

    #[test]
    fn codes_are_single_use_and_reuse_revokes_the_grant() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let challenge = pkce_s256(VERIFIER);
            let code = authorize(store, &client.id, Some(&challenge));
            // PKCE: missing or wrong verifier.
            assert_eq!(
                exchange(store, &client.id, &code, None),
                Err(GrantFailure::PkceFailed)
            );
            let wrong = VERIFIER.replace('d', "e");
            assert_eq!(
                exchange(store, &client.id, &code, Some(&wrong)),
                Err(GrantFailure::PkceFailed)
            );
            // Another client, a wrong redirect URI.
            assert_eq!(
                exchange(store, "other", &code, Some(VERIFIER)),
                Err(GrantFailure::Unknown)
            );
            let mismatch = store
                .write(|c| {
                    exchange_code(
                        c,
                        &client.id,
                        &code,
                        Some("https://evil.example/cb"),
                        Some(VERIFIER),
                        OffsetDateTime::now_utc(),
                        lifetimes(),
                    )
                })
                .unwrap();
            assert_eq!(mismatch, Err(GrantFailure::RedirectUriMismatch));
            let tokens = exchange(store, &client.id, &code, Some(VERIFIER)).unwrap();
            assert!(tokens.access_token.starts_with(ACCESS_TOKEN_PREFIX));
            assert!(tokens.refresh_token.starts_with(REFRESH_TOKEN_PREFIX));
            assert_eq!(tokens.expires_in, 3600);
            assert!(access_ok(store, &tokens.access_token));
            // Reuse: refused, and the tokens issued from it stop working.
            assert_eq!(
                exchange(store, &client.id, &code, Some(VERIFIER)),
                Err(GrantFailure::CodeReused)
            );
            assert!(!access_ok(store, &tokens.access_token));
            let grants = store.read(list_grants).unwrap();
            assert_eq!(
                grants[0].0.revoked_reason.as_deref(),
                Some("authorization code reused")
            );
            assert_eq!(grants[0].1, "Entra ID");
            // A verifier without a challenge is a downgrade.
            let plain = authorize(store, &client.id, None);
            assert_eq!(
                exchange(store, &client.id, &plain, Some(VERIFIER)),
                Err(GrantFailure::UnexpectedVerifier)
            );
            assert_eq!(
                exchange(store, &client.id, "unknown", None),
                Err(GrantFailure::Unknown)
            );
        }
    }

    #[test]
    fn expired_codes_are_refused() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let later = OffsetDateTime::now_utc() + time::Duration::seconds(61);
            let res = store
                .write(|c| exchange_code(c, &client.id, &code, Some(URI), None, later, lifetimes()))
                .unwrap();
            assert_eq!(res, Err(GrantFailure::Expired));
        }
    }

    #[test]
    fn refresh_tokens_rotate_and_reuse_revokes_the_grant() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let first = exchange(store, &client.id, &code, None).unwrap();
            let refresh_with = |token: &str, client_id: &str| {
                store
                    .write(|c| refresh(c, client_id, token, OffsetDateTime::now_utc(), lifetimes()))
                    .unwrap()
            };
            assert_eq!(
                refresh_with(&first.refresh_token, "other"),
                Err(GrantFailure::Unknown)
            );
            // An access token is not a refresh token.
            assert_eq!(
                refresh_with(&first.access_token, &client.id),
                Err(GrantFailure::Unknown)
            );
            let second = refresh_with(&first.refresh_token, &client.id).unwrap();
            assert_ne!(second.refresh_token, first.refresh_token);
            assert!(access_ok(store, &first.access_token));
            assert!(access_ok(store, &second.access_token));
            assert_eq!(
                refresh_with(&first.refresh_token, &client.id),
                Err(GrantFailure::RefreshReused)
            );
            assert!(!access_ok(store, &second.access_token));
            assert_eq!(
                refresh_with(&second.refresh_token, &client.id),
                Err(GrantFailure::Revoked)
            );
        }
    }

    #[test]
    fn expired_access_and_refresh_tokens_are_refused() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let code = authorize(store, &client.id, None);
            let short = TokenLifetimes {
                access: time::Duration::seconds(1),
                refresh: time::Duration::seconds(1),
            };
            let past = OffsetDateTime::now_utc() - time::Duration::seconds(5);
            let tokens = store
                .write(|c| exchange_code(c, &client.id, &code, Some(URI), None, past, short))
                .unwrap()
                .unwrap();
            assert!(!access_ok(store, &tokens.access_token));
            let res = store
                .write(|c| {
                    refresh(
                        c,
                        &client.id,
                        &tokens.refresh_token,
                        OffsetDateTime::now_utc(),
                        short,
                    )
                })
                .unwrap();
            assert_eq!(res, Err(GrantFailure::Expired));
            let purged = store
                .write(|c| purge_expired(c, &scim_core::datetime::now()))
                .unwrap();
            assert_eq!(
                purged, 2,
                "the access and refresh tokens (the code lives on)"
            );
        }
    }

    #[test]
    fn revocation_per_rfc_7009() {
        for db in backends() {
            let store = db.store();
            let (client, _) = client(store);
            let now = scim_core::datetime::now();
            let code = authorize(store, &client.id, None);
            let a = exchange(store, &client.id, &code, None).unwrap();
            let revoke = |client_id: &str, token: &str| {
                store
                    .write(|c| revoke_token(c, client_id, token, &now))
                    .unwrap()
            };
            assert_eq!(revoke("other", &a.access_token), Revocation::OtherClient);
            assert!(access_ok(store, &a.access_token));
            assert_eq!(revoke(&client.id, &a.access_token), Revocation::AccessToken);
            assert!(!access_ok(store, &a.access_token));
            assert_eq!(revoke(&client.id, "nope"), Revocation::Unknown);
            let code = authorize(store, &client.id, None);
            let b = exchange(store, &client.id, &code, None).unwrap();
            assert_eq!(revoke(&client.id, &b.refresh_token), Revocation::Grant);
            assert!(!access_ok(store, &b.access_token));
            // Administrators revoke grants too.
            let code = authorize(store, &client.id, None);
            let c3 = exchange(store, &client.id, &code, None).unwrap();
            store
                .write(|c| revoke_grant(c, &c3.grant_id, "revoked by admin:root", &now))
                .unwrap();
            assert!(!access_ok(store, &c3.access_token));
            store
                .write(|c| revoke_grant(c, &c3.grant_id, "again", &now))
                .unwrap();
            let err = store
                .write(|c| revoke_grant(c, "nope", "x", &now))
                .unwrap_err();
            assert!(matches!(err, StoreError::NotFound));
        }
    }
}
