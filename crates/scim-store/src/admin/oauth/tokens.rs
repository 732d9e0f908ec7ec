//! OAuth authorization codes and tokens: the code exchange with PKCE
//! (RFC 6749 §4.1.3, RFC 7636), refresh token rotation (RFC 6749 §6,
//! Security BCP §4.14), access token authentication for the SCIM API,
//! revocation (RFC 7009) and the purge of expired ones.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use sha2::{Digest, Sha256};
use time::OffsetDateTime;

use crate::admin::admins::random_secret;
use crate::admin::oauth::grants::{revoke_grant, touch_grant};
use crate::admin::oauth::{ct_eq, now_text};
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::oauth::{oauth_clients, oauth_codes, oauth_grants, oauth_tokens};
use crate::error::StoreError;

/// The start of every access token.
pub const ACCESS_TOKEN_PREFIX: &str = "scimd_at_";
/// The start of every refresh token.
pub const REFRESH_TOKEN_PREFIX: &str = "scimd_rt_";

const ACCESS: &str = "access";
/// Hash, grant id, expiry, and two optional timestamps of a token row.
type TokenRow = (String, String, String, Option<String>, Option<String>);
const REFRESH: &str = "refresh";

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
    /// The OAuth client it was issued to (`client_id`).
    pub client_id: String,
    /// That client's name, what the change log names it by.
    pub client_name: String,
    /// The organization whose SCIM API it opens (the client's).
    pub org_id: i32,
}

/// The access token whose secret is `secret`, if it is unexpired at `now`,
/// not revoked, and its grant is not revoked.
pub fn authenticate_access_token(
    conn: &mut DbConnection,
    secret: &str,
    now: &str,
) -> Result<Option<AccessTokenInfo>, StoreError> {
    let hash = hash_secret(secret);
    let found: Option<(TokenRow, String, String, i32)> = oauth_tokens::table
        .inner_join(oauth_grants::table.inner_join(oauth_clients::table))
        .filter(oauth_tokens::token_hash.eq(&hash))
        .filter(oauth_tokens::kind.eq(ACCESS))
        .select((
            (
                oauth_tokens::token_hash,
                oauth_tokens::grant_id,
                oauth_tokens::expires_at,
                oauth_tokens::revoked_at,
                oauth_grants::revoked_at,
            ),
            oauth_clients::id,
            oauth_clients::name,
            oauth_clients::org_id,
        ))
        .first(conn)
        .optional()?;
    let Some((
        (stored, grant_id, expires_at, token_revoked, grant_revoked),
        client_id,
        client_name,
        org_id,
    )) = found
    else {
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
        client_id,
        client_name,
        org_id,
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

/// The grant a code or token (its secret as presented) belongs to, if it
/// is known: what a revocation by a client is recorded against.
pub fn grant_of_secret(
    conn: &mut DbConnection,
    secret: &str,
) -> Result<Option<String>, StoreError> {
    let hash = hash_secret(secret);
    let token: Option<String> = oauth_tokens::table
        .filter(oauth_tokens::token_hash.eq(&hash))
        .select(oauth_tokens::grant_id)
        .first(conn)
        .optional()?;
    if token.is_some() {
        return Ok(token);
    }
    Ok(oauth_codes::table
        .filter(oauth_codes::code_hash.eq(&hash))
        .select(oauth_codes::grant_id)
        .first(conn)
        .optional()?)
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
    use super::*;

    /// The code verifier of RFC 7636 Appendix B.
    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";

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
}
