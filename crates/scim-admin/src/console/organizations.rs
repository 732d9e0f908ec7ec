//! The organization switcher (`POST /admin/switch-organization`: the
//! organization every other page shows and changes, kept in the session)
//! and the Organizations page of instance administrators
//! (`/admin/organizations`: list, add, rename, suspend, resume, delete
//! behind a typed confirmation), through the admin API's own service
//! functions ([`crate::organizations`]).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};

use super::{
    blocking, error_page, render_status, require_session, safe_next, see_other, session_error_page,
    Chrome, ConsoleSession, FieldMessages, Form,
};
use crate::error::AdminError;
use crate::organizations::{
    self as orgs, CreateOrganization, OrganizationView, UpdateOrganization,
};
use crate::AdminApi;

/// The navigation entry of the Organizations page.
const NAV_ID: &str = "organizations";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/switch-organization", web::post().to(switch))
        .route("/organizations", web::get().to(organizations_page))
        .route("/organizations", web::post().to(organization_create))
        .route(
            "/organizations/{slug}/{action}",
            web::post().to(organization_action),
        );
}

/// Makes the session show the organization `org` (a slug) it may act on;
/// 403 for any other, known or not.
async fn switch(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let slug = form.text("org");
    let Some(choice) = session.orgs.iter().find(|o| o.slug == slug) else {
        return session_error_page(
            &session,
            &AdminError::Forbidden(format!(
                "you have no grant on the organization {slug:?}: an organization administrator acts only on its organizations; an instance administrator can grant more"
            )),
        );
    };
    let (store, sid, org) = (api.store().clone(), session.session_id.clone(), choice.id);
    if let Err(e) = blocking(move || {
        Ok(store.write(|c| scim_store::admin::roles::set_session_org(c, &sid, org))?)
    })
    .await
    {
        return error_page(&e);
    }
    let next = form.text("next");
    see_other(if safe_next(next) && next.starts_with("/admin/") {
        next
    } else {
        "/admin/"
    })
}

/// A notice chosen by a fixed key (never text from the URL).
fn notice(req: &HttpRequest) -> Option<String> {
    let text = match Form::query(req).get("done")? {
        "created" => "Organization added, with User Synchronization off.",
        "renamed" => "Organization renamed.",
        "suspended" => "Organization suspended: its SCIM requests are refused.",
        "resumed" => "Organization resumed.",
        "deleted" => "Organization deleted with all its data.",
        _ => return None,
    };
    Some(text.to_owned())
}

#[derive(askama::Template)]
#[template(path = "organizations.html")]
struct OrganizationsPage {
    chrome: Chrome,
    orgs: Vec<OrganizationView>,
    slug: String,
    name: String,
    host: String,
    errors: FieldMessages,
}

/// The page with `errors` and the creation form's values.
async fn page(
    req: &HttpRequest,
    api: &AdminApi,
    session: &ConsoleSession,
    form: (String, String, String),
    errors: FieldMessages,
    status: StatusCode,
) -> HttpResponse {
    let store = api.store().clone();
    let list = match blocking(move || orgs::list(&store)).await {
        Ok(list) => list,
        Err(e) => return session_error_page(session, &e),
    };
    let (slug, name, host) = form;
    render_status(
        status,
        &OrganizationsPage {
            chrome: Chrome::for_session(session, NAV_ID).with_notice(notice(req)),
            orgs: list,
            slug,
            name,
            host,
            errors,
        },
    )
}

async fn organizations_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    page(
        &req,
        &api,
        &session,
        Default::default(),
        FieldMessages::none(),
        StatusCode::OK,
    )
    .await
}

async fn organization_create(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let host = form.text("host").trim();
    let request = CreateOrganization {
        slug: form.text("slug").trim().to_owned(),
        name: form.text("name").trim().to_owned(),
        host: (!host.is_empty()).then(|| host.to_owned()),
    };
    let (store, actor, r) = (api.store().clone(), session.actor(), request.clone());
    match blocking(move || orgs::create(&store, &actor, &r)).await {
        Ok(_) => see_other("/admin/organizations?done=created"),
        Err(err @ (AdminError::Validation { .. } | AdminError::Conflict(_))) => {
            let values = (request.slug, request.name, host.to_owned());
            let errors = FieldMessages::from_error(&err).keep_only(&["slug", "name", "host"]);
            page(&req, &api, &session, values, errors, err.status_code()).await
        }
        Err(err) => session_error_page(&session, &err),
    }
}

async fn organization_action(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<(String, String)>,
    body: web::Bytes,
) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let (slug, action) = path.into_inner();
    let (store, actor) = (api.store().clone(), session.actor());
    let name = form.text("name").trim().to_owned();
    let confirm = form.text("confirm").trim().to_owned();
    let result = blocking(move || {
        let update = |req: UpdateOrganization| orgs::update(&store, &actor, &slug, &req);
        match action.as_str() {
            "rename" => update(UpdateOrganization {
                name: Some(name),
                ..UpdateOrganization::default()
            })
            .map(|_| "renamed"),
            "suspend" => update(UpdateOrganization {
                suspended: Some(true),
                ..UpdateOrganization::default()
            })
            .map(|_| "suspended"),
            "resume" => update(UpdateOrganization {
                suspended: Some(false),
                ..UpdateOrganization::default()
            })
            .map(|_| "resumed"),
            "delete" => orgs::remove(&store, &actor, &slug, Some(&confirm)).map(|()| "deleted"),
            _ => Err(AdminError::NotFound(format!(
                "no organization action {action:?} (rename, suspend, resume, delete)"
            ))),
        }
    })
    .await;
    match result {
        Ok(done) => see_other(&format!("/admin/organizations?done={done}")),
        Err(err @ (AdminError::Validation { .. } | AdminError::Conflict(_))) => {
            page(
                &req,
                &api,
                &session,
                Default::default(),
                FieldMessages::general(err.to_string()),
                err.status_code(),
            )
            .await
        }
        Err(err) => session_error_page(&session, &err),
    }
}
