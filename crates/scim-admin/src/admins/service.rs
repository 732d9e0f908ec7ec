//! The administrator operations. Each change is logged at INFO with the
//! actor and the administrator concerned (never a password), and recorded
//! in the change log (`admin.created`, `admin.changed`, `admin.deleted`),
//! last in its transaction.

use actix_web::web;
use scim_store::admin::roles::{self, AdminScope, Role};
use scim_store::admin::{self, AdminRecord, AttemptLimits};
use scim_store::changes::{Actor, Event};
use scim_store::{PasswordHasher, Store, StoreError};

use super::model::{AdminDetails, CreateAdminRequest};
use crate::activity::record_event;
use crate::error::{AdminError, FieldError};
use crate::service::{admin_credential, check_password, Guard};

/// What the lock state of an account is read against: the sign-in limits
/// and the time.
#[derive(Debug, Clone, Copy)]
pub struct LockView {
    /// The sign-in limits in force.
    pub limits: AttemptLimits,
    /// Now.
    pub now: time::OffsetDateTime,
}

fn not_found(id: &str) -> AdminError {
    AdminError::NotFound(format!(
        "no administrator with id {id:?}; GET /admin/api/v1/admins lists them"
    ))
}

fn store_error(e: StoreError, id: &str) -> AdminError {
    match e {
        StoreError::NotFound => not_found(id),
        other => other.into(),
    }
}

/// The slugs of `scope`'s organizations.
fn slugs_of(
    conn: &mut scim_store::DbConnection,
    scope: &AdminScope,
) -> Result<Vec<String>, StoreError> {
    if scope.is_instance() {
        return Ok(Vec::new());
    }
    Ok(scim_store::organizations::list_organizations(conn)?
        .into_iter()
        .filter(|o| scope.orgs.contains(&o.id))
        .map(|o| o.slug)
        .collect())
}

fn details(
    conn: &mut scim_store::DbConnection,
    a: AdminRecord,
    view: &LockView,
) -> Result<AdminDetails, StoreError> {
    let scope = roles::admin_scope(conn, &a.id)?;
    let organizations = slugs_of(conn, &scope)?;
    let failures = admin::failures_by_address(
        conn,
        &admin_credential(&a.username),
        view.now - view.limits.window,
    )?;
    Ok(AdminDetails {
        state: if a.disabled_at.is_some() {
            "disabled"
        } else {
            "enabled"
        }
        .to_owned(),
        role: scope.role.as_str().to_owned(),
        organizations,
        recent_failures: failures.iter().map(|(_, n)| n).sum(),
        locked_from: failures
            .into_iter()
            .filter(|(_, n)| *n >= view.limits.max_failures)
            .map(|(address, _)| address)
            .collect(),
        id: a.id,
        username: a.username,
        created_at: a.created_at,
        last_login_at: a.last_login_at,
        disabled_at: a.disabled_at,
    })
}

/// Records `admin.changed` of administrator `a` by `actor`, with `detail`.
fn changed(
    conn: &mut scim_store::DbConnection,
    actor: &Actor,
    a: &AdminRecord,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    let mut detail = detail;
    if let Some(map) = detail.as_object_mut() {
        map.insert("username".to_owned(), a.username.clone().into());
    }
    record_event(
        conn,
        actor,
        Event::AdminChanged,
        "Admin",
        Some(&a.id),
        detail,
    )
}

/// Every administrator, oldest first.
pub fn list_admins(store: &Store, view: &LockView) -> Result<Vec<AdminDetails>, AdminError> {
    Ok(store.read(|c| {
        admin::list_admins(c)?
            .into_iter()
            .map(|a| details(c, a, view))
            .collect()
    })?)
}

/// The administrator `id`.
pub fn get_admin(store: &Store, id: &str, view: &LockView) -> Result<AdminDetails, AdminError> {
    store
        .read(|c| {
            let a = admin::find_admin(c, id)?.ok_or(StoreError::NotFound)?;
            details(c, a, view)
        })
        .map_err(|e| store_error(e, id))
}

