//! The console's administrator pages: `/admin/admins` (list, add,
//! disable, enable, unlock, delete, reset another's password) and
//! `/admin/account` (change your own password). Every form carries the
//! session's CSRF token.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::api::lock_view;
use super::model::{AdminDetails, CreateAdminRequest};
use super::service;
use crate::console::{
    blocking, error_page, render, render_status, require_session, see_other, Chrome,
    ConsoleSession, FieldMessages, Form,
};
use crate::error::AdminError;
use crate::AdminApi;

/// The navigation entry of the administrators page.
pub const NAV_ID: &str = "admins";

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/admins", web::get().to(admins_page))
        .route("/admin/admins", web::post().to(admin_create))
        .route("/admin/admins/{id}/{action}", web::post().to(admin_action))
        .route("/admin/account", web::get().to(account_page))
        .route("/admin/account", web::post().to(account_submit));
}

/// A notice chosen by a fixed key (never text from the URL).
fn notice(req: &HttpRequest) -> Option<String> {
    let text = match Form::query(req).get("done")? {
        "created" => "Administrator added.",
        "disabled" => "Administrator disabled: their sessions ended.",
        "enabled" => "Administrator enabled.",
        "unlocked" => "Sign-in unlocked.",
        "deleted" => "Administrator deleted.",
        "password" => "Password reset: their sessions ended.",
        "role" => "Role changed.",
        "changed" => "Your password is changed; your other sessions ended.",
        _ => return None,
    };
    Some(text.to_owned())
}

#[derive(askama::Template)]
#[template(path = "admins.html")]
struct AdminsPage {
    chrome: Chrome,
    me: String,
    admins: Vec<AdminDetails>,
    username: String,
    errors: FieldMessages,
    max_failures: i64,
    address_max_failures: i64,
    window_minutes: i64,
}

/// The administrators page with `errors` (status 200 when none).
async fn page(
    req: &HttpRequest,
    api: &AdminApi,
    session: &ConsoleSession,
    username: String,
    errors: FieldMessages,
    status: StatusCode,
) -> HttpResponse {
    let (store, view) = (api.store().clone(), lock_view(api));
    let admins = match blocking(move || service::list_admins(&store, &view)).await {
        Ok(a) => a,
        Err(e) => return error_page(&e),
    };
    let limits = api.config().login_limits;
    render_status(
        status,
        &AdminsPage {
            chrome: Chrome::for_session(session, NAV_ID).with_notice(notice(req)),
            me: session.username.clone(),
            admins,
            username,
            errors,
            max_failures: limits.max_failures,
            address_max_failures: limits.address_max_failures,
            window_minutes: limits.window.whole_minutes(),
        },
    )
}

async fn admins_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    page(
        &req,
        &api,
        &session,
        String::new(),
        FieldMessages::none(),
        StatusCode::OK,
    )
    .await
}

async fn admin_create(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let username = form.text("username").trim().to_owned();
    let password = form.text("password");
    let result = if password != form.text("password_confirm") {
        Err(AdminError::field(
            "password_confirm",
            "the two passwords differ; type the same password twice",
        ))
    } else {
        let request = CreateAdminRequest {
            username: username.clone(),
            password: password.to_owned(),
            role: Some(form.get("role").unwrap_or("instance").to_owned()),
            organizations: slugs(form.text("organizations")),
        };
        service::create_admin(
            api.store(),
            &api.config().password_hasher,
            &session.actor(),
            &request,
            &lock_view(&api),
        )
        .await
        .map(|_| ())
    };
    match result {
        Ok(()) => see_other("/admin/admins?done=created"),
        Err(err @ AdminError::Validation { .. }) => {
            let errors = FieldMessages::from_error(&err).keep_only(&[
                "username",
                "password",
                "password_confirm",
                "role",
                "organizations",
            ]);
            page(&req, &api, &session, username, errors, err.status_code()).await
        }
        Err(err) => error_page(&err),
    }
}

