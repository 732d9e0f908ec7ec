//! The admin side's part of the change log (issue 14): the admin events it
//! records, and the operator's view of the log, the Activity API and the
//! console's Activity page and timelines.
//!
//! Every admin write records its event with [`record_event`] as the last
//! statement of its transaction (`scim_store::changes`: on PostgreSQL the
//! change log's lock is taken last and held only to the commit). A row
//! never holds a secret, a token value, a password or a hash: the detail
//! names what changed (a token's name, a setting's old and new value).

use std::collections::HashMap;

use actix_web::{get, web, HttpRequest};
use scim_store::changes::{self, Actor, ActorKind, Change, ChangeQuery, Event, NewChange};
use scim_store::settings::SettingsValues;
use scim_store::{groups, users, DbConnection, Store, StoreError};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::console::Form;
use crate::error::{AdminError, ErrorBody, FieldError};
use crate::AdminApi;

/// Records `event` of the admin resource `resource_type`/`id`, made by
/// `actor` now, with `detail` (a JSON object). Call it last in the
/// transaction of the change.
pub fn record_event(
    conn: &mut DbConnection,
    actor: &Actor,
    event: Event,
    resource_type: &str,
    id: Option<&str>,
    detail: serde_json::Value,
) -> Result<(), StoreError> {
    changes::record(
        conn,
        actor,
        &scim_core::datetime::now(),
        &[NewChange::new(event, resource_type, id).detail(detail)],
    )
}

/// What a settings change changed: `{"version": n, "changed": {"name":
/// [old, new], …}}`.
pub(crate) fn settings_changes(
    before: &SettingsValues,
    after: &SettingsValues,
    version: i64,
) -> serde_json::Value {
    let mut changed = serde_json::Map::new();
    let mut diff = |name: &str, old: serde_json::Value, new: serde_json::Value| {
        if old != new {
            changed.insert(name.to_owned(), serde_json::json!([old, new]));
        }
    };
    diff(
        "deprovisioning",
        before.deprovisioning.as_str().into(),
        after.deprovisioning.as_str().into(),
    );
    diff(
        "soft_delete_retention_days",
        before.soft_delete_retention_days.into(),
        after.soft_delete_retention_days.into(),
    );
    diff(
        "default_page_size",
        before.default_page_size.into(),
        after.default_page_size.into(),
    );
    diff(
        "max_page_size",
        before.max_page_size.into(),
        after.max_page_size.into(),
    );
    diff(
        "change_log_retention_days",
        before.change_log_retention_days.into(),
        after.change_log_retention_days.into(),
    );
    diff(
        "health_failure_percent",
        before.health_failure_percent.into(),
        after.health_failure_percent.into(),
    );
    diff(
        "health_silence_minutes",
        before.health_silence_minutes.into(),
        after.health_silence_minutes.into(),
    );
    diff(
        "health_window_requests",
        before.health_window_requests.into(),
        after.health_window_requests.into(),
    );
    diff(
        "health_window_minutes",
        before.health_window_minutes.into(),
        after.health_window_minutes.into(),
    );
    serde_json::json!({ "version": version, "changed": changed })
}

// ---------------------------------------------------------------- the view

/// Entries per page when `limit` is not given.
pub const DEFAULT_LIMIT: i64 = 50;
/// The most entries a page holds (a larger `limit` is capped).
pub const MAX_LIMIT: i64 = 200;
/// The longest accepted id, type or actor filter value.
const MAX_FILTER_CHARS: usize = 256;

/// The query parameters of `GET /activity` (and of the console's Activity
/// page), by name.
pub const PARAMS: &[&str] = &[
    "resource_type",
    "resource_id",
    "subject",
    "actor_kind",
    "actor_id",
    "event",
    "since",
    "until",
    "before",
    "limit",
];

/// Who made a change, as listed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ActorView {
    /// `scim_token`, `oauth_client`, `admin`, `admin_token`, `cli`,
    /// `system` or `anonymous`.
    #[schema(example = "scim_token")]
    pub kind: String,
    /// The token's, client's or administrator's id.
    #[schema(example = "0193a0c4-6f1e-7c3a-9b2d-5e8f1a2b3c4d")]
    pub id: Option<String>,
    /// Its name at the time (for a failed sign-in: the username tried).
    #[schema(example = "Entra ID")]
    pub name: Option<String>,
}