/// The id of the administrator named `username` (case-insensitively), for
/// the CLI.
pub fn admin_id_by_name(store: &Store, username: &str) -> Result<String, AdminError> {
    store
        .read(|c| admin::find_admin_by_name(c, username.trim()))?
        .map(|a| a.id)
        .ok_or_else(|| {
            AdminError::NotFound(format!(
                "no administrator named {username:?}; `scimd admin list` shows them"
            ))
        })
}

/// The scope that `role` and `slugs` describe, checked: a known role; an
/// organization administrator with at least one existing organization;
/// an instance administrator with none. Returns it with the slugs, each
/// once.
pub fn check_scope(
    store: &Store,
    role: &str,
    slugs: &[String],
) -> Result<(AdminScope, Vec<String>), AdminError> {
    let Some(role) = Role::parse(role.trim()) else {
        return Err(AdminError::field(
            "role",
            "must be `instance` (every organization) or `organization` (only the organizations given)",
        ));
    };
    let mut unique: Vec<String> = Vec::new();
    for slug in slugs {
        let slug = slug.trim().to_owned();
        if !unique.contains(&slug) {
            unique.push(slug);
        }
    }
    match role {
        Role::Instance if !unique.is_empty() => Err(AdminError::field(
            "organizations",
            "an instance administrator acts on every organization: give no organizations, or the role `organization`",
        )),
        Role::Instance => Ok((AdminScope::instance(), unique)),
        Role::Organization if unique.is_empty() => Err(AdminError::field(
            "organizations",
            "an organization administrator needs at least one organization (by slug)",
        )),
        Role::Organization => {
            let orgs = store.organizations_blocking()?;
            let mut ids = Vec::new();
            for slug in &unique {
                let org = orgs.by_slug(slug).ok_or_else(|| {
                    AdminError::field(
                        "organizations",
                        format!("no organization {slug:?}; GET /admin/api/v1/organizations lists them"),
                    )
                })?;
                ids.push(org.id);
            }
            Ok((AdminScope::organization(ids), unique))
        }
    }
}

/// Creates an administrator: an instance administrator unless `role` is
/// `organization` (with `organizations`, by slug).
pub async fn create_admin(
    store: &Store,
    hasher: &PasswordHasher,
    actor: &Actor,
    req: &CreateAdminRequest,
    view: &LockView,
) -> Result<AdminDetails, AdminError> {
    let (s, role, slugs) = (
        store.clone(),
        req.role.clone().unwrap_or_else(|| "instance".to_owned()),
        req.organizations.clone(),
    );
    let (scope, slugs) = web::block(move || check_scope(&s, &role, &slugs)).await??;
    let created = crate::service::create_admin_with_scope(
        store,
        hasher,
        actor,
        &req.username,
        &req.password,
        scope,
        slugs,
    )
    .await?;
    tracing::info!(actor = %actor.label(), admin = %created.username, "administrator created");
    let (store, view) = (store.clone(), *view);
    web::block(move || get_admin(&store, &created.id, &view)).await?
}

/// Disables administrator `id`: it can no longer sign in, its sessions
/// end, and the admin API tokens it created are revoked. Refused (409)
/// for the last enabled administrator.
pub fn disable_admin(
    store: &Store,
    actor: &Actor,
    id: &str,
    view: &LockView,
) -> Result<AdminDetails, AdminError> {
    let now = scim_core::datetime::format(view.now);
    let a = store
        .write(|c| {
            let was_enabled = admin::find_admin(c, id)?.is_some_and(|a| a.disabled_at.is_none());
            let a = admin::disable_admin(c, id, &now)?;
            if was_enabled {
                changed(c, actor, &a, serde_json::json!({ "disabled": true }))?;
            }
            Ok(a)
        })
        .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %a.username, "administrator disabled");
    get_admin(store, id, view)
}

