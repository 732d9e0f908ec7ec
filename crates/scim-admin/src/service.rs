//! The admin operations, shared by the HTTP API and the `scimd` CLI so the
//! two can never disagree. Every function is synchronous (the HTTP layer
//! calls them inside `web::block`) and takes the [`Store`] plus the actor
//! (`admin:NAME`, `token:NAME`, `cli:USER`) recorded with each change.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use scim_store::settings::{Deprovisioning, SettingsValues};
use scim_store::{admin, saml, settings, sync, Store};

use crate::cautions::CAUTIONS;
use crate::error::{AdminError, FieldError};
use crate::model::*;
use crate::saml::{check_entity_id, check_sso_url, parse_certificate, parse_metadata};

/// The id of the SAML prerequisite.
pub const SAML_PREREQUISITE: &str = "saml-configured";

// ---------------------------------------------------------------- sync

fn status_from(state: sync::SyncState, saml_configured: bool) -> SyncStatus {
    SyncStatus {
        enabled: state.enabled,
        enabled_at: state.enabled_at,
        enabled_by: state.enabled_by,
        changed_at: state.changed_at,
        changed_by: state.changed_by,
        cautions: CAUTIONS
            .iter()
            .map(|c| CautionView {
                id: c.id.to_owned(),
                text: c.text.to_owned(),
                accepted: state.enabled && state.accepted_cautions.iter().any(|a| a == c.id),
            })
            .collect(),
        prerequisites: vec![PrerequisiteView {
            id: SAML_PREREQUISITE.to_owned(),
            description: "SAML sign-in with the identity provider is configured (entity ID, SSO URL and signing certificate), so that provisioned users can sign in.".to_owned(),
            satisfied: saml_configured,
        }],
    }
}

/// The User Synchronization state.
pub fn sync_status(store: &Store) -> Result<SyncStatus, AdminError> {
    Ok(store.read(|c| {
        let state = sync::get_sync_state(c)?;
        let saml = saml::saml_configured(c)?;
        Ok(status_from(state, saml))
    })?)
}

