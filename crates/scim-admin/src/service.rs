//! The admin operations, shared by the HTTP API and the `scimd` CLI so the
//! two can never disagree. Most functions are synchronous (the HTTP layer
//! calls them inside `web::block`) and take the [`Store`] plus the
//! [`Actor`] recorded with each change, in the change log (the same
//! transaction, last) and in the `…_by` columns ([`Actor::label`]).
//! Those that check or hash a password are async: the password waits for
//! the process's bounded Argon2id gate ([`PasswordHasher`]) without holding
//! a thread, and the database steps around it run on the blocking pool.

use scim_store::admin::{Admission, Attempt};
use scim_store::changes::{Actor, ActorKind, Event};
use scim_store::settings::{Deprovisioning, SettingsValues};
use scim_store::{admin, saml, settings, sync, OrgId, PasswordHasher, Store};

use actix_web::web;

use crate::activity::{record_event, settings_changes};
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

/// The organization's User Synchronization state.
pub fn sync_status(store: &Store, org: OrgId) -> Result<SyncStatus, AdminError> {
    Ok(store.read(|c| {
        let state = sync::get_sync_state(c, org)?;
        let saml = saml::saml_configured(c, org)?;
        Ok(status_from(state, saml))
    })?)
}

/// Enables synchronization if every caution is accepted and SAML is
/// configured; otherwise `SyncNotReady` listing what is missing.
pub fn enable_sync(
    store: &Store,
    actor: &Actor,
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
            let saml_ok = saml::saml_configured(c, actor.org)?;
            if !missing_cautions.is_empty() || !saml_ok {
                return Ok(Err((missing_cautions.clone(), saml_ok)));
            }
            sync::enable_sync(c, actor.org, &actor.label(), &ids)?;
            record_event(
                c,
                actor,
                Event::SyncEnabled,
                "Sync",
                None,
                serde_json::json!({ "accepted_cautions": ids }),
            )?;
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
    sync_status(store, actor.org)
}

/// Disables synchronization: from the next request on, every replica
/// answers the identity provider with 403.
pub fn disable_sync(store: &Store, actor: &Actor) -> Result<SyncStatus, AdminError> {
    store.write(|c| {
        sync::disable_sync(c, actor.org, &actor.label(), "disabled by an administrator")?;
        record_event(
            c,
            actor,
            Event::SyncDisabled,
            "Sync",
            None,
            serde_json::json!({}),
        )
    })?;
    sync_status(store, actor.org)
}

/// The organization's most recent changes, newest first.
pub fn sync_events(
    store: &Store,
    org: OrgId,
    limit: i64,
) -> Result<Vec<SyncEventView>, AdminError> {
    let events = store.read(|c| sync::list_sync_events(c, org, limit))?;
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

/// The organization's SAML settings.
pub fn get_saml(store: &Store, org: OrgId) -> Result<SamlView, AdminError> {
    Ok(saml_view(store.read(|c| saml::find_saml_settings(c, org))?))
}

/// Validates and stores SAML settings: `metadata_xml` alone, or all of
/// `entity_id`, `sso_url` and `certificate_pem`. Every invalid field is
/// reported at once.
pub fn set_saml(store: &Store, actor: &Actor, input: &SamlUpdate) -> Result<SamlView, AdminError> {
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
    let saved = store.write(|c| {
        let saved =
            saml::save_saml_settings(c, actor.org, &entity_id, &sso_url, &pem, &actor.label())?;
        record_event(
            c,
            actor,
            Event::SamlChanged,
            "Saml",
            None,
            serde_json::json!({ "entity_id": entity_id, "sso_url": sso_url }),
        )?;
        Ok(saved)
    })?;
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
        change_log_retention_days: s.values.change_log_retention_days,
        health_failure_percent: s.values.health_failure_percent,
        health_silence_minutes: s.values.health_silence_minutes,
        health_window_requests: s.values.health_window_requests,
        health_window_minutes: s.values.health_window_minutes,
        version: s.version,
        updated_at: s.updated_at,
        updated_by: s.updated_by,
    }
}

/// The organization's run-time settings.
pub fn get_settings(store: &Store, org: OrgId) -> Result<SettingsView, AdminError> {
    Ok(settings_view(
        store.read(|c| settings::get_runtime_settings(c, org))?,
    ))
}