/// Gives administrator `id` the role `role` with `organizations` (by
/// slug; they replace its former ones). The admin API tokens it created
/// that the new scope does not cover are revoked. The last enabled
/// instance administrator keeps its role (409). Recorded as
/// `admin.changed` with the role and organizations before and after.
pub fn set_role(
    store: &Store,
    actor: &Actor,
    id: &str,
    role: &str,
    organizations: &[String],
    view: &LockView,
) -> Result<AdminDetails, AdminError> {
    let (scope, slugs) = check_scope(store, role, organizations)?;
    let now = scim_core::datetime::format(view.now);
    let a = store
        .write(|c| {
            let (a, before) = roles::set_admin_scope(c, id, &scope, &now)?;
            if before != scope {
                let before_slugs = slugs_of(c, &before)?;
                changed(
                    c,
                    actor,
                    &a,
                    serde_json::json!({
                        "role": scope.role.as_str(),
                        "organizations": slugs,
                        "previous_role": before.role.as_str(),
                        "previous_organizations": before_slugs,
                    }),
                )?;
            }
            Ok(a)
        })
        .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %a.username, role = scope.role.as_str(), "administrator role set");
    get_admin(store, id, view)
}

/// Enables administrator `id` again.
pub fn enable_admin(
    store: &Store,
    actor: &Actor,
    id: &str,
    view: &LockView,
) -> Result<AdminDetails, AdminError> {
    let a = store
        .write(|c| {
            let was_disabled = admin::find_admin(c, id)?.is_some_and(|a| a.disabled_at.is_some());
            let a = admin::enable_admin(c, id)?;
            if was_disabled {
                changed(c, actor, &a, serde_json::json!({ "enabled": true }))?;
            }
            Ok(a)
        })
        .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %a.username, "administrator enabled");
    get_admin(store, id, view)
}

/// Deletes administrator `id` (its sessions end, the admin API tokens it
/// created are revoked). Refused (409) for the last enabled administrator.
pub fn delete_admin(
    store: &Store,
    actor: &Actor,
    id: &str,
    now: time::OffsetDateTime,
) -> Result<(), AdminError> {
    let now = scim_core::datetime::format(now);
    let a = store
        .write(|c| {
            let a = admin::delete_admin(c, id, &now)?;
            record_event(
                c,
                actor,
                Event::AdminDeleted,
                "Admin",
                Some(&a.id),
                serde_json::json!({ "username": a.username }),
            )?;
            Ok(a)
        })
        .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %a.username, "administrator deleted");
    Ok(())
}

/// Forgets the failed sign-ins at administrator `id` from every address:
/// its locks are lifted at once.
pub fn unlock_admin(
    store: &Store,
    actor: &Actor,
    id: &str,
    view: &LockView,
) -> Result<AdminDetails, AdminError> {
    let (a, cleared) = store
        .write(|c| {
            let a = admin::find_admin(c, id)?.ok_or(StoreError::NotFound)?;
            let cleared = admin::unlock_credential(c, &admin_credential(&a.username))?;
            changed(
                c,
                actor,
                &a,
                serde_json::json!({ "unlocked": true, "failures_forgotten": cleared }),
            )?;
            Ok((a, cleared))
        })
        .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %a.username, cleared, "administrator sign-in unlocked");
    get_admin(store, id, view)
}

/// Forgets every failed sign-in from `address` (every account): lifts the
/// per-address cap and that address's per-account locks. Returns how many
/// failures were forgotten.
pub fn unlock_address(store: &Store, actor: &Actor, address: &str) -> Result<usize, AdminError> {
    let address = address.trim();
    if address.is_empty() {
        return Err(AdminError::field(
            "address",
            "must not be empty: the client address as logged with the lockout",
        ));
    }
    let cleared = store.write(|c| {
        let cleared = admin::unlock_address(c, address)?;
        record_event(
            c,
            actor,
            Event::AdminChanged,
            "Admin",
            None,
            serde_json::json!({ "unlocked_address": address, "failures_forgotten": cleared }),
        )?;
        Ok(cleared)
    })?;
    tracing::info!(actor = %actor.label(), address, cleared, "sign-in unlocked for an address");
    Ok(cleared)
}

