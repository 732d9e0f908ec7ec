//! Admin API tokens: minted with a secret shown once (only its SHA-256 is
//! kept), listed, revoked, and authenticated while neither revoked nor
//! expired. They have their own table, apart from SCIM tokens
//! (`crate::admin::tokens`): neither opens the other's API.

use diesel::prelude::*;
use subtle::ConstantTimeEq;

use crate::admin::admins::accounts::random_secret;
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::admin::admin_tokens;
use crate::error::StoreError;

/// The fixed start of every admin API token secret (distinct from SCIM
/// tokens' `scimd_`, so leaked ones are recognisable).
pub const ADMIN_SECRET_PREFIX: &str = "scimd_admin_";
/// Characters of an admin token kept for display.
const DISPLAY_PREFIX_LEN: usize = 16;

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