/// Validates `update` and stores it if the settings are still at
/// `expected_version` (else 412).
pub fn update_settings(
    store: &Store,
    actor: &Actor,
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
    // The optional values: refused only when given and out of range.
    for (field, value, range, detail) in [
        (
            "change_log_retention_days",
            update.change_log_retention_days,
            1..=3650,
            "must be between 1 and 3650 days",
        ),
        (
            "health_failure_percent",
            update.health_failure_percent,
            1..=100,
            "must be between 1 and 100 percent",
        ),
        (
            "health_silence_minutes",
            update.health_silence_minutes,
            5..=10_080,
            "must be between 5 and 10080 minutes (a week)",
        ),
        (
            "health_window_requests",
            update.health_window_requests,
            10..=1000,
            "must be between 10 and 1000 requests",
        ),
        (
            "health_window_minutes",
            update.health_window_minutes,
            1..=60,
            "must be between 1 and 60 minutes",
        ),
    ] {
        if value.is_some_and(|v| !range.contains(&v)) {
            errors.push(FieldError::new(field, detail));
        }
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
    let saved = store
        .write(|c| {
            let before = settings::get_runtime_settings(c, actor.org)?;
            let values = SettingsValues {
                deprovisioning: match update.deprovisioning {
                    DeprovisioningPolicy::Hard => Deprovisioning::Hard,
                    DeprovisioningPolicy::Soft => Deprovisioning::Soft,
                },
                soft_delete_retention_days: update.soft_delete_retention_days,
                default_page_size: update.default_page_size,
                max_page_size: update.max_page_size,
                change_log_retention_days: update
                    .change_log_retention_days
                    .unwrap_or(before.values.change_log_retention_days),
                health_failure_percent: update
                    .health_failure_percent
                    .unwrap_or(before.values.health_failure_percent),
                health_silence_minutes: update
                    .health_silence_minutes
                    .unwrap_or(before.values.health_silence_minutes),
                health_window_requests: update
                    .health_window_requests
                    .unwrap_or(before.values.health_window_requests),
                health_window_minutes: update
                    .health_window_minutes
                    .unwrap_or(before.values.health_window_minutes),
            };
            let saved = settings::update_runtime_settings(
                c,
                actor.org,
                &values,
                expected_version,
                &actor.label(),
            )?;
            record_event(
                c,
                actor,
                Event::SettingsChanged,
                "Settings",
                None,
                settings_changes(&before.values, &saved.values, saved.version),
            )?;
            Ok(saved)
        })
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
    actor: &Actor,
    req: &CreateTokenRequest,
) -> Result<CreatedToken, AdminError> {
    let (name, expires_at) = check_token_input(req)?;
    let (info, secret) = store.write(|c| {
        let (info, secret) = scim_store::create_token_by(
            c,
            actor.org,
            &name,
            expires_at.clone(),
            Some(&actor.label()),
        )?;
        record_event(
            c,
            actor,
            Event::ScimTokenCreated,
            "ScimToken",
            Some(&info.id),
            serde_json::json!({ "name": info.name, "expires_at": info.expires_at }),
        )?;
        Ok((info, secret))
    })?;
    Ok(CreatedToken {
        token: scim_token_view(info, &scim_core::datetime::now()),
        secret,
    })
}

/// Every SCIM token of the organization.
pub fn list_scim_tokens(store: &Store, org: OrgId) -> Result<Vec<TokenView>, AdminError> {
    let now = scim_core::datetime::now();
    Ok(store
        .read(|c| scim_store::list_tokens(c, org))?
        .into_iter()
        .map(|t| scim_token_view(t, &now))
        .collect())
}

/// Revokes a SCIM token. Replicas that cached it stop accepting it within
/// `auth.token_cache_ttl_secs`.
pub fn revoke_scim_token(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| {
            // The token as it was: a revocation of a revoked token changes
            // nothing and records nothing.
            let before = scim_store::list_tokens(c, actor.org)?
                .into_iter()
                .find(|t| t.id == id);
            scim_store::revoke_token(c, actor.org, id)?;
            match before {
                Some(t) if t.revoked_at.is_none() => record_event(
                    c,
                    actor,
                    Event::ScimTokenRevoked,
                    "ScimToken",
                    Some(id),
                    serde_json::json!({ "name": t.name }),
                ),
                _ => Ok(()),
            }
        })
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

/// Mints an admin API token that acts on every organization (an instance
/// administrator's).
pub fn create_admin_token(
    store: &Store,
    actor: &Actor,
    req: &CreateTokenRequest,
) -> Result<CreatedToken, AdminError> {
    create_admin_token_in(store, actor, req, None)
}

/// Mints an admin API token; `bound`: the organization it acts within
/// (an organization administrator's token), `None`: every organization.
pub fn create_admin_token_in(
    store: &Store,
    actor: &Actor,
    req: &CreateTokenRequest,
    bound: Option<scim_store::OrgId>,
) -> Result<CreatedToken, AdminError> {
    let (name, expires_at) = check_token_input(req)?;
    let (info, secret) = store.write(|c| {
        let (mut info, secret) =
            admin::create_admin_token(c, &name, expires_at.as_deref(), &actor.label())?;
        if let Some(org) = bound {
            admin::roles::bind_admin_token(c, &info.id, org)?;
            info.org_id = Some(org.0);
        }
        record_event(
            c,
            actor,
            Event::AdminTokenCreated,
            "AdminToken",
            Some(&info.id),
            serde_json::json!({ "name": info.name, "expires_at": info.expires_at }),
        )?;
        Ok((info, secret))
    })?;
    Ok(CreatedToken {
        token: admin_token_view(info, &scim_core::datetime::now()),
        secret,
    })
}

/// Every admin API token.
pub fn list_admin_tokens(store: &Store) -> Result<Vec<TokenView>, AdminError> {
    list_admin_tokens_in(store, None)
}

/// The admin API tokens bound to `bound` (what an organization
/// administrator sees), or every one (`None`).
pub fn list_admin_tokens_in(
    store: &Store,
    bound: Option<scim_store::OrgId>,
) -> Result<Vec<TokenView>, AdminError> {
    let now = scim_core::datetime::now();
    Ok(store
        .read(admin::list_admin_tokens)?
        .into_iter()
        .filter(|t| bound.is_none_or(|org| t.org_id == Some(org.0)))
        .map(|t| admin_token_view(t, &now))
        .collect())
}

/// Revokes an admin API token (effective at once: admin tokens are not
/// cached).
pub fn revoke_admin_token(store: &Store, actor: &Actor, id: &str) -> Result<(), AdminError> {
    revoke_admin_token_in(store, actor, id, None)
}

/// Revokes an admin API token; with `bound`, only one bound to that
/// organization (any other is not found).
pub fn revoke_admin_token_in(
    store: &Store,
    actor: &Actor,
    id: &str,
    bound: Option<scim_store::OrgId>,
) -> Result<(), AdminError> {
    store
        .write(|c| {
            let before = admin::list_admin_tokens(c)?
                .into_iter()
                .find(|t| t.id == id);
            if let Some(org) = bound {
                if before.as_ref().is_none_or(|t| t.org_id != Some(org.0)) {
                    return Err(scim_store::StoreError::NotFound);
                }
            }
            admin::revoke_admin_token(c, id)?;
            match before {
                Some(t) if t.revoked_at.is_none() => record_event(
                    c,
                    actor,
                    Event::AdminTokenRevoked,
                    "AdminToken",
                    Some(id),
                    serde_json::json!({ "name": t.name }),
                ),
                _ => Ok(()),
            }
        })
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
    errors.extend(check_password("password", password));
    if errors.is_empty() {
        Ok(username.to_owned())
    } else {
        Err(AdminError::fields(errors))
    }
}

/// What is wrong with `password` (12–1024 characters), as an error on
/// `field`.
pub(crate) fn check_password(field: &str, password: &str) -> Option<FieldError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_CHARS {
        Some(FieldError::new(
            field,
            format!("must be at least {MIN_PASSWORD_CHARS} characters"),
        ))
    } else if n > 1024 {
        Some(FieldError::new(field, "must be at most 1024 characters"))
    } else {
        None
    }
}