/// Enables synchronization if every caution is accepted and SAML is
/// configured; otherwise `SyncNotReady` listing what is missing.
pub fn enable_sync(
    store: &Store,
    actor: &str,
    accepted: &[String],
) -> Result<SyncStatus, AdminError> {
    let mut fields: Vec<FieldError> = accepted
        .iter()
        .filter(|a| !CAUTIONS.iter().any(|c| c.id == a.as_str()))
        .map(|a| FieldError::new("accepted_cautions", format!("unknown caution id {a:?}")))
        .collect();
    if !fields.is_empty() {
        return Err(AdminError::fields(std::mem::take(&mut fields)));
    }
    let missing_cautions: Vec<String> = CAUTIONS
        .iter()
        .filter(|c| !accepted.iter().any(|a| a == c.id))
        .map(|c| c.id.to_owned())
        .collect();
    let ids: Vec<String> = CAUTIONS.iter().map(|c| c.id.to_owned()).collect();
    store
        .write(|c| {
            let saml_ok = saml::saml_configured(c)?;
            if !missing_cautions.is_empty() || !saml_ok {
                return Ok(Err((missing_cautions.clone(), saml_ok)));
            }
            sync::enable_sync(c, actor, &ids)?;
            Ok(Ok(()))
        })?
        .map_err(|(missing_cautions, saml_ok)| {
            let mut fields: Vec<FieldError> = missing_cautions
                .iter()
                .map(|id| {
                    FieldError::new(
                        "accepted_cautions",
                        format!("caution {id:?} must be read and accepted"),
                    )
                })
                .collect();
            let mut missing_prerequisites = Vec::new();
            if !saml_ok {
                missing_prerequisites.push(SAML_PREREQUISITE.to_owned());
                fields.push(FieldError::new(
                    "saml",
                    "SAML sign-in is not configured: set the identity provider's metadata, or its entity ID, SSO URL and signing certificate, first",
                ));
            }
            let message = format!(
                "user synchronization cannot be enabled yet: {}",
                fields
                    .iter()
                    .map(|f| f.message.clone())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
            AdminError::SyncNotReady {
                message,
                missing_cautions,
                missing_prerequisites,
                fields,
            }
        })?;
    sync_status(store)
}

/// Disables synchronization: from the next request on, every replica
/// answers the identity provider with 403.
pub fn disable_sync(store: &Store, actor: &str) -> Result<SyncStatus, AdminError> {
    store.write(|c| sync::disable_sync(c, actor, "disabled by an administrator"))?;
    sync_status(store)
}

/// The most recent changes, newest first.
pub fn sync_events(store: &Store, limit: i64) -> Result<Vec<SyncEventView>, AdminError> {
    let events = store.read(|c| sync::list_sync_events(c, limit))?;
    Ok(events
        .into_iter()
        .map(|e| SyncEventView {
            at: e.at,
            actor: e.actor,
            action: e.action,
            detail: e.detail,
        })
        .collect())
}

// ---------------------------------------------------------------- SAML

fn saml_view(s: Option<saml::SamlSettings>) -> SamlView {
    match s {
        None => SamlView {
            configured: false,
            entity_id: None,
            sso_url: None,
            certificate: None,
            certificate_pem: None,
            updated_at: None,
            updated_by: None,
        },
        Some(s) => {
            // Stored certificates were validated on the way in; one that
            // has since expired is still shown, with its dates.
            let info = parse_certificate(&s.certificate_pem, "certificate_pem")
                .ok()
                .map(|c| c.info)
                .or_else(|| describe_even_if_expired(&s.certificate_pem));
            SamlView {
                configured: true,
                entity_id: Some(s.entity_id),
                sso_url: Some(s.sso_url),
                certificate: info,
                certificate_pem: Some(s.certificate_pem),
                updated_at: Some(s.updated_at),
                updated_by: Some(s.updated_by),
            }
        }
    }
}

fn describe_even_if_expired(pem: &str) -> Option<crate::saml::CertificateInfo> {
    use base64::Engine;
    use x509_parser::prelude::{FromDer, X509Certificate};
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect::<String>();
    let der = base64::engine::general_purpose::STANDARD
        .decode(b64.as_bytes())
        .ok()?;
    let (_, cert) = X509Certificate::from_der(&der).ok()?;
    use sha2::Digest;
    let fp = sha2::Sha256::digest(&der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":");
    Some(crate::saml::CertificateInfo {
        subject: cert.subject().to_string(),
        issuer: cert.issuer().to_string(),
        sha256_fingerprint: fp,
        not_before: scim_core::datetime::format(cert.validity().not_before.to_datetime()),
        not_after: scim_core::datetime::format(cert.validity().not_after.to_datetime()),
    })
}

/// The SAML settings.
pub fn get_saml(store: &Store) -> Result<SamlView, AdminError> {
    Ok(saml_view(store.read(saml::find_saml_settings)?))
}

/// Validates and stores SAML settings: `metadata_xml` alone, or all of
/// `entity_id`, `sso_url` and `certificate_pem`. Every invalid field is
/// reported at once.
pub fn set_saml(store: &Store, actor: &str, input: &SamlUpdate) -> Result<SamlView, AdminError> {
    let manual =
        input.entity_id.is_some() || input.sso_url.is_some() || input.certificate_pem.is_some();
    let (entity_id, sso_url, pem) = match (&input.metadata_xml, manual) {
        (Some(_), true) => {
            return Err(AdminError::field(
                "metadata_xml",
                "send either metadata_xml, or entity_id, sso_url and certificate_pem, not both",
            ))
        }
        (Some(xml), false) => {
            let m = parse_metadata(xml, "metadata_xml").map_err(|f| AdminError::fields(vec![f]))?;
            (m.entity_id, m.sso_url, m.certificate.pem)
        }
        (None, _) => {
            let mut errors = Vec::new();
            let missing = |f: &str| FieldError::new(f, "required (or send metadata_xml instead)");
            let entity_id = match &input.entity_id {
                Some(v) => check_entity_id(v, "entity_id")
                    .map_err(|e| errors.push(e))
                    .ok(),
                None => {
                    errors.push(missing("entity_id"));
                    None
                }
            };
            let sso_url = match &input.sso_url {
                Some(v) => check_sso_url(v, "sso_url").map_err(|e| errors.push(e)).ok(),
                None => {
                    errors.push(missing("sso_url"));
                    None
                }
            };
            let cert = match &input.certificate_pem {
                Some(v) => parse_certificate(v, "certificate_pem")
                    .map_err(|e| errors.push(e))
                    .ok(),
                None => {
                    errors.push(missing("certificate_pem"));
                    None
                }
            };
            match (entity_id, sso_url, cert) {
                (Some(e), Some(s), Some(c)) if errors.is_empty() => (e, s, c.pem),
                _ => return Err(AdminError::fields(errors)),
            }
        }
    };
    let saved = store.write(|c| saml::save_saml_settings(c, &entity_id, &sso_url, &pem, actor))?;
    Ok(saml_view(Some(saved)))
}

// ---------------------------------------------------------------- settings

fn settings_view(s: settings::RuntimeSettings) -> SettingsView {
    SettingsView {
        deprovisioning: match s.values.deprovisioning {
            Deprovisioning::Hard => DeprovisioningPolicy::Hard,
            Deprovisioning::Soft => DeprovisioningPolicy::Soft,
        },
        soft_delete_retention_days: s.values.soft_delete_retention_days,
        default_page_size: s.values.default_page_size,
        max_page_size: s.values.max_page_size,
        version: s.version,
        updated_at: s.updated_at,
        updated_by: s.updated_by,
    }
}

/// The run-time settings.
pub fn get_settings(store: &Store) -> Result<SettingsView, AdminError> {
    Ok(settings_view(store.read(settings::get_runtime_settings)?))
}

/// Validates `update` and stores it if the settings are still at
/// `expected_version` (else 412).
pub fn update_settings(
    store: &Store,
    actor: &str,
    update: &SettingsUpdate,
    expected_version: i64,
) -> Result<SettingsView, AdminError> {
    let mut errors = Vec::new();
    if !(1..=3650).contains(&update.soft_delete_retention_days) {
        errors.push(FieldError::new(
            "soft_delete_retention_days",
            "must be between 1 and 3650 days",
        ));
    }
    if !(1..=10_000).contains(&update.max_page_size) {
        errors.push(FieldError::new(
            "max_page_size",
            "must be between 1 and 10000",
        ));
    }
    if update.default_page_size < 1 || update.default_page_size > update.max_page_size {
        errors.push(FieldError::new(
            "default_page_size",
            format!(
                "must be between 1 and max_page_size ({})",
                update.max_page_size
            ),
        ));
    }
    if !errors.is_empty() {
        return Err(AdminError::fields(errors));
    }
    let values = SettingsValues {
        deprovisioning: match update.deprovisioning {
            DeprovisioningPolicy::Hard => Deprovisioning::Hard,
            DeprovisioningPolicy::Soft => Deprovisioning::Soft,
        },
        soft_delete_retention_days: update.soft_delete_retention_days,
        default_page_size: update.default_page_size,
        max_page_size: update.max_page_size,
    };
    let saved = store
        .write(|c| settings::update_runtime_settings(c, &values, expected_version, actor))
        .map_err(|e| match e {
            scim_store::StoreError::PreconditionFailed => AdminError::PreconditionFailed(
                "the settings were changed by someone else since you read them (If-Match is stale); reload them and apply your change again".into(),
            ),
            other => other.into(),
        })?;
    Ok(settings_view(saved))
}

// ---------------------------------------------------------------- tokens

fn state_of(revoked: bool, expires_at: Option<&str>, now: &str) -> String {
    if revoked {
        "revoked"
    } else if expires_at.is_some_and(|e| e <= now) {
        "expired"
    } else {
        "active"
    }
    .to_owned()
}

fn scim_token_view(t: scim_store::TokenInfo, now: &str) -> TokenView {
    TokenView {
        state: state_of(t.revoked_at.is_some(), t.expires_at.as_deref(), now),
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: t.created_at,
        created_by: t.created_by,
        last_used_at: t.last_used_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}

fn admin_token_view(t: admin::AdminTokenInfo, now: &str) -> TokenView {
    TokenView {
        state: state_of(t.revoked_at.is_some(), t.expires_at.as_deref(), now),
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        created_at: t.created_at,
        created_by: Some(t.created_by),
        last_used_at: t.last_used_at,
        expires_at: t.expires_at,
        revoked_at: t.revoked_at,
    }
}

fn check_token_input(req: &CreateTokenRequest) -> Result<(String, Option<String>), AdminError> {
    let mut errors = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        errors.push(FieldError::new("name", "must be 1 to 200 characters"));
    }
    let expires_at = match &req.expires_at {
        None => None,
        Some(raw) => match scim_core::datetime::normalize(raw) {
            Some(t) if t > scim_core::datetime::now() => Some(t),
            Some(_) => {
                errors.push(FieldError::new("expires_at", "must be in the future"));
                None
            }
            None => {
                errors.push(FieldError::new(
                    "expires_at",
                    format!("{raw:?} is not an RFC 3339 date-time such as 2030-01-31T00:00:00Z"),
                ));
                None
            }
        },
    };
    if errors.is_empty() {
        Ok((name, expires_at))
    } else {
        Err(AdminError::fields(errors))
    }
}

/// Mints a SCIM token (what `scimd token create` does), recording `actor`
/// as its creator.
pub fn create_scim_token(
    store: &Store,
    actor: &str,
    req: &CreateTokenRequest,
) -> Result<CreatedToken, AdminError> {
    let (name, expires_at) = check_token_input(req)?;
    let (info, secret) =
        store.write(|c| scim_store::create_token_by(c, &name, expires_at.clone(), Some(actor)))?;
    Ok(CreatedToken {
        token: scim_token_view(info, &scim_core::datetime::now()),
        secret,
    })
}

/// Every SCIM token.
pub fn list_scim_tokens(store: &Store) -> Result<Vec<TokenView>, AdminError> {
    let now = scim_core::datetime::now();
    Ok(store
        .read(scim_store::list_tokens)?
        .into_iter()
        .map(|t| scim_token_view(t, &now))
        .collect())
}

/// Revokes a SCIM token. Replicas that cached it stop accepting it within
/// `auth.token_cache_ttl_secs`.
pub fn revoke_scim_token(store: &Store, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| scim_store::revoke_token(c, id))
        .map_err(|e| not_found_as(e, "SCIM token", id))
}

