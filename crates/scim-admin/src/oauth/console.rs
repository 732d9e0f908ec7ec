//! The console's OAuth pages: clients (list, register → secret shown
//! once, rotate, delete) at `/admin/oauth-clients` and grants (client,
//! approving administrator, when, last use, revoke) at
//! `/admin/oauth-grants`. Every form carries the session's CSRF token.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::endpoints::{issuer, AUTHORIZE_PATH, TOKEN_PATH};
use super::model::{ClientView, CreateClientRequest, CreatedClient, GrantView};
use super::service;
use crate::console::{
    blocking, error_page, render, render_status, require_session, see_other, Chrome,
    ConsoleSession, FieldMessages, Form,
};
use crate::error::AdminError;
use crate::AdminApi;

/// The navigation entry these pages highlight.
const NAV_ID: &str = "oauth-clients";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/admin/oauth-clients", web::get().to(clients_page))
        .route("/admin/oauth-clients", web::post().to(client_create))
        .route(
            "/admin/oauth-clients/{id}/rotate",
            web::post().to(client_rotate),
        )
        .route(
            "/admin/oauth-clients/{id}/delete",
            web::post().to(client_delete),
        )
        .route("/admin/oauth-grants", web::get().to(grants_page))
        .route(
            "/admin/oauth-grants/{id}/revoke",
            web::post().to(grant_revoke),
        );
}

/// A notice chosen by a fixed key (never text from the URL).
fn notice(req: &HttpRequest) -> Option<String> {
    let text = match Form::query(req).get("done")? {
        "deleted" => "OAuth client deleted: its grants and tokens no longer work.",
        "revoked" => "Grant revoked: its tokens no longer work.",
        _ => return None,
    };
    Some(text.to_owned())
}

#[derive(askama::Template)]
#[template(path = "oauth_clients.html")]
struct ClientsPage {
    chrome: Chrome,
    clients: Vec<ClientView>,
    name: String,
    redirect_uris: String,
    errors: FieldMessages,
}

#[derive(askama::Template)]
#[template(path = "oauth_client_secret.html")]
struct SecretPage {
    chrome: Chrome,
    created: CreatedClient,
    rotated: bool,
    authorization_url: String,
    token_url: String,
}

async fn clients_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let store = api.store().clone();
    let org = session.org;
    match blocking(move || service::list_clients(&store, org)).await {
        Ok(clients) => render(&ClientsPage {
            chrome: Chrome::for_session(&session, NAV_ID).with_notice(notice(&req)),
            clients,
            name: String::new(),
            redirect_uris: "https://portal.azure.com/TokenAuthorize".into(),
            errors: FieldMessages::none(),
        }),
        Err(e) => error_page(&e),
    }
}

fn secret_page(
    req: &HttpRequest,
    api: &AdminApi,
    session: &ConsoleSession,
    created: CreatedClient,
    rotated: bool,
) -> HttpResponse {
    let iss = issuer(api, req);
    render(&SecretPage {
        chrome: Chrome::for_session(session, NAV_ID),
        created,
        rotated,
        authorization_url: format!("{iss}{AUTHORIZE_PATH}"),
        token_url: format!("{iss}{TOKEN_PATH}"),
    })
}

async fn client_create(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let name = form.text("name").to_owned();
    let uris_text = form.text("redirect_uris").to_owned();
    let request = CreateClientRequest {
        name: name.clone(),
        redirect_uris: uris_text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(str::to_owned)
            .collect(),
        scopes: None,
    };
    let store = api.store().clone();
    let actor = session.actor();
    match blocking(move || service::create_client(&store, &actor, &request)).await {
        Ok(created) => secret_page(&req, &api, &session, created, false),
        Err(err @ AdminError::Validation { .. }) => {
            let store = api.store().clone();
            let org = session.org;
            let clients = match blocking(move || service::list_clients(&store, org)).await {
                Ok(c) => c,
                Err(e) => return error_page(&e),
            };
            render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &ClientsPage {
                    chrome: Chrome::for_session(&session, NAV_ID),
                    clients,
                    name,
                    redirect_uris: uris_text,
                    errors: FieldMessages::from_error(&err).keep_only(&["name", "redirect_uris"]),
                },
            )
        }
        Err(err) => error_page(&err),
    }
}

async fn client_rotate(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, _) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let store = api.store().clone();
    let id = path.into_inner();
    let actor = session.actor();
    match blocking(move || service::rotate_client_secret(&store, &actor, &id)).await {
        Ok(created) => secret_page(&req, &api, &session, created, true),
        Err(err) => error_page(&err),
    }
}

async fn client_delete(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let session = match crate::console::session_and_form(&req, &api, &body).await {
        Ok((session, _)) => session,
        Err(resp) => return resp,
    };
    let store = api.store().clone();
    let id = path.into_inner();
    let actor = session.actor();
    match blocking(move || service::delete_client(&store, &actor, &id)).await {
        Ok(()) => see_other("/admin/oauth-clients?done=deleted"),
        Err(err) => error_page(&err),
    }
}

#[derive(askama::Template)]
#[template(path = "oauth_grants.html")]
struct GrantsPage {
    chrome: Chrome,
    grants: Vec<GrantView>,
}

async fn grants_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let (store, org) = (api.store().clone(), session.org);
    match blocking(move || service::list_grants(&store, org)).await {
        Ok(grants) => render(&GrantsPage {
            chrome: Chrome::for_session(&session, NAV_ID).with_notice(notice(&req)),
            grants,
        }),
        Err(e) => error_page(&e),
    }
}

async fn grant_revoke(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, _) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let store = api.store().clone();
    let id = path.into_inner();
    let actor = session.actor();
    match blocking(move || service::revoke_grant(&store, &actor, &id)).await {
        Ok(()) => see_other("/admin/oauth-grants?done=revoked"),
        Err(err) => error_page(&err),
    }
}