fn password_error(field: &str, password: &str) -> Result<(), AdminError> {
    match check_password(field, password) {
        Some(e) => Err(AdminError::fields(vec![e])),
        None => Ok(()),
    }
}

/// Sets a new password for administrator `id` (by another administrator,
/// or the CLI); every session of `id` ends. `self_name` is the caller's
/// own username when it signed in with a session: its own password is
/// changed with [`change_own_password`], which asks for the current one.
pub async fn reset_password(
    store: &Store,
    hasher: &PasswordHasher,
    actor: &Actor,
    self_name: Option<&str>,
    id: &str,
    password: &str,
) -> Result<(), AdminError> {
    password_error("password", password)?;
    let (s, i) = (store.clone(), id.to_owned());
    let target = web::block(move || s.read(|c| admin::find_admin(c, &i)))
        .await?
        .map_err(|e| store_error(e, id))?
        .ok_or_else(|| not_found(id))?;
    if self_name.is_some_and(|me| me.eq_ignore_ascii_case(&target.username)) {
        return Err(AdminError::Forbidden(
            "to change your own password, give your current password: POST /admin/api/v1/session/password (console: Your password)".into(),
        ));
    }
    let hash = hasher.hash(password.to_owned()).await?;
    let (s, i, who) = (store.clone(), id.to_owned(), actor.clone());
    web::block(move || {
        s.write(|c| {
            let a = admin::set_admin_password(c, &i, &hash, None)?;
            changed(c, &who, &a, serde_json::json!({ "password_reset": true }))
        })
    })
    .await?
    .map_err(|e| store_error(e, id))?;
    tracing::info!(actor = %actor.label(), admin = %target.username, "administrator password reset");
    Ok(())
}

/// Changes the signed-in administrator's own password, given the current
/// one. The check of the current password counts as a sign-in attempt
/// (same limits), so a stolen session cannot guess it. Every other session
/// of the administrator ends; `session_id` stays.
pub async fn change_own_password(
    guard: &Guard,
    username: &str,
    session_id: &str,
    current_password: &str,
    new_password: &str,
) -> Result<(), AdminError> {
    password_error("new_password", new_password)?;
    let attempt = guard.reserve(admin_credential(username)).await?;
    let name = username.to_owned();
    let found = guard
        .blocking(move |store| Ok(store.read(|c| admin::find_admin_credentials(c, &name))?))
        .await?;
    let Some((record, hash)) = found else {
        return Err(guard
            .abandon(
                attempt,
                AdminError::Unauthorized("the session's administrator no longer exists".into()),
            )
            .await);
    };
    let ok = match guard
        .hasher
        .verify(current_password.to_owned(), Some(hash))
        .await
    {
        Ok(ok) => ok,
        Err(e) => return Err(guard.abandon(attempt, e.into()).await),
    };
    if !ok {
        guard.log_failure(&attempt, username);
        return Err(AdminError::fields(vec![FieldError::new(
            "current_password",
            "is not your current password",
        )]));
    }
    let new_hash = match guard.hasher.hash(new_password.to_owned()).await {
        Ok(h) => h,
        Err(e) => return Err(guard.abandon(attempt, e.into()).await),
    };
    let keep = session_id.to_owned();
    let id = record.id.clone();
    // The administrator changes its own password.
    let actor = Actor::new(
        scim_store::changes::ActorKind::Admin,
        Some(record.id.clone()),
        Some(record.username.clone()),
    )
    .with_request(guard.request_id.clone(), Some(guard.address.clone()));
    let username_after = record.username.clone();
    guard
        .blocking(move |store| {
            Ok(store.write(|c| {
                admin::succeed_attempt(c, &attempt)?;
                admin::set_admin_password(c, &id, &new_hash, Some(&keep))?;
                changed(
                    c,
                    &actor,
                    &record,
                    serde_json::json!({ "own_password_changed": true }),
                )
            })?)
        })
        .await?;
    tracing::info!(admin = %username_after, "administrator changed its own password");
    Ok(())
}