fn not_found_as(e: scim_store::StoreError, kind: &str, id: &str) -> AdminError {
    match e {
        scim_store::StoreError::NotFound => {
            AdminError::NotFound(format!("no {kind} with id {id:?}"))
        }
        other => other.into(),
    }
}

/// Mints an admin API token.
pub fn create_admin_token(
    store: &Store,
    actor: &str,
    req: &CreateTokenRequest,
) -> Result<CreatedToken, AdminError> {
    let (name, expires_at) = check_token_input(req)?;
    let (info, secret) =
        store.write(|c| admin::create_admin_token(c, &name, expires_at.as_deref(), actor))?;
    Ok(CreatedToken {
        token: admin_token_view(info, &scim_core::datetime::now()),
        secret,
    })
}

/// Every admin API token.
pub fn list_admin_tokens(store: &Store) -> Result<Vec<TokenView>, AdminError> {
    let now = scim_core::datetime::now();
    Ok(store
        .read(admin::list_admin_tokens)?
        .into_iter()
        .map(|t| admin_token_view(t, &now))
        .collect())
}

/// Revokes an admin API token (effective at once: admin tokens are not
/// cached).
pub fn revoke_admin_token(store: &Store, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| admin::revoke_admin_token(c, id))
        .map_err(|e| not_found_as(e, "admin token", id))
}

