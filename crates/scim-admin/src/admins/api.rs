//! `/admin/api/v1/admins` and `/admin/api/v1/session/password`.

use actix_web::{delete, get, post, put, web, HttpRequest, HttpResponse};

use super::model::*;
use super::service::{self, LockView};
use crate::auth::{Caller, Credential};
use crate::error::{AdminError, ErrorBody};
use crate::json::Json;
use crate::AdminApi;

fn json_body<T>(body: Result<Json<T>, actix_web::Error>) -> Result<T, AdminError> {
    body.map(|Json(t)| t).map_err(crate::json::body_error)
}

async fn blocking<T, F>(f: F) -> Result<T, AdminError>
where
    F: FnOnce() -> Result<T, AdminError> + Send + 'static,
    T: Send + 'static,
{
    web::block(f).await?
}

/// The sign-in limits and the time, for the lock state shown.
pub(crate) fn lock_view(api: &AdminApi) -> LockView {
    LockView {
        limits: api.config().login_limits,
        now: api.config().clock.now(),
    }
}

/// The administrators
///
/// Every administrator, oldest first, with its state and the state of
/// its sign-in limits (failures within the window, addresses it is
/// locked out from).
#[utoipa::path(
    tag = "Administrators",
    responses(
        (status = 200, description = "Every administrator, oldest first", body = [AdminDetails]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/admins")]
pub async fn list_admins(
    api: web::Data<AdminApi>,
    _caller: Caller,
) -> Result<web::Json<Vec<AdminDetails>>, AdminError> {
    let (store, view) = (api.store().clone(), lock_view(&api));
    Ok(web::Json(
        blocking(move || service::list_admins(&store, &view)).await?,
    ))
}

/// Creates an administrator
///
/// With a username (unique case-insensitively) and an initial password,
/// which the new administrator should change after signing in; an
/// instance administrator unless `role` is `organization`, with the
/// `organizations` (slugs) it acts on.
#[utoipa::path(
    tag = "Administrators",
    request_body(content = CreateAdminRequest,
        example = json!({"username": "bob", "password": "a long passphrase for bob"})),
    responses(
        (status = 201, description = "Created", body = AdminDetails),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid or taken username, invalid password, role or organizations", body = ErrorBody),
        (status = 503, description = "Too many passwords are being checked at once (`busy`); see Retry-After", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admins")]
pub async fn create_admin(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<CreateAdminRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let req = json_body(body)?;
    let created = service::create_admin(
        api.store(),
        &api.config().password_hasher,
        &caller.actor,
        &req,
        &lock_view(&api),
    )
    .await?;
    Ok(HttpResponse::Created().json(created))
}

/// Disables an administrator
///
/// It can no longer sign in; its sessions end at once and the admin API
/// tokens it created are revoked (enabling it again does not restore
/// them). The last enabled administrator cannot be disabled (409).
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    responses(
        (status = 200, description = "Disabled (also when it already was)", body = AdminDetails),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
        (status = 409, description = "It is the last enabled administrator", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admins/{id}/disable")]
pub async fn disable_admin(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<AdminDetails>, AdminError> {
    let (store, view, id) = (api.store().clone(), lock_view(&api), path.into_inner());
    Ok(web::Json(
        blocking(move || service::disable_admin(&store, &caller.actor, &id, &view)).await?,
    ))
}

/// Sets an administrator's role
///
/// `instance` (every organization, and the organizations themselves) or
/// `organization` with the organizations (slugs) it acts on, which replace
/// its former ones. The admin API tokens it created that the new role
/// does not cover are revoked. The last enabled instance administrator
/// keeps its role (409). Recorded in the change log (`admin.changed`).
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    request_body(content = SetRoleRequest,
        example = json!({"role": "organization", "organizations": ["default"]})),
    responses(
        (status = 200, description = "Set", body = AdminDetails),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header, or an organization administrator", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
        (status = 409, description = "It is the last enabled instance administrator", body = ErrorBody),
        (status = 422, description = "An unknown role or organization, or an organization administrator without organizations", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[put("/admins/{id}/role")]
pub async fn set_role(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    body: Result<Json<SetRoleRequest>, actix_web::Error>,
) -> Result<web::Json<AdminDetails>, AdminError> {
    let req = json_body(body)?;
    let (store, view, id) = (api.store().clone(), lock_view(&api), path.into_inner());
    Ok(web::Json(
        blocking(move || {
            service::set_role(
                &store,
                &caller.actor,
                &id,
                &req.role,
                &req.organizations,
                &view,
            )
        })
        .await?,
    ))
}

/// Enables an administrator
///
/// It can sign in again with its password.
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    responses(
        (status = 200, description = "Enabled (also when it already was)", body = AdminDetails),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admins/{id}/enable")]
pub async fn enable_admin(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<AdminDetails>, AdminError> {
    let (store, view, id) = (api.store().clone(), lock_view(&api), path.into_inner());
    Ok(web::Json(
        blocking(move || service::enable_admin(&store, &caller.actor, &id, &view)).await?,
    ))
}

/// Deletes an administrator
///
/// Its sessions end and the admin API tokens it created are revoked. The
/// last enabled administrator cannot be deleted (409).
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
        (status = 409, description = "It is the last enabled administrator", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/admins/{id}")]
pub async fn delete_admin(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (store, now, id) = (
        api.store().clone(),
        api.config().clock.now(),
        path.into_inner(),
    );
    blocking(move || service::delete_admin(&store, &caller.actor, &id, now)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Unlocks an administrator's sign-in
///
/// Forgets its failed sign-ins from every address, so that the addresses
/// it was locked out from are admitted again at once.
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    responses(
        (status = 200, description = "Unlocked", body = AdminDetails),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admins/{id}/unlock")]
pub async fn unlock_admin(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<AdminDetails>, AdminError> {
    let (store, view, id) = (api.store().clone(), lock_view(&api), path.into_inner());
    Ok(web::Json(
        blocking(move || service::unlock_admin(&store, &caller.actor, &id, &view)).await?,
    ))
}

/// Resets another administrator's password
///
/// Sets a new password and ends every session of that administrator. Your
/// own password is changed with `POST /session/password`, which asks for
/// the current one (403 here).
#[utoipa::path(
    tag = "Administrators",
    params(("id" = String, Path, description = "The administrator's id")),
    request_body(content = ResetPasswordRequest,
        example = json!({"password": "a new passphrase for bob"})),
    responses(
        (status = 204, description = "The password is set; the administrator's sessions ended"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header, or your own account", body = ErrorBody),
        (status = 404, description = "No such administrator", body = ErrorBody),
        (status = 422, description = "Invalid password", body = ErrorBody),
        (status = 503, description = "Too many passwords are being checked at once (`busy`); see Retry-After", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/admins/{id}/password")]
pub async fn reset_password(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    body: Result<Json<ResetPasswordRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let req = json_body(body)?;
    let self_name = matches!(caller.credential, Credential::Session { .. }).then_some(&caller.name);
    service::reset_password(
        api.store(),
        &api.config().password_hasher,
        &caller.actor,
        self_name.map(String::as_str),
        &path.into_inner(),
        &req.password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Changes your own password
///
/// Needs the current password; a wrong one counts as a failed sign-in
/// (same limits). Your other sessions end; this one stays. Only with a
/// console session (an admin API token has no password).
#[utoipa::path(
    tag = "Session",
    request_body(content = ChangePasswordRequest,
        example = json!({"current_password": "correct horse battery staple", "new_password": "an even longer horse battery staple"})),
    responses(
        (status = 204, description = "Changed"),
        (status = 401, description = "No session", body = ErrorBody),
        (status = 403, description = "Missing or wrong X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Wrong current password, or invalid new password", body = ErrorBody),
        (status = 429, description = "Too many failed attempts for this account from this address; see Retry-After", body = ErrorBody),
        (status = 503, description = "Too many passwords are being checked at once (`busy`); see Retry-After", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []))
)]
#[post("/session/password")]
pub async fn change_own_password(
    api: web::Data<AdminApi>,
    req: HttpRequest,
    caller: Caller,
    body: Result<Json<ChangePasswordRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let Credential::Session { session_id, .. } = &caller.credential else {
        return Err(AdminError::Unauthorized(
            "an admin API token has no password; sign in with POST /admin/api/v1/session to change yours".into(),
        ));
    };
    let body = json_body(body)?;
    service::change_own_password(
        &api.sign_in_guard(&req),
        &caller.name,
        session_id,
        &body.current_password,
        &body.new_password,
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