fn admin_view(a: admin::AdminRecord) -> AdminView {
    AdminView {
        id: a.id,
        username: a.username,
        created_at: a.created_at,
    }
}

/// Creates an instance administrator (what `scimd admin create` does).
pub async fn create_admin(
    store: &Store,
    hasher: &PasswordHasher,
    actor: &Actor,
    username: &str,
    password: &str,
) -> Result<AdminView, AdminError> {
    create_admin_with_scope(
        store,
        hasher,
        actor,
        username,
        password,
        admin::roles::AdminScope::instance(),
        Vec::new(),
    )
    .await
}

/// Creates an administrator with `scope` (its role and, for an
/// organization administrator, its organizations), in one transaction
/// with its change log row; `slugs` names `scope`'s organizations in it.
pub async fn create_admin_with_scope(
    store: &Store,
    hasher: &PasswordHasher,
    actor: &Actor,
    username: &str,
    password: &str,
    scope: admin::roles::AdminScope,
    slugs: Vec<String>,
) -> Result<AdminView, AdminError> {
    let username = check_credentials(username, password)?;
    let hash = hasher.hash(password.to_owned()).await?;
    let store = store.clone();
    let actor = actor.clone();
    let created = web::block(move || {
        store.write(|c| {
            let created = admin::insert_admin(c, &username, &hash)?;
            let mut detail = serde_json::json!({ "username": created.username });
            if !scope.is_instance() {
                let now = scim_core::datetime::now();
                admin::roles::set_admin_scope(c, &created.id, &scope, &now)?;
                detail["role"] = scope.role.as_str().into();
                detail["organizations"] = slugs.into();
            }
            record_event(
                c,
                &actor,
                Event::AdminCreated,
                "Admin",
                Some(&created.id),
                detail,
            )?;
            Ok(created)
        })
    })
    .await?
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

/// Limits on attempts at a credential (see [`admin::AttemptLimits`]).
pub use scim_store::admin::AttemptLimits;

/// What a limited check of a secret needs: the store, the password gate,
/// the caller's address, the limits and the time (passed in, so tests
/// move it instead of waiting out a window).
#[derive(Debug, Clone)]
pub struct Guard {
    /// The store.
    pub store: Store,
    /// The process's Argon2id gate.
    pub hasher: PasswordHasher,
    /// The address attempts are counted against (and recorded in the
    /// change log).
    pub address: String,
    /// The request's id, recorded in the change log.
    pub request_id: Option<String>,
    /// The limits.
    pub limits: AttemptLimits,
    /// Now.
    pub now: time::OffsetDateTime,
}

impl Guard {
    /// Runs `f` with the store on the blocking pool.
    pub(crate) async fn blocking<T, F>(&self, f: F) -> Result<T, AdminError>
    where
        F: FnOnce(&Store) -> Result<T, AdminError> + Send + 'static,
        T: Send + 'static,
    {
        let store = self.store.clone();
        web::block(move || f(&store)).await?
    }

    /// Counts an attempt at `credential`, or 429 when the limits refuse it.
    pub(crate) async fn reserve(&self, credential: String) -> Result<Attempt, AdminError> {
        let (address, limits, now) = (self.address.clone(), self.limits, self.now);
        let admission = self
            .blocking(move |store| {
                Ok(store
                    .write(|c| admin::reserve_attempt(c, &credential, &address, now, &limits))?)
            })
            .await?;
        match admission {
            Admission::Admitted(attempt) => Ok(attempt),
            Admission::Refused { retry_after_secs } => {
                Err(AdminError::TooManyRequests { retry_after_secs })
            }
        }
    }

    /// The attempt at `account` failed: when that failure locks a limit,
    /// say so at WARN (the account and the address, never the secret).
    pub(crate) fn log_failure(&self, attempt: &Attempt, account: &str) {
        // The name is the client's: bounded like the credential key.
        let account: String = account.chars().take(100).collect();
        let window_secs = self.limits.window.whole_seconds();
        match attempt.lockout_if_failed() {
            Some(admin::Lockout::Pair) => tracing::warn!(
                account = ?account,
                address = ?self.address,
                failures = self.limits.max_failures,
                window_secs,
                "sign-in locked for this account from this address: too many failures (other addresses are not affected; unlock with scimd admin unlock or the console)"
            ),
            Some(admin::Lockout::Address) => tracing::warn!(
                address = ?self.address,
                failures = self.limits.address_max_failures,
                window_secs,
                "sign-in locked from this address for every account that has not signed in from it before: too many failures (unlock with scimd admin unlock --address)"
            ),
            None => {}
        }
    }

    /// The attempt was never decided: it stops counting. Returns `err`.
    pub(crate) async fn abandon(&self, attempt: Attempt, err: AdminError) -> AdminError {
        let done = self
            .blocking(move |store| Ok(store.write(|c| admin::abandon_attempt(c, &attempt))?))
            .await;
        match done {
            Ok(()) => err,
            Err(e) => e,
        }
    }
}

/// The credential key of an administrator's sign-in (bounded, so an
/// attacker cannot store long strings).
pub(crate) fn admin_credential(username: &str) -> String {
    let name: String = username.trim().to_lowercase().chars().take(100).collect();
    format!("admin:{name}")
}

/// The credential key of the first-run setup code.
const SETUP_CREDENTIAL: &str = "setup";

/// Creates the first administrator with a setup code, limited like
/// sign-ins: the attempt is counted before the code is checked, and the
/// password is hashed only for a valid code.
pub async fn guarded_setup(guard: &Guard, req: &SetupRequest) -> Result<AdminView, AdminError> {
    let username = check_credentials(&req.username, &req.password)?;
    let code = req.code.trim().to_owned();
    let now = scim_core::datetime::format(guard.now);
    if !guard.blocking(setup_required).await? {
        return Err(setup_done());
    }
    let attempt = guard.reserve(SETUP_CREDENTIAL.to_owned()).await?;
    let (c, n) = (code.clone(), now.clone());
    let valid = guard
        .blocking(move |store| Ok(store.read(|conn| admin::setup_code_valid(conn, &c, &n))?))
        .await?;
    if !valid {
        guard.log_failure(&attempt, SETUP_CREDENTIAL);
        return Err(wrong_setup_code());
    }
    let hash = match guard.hasher.hash(req.password.clone()).await {
        Ok(hash) => hash,
        Err(e) => return Err(guard.abandon(attempt, e.into()).await),
    };
    let request = (guard.request_id.clone(), guard.address.clone());
    let created = guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                let created = admin::create_first_admin(c, &code, &username, &hash, &now)?;
                if let Some(a) = &created {
                    admin::succeed_attempt(c, &attempt)?;
                    // The first administrator creates itself, with the
                    // setup code.
                    let actor = admin_actor(a, &request);
                    record_event(
                        c,
                        &actor,
                        Event::AdminCreated,
                        "Admin",
                        Some(&a.id),
                        serde_json::json!({ "username": a.username, "setup": true }),
                    )?;
                }
                Ok(created)
            }))
        })
        .await?;
    match created {
        Ok(Some(a)) => Ok(admin_view(a)),
        Ok(None) => Err(wrong_setup_code()),
        Err(scim_store::StoreError::PreconditionFailed) => Err(setup_done()),
        Err(other) => Err(other.into()),
    }
}