/// One entry of the change log.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActivityEntry {
    /// The position in the log (the cursor; `before` of the next page).
    #[schema(example = 1042)]
    pub position: i64,
    /// When.
    #[schema(example = "2026-12-06T09:14:03.123Z")]
    pub at: String,
    /// What happened (`user.created`, `group.members_added`,
    /// `scim_token.created`…; docs/EVENTS.md lists them).
    #[schema(example = "user.patched")]
    pub event: String,
    /// `User`, `Group`, or the admin resource (`Sync`, `Saml`,
    /// `Settings`, `ScimToken`, `AdminToken`, `OauthClient`, `OauthGrant`,
    /// `Admin`).
    #[schema(example = "User")]
    pub resource_type: String,
    /// The resource's id.
    #[schema(example = "2819c223-7f76-453a-919d-413861904646")]
    pub resource_id: Option<String>,
    /// The resource's version after the change (SCIM resources).
    #[schema(example = 3)]
    pub resource_version: Option<i64>,
    /// Who.
    pub actor: ActorView,
    /// The request's id (`X-Request-Id`), when the change came over HTTP.
    #[schema(example = "5f3a9c1e-1a")]
    pub request_id: Option<String>,
    /// The client's address, when the change came over HTTP.
    #[schema(example = "192.0.2.7")]
    pub client_address: Option<String>,
    /// What changed: `paths` of a patch, `members` of a membership
    /// change, a token's `name`, a setting's `[old, new]`…
    #[schema(value_type = Object, example = json!({"paths": ["title"]}))]
    pub detail: Value,
    /// The change in a sentence, e.g. "User alice: title changed, by SCIM
    /// token Entra ID".
    #[schema(example = "User alice: title changed, by SCIM token Entra ID")]
    pub summary: String,
}

/// A page of the change log, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ActivityPage {
    /// The entries, newest first.
    pub items: Vec<ActivityEntry>,
    /// Pass as `before` for the next (older) page; absent on the last.
    #[schema(example = 1001)]
    pub next_before: Option<i64>,
}

/// A validated query of the change log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActivityQuery {
    /// What the store selects.
    pub query: ChangeQuery,
}

fn plain(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    if raw.chars().count() > MAX_FILTER_CHARS || raw.chars().any(char::is_control) {
        errors.push(FieldError::new(
            field,
            format!("must be at most {MAX_FILTER_CHARS} characters without control characters"),
        ));
        return None;
    }
    Some(raw.to_owned())
}

/// An RFC 3339 date-time, or a date (`2026-12-06`, the start of that day
/// in UTC), in the store's fixed form.
fn instant(field: &str, raw: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() {
        return None;
    }
    let full = if raw.len() == 10 {
        format!("{raw}T00:00:00Z")
    } else {
        raw.to_owned()
    };
    let parsed = scim_core::datetime::normalize(&full);
    if parsed.is_none() {
        errors.push(FieldError::new(
            field,
            format!("{raw:?} is not an RFC 3339 date-time (2026-12-06T09:00:00Z) or a date (2026-12-06)"),
        ));
    }
    parsed
}

impl ActivityQuery {
    /// Validates the query parameters of `form`: every value at fault is
    /// named. `event` may repeat or list events separated by commas.
    pub fn from_form(form: &Form) -> Result<ActivityQuery, AdminError> {
        let mut errors = Vec::new();
        for name in form.names() {
            if !PARAMS.contains(&name) {
                errors.push(FieldError::new(
                    name,
                    format!(
                        "unknown parameter; the parameters are {}",
                        PARAMS.join(", ")
                    ),
                ));
            }
        }
        let mut query = ChangeQuery {
            resource_type: plain("resource_type", form.text("resource_type"), &mut errors),
            resource_id: plain("resource_id", form.text("resource_id"), &mut errors),
            subject: plain("subject", form.text("subject"), &mut errors),
            actor_id: plain("actor_id", form.text("actor_id"), &mut errors),
            since: instant("since", form.text("since"), &mut errors),
            until: instant("until", form.text("until"), &mut errors),
            limit: DEFAULT_LIMIT,
            ..ChangeQuery::default()
        };
        let kind = form.text("actor_kind").trim();
        if !kind.is_empty() {
            match ActorKind::parse(kind) {
                Some(k) => query.actor_kind = Some(k.as_str().to_owned()),
                None => errors.push(FieldError::new(
                    "actor_kind",
                    format!("{kind:?} is not one of scim_token, oauth_client, admin, admin_token, cli, system, anonymous"),
                )),
            }
        }
        for raw in form.all("event") {
            for name in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
                match Event::parse(name) {
                    Some(e) => query.events.push(e.as_str().to_owned()),
                    None => errors.push(FieldError::new(
                        "event",
                        format!("{name:?} is not an event; docs/EVENTS.md lists them (user.created, group.members_added, scim_token.created…)"),
                    )),
                }
            }
        }
        let number = |field: &str, errors: &mut Vec<FieldError>| -> Option<i64> {
            let raw = form.text(field).trim();
            if raw.is_empty() {
                return None;
            }
            match raw.parse::<i64>() {
                Ok(n) if n >= 1 => Some(n),
                _ => {
                    errors.push(FieldError::new(
                        field,
                        "must be a whole number of at least 1",
                    ));
                    None
                }
            }
        };
        query.before = number("before", &mut errors);
        if let Some(limit) = number("limit", &mut errors) {
            query.limit = limit.min(MAX_LIMIT);
        }
        if errors.is_empty() {
            Ok(ActivityQuery { query })
        } else {
            Err(AdminError::fields(errors))
        }
    }
}

