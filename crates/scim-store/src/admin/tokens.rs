//! Bearer tokens for the SCIM API (RFC 7644 §2: the service provider
//! authenticates clients; Entra and Okta send `Authorization: Bearer`).
//!
//! The secret is shown once at creation; only its SHA-256 is stored, so a
//! database leak does not leak usable tokens. A 256-bit random secret needs
//! no slow password hash: guessing is infeasible either way.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use diesel::prelude::*;
use rand::rngs::OsRng;
use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::scim::scim_tokens;
use crate::error::StoreError;

/// The fixed start of every secret, so leaked tokens are recognisable by
/// secret scanners.
pub const SECRET_PREFIX: &str = "scimd_";
/// How many characters of the secret are kept for display.
const DISPLAY_PREFIX_LEN: usize = 12;

/// A token as listed to the operator: never the secret.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = scim_tokens)]
pub struct TokenInfo {
    /// UUID text.
    pub id: String,
    /// The operator's label.
    pub name: String,
    /// The first 12 characters of the secret, to recognise it.
    pub prefix: String,
    /// Creation time (fixed UTC text form, `scim_core::datetime`).
    pub created_at: String,
    /// Last successful authentication, if any.
    pub last_used_at: Option<String>,
    /// Expiry, if any.
    pub expires_at: Option<String>,
    /// Revocation time, if revoked.
    pub revoked_at: Option<String>,
    /// Who created it (`admin:<name>`, `token:<name>`, `cli:<login>`), if
    /// known.
    pub created_by: Option<String>,
    /// The organization whose SCIM API it opens (`organizations.id`).
    pub org_id: i32,
}

#[derive(Insertable)]
#[diesel(table_name = scim_tokens)]
struct NewTokenRow<'a> {
    id: &'a str,
    name: &'a str,
    prefix: &'a str,
    secret_hash: &'a str,
    created_at: &'a str,
    expires_at: Option<&'a str>,
    created_by: Option<&'a str>,
    org_id: i32,
}

/// SHA-256 of `secret`, lowercase hex: the stored form of a token secret.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Creates a token named `name`, optionally expiring at `expires_at` (any
/// RFC 3339 date-time), with no creator recorded. Returns the token and
/// its secret, which is not stored and cannot be shown again.
#[cfg(any(test, feature = "testing"))]
pub fn create_token(
    conn: &mut DbConnection,
    name: &str,
    expires_at: Option<String>,
) -> Result<(TokenInfo, String), StoreError> {
    create_token_by(conn, OrgId::DEFAULT, name, expires_at, None)
}

/// Creates a token of the organization `org`, recording who created it
/// (`admin:<name>`, `token:<name>`, `cli:<login>`), as [`create_token`].
pub fn create_token_by(
    conn: &mut DbConnection,
    org: OrgId,
    name: &str,
    expires_at: Option<String>,
    created_by: Option<&str>,
) -> Result<(TokenInfo, String), StoreError> {
    let name = name.trim();
    if name.is_empty() {
        return Err(StoreError::Invalid(scim_core::ScimError::invalid_value(
            "a token needs a non-empty name",
        )));
    }
    let expires_at = match expires_at {
        None => None,
        Some(raw) => Some(scim_core::datetime::normalize(&raw).ok_or_else(|| {
            StoreError::Invalid(scim_core::ScimError::invalid_value(format!(
                "expires_at \"{raw}\" is not an RFC 3339 date-time such as 2030-01-31T00:00:00Z"
            )))
        })?),
    };
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    let secret = format!("{SECRET_PREFIX}{}", URL_SAFE_NO_PAD.encode(bytes));
    let prefix: String = secret.chars().take(DISPLAY_PREFIX_LEN).collect();
    let id = uuid::Uuid::new_v4().to_string();
    let created_at = scim_core::datetime::now();
    let secret_hash = hash_secret(&secret);
    diesel::insert_into(scim_tokens::table)
        .values(NewTokenRow {
            id: &id,
            name,
            prefix: &prefix,
            secret_hash: &secret_hash,
            created_at: &created_at,
            expires_at: expires_at.as_deref(),
            created_by,
            org_id: org.0,
        })
        .execute(conn)?;
    let info = TokenInfo {
        id,
        name: name.to_owned(),
        prefix,
        created_at,
        last_used_at: None,
        expires_at,
        revoked_at: None,
        created_by: created_by.map(str::to_owned),
        org_id: org.0,
    };
    Ok((info, secret))
}

/// Every token of the organization, oldest first (revoked and expired
/// ones included).
pub fn list_tokens(conn: &mut DbConnection, org: OrgId) -> Result<Vec<TokenInfo>, StoreError> {
    Ok(scim_tokens::table
        .filter(scim_tokens::org_id.eq(org.0))
        .select(TokenInfo::as_select())
        .order((scim_tokens::created_at, scim_tokens::id))
        .load(conn)?)
}

/// Revokes a token of the organization; revoking it again is a no-op. An
/// id unknown in the organization → `NotFound`.
pub fn revoke_token(conn: &mut DbConnection, org: OrgId, id: &str) -> Result<(), StoreError> {
    crate::error::known_id(id)?;
    let now = scim_core::datetime::now();
    let updated = diesel::update(
        scim_tokens::table
            .filter(scim_tokens::id.eq(id))
            .filter(scim_tokens::org_id.eq(org.0))
            .filter(scim_tokens::revoked_at.is_null()),
    )
    .set(scim_tokens::revoked_at.eq(&now))
    .execute(conn)?;
    if updated == 0 && !token_exists(conn, org, id)? {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// The token whose secret is `secret`, if it exists, is not revoked and has
/// not expired at `now` (fixed UTC text form). Does not record the use; see
/// [`touch_token`].
pub fn authenticate_token(
    conn: &mut DbConnection,
    secret: &str,
    now: &str,
) -> Result<Option<TokenInfo>, StoreError> {
    let hash = hash_secret(secret);
    let found: Option<(TokenInfo, String)> = scim_tokens::table
        .filter(scim_tokens::secret_hash.eq(&hash))
        .select((TokenInfo::as_select(), scim_tokens::secret_hash))
        .first(conn)
        .optional()?;
    let Some((info, stored)) = found else {
        return Ok(None);
    };
    // The lookup is by hash, so a timing difference reveals nothing about
    // the secret; compare in constant time anyway, so no code path ever
    // compares secret material with early exit.
    if !bool::from(stored.as_bytes().ct_eq(hash.as_bytes())) {
        return Ok(None);
    }
    if info.revoked_at.is_some() {
        return Ok(None);
    }
    if info.expires_at.as_deref().is_some_and(|exp| exp <= now) {
        return Ok(None);
    }
    Ok(Some(info))
}

/// Records that token `id` was used at `now`. Unknown id → `NotFound`.
pub fn touch_token(conn: &mut DbConnection, id: &str, now: &str) -> Result<(), StoreError> {
    let updated = diesel::update(scim_tokens::table.filter(scim_tokens::id.eq(id)))
        .set(scim_tokens::last_used_at.eq(now))
        .execute(conn)?;
    if updated == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

fn token_exists(conn: &mut DbConnection, org: OrgId, id: &str) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        scim_tokens::table
            .filter(scim_tokens::id.eq(id))
            .filter(scim_tokens::org_id.eq(org.0)),
    ))
    .get_result(conn)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_sha256_hex() {
        assert_eq!(
            hash_secret("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
