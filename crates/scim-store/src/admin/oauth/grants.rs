//! OAuth grants: one approval on the consent page (which client, which
//! administrator, when). Every code and token belongs to one, and
//! revoking it (an administrator, RFC 7009, or reuse detection) stops all
//! of them at once.

use diesel::prelude::*;
use time::OffsetDateTime;

use crate::admin::admins::random_secret;
use crate::admin::oauth::now_text;
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::oauth::{oauth_clients, oauth_codes, oauth_grants};
use crate::error::StoreError;

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

/// Every grant to a client of the organization `org`, with the client's
/// name, newest first.
pub fn list_grants(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
) -> Result<Vec<(GrantRecord, String)>, StoreError> {
    Ok(oauth_grants::table
        .inner_join(oauth_clients::table)
        .filter(oauth_clients::org_id.eq(org.0))
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