/// The page of the change log `q` selects, with each entry's sentence.
pub fn list_activity(store: &Store, q: &ActivityQuery) -> Result<ActivityPage, AdminError> {
    let (changes, names) = store.read(|c| {
        let changes = scim_store::changes::list_changes(c, &q.query)?;
        let names = resource_names(c, q.query.org.unwrap_or_default(), &changes)?;
        Ok((changes, names))
    })?;
    let next_before = (i64::try_from(changes.len()).unwrap_or(i64::MAX) >= q.query.limit)
        .then(|| changes.last().map(|c| c.position))
        .flatten();
    let subject = q.query.subject.as_deref();
    Ok(ActivityPage {
        items: changes
            .into_iter()
            .map(|c| entry(c, &names, subject))
            .collect(),
        next_before,
    })
}

/// The names of the Users (`userName`) and Groups (`displayName`) the
/// changes name, that still exist: at most a page's worth of lookups by
/// primary key.
fn resource_names(
    conn: &mut DbConnection,
    org: scim_store::OrgId,
    changes: &[Change],
) -> Result<HashMap<String, String>, StoreError> {
    let mut names = HashMap::new();
    for c in changes {
        let mut wanted: Vec<(&str, String)> = Vec::new();
        if let Some(id) = c.resource_id.as_deref() {
            wanted.push((c.resource_type.as_str(), id.to_owned()));
        }
        // The first members a membership change names (the sentence
        // names three at most).
        let detail: Value = serde_json::from_str(&c.detail).unwrap_or(Value::Null);
        for member in members_of(&detail).into_iter().take(3) {
            wanted.push(("User", member.to_owned()));
        }
        for (kind, id) in wanted {
            if names.contains_key(&id) {
                continue;
            }
            let found = match kind {
                "User" => users::find_user(conn, org, &id)?.map(|u| text_of(&u.attrs, "userName")),
                "Group" => {
                    groups::find_group(conn, org, &id)?.map(|g| text_of(&g.attrs, "displayName"))
                }
                _ => None,
            };
            if let Some(name) = found {
                names.insert(id, name);
            }
        }
    }
    Ok(names)
}

fn text_of(attrs: &serde_json::Map<String, Value>, key: &str) -> String {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned()
}