// ---------------------------------------------------------------- admins

/// Shortest accepted admin password.
pub const MIN_PASSWORD_CHARS: usize = 12;

fn check_credentials(username: &str, password: &str) -> Result<String, AdminError> {
    let mut errors = Vec::new();
    let username = username.trim();
    let valid_chars = username
        .chars()
        .all(|c| c.is_alphanumeric() || "._@-+".contains(c));
    if username.is_empty() || username.chars().count() > 100 || !valid_chars {
        errors.push(FieldError::new(
            "username",
            "must be 1 to 100 letters, digits or . _ @ - +",
        ));
    }
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        errors.push(FieldError::new(
            "password",
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ));
    } else if n > 1024 {
        errors.push(FieldError::new(
            "password",
            "must be at most 1024 characters",
        ));
    }
    if errors.is_empty() {
        Ok(username.to_owned())
    } else {
        Err(AdminError::fields(errors))
    }
}

/// Argon2id hash of `password` (PHC string, default parameters).
pub fn hash_password(password: &str) -> Result<String, AdminError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| {
            tracing::error!(error = %e, "argon2 hashing failed");
            AdminError::Internal
        })
}

fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

fn admin_view(a: admin::AdminRecord) -> AdminView {
    AdminView {
        id: a.id,
        username: a.username,
        created_at: a.created_at,
    }
}