/// The administrator `a`, for the request (id, address) `request`.
fn admin_actor(a: &admin::AdminRecord, request: &(Option<String>, String)) -> Actor {
    Actor::new(
        ActorKind::Admin,
        Some(a.id.clone()),
        Some(a.username.clone()),
    )
    .with_request(request.0.clone(), Some(request.1.clone()))
}

/// The name a failed sign-in is recorded under: what was typed as the
/// username, bounded and without control characters (it comes from
/// anyone, and PostgreSQL refuses NUL in text).
fn attempted_name(username: &str) -> String {
    username
        .trim()
        .chars()
        .filter(|c| !c.is_control())
        .take(100)
        .collect()
}

fn setup_done() -> AdminError {
    AdminError::Conflict(
        "setup is already complete: an administrator exists; sign in instead".into(),
    )
}

fn wrong_setup_code() -> AdminError {
    AdminError::field(
        "code",
        "unknown or expired setup code; use the code printed in scimd's log at startup (restart scimd for a new one)",
    )
}

/// Records a failed sign-in as `username` (actor `Anonymous`, with the
/// request id and address) in a write of its own, committed whatever the
/// request answers. Only admitted attempts get this far (refused ones are
/// not checked), so the attempt limits bound these rows too.
async fn record_failed_sign_in(guard: &Guard, username: &str, now: &str) -> Result<(), AdminError> {
    let actor = Actor::new(ActorKind::Anonymous, None, Some(attempted_name(username)))
        .with_request(guard.request_id.clone(), Some(guard.address.clone()));
    let now = now.to_owned();
    guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                scim_store::changes::record(
                    c,
                    &actor,
                    &now,
                    &[scim_store::changes::NewChange::new(
                        Event::AdminSignInFailed,
                        "Admin",
                        None,
                    )],
                )
            })?)
        })
        .await
}