/// The member ids of a membership change's detail (`{"members": [...]}`;
/// each an id, or an object with a `value`).
fn members_of(detail: &Value) -> Vec<&str> {
    detail
        .get("members")
        .and_then(Value::as_array)
        .map(|ms| {
            ms.iter()
                .filter_map(|m| {
                    m.as_str()
                        .or_else(|| m.get("value").and_then(Value::as_str))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn entry(c: Change, names: &HashMap<String, String>, subject: Option<&str>) -> ActivityEntry {
    let detail: Value = serde_json::from_str(&c.detail).unwrap_or(Value::Null);
    let summary = describe(&c, &detail, names, subject);
    ActivityEntry {
        position: c.position,
        at: c.at,
        event: c.event,
        resource_type: c.resource_type,
        resource_id: c.resource_id,
        resource_version: c.resource_version,
        actor: ActorView {
            kind: c.actor_kind,
            id: c.actor_id,
            name: c.actor_name,
        },
        request_id: c.request_id,
        client_address: c.client_address,
        detail,
        summary,
    }
}

/// Who, in words: "SCIM token Entra ID", "administrator alice".
pub fn who(kind: &str, name: Option<&str>) -> String {
    let name = name.unwrap_or("?");
    match ActorKind::parse(kind) {
        Some(ActorKind::ScimToken) => format!("SCIM token {name}"),
        Some(ActorKind::OauthClient) => format!("OAuth client {name}"),
        Some(ActorKind::Admin) => format!("administrator {name}"),
        Some(ActorKind::AdminToken) => format!("admin API token {name}"),
        Some(ActorKind::Cli) => format!("the command line ({name})"),
        Some(ActorKind::System) => format!("scimd ({name})"),
        Some(ActorKind::Anonymous) | None => "someone not signed in".to_owned(),
    }
}

/// `a`, `a and b`, `a, b and c`.
fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// `paths` of a patch, in words: "title and name.givenName changed".
fn paths_changed(detail: &Value) -> String {
    let paths: Vec<String> = detail
        .get("paths")
        .and_then(Value::as_array)
        .map(|ps| {
            ps.iter()
                .filter_map(Value::as_str)
                .map(|p| match p.rsplit_once(':') {
                    // An extension attribute by its own name.
                    Some((urn, attr)) if urn.starts_with("urn:") => attr.to_owned(),
                    _ => p.to_owned(),
                })
                .collect()
        })
        .unwrap_or_default();
    if paths.is_empty() {
        "changed".to_owned()
    } else if paths.len() > 4 {
        format!(
            "{} and {} more changed",
            paths[..3].join(", "),
            paths.len() - 3
        )
    } else {
        format!("{} changed", and_list(&paths))
    }
}

fn quoted(detail: &Value, key: &str) -> String {
    detail
        .get(key)
        .and_then(Value::as_str)
        .map(|s| format!(" \u{201c}{s}\u{201d}"))
        .unwrap_or_default()
}

/// The change in a sentence. On a timeline (`subject`), the resource is
/// implied: "title changed, by SCIM token Entra ID", "removed from Sales";
/// elsewhere it is named: "User alice: title changed, by …".
pub fn describe(
    c: &Change,
    detail: &Value,
    names: &HashMap<String, String>,
    subject: Option<&str>,
) -> String {
    let name_of = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());
    let id = c.resource_id.as_deref().unwrap_or("");
    let by = who(&c.actor_kind, c.actor_name.as_deref());
    let Some(event) = Event::parse(&c.event) else {
        return format!("{} by {by}", c.event);
    };
    let members = |verb: &str| -> String {
        let ids = members_of(detail);
        let shown: Vec<String> = ids.iter().take(3).map(|m| name_of(m)).collect();
        let more = ids.len().saturating_sub(shown.len());
        let mut list = and_list(&shown);
        if more > 0 {
            list = format!("{} and {more} more", shown.join(", "));
        }
        format!("members {verb}: {list}")
    };
    // A user's timeline shows the membership rows of its groups.
    if let (Some(s), Event::MembersAdded | Event::MembersRemoved) = (subject, event) {
        if s != id {
            let group = name_of(id);
            let what = if event == Event::MembersAdded {
                format!("added to {group}")
            } else {
                format!("removed from {group}")
            };
            return format!("{what}, by {by}");
        }
    }
    let what = match event {
        Event::UserCreated | Event::GroupCreated => "created".to_owned(),
        Event::UserReplaced | Event::GroupReplaced => "replaced".to_owned(),
        Event::UserPatched | Event::GroupPatched => paths_changed(detail),
        Event::UserActivated => "activated".to_owned(),
        Event::UserSuspended => "suspended".to_owned(),
        Event::UserDeleted | Event::GroupDeleted => "deleted".to_owned(),
        Event::UserSoftDeleted => "deleted (kept until the purge)".to_owned(),
        Event::UserPurged => "purged".to_owned(),
        Event::MembersAdded => members("added"),
        Event::MembersRemoved => members("removed"),
        Event::OrganizationCreated => format!("organization{} created", quoted(detail, "slug")),
        Event::OrganizationChanged => "organization changed".to_owned(),
        Event::OrganizationDeleted => format!("organization{} deleted", quoted(detail, "slug")),
        Event::SyncEnabled => "User Synchronization enabled".to_owned(),
        Event::SyncDisabled => "User Synchronization disabled".to_owned(),
        Event::SamlChanged => "SAML sign-in settings changed".to_owned(),
        Event::SettingsChanged => {
            let changed: Vec<String> = detail
                .get("changed")
                .and_then(Value::as_object)
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| match v.as_array().map(Vec::as_slice) {
                            Some([old, new]) => format!("{k} {old} \u{2192} {new}"),
                            _ => k.clone(),
                        })
                        .collect()
                })
                .unwrap_or_default();
            if changed.is_empty() {
                "settings saved unchanged".to_owned()
            } else {
                format!("settings changed: {}", changed.join(", "))
            }
        }
        Event::ScimTokenCreated => format!("SCIM token{} created", quoted(detail, "name")),
        Event::ScimTokenRevoked => format!("SCIM token{} revoked", quoted(detail, "name")),
        Event::AdminTokenCreated => format!("admin API token{} created", quoted(detail, "name")),
        Event::AdminTokenRevoked => format!("admin API token{} revoked", quoted(detail, "name")),
        Event::OauthClientCreated => format!("OAuth client{} registered", quoted(detail, "name")),
        Event::OauthClientChanged => {
            format!("OAuth client{}: secret rotated", quoted(detail, "name"))
        }
        Event::OauthClientDeleted => format!("OAuth client{} deleted", quoted(detail, "name")),
        Event::OauthGrantCreated => {
            format!("OAuth grant for{} approved", quoted(detail, "client_name"))
        }
        Event::OauthGrantRevoked => "OAuth grant revoked".to_owned(),
        Event::AdminCreated => format!("administrator{} created", quoted(detail, "username")),
        Event::AdminChanged => format!("administrator{} changed", quoted(detail, "username")),
        Event::AdminDeleted => format!("administrator{} deleted", quoted(detail, "username")),
        Event::AdminSignedIn => "signed in".to_owned(),
        Event::SchemaExtensionCreated => format!("schema extension {id} defined"),
        Event::SchemaExtensionChanged => format!(
            "schema extension attribute{} removed with the values of {} users",
            quoted(detail, "removed_attribute"),
            detail.get("users").and_then(Value::as_u64).unwrap_or(0)
        ),
        Event::SchemaExtensionDeleted => format!(
            "schema extension {id} removed with the values of {} users",
            detail.get("users").and_then(Value::as_u64).unwrap_or(0)
        ),
        Event::AdminSignInFailed => {
            return format!(
                "sign-in failed for username \u{201c}{}\u{201d}",
                c.actor_name.as_deref().unwrap_or("")
            )
        }
    };
    let on_timeline = subject.is_some_and(|s| s == id);
    if !event.is_scim() || on_timeline {
        return format!("{what}, by {by}");
    }
    format!("{} {}: {what}, by {by}", c.resource_type, name_of(id))
}

// ---------------------------------------------------------------- the API

/// The change log (Activity)
///
/// Every recorded change, newest first: what the identity provider
/// provisioned (User and Group events) and what administrators did (admin
/// events), each with who (`actor`), the request id and client address,
/// and a sentence. Filters combine with AND; paged in SQL by position:
/// pass `next_before` as `before` for the next page. A user's or group's
/// timeline is `subject=<id>`: its own rows and, for a user, the Group
/// membership rows that name it.
#[utoipa::path(
    tag = "Activity",
    params(
        ("resource_type" = Option<String>, Query, description = "Only this resource type: User, Group, Sync, Saml, Settings, ScimToken, AdminToken, OauthClient, OauthGrant, Admin", example = "User"),
        ("resource_id" = Option<String>, Query, description = "Only the rows of this resource"),
        ("subject" = Option<String>, Query, description = "A timeline: the rows of this resource and the membership rows (group.members_added/removed) naming it as a member"),
        ("actor_kind" = Option<String>, Query, description = "Only this kind of actor: scim_token, oauth_client, admin, admin_token, cli, system, anonymous", example = "scim_token"),
        ("actor_id" = Option<String>, Query, description = "Only this actor (a token's, client's or administrator's id)"),
        ("event" = Option<String>, Query, description = "Only these events; repeat it or separate with commas", example = "user.created,user.suspended"),
        ("since" = Option<String>, Query, description = "Only changes at or after this RFC 3339 date-time or date", example = "2026-12-01"),
        ("until" = Option<String>, Query, description = "Only changes before this RFC 3339 date-time or date", example = "2026-12-06T12:00:00Z"),
        ("before" = Option<i64>, Query, description = "Only positions below this one: `next_before` of the previous page"),
        ("limit" = Option<i64>, Query, description = "Entries per page: 50 by default, at most 200 (larger values are capped)", example = 50),
    ),
    responses(
        (status = 200, description = "A page, newest first", body = ActivityPage),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 422, description = "An invalid parameter; `fields` names each", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/activity")]
pub async fn get_activity(
    api: web::Data<AdminApi>,
    caller: Caller,
    req: HttpRequest,
) -> Result<web::Json<ActivityPage>, AdminError> {
    let mut query = ActivityQuery::from_form(&Form::query(&req))?;
    // The caller's organization's rows (docs/ORGANIZATIONS.md).
    query.query.org = Some(caller.actor.org);
    let store = api.store().clone();
    Ok(web::Json(
        web::block(move || list_activity(&store, &query)).await??,
    ))
}
