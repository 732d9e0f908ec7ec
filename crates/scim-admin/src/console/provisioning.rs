//! The console's Provisioning page (`/admin/provisioning`): each
//! identity-provider credential's last contact, current or last cycle and
//! last failed requests, under the quarantine early warning's banners.
//! The same view as `GET /admin/api/v1/provisioning`
//! (`crate::provisioning`).

use actix_web::{web, HttpRequest, HttpResponse};

use super::{blocking, error_page, render, require_session, Chrome};
use crate::provisioning::{provisioning, ProvisioningView};
use crate::AdminApi;

/// The navigation entry this page highlights.
const NAV_ID: &str = "provisioning";

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/provisioning", web::get().to(page));
}

#[derive(askama::Template)]
#[template(path = "provisioning.html")]
struct ProvisioningPage {
    chrome: Chrome,
    view: ProvisioningView,
}

async fn page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let store = api.store().clone();
    let now = api.config().clock.now();
    let org = session.org;
    match blocking(move || provisioning(&store, org, now)).await {
        Ok(view) => render(&ProvisioningPage {
            chrome: Chrome::for_session(&session, NAV_ID),
            view,
        }),
        Err(err) => error_page(&err),
    }
}