/// Creates an administrator (what `scimd admin create` does).
pub fn create_admin(
    store: &Store,
    username: &str,
    password: &str,
) -> Result<AdminView, AdminError> {
    let username = check_credentials(username, password)?;
    let hash = hash_password(password)?;
    let created = store
        .write(|c| admin::insert_admin(c, &username, &hash))
        .map_err(|e| match e {
            scim_store::StoreError::Conflict(m) => {
                AdminError::fields(vec![FieldError::new("username", m)])
            }
            other => other.into(),
        })?;
    Ok(admin_view(created))
}

/// Whether first-run setup is still open (no administrator exists).
pub fn setup_required(store: &Store) -> Result<bool, AdminError> {
    Ok(store.read(admin::count_admins)? == 0)
}

/// When no administrator exists, mints a one-time setup code valid for
/// `ttl` and returns it (to be logged once); otherwise `None`.
pub fn issue_setup_code(store: &Store, ttl: time::Duration) -> Result<Option<String>, AdminError> {
    let expires = scim_core::datetime::format(time::OffsetDateTime::now_utc() + ttl);
    Ok(store.write(|c| {
        if admin::count_admins(c)? > 0 {
            return Ok(None);
        }
        admin::create_setup_code(c, &expires).map(Some)
    })?)
}

/// Creates the first administrator with a setup code.
pub fn complete_setup(store: &Store, req: &SetupRequest) -> Result<AdminView, AdminError> {
    let username = check_credentials(&req.username, &req.password)?;
    let hash = hash_password(&req.password)?;
    let now = scim_core::datetime::now();
    let created = store
        .write(|c| admin::create_first_admin(c, req.code.trim(), &username, &hash, &now))
        .map_err(|e| match e {
            scim_store::StoreError::PreconditionFailed => AdminError::Conflict(
                "setup is already complete: an administrator exists; sign in instead".into(),
            ),
            other => other.into(),
        })?;
    match created {
        Some(a) => Ok(admin_view(a)),
        None => Err(AdminError::field(
            "code",
            "unknown or expired setup code; use the code printed in scimd's log at startup (restart scimd for a new one)",
        )),
    }
}

/// The pseudo-account under which failed setup attempts are counted.
const SETUP_ACCOUNT: &str = "(setup)";

/// [`complete_setup`], rate-limited per address like logins: a wrong code
/// counts as a failed attempt.
pub fn guarded_setup(
    store: &Store,
    req: &SetupRequest,
    address: &str,
    limits: LoginLimits,
) -> Result<AdminView, AdminError> {
    let now_t = time::OffsetDateTime::now_utc();
    let now = scim_core::datetime::format(now_t);
    let since = scim_core::datetime::format(now_t - limits.window);
    let (_, by_address) =
        store.read(|c| admin::recent_login_failures(c, SETUP_ACCOUNT, address, &since))?;
    if by_address >= limits.max_failures {
        return Err(AdminError::TooManyRequests {
            retry_after_secs: limits.window.whole_seconds().max(1).unsigned_abs(),
        });
    }
    let result = complete_setup(store, req);
    if let Err(AdminError::Validation { fields, .. }) = &result {
        if fields.iter().any(|f| f.field == "code") {
            store.write(|c| {
                admin::record_login_attempt(c, SETUP_ACCOUNT, address, false, &now, &since)
            })?;
        }
    }
    result
}

/// Login rate limiting.
#[derive(Debug, Clone, Copy)]
pub struct LoginLimits {
    /// Failed attempts allowed per account, and per address, in `window`.
    pub max_failures: i64,
    /// The window.
    pub window: time::Duration,
}

impl Default for LoginLimits {
    fn default() -> Self {
        LoginLimits {
            max_failures: 5,
            window: time::Duration::minutes(15),
        }
    }
}

