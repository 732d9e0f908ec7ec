//! The identity provider's SAML sign-in settings: the prerequisite of User
//! Synchronization (users provisioned over SCIM sign in through SAML).
//! Parsing and validating the certificate or metadata is the admin crate's
//! job; this module stores what was validated.

use diesel::prelude::*;

use crate::db::connection::DbConnection;
use crate::db::org::OrgId;
use crate::db::schema::admin::{saml_assertions, saml_settings};
use crate::error::StoreError;

/// Stored SAML settings.
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = saml_settings)]
pub struct SamlSettings {
    /// The IdP's entity ID.
    pub entity_id: String,
    /// The IdP's single sign-on URL.
    pub sso_url: String,
    /// The IdP's signing certificate, PEM.
    pub certificate_pem: String,
    /// Last change.
    pub updated_at: String,
    /// Who made the last change.
    pub updated_by: String,
}

/// The organization's configured settings, if any.
pub fn find_saml_settings(
    conn: &mut DbConnection,
    org: OrgId,
) -> Result<Option<SamlSettings>, StoreError> {
    Ok(saml_settings::table
        .filter(saml_settings::id.eq(org.0))
        .select(SamlSettings::as_select())
        .first(conn)
        .optional()?)
}

/// Whether the organization's SAML sign-in is configured.
pub fn saml_configured(conn: &mut DbConnection, org: OrgId) -> Result<bool, StoreError> {
    Ok(diesel::select(diesel::dsl::exists(
        saml_settings::table.filter(saml_settings::id.eq(org.0)),
    ))
    .get_result(conn)?)
}

/// Stores (replaces) the settings on behalf of `actor`. Run it inside
/// `Store::write`: the update-then-insert is one transaction.
pub fn save_saml_settings(
    conn: &mut DbConnection,
    org: OrgId,
    entity_id: &str,
    sso_url: &str,
    certificate_pem: &str,
    actor: &str,
) -> Result<SamlSettings, StoreError> {
    let now = scim_core::datetime::now();
    let updated = diesel::update(saml_settings::table.filter(saml_settings::id.eq(org.0)))
        .set((
            saml_settings::entity_id.eq(entity_id),
            saml_settings::sso_url.eq(sso_url),
            saml_settings::certificate_pem.eq(certificate_pem),
            saml_settings::updated_at.eq(&now),
            saml_settings::updated_by.eq(actor),
        ))
        .execute(conn)?;
    if updated == 0 {
        diesel::insert_into(saml_settings::table)
            .values((
                saml_settings::id.eq(org.0),
                saml_settings::entity_id.eq(entity_id),
                saml_settings::sso_url.eq(sso_url),
                saml_settings::certificate_pem.eq(certificate_pem),
                saml_settings::updated_at.eq(&now),
                saml_settings::updated_by.eq(actor),
            ))
            .execute(conn)?;
    }
    Ok(SamlSettings {
        entity_id: entity_id.to_owned(),
        sso_url: sso_url.to_owned(),
        certificate_pem: certificate_pem.to_owned(),
        updated_at: now,
        updated_by: actor.to_owned(),
    })
}

/// Remembers the assertion `id` until `expires_at` (stored form), after
/// forgetting those that expired by `now`. `false` when `id` is already
/// remembered: the assertion is a replay. Run it inside `Store::write`,
/// in the transaction that opens the session, so that two replicas given
/// the same assertion cannot both sign in (the second insert hits the
/// primary key and fails as `StoreError::Conflict`).
pub fn remember_saml_assertion(
    conn: &mut DbConnection,
    id: &str,
    expires_at: &str,
    now: &str,
) -> Result<bool, StoreError> {
    diesel::delete(saml_assertions::table.filter(saml_assertions::expires_at.le(now)))
        .execute(conn)?;
    let seen: bool = diesel::select(diesel::dsl::exists(
        saml_assertions::table.filter(saml_assertions::id.eq(id)),
    ))
    .get_result(conn)?;
    if seen {
        return Ok(false);
    }
    diesel::insert_into(saml_assertions::table)
        .values((
            saml_assertions::id.eq(id),
            saml_assertions::expires_at.eq(expires_at),
        ))
        .execute(conn)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use crate::testing::backends;

    #[test]
    fn saves_and_replaces_one_row() {
        for db in backends() {
            let store = db.store();
            assert!(!store
                .read(|c| saml_configured(c, crate::db::org::OrgId::DEFAULT))
                .unwrap());
            assert_eq!(
                store
                    .read(|c| find_saml_settings(c, crate::db::org::OrgId::DEFAULT))
                    .unwrap(),
                None
            );
            store
                .write(|c| {
                    save_saml_settings(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "urn:a",
                        "https://a/sso",
                        "PEM-A",
                        "cli:x",
                    )
                })
                .unwrap();
            store
                .write(|c| {
                    save_saml_settings(
                        c,
                        crate::db::org::OrgId::DEFAULT,
                        "urn:b",
                        "https://b/sso",
                        "PEM-B",
                        "admin:y",
                    )
                })
                .unwrap();
            assert!(store
                .read(|c| saml_configured(c, crate::db::org::OrgId::DEFAULT))
                .unwrap());
            let s = store
                .read(|c| find_saml_settings(c, crate::db::org::OrgId::DEFAULT))
                .unwrap()
                .unwrap();
            assert_eq!(s.entity_id, "urn:b");
            assert_eq!(s.sso_url, "https://b/sso");
            assert_eq!(s.certificate_pem, "PEM-B");
            assert_eq!(s.updated_by, "admin:y");
        }
    }
    #[test]
    fn an_assertion_id_is_accepted_once_until_it_expires() {
        for db in backends() {
            let store = db.store();
            let t0 = "2026-12-06T10:00:00.000Z";
            let exp = "2026-12-06T10:05:00.000Z";
            let later = "2026-12-06T10:05:00.001Z";
            assert!(store
                .write(|c| remember_saml_assertion(c, "_a1", exp, t0))
                .unwrap());
            assert!(!store
                .write(|c| remember_saml_assertion(c, "_a1", exp, t0))
                .unwrap());
            // Another ID is not a replay.
            assert!(store
                .write(|c| remember_saml_assertion(c, "_a2", exp, t0))
                .unwrap());
            // Once expired, the ID is forgotten.
            assert!(store
                .write(|c| remember_saml_assertion(c, "_a3", later, later))
                .unwrap());
            let left: i64 = store
                .read(|c| Ok(saml_assertions::table.count().get_result(c)?))
                .unwrap();
            assert_eq!(left, 1);
        }
    }
}
