//! The Activity page (the change log, filtered and paged in SQL) and the
//! timelines of the user and group pages, in sentences.

use actix_web::{web, HttpRequest, HttpResponse};
use scim_store::changes::Event;

use super::{blocking, render, render_status, require_session, Chrome, Form};
use crate::activity::{self, ActivityEntry, ActivityQuery};
use crate::error::AdminError;
use crate::AdminApi;

/// Entries per page of the Activity page.
const PAGE_SIZE: i64 = 50;
/// Entries of a user's or group's timeline (the newest; the Activity page
/// has the rest).
pub(super) const TIMELINE_SIZE: i64 = 20;

/// The resource types a change is recorded against.
const RESOURCE_TYPES: &[&str] = &[
    "User",
    "Group",
    "Sync",
    "Saml",
    "Settings",
    "ScimToken",
    "AdminToken",
    "OauthClient",
    "OauthGrant",
    "Admin",
];

/// The actor kinds, with what the filter says.
const ACTOR_KINDS: &[(&str, &str)] = &[
    ("scim_token", "SCIM token"),
    ("oauth_client", "OAuth client"),
    ("admin", "Administrator"),
    ("admin_token", "Admin API token"),
    ("cli", "Command line"),
    ("system", "scimd"),
    ("anonymous", "Not signed in"),
];

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/activity", web::get().to(activity_page));
}

impl ActivityEntry {
    /// The console page of the resource, for Users and Groups.
    pub fn link(&self) -> Option<String> {
        let id = self.resource_id.as_deref()?;
        let id: String = form_urlencoded::byte_serialize(id.as_bytes()).collect();
        match self.resource_type.as_str() {
            "User" if self.event != Event::UserDeleted.as_str() => {
                Some(format!("/admin/users/{id}"))
            }
            "Group" if self.event != Event::GroupDeleted.as_str() => {
                Some(format!("/admin/groups/{id}"))
            }
            _ => None,
        }
    }
}

/// The filters as the form shows them.
#[derive(Debug, Clone, Default)]
pub(super) struct Filters {
    pub resource_type: String,
    pub subject: String,
    pub actor_kind: String,
    pub actor_id: String,
    pub event: String,
    pub since: String,
    pub until: String,
}

#[derive(askama::Template)]
#[template(path = "activity.html")]
struct ActivityPageView {
    chrome: Chrome,
    filters: Filters,
    /// The filters as a query string (the paging links keep them).
    filters_qs: String,
    filtered: bool,
    paged: bool,
    resource_types: &'static [&'static str],
    actor_kinds: &'static [(&'static str, &'static str)],
    events: Vec<&'static str>,
    entries: Vec<ActivityEntry>,
    next_before: Option<i64>,
    error: Option<String>,
    retention_days: i32,
}

/// The next day of a `YYYY-MM-DD` date, at its start (the form's "To" day
/// is included).
fn day_after(date: &str) -> Option<String> {
    let start = scim_core::datetime::normalize(&format!("{date}T00:00:00Z"))?;
    let parsed =
        time::OffsetDateTime::parse(&start, &time::format_description::well_known::Rfc3339).ok()?;
    Some(scim_core::datetime::format(
        parsed + time::Duration::days(1),
    ))
}

async fn activity_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = match require_session(&req, &api).await {
        Ok(s) => s,
        Err(resp) => return resp,
    };
    let org = session.org;
    let form = Form::query(&req);
    let filters = Filters {
        resource_type: form.text("resource_type").to_owned(),
        subject: form.text("subject").to_owned(),
        actor_kind: form.text("actor_kind").to_owned(),
        actor_id: form.text("actor_id").to_owned(),
        event: form.text("event").to_owned(),
        since: form.text("since").to_owned(),
        until: form.text("until").to_owned(),
    };
    let filters_qs: String = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(
            [
                ("resource_type", &filters.resource_type),
                ("subject", &filters.subject),
                ("actor_kind", &filters.actor_kind),
                ("actor_id", &filters.actor_id),
                ("event", &filters.event),
                ("since", &filters.since),
                ("until", &filters.until),
            ]
            .into_iter()
            .filter(|(_, v)| !v.is_empty()),
        )
        .finish();
    let parsed = ActivityQuery::from_form(&form).map(|mut q| {
        q.query.limit = PAGE_SIZE;
        q.query.org = Some(org);
        if filters.until.trim().len() == 10 {
            q.query.until = day_after(filters.until.trim()).or(q.query.until);
        }
        q
    });
    let store = api.store().clone();
    let result = blocking(move || {
        let retention = crate::service::get_settings(&store, org)?.change_log_retention_days;
        let page = match parsed {
            Ok(q) => Ok(activity::list_activity(&store, &q)?),
            Err(e) => Err(e),
        };
        Ok((retention, page))
    })
    .await;
    let (retention_days, page) = match result {
        Ok(found) => found,
        Err(err) => return super::error_page(&err),
    };
    let (entries, next_before, error, status) = match page {
        Ok(p) => (
            p.items,
            p.next_before,
            None,
            actix_web::http::StatusCode::OK,
        ),
        Err(err @ AdminError::Validation { .. }) => (
            Vec::new(),
            None,
            Some(err.to_string()),
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
        ),
        Err(err) => return super::error_page(&err),
    };
    let view = ActivityPageView {
        chrome: Chrome::for_session(&session, "activity"),
        filtered: !filters_qs.is_empty(),
        paged: form.get("before").is_some(),
        filters,
        filters_qs,
        resource_types: RESOURCE_TYPES,
        actor_kinds: ACTOR_KINDS,
        events: Event::ALL.iter().map(|e| e.as_str()).collect(),
        entries,
        next_before,
        error,
        retention_days,
    };
    if status == actix_web::http::StatusCode::OK {
        render(&view)
    } else {
        render_status(status, &view)
    }
}

/// The newest entries about the user or group `id` (its timeline), for
/// its page.
pub(super) fn timeline(
    store: &scim_store::Store,
    org: scim_store::OrgId,
    id: &str,
) -> Result<Vec<ActivityEntry>, AdminError> {
    let q = ActivityQuery {
        query: scim_store::changes::ChangeQuery {
            subject: Some(id.to_owned()),
            org: Some(org),
            limit: TIMELINE_SIZE,
            ..Default::default()
        },
    };
    Ok(activity::list_activity(store, &q)?.items)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use scim_store::changes::ActorKind;

    #[test]
    fn the_to_day_is_included() {
        assert_eq!(
            day_after("2026-12-31").unwrap(),
            scim_core::datetime::normalize("2027-01-01T00:00:00Z").unwrap()
        );
        assert_eq!(day_after("nope"), None);
        assert!(ACTOR_KINDS
            .iter()
            .all(|(k, _)| ActorKind::parse(k).is_some()));
    }
}