/// Verifies a login and opens a session until `now + ttl`: 429 after too
/// many recent failures for the account or from the address, 401 on a
/// wrong username or password (the same answer for both).
pub fn login(
    store: &Store,
    username: &str,
    password: &str,
    address: &str,
    limits: LoginLimits,
    ttl: time::Duration,
) -> Result<(admin::SessionInfo, String), AdminError> {
    let now_t = time::OffsetDateTime::now_utc();
    let now = scim_core::datetime::format(now_t);
    let since = scim_core::datetime::format(now_t - limits.window);
    let username = username.trim();
    let (by_user, by_address) =
        store.read(|c| admin::recent_login_failures(c, username, address, &since))?;
    if by_user >= limits.max_failures || by_address >= limits.max_failures {
        return Err(AdminError::TooManyRequests {
            retry_after_secs: limits.window.whole_seconds().max(1).unsigned_abs(),
        });
    }
    let found = store.read(|c| admin::find_admin_credentials(c, username))?;
    let ok = match &found {
        Some((_, hash)) => verify_password(password, hash),
        None => {
            // Spend the same time as a real check, so response times do
            // not reveal which usernames exist.
            let _ = hash_password(password);
            false
        }
    };
    store.write(|c| admin::record_login_attempt(c, username, address, ok, &now, &since))?;
    let Some((record, _)) = found.filter(|_| ok) else {
        return Err(AdminError::Unauthorized(
            "wrong username or password".into(),
        ));
    };
    let expires = scim_core::datetime::format(now_t + ttl);
    Ok(store.write(|c| {
        admin::record_admin_login(c, &record.id, &now)?;
        admin::purge_expired_sessions(c, &now)?;
        admin::create_session(c, &record, &expires)
    })?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use scim_store::testing::backends;

    const PEM: &str = include_str!("../tests/fixtures/idp-signing.pem");

    fn all() -> Vec<String> {
        crate::cautions::caution_ids()
    }

    #[test]
    fn enabling_requires_every_caution_and_saml() {
        for db in backends() {
            let store = db.store();
            let s = sync_status(store).unwrap();
            assert!(!s.enabled);
            assert!(!s.prerequisites[0].satisfied);
            let err = enable_sync(store, "cli:t", &all()[..2]).unwrap_err();
            let AdminError::SyncNotReady {
                missing_cautions,
                missing_prerequisites,
                ..
            } = &err
            else {
                panic!("{err:?}")
            };
            assert_eq!(missing_cautions, &all()[2..].to_vec());
            assert_eq!(missing_prerequisites, &vec![SAML_PREREQUISITE.to_string()]);
            let err = enable_sync(store, "cli:t", &["nope".into()]).unwrap_err();
            assert!(err.to_string().contains("unknown caution id"), "{err}");

            set_saml(
                store,
                "cli:t",
                &SamlUpdate {
                    entity_id: Some("urn:idp".into()),
                    sso_url: Some("https://idp.example.com/sso".into()),
                    certificate_pem: Some(PEM.into()),
                    ..Default::default()
                },
            )
            .unwrap();
            let err = enable_sync(store, "cli:t", &all()[1..]).unwrap_err();
            assert!(
                matches!(err, AdminError::SyncNotReady { ref missing_prerequisites, .. } if missing_prerequisites.is_empty())
            );
            let s = enable_sync(store, "cli:t", &all()).unwrap();
            assert!(s.enabled);
            assert!(s.cautions.iter().all(|c| c.accepted));
            assert_eq!(s.enabled_by.as_deref(), Some("cli:t"));
            let s = disable_sync(store, "admin:x").unwrap();
            assert!(!s.enabled);
            assert!(s.cautions.iter().all(|c| !c.accepted));
            let events = sync_events(store, 10).unwrap();
            assert_eq!(events.len(), 2);
        }
    }

    #[test]
    fn saml_errors_are_per_field() {
        for db in backends() {
            let store = db.store();
            let err = set_saml(
                store,
                "t",
                &SamlUpdate {
                    entity_id: Some(" ".into()),
                    sso_url: Some("http://x".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
            let body = err.body();
            let fields: Vec<_> = body.fields.iter().map(|f| f.field.as_str()).collect();
            assert_eq!(fields, ["entity_id", "sso_url", "certificate_pem"]);
            let err = set_saml(
                store,
                "t",
                &SamlUpdate {
                    metadata_xml: Some("<x/>".into()),
                    entity_id: Some("e".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert_eq!(err.body().fields[0].field, "metadata_xml");
            assert!(!get_saml(store).unwrap().configured);
        }
    }

    #[test]
    fn settings_validate_and_check_versions() {
        for db in backends() {
            let store = db.store();
            let s = get_settings(store).unwrap();
            let mut up = SettingsUpdate {
                deprovisioning: DeprovisioningPolicy::Soft,
                soft_delete_retention_days: 0,
                default_page_size: 2000,
                max_page_size: 1000,
            };
            let err = update_settings(store, "t", &up, s.version).unwrap_err();
            let fields: Vec<_> = err.body().fields.into_iter().map(|f| f.field).collect();
            assert_eq!(fields, ["soft_delete_retention_days", "default_page_size"]);
            up.soft_delete_retention_days = 14;
            up.default_page_size = 50;
            let s2 = update_settings(store, "t", &up, s.version).unwrap();
            assert_eq!(s2.version, s.version + 1);
            assert_eq!(s2.deprovisioning, DeprovisioningPolicy::Soft);
            let err = update_settings(store, "t", &up, s.version).unwrap_err();
            assert!(matches!(err, AdminError::PreconditionFailed(_)));
        }
    }

    #[test]
    fn login_is_rate_limited_per_account_and_address() {
        for db in backends() {
            let store = db.store();
            create_admin(store, "root", "correct horse battery").unwrap();
            let limits = LoginLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
            };
            let ttl = time::Duration::hours(1);
            let (session, sid) =
                login(store, "ROOT", "correct horse battery", "a1", limits, ttl).unwrap();
            assert_eq!(session.admin.username, "root");
            assert!(!sid.is_empty());
            for _ in 0..3 {
                let err = login(store, "root", "wrong password!", "a1", limits, ttl).unwrap_err();
                assert!(matches!(err, AdminError::Unauthorized(_)));
            }
            // The account is locked, even with the right password, from anywhere.
            let err = login(store, "root", "correct horse battery", "a2", limits, ttl).unwrap_err();
            assert!(matches!(
                err,
                AdminError::TooManyRequests {
                    retry_after_secs: 900
                }
            ));
            // The address is locked for other accounts too.
            let err = login(store, "other", "x", "a1", limits, ttl).unwrap_err();
            assert!(matches!(err, AdminError::TooManyRequests { .. }));
            // Unknown users get the same 401 as wrong passwords.
            let err = login(store, "ghost", "x", "a3", limits, ttl).unwrap_err();
            assert_eq!(err.to_string(), "wrong username or password");
        }
    }

    #[test]
    fn admin_creation_validates() {
        for db in backends() {
            let store = db.store();
            let err = create_admin(store, "bad name", "short").unwrap_err();
            let fields: Vec<_> = err.body().fields.into_iter().map(|f| f.field).collect();
            assert_eq!(fields, ["username", "password"]);
            create_admin(store, "Alice", "a long enough password").unwrap();
            let err = create_admin(store, "alice", "a long enough password").unwrap_err();
            assert_eq!(err.body().fields[0].field, "username");
            assert!(!setup_required(store).unwrap());
            assert_eq!(
                issue_setup_code(store, time::Duration::hours(1)).unwrap(),
                None
            );
        }
    }

    #[test]
    fn setup_creates_the_first_admin_once() {
        for db in backends() {
            let store = db.store();
            assert!(setup_required(store).unwrap());
            let code = issue_setup_code(store, time::Duration::hours(1))
                .unwrap()
                .unwrap();
            let req = |code: &str| SetupRequest {
                code: code.into(),
                username: "first".into(),
                password: "a long enough password".into(),
            };
            let err = complete_setup(store, &req("wrong")).unwrap_err();
            assert_eq!(err.body().fields[0].field, "code");
            let admin = complete_setup(store, &req(&code)).unwrap();
            assert_eq!(admin.username, "first");
            let err = complete_setup(store, &req(&code)).unwrap_err();
            assert!(matches!(err, AdminError::Conflict(_)));
        }
    }
}