async fn admin_action(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let (id, action) = path.into_inner();
    let (store, view, actor) = (api.store().clone(), lock_view(&api), session.actor());
    let result = match action.as_str() {
        "password" => service::reset_password(
            &store,
            &api.config().password_hasher,
            &actor,
            Some(&session.username),
            &id,
            form.text("password"),
        )
        .await
        .map(|()| "password"),
        "role" => {
            let (role, orgs) = (
                form.text("role").to_owned(),
                slugs(form.text("organizations")),
            );
            blocking(move || {
                service::set_role(&store, &actor, &id, &role, &orgs, &view).map(|_| "role")
            })
            .await
        }
        "disable" | "enable" | "unlock" | "delete" => {
            let action = action.clone();
            blocking(move || match action.as_str() {
                "disable" => service::disable_admin(&store, &actor, &id, &view).map(|_| "disabled"),
                "enable" => service::enable_admin(&store, &actor, &id, &view).map(|_| "enabled"),
                "unlock" => service::unlock_admin(&store, &actor, &id, &view).map(|_| "unlocked"),
                _ => service::delete_admin(&store, &actor, &id, view.now).map(|()| "deleted"),
            })
            .await
        }
        _ => Err(AdminError::NotFound(format!(
            "no administrator action {action:?} (disable, enable, unlock, delete, password, role)"
        ))),
    };
    match result {
        // Disabling or deleting yourself ends your own session.
        Ok("disabled" | "deleted") if !signed_in(&api, &session).await => see_other("/admin/login"),
        Ok(done) => see_other(&format!("/admin/admins?done={done}")),
        Err(
            err @ (AdminError::Validation { .. }
            | AdminError::Conflict(_)
            | AdminError::Forbidden(_)),
        ) => {
            page(
                &req,
                &api,
                &session,
                String::new(),
                FieldMessages::general(err.to_string()),
                err.status_code(),
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}

/// The organization slugs typed in a form field, separated by commas or
/// spaces.
fn slugs(text: &str) -> Vec<String> {
    text.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Whether `session` is still open (it ends when its administrator is
/// disabled or deleted).
async fn signed_in(api: &AdminApi, session: &ConsoleSession) -> bool {
    let (store, sid, now) = (
        api.store().clone(),
        session.session_id.clone(),
        api.config().clock.now_text(),
    );
    matches!(
        blocking(move || Ok(store.read(|c| scim_store::admin::find_session(c, &sid, &now))?)).await,
        Ok(Some(_))
    )
}

#[derive(askama::Template)]
#[template(path = "account.html")]
struct AccountPage {
    chrome: Chrome,
    me: String,
    errors: FieldMessages,
}

async fn account_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    render(&AccountPage {
        chrome: Chrome::for_session(&session, "").with_notice(notice(&req)),
        me: session.username.clone(),
        errors: FieldMessages::none(),
    })
}

async fn account_submit(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let new_password = form.text("new_password");
    let result = if new_password != form.text("new_password_confirm") {
        Err(AdminError::field(
            "new_password_confirm",
            "the two passwords differ; type the same password twice",
        ))
    } else {
        service::change_own_password(
            &api.sign_in_guard(&req),
            &session.username,
            &session.session_id,
            form.text("current_password"),
            new_password,
        )
        .await
    };
    match result {
        Ok(()) => see_other("/admin/account?done=changed"),
        Err(err @ (AdminError::Validation { .. } | AdminError::TooManyRequests { .. })) => {
            render_status(
                err.status_code(),
                &AccountPage {
                    chrome: Chrome::for_session(&session, ""),
                    me: session.username.clone(),
                    errors: FieldMessages::from_error(&err).keep_only(&[
                        "current_password",
                        "new_password",
                        "new_password_confirm",
                    ]),
                },
            )
        }
        Err(err) => error_page(&err),
    }
}