/// Verifies a sign-in and opens a session until `now + ttl`. The attempt
/// is counted before the password is checked ([`admin::reserve_attempt`]):
/// 429 when the limits refuse it, 401 on a wrong username or password (the
/// same answer for both, after the same Argon2 work), 503 when the
/// password gate stays full (the attempt then does not count).
pub async fn login(
    guard: &Guard,
    username: &str,
    password: &str,
    ttl: time::Duration,
) -> Result<(admin::SessionInfo, String), AdminError> {
    let attempt = guard.reserve(admin_credential(username)).await?;
    let name = username.trim().to_owned();
    let account = name.clone();
    let found = guard
        .blocking(move |store| Ok(store.read(|c| admin::find_admin_credentials(c, &name))?))
        .await?;
    let (record, hash) = found.map_or((None, None), |(r, h)| (Some(r), Some(h)));
    let ok = match guard.hasher.verify(password.to_owned(), hash).await {
        Ok(ok) => ok,
        Err(e) => return Err(guard.abandon(attempt, e.into()).await),
    };
    let now = scim_core::datetime::format(guard.now);
    let request = (guard.request_id.clone(), guard.address.clone());
    let Some(record) = record.filter(|_| ok) else {
        guard.log_failure(&attempt, &account);
        record_failed_sign_in(guard, username, &now).await?;
        return Err(AdminError::Unauthorized(
            "wrong username or password".into(),
        ));
    };
    // Said only to whoever knows the password; the attempt still counts.
    if record.disabled_at.is_some() {
        guard.log_failure(&attempt, &account);
        record_failed_sign_in(guard, username, &now).await?;
        return Err(AdminError::Forbidden(format!(
            "the administrator {:?} is disabled; another administrator can enable it (console: Administrators, or scimd admin enable NAME)",
            record.username
        )));
    }
    let expires = scim_core::datetime::format(guard.now + ttl);
    guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                admin::succeed_attempt(c, &attempt)?;
                admin::record_admin_login(c, &record.id, &now)?;
                admin::purge_expired_sessions(c, &now)?;
                let session = admin::create_session(c, &record, &expires)?;
                scim_store::changes::record(
                    c,
                    &admin_actor(&record, &request),
                    &now,
                    &[scim_store::changes::NewChange::new(
                        Event::AdminSignedIn,
                        "Admin",
                        Some(&record.id),
                    )],
                )?;
                Ok(session)
            })?)
        })
        .await
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
            let s = sync_status(store, scim_store::OrgId::DEFAULT).unwrap();
            assert!(!s.enabled);
            assert!(!s.prerequisites[0].satisfied);
            let err = enable_sync(store, &Actor::cli("t"), &all()[..2]).unwrap_err();
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
            let err = enable_sync(store, &Actor::cli("t"), &["nope".into()]).unwrap_err();
            assert!(err.to_string().contains("unknown caution id"), "{err}");

            set_saml(
                store,
                &Actor::cli("t"),
                &SamlUpdate {
                    entity_id: Some("urn:idp".into()),
                    sso_url: Some("https://idp.example.com/sso".into()),
                    certificate_pem: Some(PEM.into()),
                    ..Default::default()
                },
            )
            .unwrap();
            let err = enable_sync(store, &Actor::cli("t"), &all()[1..]).unwrap_err();
            assert!(
                matches!(err, AdminError::SyncNotReady { ref missing_prerequisites, .. } if missing_prerequisites.is_empty())
            );
            let s = enable_sync(store, &Actor::cli("t"), &all()).unwrap();
            assert!(s.enabled);
            assert!(s.cautions.iter().all(|c| c.accepted));
            assert_eq!(s.enabled_by.as_deref(), Some("cli:t"));
            let s = disable_sync(store, &Actor::cli("x")).unwrap();
            assert!(!s.enabled);
            assert!(s.cautions.iter().all(|c| !c.accepted));
            let events = sync_events(store, scim_store::OrgId::DEFAULT, 10).unwrap();
            assert_eq!(events.len(), 2);
        }
    }

    #[test]
    fn saml_errors_are_per_field() {
        for db in backends() {
            let store = db.store();
            let err = set_saml(
                store,
                &Actor::cli("t"),
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
                &Actor::cli("t"),
                &SamlUpdate {
                    metadata_xml: Some("<x/>".into()),
                    entity_id: Some("e".into()),
                    ..Default::default()
                },
            )
            .unwrap_err();
            assert_eq!(err.body().fields[0].field, "metadata_xml");
            assert!(
                !get_saml(store, scim_store::OrgId::DEFAULT)
                    .unwrap()
                    .configured
            );
        }
    }

    #[test]
    fn settings_validate_and_check_versions() {
        for db in backends() {
            let store = db.store();
            let s = get_settings(store, scim_store::OrgId::DEFAULT).unwrap();
            let mut up = SettingsUpdate {
                deprovisioning: DeprovisioningPolicy::Soft,
                soft_delete_retention_days: 0,
                default_page_size: 2000,
                max_page_size: 1000,
                change_log_retention_days: None,
                health_failure_percent: None,
                health_silence_minutes: None,
                health_window_requests: None,
                health_window_minutes: None,
            };
            let err = update_settings(store, &Actor::cli("t"), &up, s.version).unwrap_err();
            let fields: Vec<_> = err.body().fields.into_iter().map(|f| f.field).collect();
            assert_eq!(fields, ["soft_delete_retention_days", "default_page_size"]);
            up.soft_delete_retention_days = 14;
            up.default_page_size = 50;
            let s2 = update_settings(store, &Actor::cli("t"), &up, s.version).unwrap();
            assert_eq!(s2.version, s.version + 1);
            assert_eq!(s2.deprovisioning, DeprovisioningPolicy::Soft);
            let err = update_settings(store, &Actor::cli("t"), &up, s.version).unwrap_err();
            assert!(matches!(err, AdminError::PreconditionFailed(_)));
        }
    }

    const T0: time::OffsetDateTime = time::macros::datetime!(2026-01-01 00:00:00 UTC);

    fn guard(store: &Store, hasher: &PasswordHasher, address: &str, at: i64) -> Guard {
        Guard {
            store: store.clone(),
            hasher: hasher.clone(),
            address: address.to_owned(),
            request_id: None,
            limits: AttemptLimits {
                max_failures: 3,
                window: time::Duration::minutes(15),
                address_max_failures: 0,
                slow_after: 6,
                max_delay: time::Duration::seconds(30),
            },
            now: T0 + time::Duration::seconds(at),
        }
    }

    #[actix_web::test]
    async fn login_is_limited_per_account_and_address_never_for_a_clean_address() {
        for db in backends() {
            let store = db.store();
            let hasher = PasswordHasher::default();
            let g = |address: &str, at: i64| guard(store, &hasher, address, at);
            create_admin(
                store,
                &hasher,
                &Actor::cli("t"),
                "root",
                "correct horse battery",
            )
            .await
            .unwrap();
            let ttl = time::Duration::hours(1);
            let (session, sid) = login(&g("a1", 0), "ROOT", "correct horse battery", ttl)
                .await
                .unwrap();
            assert_eq!(session.admin.username, "root");
            assert!(!sid.is_empty());
            for i in 0..3 {
                let err = login(&g("a1", i), "root", "wrong password!", ttl)
                    .await
                    .unwrap_err();
                assert!(matches!(err, AdminError::Unauthorized(_)), "{err:?}");
            }
            // That address is refused for that account, even with the right
            // password, until its oldest failure leaves the window…
            let err = login(&g("a1", 60), "root", "correct horse battery", ttl)
                .await
                .unwrap_err();
            assert!(matches!(
                err,
                AdminError::TooManyRequests {
                    retry_after_secs: 840
                }
            ));
            // …but the real administrator, from another address, gets in.
            login(&g("a2", 60), "root", "correct horse battery", ttl)
                .await
                .unwrap();
            // Unknown users get the same 401 as wrong passwords.
            let err = login(&g("a3", 60), "ghost", "x", ttl).await.unwrap_err();
            assert_eq!(err.to_string(), "wrong username or password");
            // Once the window has passed, a1 is admitted again.
            login(&g("a1", 15 * 60 + 1), "root", "correct horse battery", ttl)
                .await
                .unwrap();
        }
    }

    /// Many addresses guessing one account slow down those addresses, not
    /// the administrator's own clean one.
    #[actix_web::test]
    async fn an_attack_from_many_addresses_does_not_lock_the_admin_out() {
        for db in backends() {
            let store = db.store();
            let hasher = PasswordHasher::default();
            let g = |address: &str, at: i64| guard(store, &hasher, address, at);
            create_admin(
                store,
                &hasher,
                &Actor::cli("t"),
                "root",
                "correct horse battery",
            )
            .await
            .unwrap();
            let ttl = time::Duration::hours(1);
            for i in 0..10 {
                let err = login(&g(&format!("10.0.0.{i}"), 0), "root", "guess", ttl)
                    .await
                    .unwrap_err();
                assert!(matches!(err, AdminError::Unauthorized(_)), "{err:?}");
            }
            // An attacking address is slowed (not locked: it may try again
            // after Retry-After)…
            let err = login(&g("10.0.0.1", 1), "root", "guess", ttl)
                .await
                .unwrap_err();
            assert!(
                matches!(err, AdminError::TooManyRequests { retry_after_secs } if retry_after_secs <= 30),
                "{err:?}"
            );
            assert!(matches!(
                login(&g("10.0.0.1", 31), "root", "guess", ttl).await,
                Err(AdminError::Unauthorized(_))
            ));
            // …and the administrator signs in at once from a clean address.
            login(&g("192.0.2.1", 1), "root", "correct horse battery", ttl)
                .await
                .unwrap();
        }
    }

    /// 40 parallel wrong passwords from one address: at most the limit is
    /// checked (hashed); the others are refused before any Argon2 work.
    #[actix_web::test]
    async fn parallel_wrong_passwords_cannot_pass_the_limit() {
        for db in backends() {
            let store = db.store();
            let setup = PasswordHasher::default();
            create_admin(
                store,
                &setup,
                &Actor::cli("t"),
                "root",
                "correct horse battery",
            )
            .await
            .unwrap();
            let hasher = PasswordHasher::new(2, std::time::Duration::from_secs(600));
            let tasks: Vec<_> = (0..40)
                .map(|_| {
                    let g = guard(store, &hasher, "198.51.100.7", 0);
                    actix_web::rt::spawn(async move {
                        login(&g, "root", "wrong password!", time::Duration::hours(1)).await
                    })
                })
                .collect();
            let (mut unauthorized, mut too_many) = (0, 0);
            for t in tasks {
                match t.await.unwrap() {
                    Err(AdminError::Unauthorized(_)) => unauthorized += 1,
                    Err(AdminError::TooManyRequests { .. }) => too_many += 1,
                    other => panic!("{other:?}"),
                }
            }
            assert_eq!((unauthorized, too_many), (3, 37));
            assert_eq!(hasher.runs_started(), 3);
        }
    }

    #[actix_web::test]
    async fn admin_creation_validates() {
        for db in backends() {
            let store = db.store();
            let hasher = PasswordHasher::default();
            let err = create_admin(store, &hasher, &Actor::cli("t"), "bad name", "short")
                .await
                .unwrap_err();
            let fields: Vec<_> = err.body().fields.into_iter().map(|f| f.field).collect();
            assert_eq!(fields, ["username", "password"]);
            create_admin(
                store,
                &hasher,
                &Actor::cli("t"),
                "Alice",
                "a long enough password",
            )
            .await
            .unwrap();
            let err = create_admin(
                store,
                &hasher,
                &Actor::cli("t"),
                "alice",
                "a long enough password",
            )
            .await
            .unwrap_err();
            assert_eq!(err.body().fields[0].field, "username");
            assert!(!setup_required(store).unwrap());
            assert_eq!(
                issue_setup_code(store, time::Duration::hours(1)).unwrap(),
                None
            );
        }
    }

    #[actix_web::test]
    async fn setup_creates_the_first_admin_once_and_limits_wrong_codes() {
        for db in backends() {
            let store = db.store();
            let hasher = PasswordHasher::default();
            let now = time::OffsetDateTime::now_utc();
            let g = |address: &str| Guard {
                now,
                ..guard(store, &hasher, address, 0)
            };
            assert!(setup_required(store).unwrap());
            let code = issue_setup_code(store, time::Duration::hours(1))
                .unwrap()
                .unwrap();
            let req = |code: &str| SetupRequest {
                code: code.into(),
                username: "first".into(),
                password: "a long enough password".into(),
            };
            // Wrong codes are refused without hashing, and count.
            for _ in 0..3 {
                let err = guarded_setup(&g("a1"), &req("wrong")).await.unwrap_err();
                assert_eq!(err.body().fields[0].field, "code");
            }
            let err = guarded_setup(&g("a1"), &req(&code)).await.unwrap_err();
            assert!(matches!(err, AdminError::TooManyRequests { .. }), "{err:?}");
            assert_eq!(hasher.runs_started(), 0);
            // Invalid input is not an attempt.
            let bad = SetupRequest {
                password: "short".into(),
                ..req(&code)
            };
            assert!(matches!(
                guarded_setup(&g("a2"), &bad).await,
                Err(AdminError::Validation { .. })
            ));
            // The right code from a clean address creates the administrator.
            let admin = guarded_setup(&g("a2"), &req(&code)).await.unwrap();
            assert_eq!(admin.username, "first");
            let err = guarded_setup(&g("a3"), &req(&code)).await.unwrap_err();
            assert!(matches!(err, AdminError::Conflict(_)));
        }
    }

    /// A full gate answers 503 (`Busy`), and the attempt does not count.
    #[actix_web::test]
    async fn a_full_password_gate_is_busy_and_costs_no_attempt() {
        for db in backends() {
            let store = db.store();
            let hasher = PasswordHasher::default();
            create_admin(
                store,
                &hasher,
                &Actor::cli("t"),
                "root",
                "correct horse battery",
            )
            .await
            .unwrap();
            let busy = PasswordHasher::new(1, std::time::Duration::ZERO);
            let (entered_tx, entered) = std::sync::mpsc::channel();
            let (release_tx, release) = std::sync::mpsc::channel::<()>();
            let holder = busy.clone();
            // Hold the only slot until released.
            let held = actix_web::rt::spawn(async move {
                holder
                    .run_in_slot(move || {
                        entered_tx.send(()).unwrap();
                        release.recv().unwrap();
                    })
                    .await
            });
            web::block(move || entered.recv()).await.unwrap().unwrap();
            let mut g = guard(store, &busy, "a1", 0);
            for _ in 0..5 {
                let err = login(
                    &g,
                    "root",
                    "correct horse battery",
                    time::Duration::hours(1),
                )
                .await
                .unwrap_err();
                assert!(
                    matches!(
                        err,
                        AdminError::Busy {
                            retry_after_secs: 1
                        }
                    ),
                    "{err:?}"
                );
            }
            release_tx.send(()).unwrap();
            held.await.unwrap().unwrap();
            g.hasher = hasher;
            login(
                &g,
                "root",
                "correct horse battery",
                time::Duration::hours(1),
            )
            .await
            .unwrap();
        }
    }
}
