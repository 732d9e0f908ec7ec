//! `GET /`: whoever opens the server's bare address is told where to go.
//! A browser (its `Accept` ranks `text/html` above JSON) is redirected to
//! the admin console; anything else, a SCIM client or `curl`, gets a small
//! JSON document naming the SCIM base URL and where the documentation is.

use actix_web::http::header::{self, Accept, Header};
use actix_web::{mime, web, HttpRequest, HttpResponse};

/// Where the console lives.
const CONSOLE: &str = "/admin/";

/// What `GET /` needs to know.
#[derive(Debug, Clone)]
pub struct Root {
    /// The SCIM API's mount point, e.g. `/scim/v2`.
    pub scim_base_path: String,
    /// `server.public_url` without its trailing slash, if set.
    pub public_url: Option<String>,
}

impl Root {
    /// The absolute URL of the server: the configured public URL, or the
    /// request's scheme and host.
    fn origin(&self, req: &HttpRequest) -> String {
        match &self.public_url {
            Some(public) => public.clone(),
            None => {
                let info = req.connection_info();
                format!("{}://{}", info.scheme(), info.host())
            }
        }
    }

    /// Mounts `GET /`.
    pub fn configure(self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(web::Data::new(self))
            .route("/", web::get().to(root));
    }
}

/// Whether the request ranks HTML above JSON: a browser's navigation
/// (`text/html,…,*/*;q=0.8`), not an API client (`*/*`,
/// `application/scim+json`).
fn prefers_html(req: &HttpRequest) -> bool {
    let Ok(accept) = Accept::parse(req) else {
        return false;
    };
    let ranked = accept.ranked();
    let html = ranked.iter().position(|m| *m == mime::TEXT_HTML);
    let json = ranked.iter().position(|m| {
        m.subtype() == mime::JSON
            || m.suffix() == Some(mime::JSON)
            || (m.type_() == mime::STAR && m.subtype() == mime::STAR)
    });
    match (html, json) {
        (Some(h), Some(j)) => h < j,
        (Some(_), None) => true,
        (None, _) => false,
    }
}

async fn root(req: HttpRequest, root: web::Data<Root>) -> HttpResponse {
    if prefers_html(&req) {
        return HttpResponse::Found()
            .insert_header((header::LOCATION, CONSOLE))
            .finish();
    }
    let origin = root.origin(&req);
    let scim = format!("{origin}{}", root.scim_base_path);
    HttpResponse::Ok().json(serde_json::json!({
        "service": "scimd",
        "detail": "This is scimd, a SCIM 2.0 server (RFC 7643, RFC 7644). Give your identity provider scim_base_url and a SCIM token (console > SCIM tokens); administrators manage scimd in the console and read the API reference under documentation.",
        "scim_base_url": scim,
        "service_provider_config": format!("{scim}/ServiceProviderConfig"),
        "console": format!("{origin}{CONSOLE}"),
        "documentation": format!("{origin}/docs/"),
    }))
}
