//! The console's schema extensions page (`/admin/schema-extensions`): the
//! custom extensions of the User with their attributes, a form to define
//! one (its RFC 7643 §7 definition as JSON), a form per extension to
//! change its definition (the values users hold kept), and the removal of an
//! extension or of one attribute, each of which asks for the URN (or
//! `<urn>:<name>`) to be typed again, since the values users hold go with
//! it. The same functions as the admin API and the CLI
//! (`crate::extensions`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{
    blocking, error_page, render_status, require_session, see_other, Chrome, ConsoleSession,
    FieldMessages, Form,
};
use crate::error::AdminError;
use crate::extensions::{self, ExtensionBody};
use crate::AdminApi;

/// The navigation entry this page highlights.
const NAV_ID: &str = "schema-extensions";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/schema-extensions", web::get().to(page))
        .route("/schema-extensions", web::post().to(create))
        .route("/schema-extensions/update", web::post().to(update))
        .route("/schema-extensions/remove", web::post().to(remove));
}

/// A notice chosen by a fixed key (never text from the URL).
fn notice(req: &HttpRequest) -> Option<String> {
    let text = match Form::query(req).get("done")? {
        "created" => "Extension defined: SCIM clients see it at /Schemas.",
        "changed" => "Definition changed; the values users hold are kept.",
        "removed" => "Removed, with the values users held.",
        _ => return None,
    };
    Some(text.to_owned())
}

/// One attribute as the page lists it.
struct AttrRow {
    name: String,
    summary: String,
}

/// One extension as the page lists it.
struct ExtRow {
    id: String,
    description: String,
    /// The definition as JSON, to edit.
    definition: String,
    attributes: Vec<AttrRow>,
}

fn rows(list: Vec<ExtensionBody>) -> Vec<ExtRow> {
    list.into_iter()
        .map(|e| ExtRow {
            definition: serde_json::to_string_pretty(&e).unwrap_or_default(),
            attributes: e
                .attributes
                .iter()
                .map(|a| {
                    let text = |k: &str| a.get(k).and_then(|v| v.as_str()).unwrap_or("");
                    let mut summary = text("type").to_owned();
                    for flag in ["multiValued", "required", "caseExact"] {
                        if a.get(flag).and_then(|v| v.as_bool()) == Some(true) {
                            summary.push_str(&format!(", {flag}"));
                        }
                    }
                    for (k, default) in [
                        ("mutability", "readWrite"),
                        ("returned", "default"),
                        ("uniqueness", "none"),
                    ] {
                        if text(k) != default {
                            summary.push_str(&format!(", {k} {}", text(k)));
                        }
                    }
                    if let Some(values) = a.get("canonicalValues").and_then(|v| v.as_array()) {
                        let values: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
                        summary.push_str(&format!(", one of {}", values.join(" | ")));
                    }
                    if let Some(subs) = a.get("subAttributes").and_then(|v| v.as_array()) {
                        let names: Vec<&str> = subs
                            .iter()
                            .filter_map(|s| s.get("name").and_then(|n| n.as_str()))
                            .collect();
                        summary.push_str(&format!(" of {}", names.join(", ")));
                    }
                    AttrRow {
                        name: text("name").to_owned(),
                        summary,
                    }
                })
                .collect(),
            id: e.id,
            description: e.description,
        })
        .collect()
}

#[derive(askama::Template)]
#[template(path = "schema_extensions.html")]
struct ExtensionsPage {
    chrome: Chrome,
    extensions: Vec<ExtRow>,
    form: Form,
    errors: FieldMessages,
}

/// The messages of an error, the core's validation (no field) included.
fn messages(err: &AdminError) -> FieldMessages {
    match err {
        AdminError::Validation { fields, message } if fields.is_empty() => {
            FieldMessages::general(message.clone())
        }
        other => FieldMessages::from_error(other),
    }
}

async fn show(
    api: &web::Data<AdminApi>,
    session: &ConsoleSession,
    status: StatusCode,
    notice: Option<String>,
    form: Form,
    errors: FieldMessages,
) -> HttpResponse {
    let store = api.store().clone();
    match blocking(move || extensions::list(&store)).await {
        Ok(list) => render_status(
            status,
            &ExtensionsPage {
                chrome: Chrome::for_session(session, NAV_ID).with_notice(notice),
                extensions: rows(list),
                form,
                errors,
            },
        ),
        Err(err) => error_page(&err),
    }
}

async fn page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let notice = notice(&req);
    show(
        &api,
        &session,
        StatusCode::OK,
        notice,
        Form::parse(b""),
        FieldMessages::none(),
    )
    .await
}

async fn create(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let definition: serde_json::Value = match serde_json::from_str(form.text("definition")) {
        Ok(v) => v,
        Err(e) => {
            let errors = FieldMessages::general(format!("the definition is not JSON: {e}"));
            return show(
                &api,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                errors,
            )
            .await;
        }
    };
    let store = api.store().clone();
    let actor = session.actor();
    match blocking(move || extensions::create(&store, &actor, &definition)).await {
        Ok(_) => see_other("/admin/schema-extensions?done=created"),
        Err(err @ (AdminError::Validation { .. } | AdminError::Conflict(_))) => {
            let errors = messages(&err);
            show(
                &api,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                errors,
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}

async fn update(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let urn = form.text("urn").to_owned();
    let definition: serde_json::Value = match serde_json::from_str(form.text("changed")) {
        Ok(v) => v,
        Err(e) => {
            let errors = FieldMessages::general(format!("the definition is not JSON: {e}"));
            return show(
                &api,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                errors,
            )
            .await;
        }
    };
    let store = api.store().clone();
    let actor = session.actor();
    match blocking(move || extensions::update(&store, &actor, &urn, &definition)).await {
        Ok(_) => see_other("/admin/schema-extensions?done=changed"),
        Err(err @ (AdminError::Validation { .. } | AdminError::Conflict(_))) => {
            let errors = messages(&err);
            show(
                &api,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                form,
                errors,
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}

async fn remove(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let urn = form.text("urn").to_owned();
    let attribute = form.text("attribute").to_owned();
    let confirm = form.text("confirm").trim().to_owned();
    let store = api.store().clone();
    let actor = session.actor();
    let result = blocking(move || {
        if attribute.is_empty() {
            extensions::remove(&store, &actor, &urn, Some(&confirm))
        } else {
            extensions::remove_attribute(&store, &actor, &urn, &attribute, Some(&confirm))
        }
    })
    .await;
    match result {
        Ok(_) => see_other("/admin/schema-extensions?done=removed"),
        Err(err @ AdminError::Validation { .. }) => {
            let errors = messages(&err).keep_only(&[]);
            show(
                &api,
                &session,
                StatusCode::UNPROCESSABLE_ENTITY,
                None,
                Form::parse(b""),
                errors,
            )
            .await
        }
        Err(err) => error_page(&err),
    }
}
