//! OAuth clients (RFC 6749 §2): registered by an administrator for one
//! identity provider, with exact redirect URIs and allowed scopes; the
//! secret is shown once and stored as a SHA-256 hash.

use diesel::prelude::*;

use crate::admin::admins::random_secret;
use crate::admin::oauth::ct_eq;
use crate::admin::tokens::hash_secret;
use crate::db::connection::DbConnection;
use crate::db::schema::oauth::{oauth_clients, oauth_codes, oauth_grants, oauth_tokens};
use crate::error::StoreError;

/// The start of every client secret.
pub const CLIENT_SECRET_PREFIX: &str = "scimd_cs_";
/// Characters of a client secret kept for display.
const DISPLAY_PREFIX_LEN: usize = 14;

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
    /// The organization whose SCIM API its tokens open.
    pub org: crate::db::org::OrgId,
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
    org_id: i32,
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
            org: crate::db::org::OrgId(self.org_id),
        }
    }
}

fn new_client_secret() -> (String, String, String) {
    let secret = format!("{CLIENT_SECRET_PREFIX}{}", random_secret());
    let prefix = secret.chars().take(DISPLAY_PREFIX_LEN).collect();
    let hash = hash_secret(&secret);
    (secret, prefix, hash)
}

/// Registers a client of the organization `org` (whose SCIM API its
/// access tokens open); returns it and its secret (shown once). The
/// caller has validated the name, the redirect URIs and the scopes.
pub fn create_client(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
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
        org,
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
            oauth_clients::org_id.eq(org.0),
        ))
        .execute(conn)?;
    Ok((record, secret))
}

/// Every client of the organization `org`, oldest first.
pub fn list_clients(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
) -> Result<Vec<ClientRecord>, StoreError> {
    let rows: Vec<ClientRow> = oauth_clients::table
        .filter(oauth_clients::org_id.eq(org.0))
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

/// Replaces the secret of client `id` of the organization `org`; returns
/// the client and the new secret (shown once). The old secret stops
/// working at once; tokens already issued keep working until they expire
/// or are revoked. Another organization's client is `NotFound`.
pub fn rotate_client_secret(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
    id: &str,
) -> Result<(ClientRecord, String), StoreError> {
    crate::error::known_id(id)?;
    let (secret, prefix, hash) = new_client_secret();
    let updated = diesel::update(
        oauth_clients::table
            .filter(oauth_clients::id.eq(id))
            .filter(oauth_clients::org_id.eq(org.0)),
    )
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

/// Deletes client `id` of the organization `org` with its grants, codes
/// and tokens (they stop working at once). An unknown id, or another
/// organization's client → `NotFound`.
pub fn delete_client(
    conn: &mut DbConnection,
    org: crate::db::org::OrgId,
    id: &str,
) -> Result<(), StoreError> {
    crate::error::known_id(id)?;
    let ours: bool = diesel::select(diesel::dsl::exists(
        oauth_clients::table
            .filter(oauth_clients::id.eq(id))
            .filter(oauth_clients::org_id.eq(org.0)),
    ))
    .get_result(conn)?;
    if !ours {
        return Err(StoreError::NotFound);
    }
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
