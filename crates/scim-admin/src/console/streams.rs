//! The console's event streams page (`/admin/event-streams`): every stream
//! with its status (state, cursor, lag, the oldest undelivered change,
//! last error, next attempt), a form to create one (the receiver token
//! and an HS256 secret are shown once, on the page that follows), and
//! per stream pause or resume, replay from a position or a time, and
//! delete. The same functions as the admin API (`crate::streams`).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};

use super::{
    blocking, error_page, render, render_status, require_session, see_other, Chrome, FieldMessages,
    Form,
};
use crate::error::AdminError;
use crate::streams::{self, CreateStreamRequest, CreatedStreamView, ReplayRequest, StreamView};
use crate::AdminApi;

/// The navigation entry this page highlights.
const NAV_ID: &str = "event-streams";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/event-streams", web::get().to(page))
        .route("/event-streams", web::post().to(create))
        .route("/event-streams/{id}/{action}", web::post().to(act));
}

/// A notice chosen by a fixed key (never text from the URL).
fn notice(req: &HttpRequest) -> Option<String> {
    let text = match Form::query(req).get("done")? {
        "paused" => "Stream paused: changes wait after its cursor.",
        "resumed" => "Stream resumed: delivery goes on from its cursor.",
        "replayed" => "Cursor moved: the changes after it are delivered again.",
        "deleted" => "Stream deleted.",
        _ => return None,
    };
    Some(text.to_owned())
}

#[derive(askama::Template)]
#[template(path = "event_streams.html")]
struct StreamsPage {
    chrome: Chrome,
    streams: Vec<StreamView>,
    form: Form,
    errors: FieldMessages,
}

#[derive(askama::Template)]
#[template(path = "event_stream_created.html")]
struct CreatedPage {
    chrome: Chrome,
    created: CreatedStreamView,
}

async fn list(
    api: &web::Data<AdminApi>,
    org: scim_store::OrgId,
) -> Result<Vec<StreamView>, AdminError> {
    let api = api.clone().into_inner();
    blocking(move || streams::list(&api, org)).await
}

async fn page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    match list(&api, session.org).await {
        Ok(streams) => render(&StreamsPage {
            chrome: Chrome::for_session(&session, NAV_ID).with_notice(notice(&req)),
            streams,
            form: Form::parse(b""),
            errors: FieldMessages::none(),
        }),
        Err(err) => error_page(&err),
    }
}

fn optional(form: &Form, name: &str) -> Option<String> {
    Some(form.text(name).trim().to_owned()).filter(|v| !v.is_empty())
}

async fn create(req: HttpRequest, api: web::Data<AdminApi>, body: web::Bytes) -> HttpResponse {
    let (session, form) = match crate::console::session_and_form(&req, &api, &body).await {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let list_of = |name: &str| {
        let all: Vec<String> = form.all(name).into_iter().map(str::to_owned).collect();
        (!all.is_empty()).then_some(all)
    };
    let request = CreateStreamRequest {
        name: form.text("name").to_owned(),
        delivery: form.text("delivery").to_owned(),
        endpoint_url: optional(&form, "endpoint_url"),
        authorization: optional(&form, "authorization"),
        audience: optional(&form, "audience"),
        issuer: None,
        event_types: list_of("event_types"),
        resource_types: list_of("resource_types"),
        mode: optional(&form, "mode"),
        alg: optional(&form, "alg"),
    };
    let (a, org) = (api.clone().into_inner(), session.org);
    match blocking(move || streams::create(&a, org, &request)).await {
        Ok(created) => render(&CreatedPage {
            chrome: Chrome::for_session(&session, NAV_ID),
            created,
        }),
        Err(err @ AdminError::Validation { .. }) => match list(&api, session.org).await {
            Ok(streams) => render_status(
                StatusCode::UNPROCESSABLE_ENTITY,
                &StreamsPage {
                    chrome: Chrome::for_session(&session, NAV_ID),
                    streams,
                    errors: FieldMessages::from_error(&err),
                    form,
                },
            ),
            Err(err) => error_page(&err),
        },
        Err(err) => error_page(&err),
    }
}

async fn act(
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
    let a = api.into_inner();
    let replay = ReplayRequest {
        position: optional(&form, "position").and_then(|p| p.parse().ok()),
        since: optional(&form, "since").map(|s| {
            // `<input type="datetime-local">` sends no zone: UTC is meant.
            if s.len() == 16 {
                format!("{s}:00Z")
            } else {
                s
            }
        }),
    };
    let org = session.org;
    let result = blocking(move || match action.as_str() {
        "pause" => streams::change_state(&a, org, &id, true).map(|_| "paused"),
        "resume" => streams::change_state(&a, org, &id, false).map(|_| "resumed"),
        "replay" => streams::replay(&a, org, &id, &replay).map(|_| "replayed"),
        "delete" => streams::delete(a.store(), org, &id).map(|()| "deleted"),
        _ => Err(AdminError::NotFound(format!("no stream action {action:?}"))),
    })
    .await;
    match result {
        Ok(done) => see_other(&format!("/admin/event-streams?done={done}")),
        Err(err) => error_page(&err),
    }
}
