//! Event streams in the admin API (`/admin/api/v1/event-streams`): create,
//! list, status (cursor, lag, the oldest undelivered change, failing,
//! last error, next attempt), pause, resume, delete, replay from a
//! position or a time, and the signing keys (JWKS, rotation, removal of a
//! retired key). docs/EVENTS.md tells the application's developer how to
//! consume a stream.
//!
//! The receiver's secrets (the Authorization value sent to a push
//! receiver, the receiver token, an HS256 secret) are returned once, at
//! creation (the HS256 secret again when the key rotates), never listed.
//!
//! A stream belongs to the organization it was created in (the request's
//! organization: `X-Scimd-Organization`, or the console's) and delivers
//! only that organization's changes; every endpoint acts on the request's
//! organization, and another organization's stream id answers 404.

use actix_web::{delete, get, post, web, HttpResponse};
use scim_store::events::streams::{self, RESOURCE_TYPES};
use scim_store::events::{keys, Alg, Delivery, EventType, Mode, NewStream, Stream};
use scim_store::{OrgId, Store};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Caller;
use crate::error::{AdminError, ErrorBody, FieldError};
use crate::json::Json;
use crate::AdminApi;

/// A new event stream.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStreamRequest {
    /// A label for operators.
    #[schema(example = "CRM app")]
    pub name: String,
    /// `push` (scimd POSTs each SET to `endpoint_url`, RFC 8935) or `poll`
    /// (the application polls scimd, RFC 8936).
    #[schema(example = "push")]
    pub delivery: String,
    /// The receiver's URL (push only).
    #[schema(example = "https://crm.example.com/scim-events")]
    pub endpoint_url: Option<String>,
    /// The Authorization header value scimd sends the receiver (push only;
    /// a secret, never shown again).
    #[schema(example = "Bearer 8f14e45fceea167a5a36dedd4bea2543")]
    pub authorization: Option<String>,
    /// The SETs' `aud` (default: `endpoint_url`; required for poll).
    #[schema(example = "https://crm.example.com")]
    pub audience: Option<String>,
    /// The SETs' `iss` (default: `events.issuer`, else the public URL).
    pub issuer: Option<String>,
    /// The event types to deliver: `create`, `patch`, `put`, `delete`,
    /// `activate`, `deactivate` (default: all).
    #[schema(example = json!(["create", "patch", "put", "delete", "activate", "deactivate"]))]
    pub event_types: Option<Vec<String>>,
    /// The resource types: `User`, `Group` (default: both).
    #[schema(example = json!(["User", "Group"]))]
    pub resource_types: Option<Vec<String>>,
    /// `full` (the resource after the change) or `notice` (the changed
    /// attributes' names only); default `full`.
    #[schema(example = "full")]
    pub mode: Option<String>,
    /// `ES256` (default), `EdDSA`, or `HS256` (a secret shared with the
    /// receiver, returned once).
    #[schema(example = "ES256")]
    pub alg: Option<String>,
}

/// An event stream and where it stands.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct StreamView {
    /// The stream's id.
    #[schema(example = "5b0e9f0c-6a7d-4f51-9c1e-2f3a4b5c6d7e")]
    pub id: String,
    /// Its label.
    #[schema(example = "CRM app")]
    pub name: String,
    /// `push` or `poll`.
    #[schema(example = "push")]
    pub delivery: String,
    /// The receiver's URL (push).
    #[schema(example = "https://crm.example.com/scim-events")]
    pub endpoint_url: Option<String>,
    /// Whether an Authorization header is sent to the receiver.
    pub has_authorization: bool,
    /// The SETs' `aud`.
    pub audience: String,
    /// The SETs' `iss`, when the stream sets its own.
    pub issuer: Option<String>,
    /// The event types delivered (empty: all).
    pub event_types: Vec<String>,
    /// The resource types delivered (empty: all).
    pub resource_types: Vec<String>,
    /// `full` or `notice`.
    pub mode: String,
    /// The signing algorithm.
    pub alg: String,
    /// `active`, `paused` or `failing` (failed `events.failing_after`
    /// times in a row; still retried).
    #[schema(example = "active")]
    pub state: String,
    /// The last change-log position the stream is done with.
    pub cursor: i64,
    /// The change-log position of the organization's newest change.
    pub last_position: i64,
    /// `last_position - cursor` (0 once the stream is past it).
    pub lag: i64,
    /// When the oldest change not yet delivered was recorded.
    pub oldest_pending_at: Option<String>,
    /// Failed deliveries in a row.
    pub failures: i32,
    /// The last delivery error (or a SET the receiver rejected).
    pub last_error: Option<String>,
    /// When.
    pub last_error_at: Option<String>,
    /// No push before this time (backoff).
    pub next_attempt_at: Option<String>,
    /// The last successful push.
    pub delivered_at: Option<String>,
    /// Creation time.
    pub created_at: String,
    /// Where the receiver polls (poll streams): `POST`, with the receiver
    /// token.
    pub poll_path: Option<String>,
    /// Where the receiver fetches the JWKS, with the receiver token.
    pub jwks_path: String,
}

/// A stream just created, with its secrets (shown once).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CreatedStreamView {
    /// The stream.
    pub stream: StreamView,
    /// The receiver token (`Authorization: Bearer …` on the poll and JWKS
    /// endpoints); scimd keeps a hash.
    #[schema(example = "scimd_rcv_q8S0bq1xV2eYk3cJwz3nTt8p0bZ2QmKc7yT4sXo9E1w")]
    pub receiver_token: String,
    /// The HS256 secret shared with the receiver (HS256 streams only).
    pub shared_secret: Option<String>,
}

/// Where to replay from: exactly one of the two.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplayRequest {
    /// Deliver again every change after this change-log position (0: the
    /// whole log).
    #[schema(example = 0)]
    pub position: Option<i64>,
    /// Deliver again every change recorded at or after this RFC 3339 time.
    #[schema(example = "2026-12-01T00:00:00Z")]
    pub since: Option<String>,
}

/// A signing key (never the private part).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct KeyView {
    /// The JWS `kid`.
    pub kid: String,
    /// The algorithm.
    pub alg: String,
    /// Creation time.
    pub created_at: String,
    /// When it stopped signing (still published until removed).
    pub retired_at: Option<String>,
    /// The new HS256 secret (only in the answer to a rotation).
    pub shared_secret: Option<String>,
}

fn invalid(field: &str, message: impl Into<String>) -> AdminError {
    let message = message.into();
    AdminError::Validation {
        message: format!("{field}: {message}"),
        fields: vec![FieldError {
            field: field.to_owned(),
            message,
        }],
    }
}

fn parse_request(req: &CreateStreamRequest) -> Result<NewStream, AdminError> {
    let delivery = Delivery::parse(&req.delivery)
        .ok_or_else(|| invalid("delivery", "must be \"push\" or \"poll\""))?;
    let mode = match req.mode.as_deref() {
        None => Mode::Full,
        Some(m) => {
            Mode::parse(m).ok_or_else(|| invalid("mode", "must be \"full\" or \"notice\""))?
        }
    };
    let alg = match req.alg.as_deref() {
        None => Alg::Es256,
        Some(a) => Alg::parse(a)
            .ok_or_else(|| invalid("alg", "must be \"ES256\", \"EdDSA\" or \"HS256\""))?,
    };
    let event_types = req
        .event_types
        .iter()
        .flatten()
        .map(|t| {
            EventType::parse(t).ok_or_else(|| {
                invalid(
                    "event_types",
                    format!(
                        "\"{t}\" is not one of create, patch, put, delete, activate, deactivate"
                    ),
                )
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resource_types = req.resource_types.clone().unwrap_or_default();
    if let Some(t) = resource_types
        .iter()
        .find(|t| !RESOURCE_TYPES.contains(&t.as_str()))
    {
        return Err(invalid(
            "resource_types",
            format!("\"{t}\" is not one of User, Group"),
        ));
    }
    let audience = match (&req.audience, delivery, &req.endpoint_url) {
        (Some(a), _, _) => a.clone(),
        (None, Delivery::Push, Some(url)) => url.clone(),
        _ => {
            return Err(invalid(
                "audience",
                "required for a poll stream: the SETs' aud, e.g. the application's URL",
            ))
        }
    };
    Ok(NewStream {
        name: req.name.clone(),
        delivery,
        endpoint_url: req.endpoint_url.clone(),
        authorization: req.authorization.clone(),
        audience,
        issuer: req.issuer.clone().filter(|i| !i.trim().is_empty()),
        event_types,
        resource_types,
        mode,
        alg,
    })
}

fn view(
    api: &AdminApi,
    c: &mut scim_store::DbConnection,
    s: Stream,
) -> Result<StreamView, scim_store::StoreError> {
    let status = streams::stream_status(c, &s, api.config().events_failing_after)?;
    let base = &api.config().events_base_path;
    Ok(StreamView {
        poll_path: (s.delivery == Delivery::Poll).then(|| format!("{base}/{}/poll", s.id)),
        jwks_path: format!("{base}/{}/jwks", s.id),
        delivery: s.delivery.as_str().to_owned(),
        event_types: s
            .event_types
            .iter()
            .map(|t| t.as_str().to_owned())
            .collect(),
        mode: s.mode.as_str().to_owned(),
        alg: s.alg.as_str().to_owned(),
        state: status.state.to_owned(),
        last_position: status.last_position,
        lag: status.lag,
        oldest_pending_at: status.oldest_pending_at,
        id: s.id,
        name: s.name,
        endpoint_url: s.endpoint_url,
        has_authorization: s.has_authorization,
        audience: s.audience,
        issuer: s.issuer,
        resource_types: s.resource_types,
        cursor: s.cursor,
        failures: s.failures,
        last_error: s.last_error,
        last_error_at: s.last_error_at,
        next_attempt_at: s.next_attempt_at,
        delivered_at: s.delivered_at,
        created_at: s.created_at,
    })
}

fn not_found(id: &str) -> impl Fn(AdminError) -> AdminError + '_ {
    move |e| match e {
        AdminError::NotFound(_) => AdminError::NotFound(format!("no event stream with id {id:?}")),
        other => other,
    }
}

/// Every stream of the organization `org` with its status, oldest first.
pub fn list(api: &AdminApi, org: OrgId) -> Result<Vec<StreamView>, AdminError> {
    api.store()
        .read(|c| {
            streams::list_streams(c, org)?
                .into_iter()
                .map(|s| view(api, c, s))
                .collect()
        })
        .map_err(AdminError::from)
}

/// One stream of the organization `org` with its status.
pub fn get(api: &AdminApi, org: OrgId, id: &str) -> Result<StreamView, AdminError> {
    api.store()
        .read(|c| {
            let s = streams::find_org_stream(c, org, id)?;
            view(api, c, s)
        })
        .map_err(AdminError::from)
        .map_err(not_found(id))
}

/// Creates a stream of the organization `org`'s changes.
pub fn create(
    api: &AdminApi,
    org: OrgId,
    req: &CreateStreamRequest,
) -> Result<CreatedStreamView, AdminError> {
    let new = parse_request(req)?;
    let now = api.config().clock.now_text();
    api.store()
        .write(|c| {
            let created = streams::create_stream(c, org, &new, &now)?;
            Ok(CreatedStreamView {
                stream: view(api, c, created.stream)?,
                receiver_token: created.receiver_token,
                shared_secret: created.shared_secret,
            })
        })
        .map_err(AdminError::from)
}

/// Runs `f` on the stream `id` of the organization `org` (`NotFound` for
/// another organization's), in one transaction.
fn change(
    api: &AdminApi,
    org: OrgId,
    id: &str,
    f: impl FnOnce(&mut scim_store::DbConnection) -> Result<Stream, scim_store::StoreError>,
) -> Result<StreamView, AdminError> {
    api.store()
        .write(|c| {
            streams::find_org_stream(c, org, id)?;
            let s = f(c)?;
            view(api, c, s)
        })
        .map_err(AdminError::from)
        .map_err(not_found(id))
}

/// Pauses (`true`) or resumes (`false`) a stream of the organization `org`.
pub fn change_state(
    api: &AdminApi,
    org: OrgId,
    id: &str,
    paused: bool,
) -> Result<StreamView, AdminError> {
    change(api, org, id, |c| streams::set_paused(c, id, paused))
}

/// Replays a stream of the organization `org` from a position or a time.
pub fn replay(
    api: &AdminApi,
    org: OrgId,
    id: &str,
    req: &ReplayRequest,
) -> Result<StreamView, AdminError> {
    match (req.position, &req.since) {
        (Some(p), None) => change(api, org, id, |c| streams::replay_from_position(c, id, p)),
        (None, Some(since)) => {
            let at = scim_core::datetime::normalize(since).ok_or_else(|| {
                invalid(
                    "since",
                    format!(
                        "\"{since}\" is not an RFC 3339 date-time such as 2026-12-01T00:00:00Z"
                    ),
                )
            })?;
            change(api, org, id, |c| streams::replay_from_time(c, id, &at))
        }
        _ => Err(invalid(
            "position",
            "give exactly one of position and since",
        )),
    }
}

/// Deletes the stream `id` of the organization `org`, with its keys.
pub fn delete(store: &Store, org: OrgId, id: &str) -> Result<(), AdminError> {
    store
        .write(|c| {
            streams::find_org_stream(c, org, id)?;
            streams::delete_stream(c, id)
        })
        .map_err(AdminError::from)
        .map_err(not_found(id))
}

fn key_view(k: keys::SigningKey, shared_secret: Option<String>) -> KeyView {
    KeyView {
        kid: k.kid,
        alg: k.alg,
        created_at: k.created_at,
        retired_at: k.retired_at,
        shared_secret,
    }
}

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

/// The event streams
///
/// Every stream with its status: cursor, lag, the oldest undelivered
/// change, state, last error and next attempt; never a secret.
#[utoipa::path(
    tag = "Event streams",
    responses(
        (status = 200, description = "Every stream, oldest first", body = [StreamView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/event-streams")]
pub async fn list_streams(
    api: web::Data<AdminApi>,
    caller: Caller,
) -> Result<web::Json<Vec<StreamView>>, AdminError> {
    let (api, org) = (api.into_inner(), caller.actor.org);
    Ok(web::Json(blocking(move || list(&api, org)).await?))
}

/// Creates an event stream
///
/// It delivers the SCIM changes committed from now on (replay to go
/// back). The receiver token, and for HS256 the shared secret, are in
/// this response only.
#[utoipa::path(
    tag = "Event streams",
    request_body(content = CreateStreamRequest,
        example = json!({"name": "CRM app", "delivery": "push", "endpoint_url": "https://crm.example.com/scim-events", "authorization": "Bearer 8f14e45fceea167a5a36dedd4bea2543", "event_types": ["create", "patch", "put", "delete", "activate", "deactivate"], "resource_types": ["User", "Group"], "mode": "full", "alg": "ES256"})),
    responses(
        (status = 201, description = "Created", body = CreatedStreamView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 422, description = "Invalid settings: `fields` says which", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/event-streams")]
pub async fn create_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    body: Result<Json<CreateStreamRequest>, actix_web::Error>,
) -> Result<HttpResponse, AdminError> {
    let req = json_body(body)?;
    let (api, org) = (api.into_inner(), caller.actor.org);
    let created = blocking(move || create(&api, org, &req)).await?;
    Ok(HttpResponse::Created().json(created))
}

/// An event stream and its status
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "The stream", body = StreamView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/event-streams/{id}")]
pub async fn get_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<StreamView>, AdminError> {
    let (api, id, org) = (api.into_inner(), path.into_inner(), caller.actor.org);
    Ok(web::Json(blocking(move || get(&api, org, &id)).await?))
}

/// Deletes an event stream
///
/// With its keys; its receiver token stops working.
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/event-streams/{id}")]
pub async fn delete_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (store, id): (Store, String) = (api.store().clone(), path.into_inner());
    let org = caller.actor.org;
    blocking(move || delete(&store, org, &id)).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Pauses an event stream
///
/// Nothing is pushed (or answered to polls) until resumed; changes keep
/// accumulating after its cursor, none is lost.
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "Paused", body = StreamView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/event-streams/{id}/pause")]
pub async fn pause_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<StreamView>, AdminError> {
    let (api, id, org) = (api.into_inner(), path.into_inner(), caller.actor.org);
    Ok(web::Json(
        blocking(move || change_state(&api, org, &id, true)).await?,
    ))
}

/// Resumes an event stream
///
/// Delivery starts again at once from its cursor (a backoff is cleared).
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "Resumed", body = StreamView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/event-streams/{id}/resume")]
pub async fn resume_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<StreamView>, AdminError> {
    let (api, id, org) = (api.into_inner(), path.into_inner(), caller.actor.org);
    Ok(web::Json(
        blocking(move || change_state(&api, org, &id, false)).await?,
    ))
}

/// Replays an event stream
///
/// Moves its cursor back (or forward): every change after `position`, or
/// recorded at or after `since`, is delivered again, with the same `jti`s
/// as before (receivers deduplicate by them).
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    request_body(content = ReplayRequest, example = json!({"since": "2026-12-01T00:00:00Z"})),
    responses(
        (status = 200, description = "The cursor moved", body = StreamView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
        (status = 422, description = "Neither or both of position and since, or a bad value", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/event-streams/{id}/replay")]
pub async fn replay_stream(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
    body: Result<Json<ReplayRequest>, actix_web::Error>,
) -> Result<web::Json<StreamView>, AdminError> {
    let req = json_body(body)?;
    let (api, id, org) = (api.into_inner(), path.into_inner(), caller.actor.org);
    Ok(web::Json(
        blocking(move || replay(&api, org, &id, &req)).await?,
    ))
}

/// The stream's JWKS
///
/// The public keys SETs are signed with (the retired ones until removed);
/// the receiver fetches the same from the JWKS path with its token.
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "The JWKS (RFC 7517)", body = serde_json::Value),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/event-streams/{id}/jwks")]
pub async fn stream_jwks(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<serde_json::Value>, AdminError> {
    let (store, id, org) = (api.store().clone(), path.into_inner(), caller.actor.org);
    Ok(web::Json(
        blocking(move || {
            store
                .read(|c| {
                    streams::find_org_stream(c, org, &id)?;
                    keys::jwks(c, &id)
                })
                .map_err(AdminError::from)
                .map_err(not_found(&id))
        })
        .await?,
    ))
}

/// The stream's signing keys
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 200, description = "Newest first; the first unretired one signs", body = [KeyView]),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = []), ("admin_token" = []))
)]
#[get("/event-streams/{id}/keys")]
pub async fn list_keys(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<web::Json<Vec<KeyView>>, AdminError> {
    let (store, id, org) = (api.store().clone(), path.into_inner(), caller.actor.org);
    Ok(web::Json(
        blocking(move || {
            store
                .read(|c| {
                    streams::find_org_stream(c, org, &id)?;
                    keys::list_keys(c, &id)
                })
                .map(|ks| ks.into_iter().map(|k| key_view(k, None)).collect())
                .map_err(AdminError::from)
                .map_err(not_found(&id))
        })
        .await?,
    ))
}

/// Rotates the stream's signing key
///
/// A new key signs from now on; the previous one stays in the JWKS until
/// removed, so SETs signed before still verify. For HS256 the new shared
/// secret is in this response only.
#[utoipa::path(
    tag = "Event streams",
    params(("id" = String, Path, description = "The stream's id")),
    responses(
        (status = 201, description = "The new key", body = KeyView),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[post("/event-streams/{id}/keys")]
pub async fn rotate_key(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, AdminError> {
    let (api, id, org) = (api.into_inner(), path.into_inner(), caller.actor.org);
    let key = blocking(move || {
        let now = api.config().clock.now_text();
        api.store()
            .write(|c| {
                streams::find_org_stream(c, org, &id)?;
                keys::rotate_key(c, &id, &now)
            })
            .map(|(k, secret)| key_view(k, secret))
            .map_err(AdminError::from)
            .map_err(not_found(&id))
    })
    .await?;
    Ok(HttpResponse::Created().json(key))
}

/// Removes a retired signing key
///
/// SETs it signed no longer verify with the JWKS. The signing key cannot
/// be removed (409): rotate first.
#[utoipa::path(
    tag = "Event streams",
    params(
        ("id" = String, Path, description = "The stream's id"),
        ("kid" = String, Path, description = "The key's kid"),
    ),
    responses(
        (status = 204, description = "Removed"),
        (status = 401, description = "No or invalid credentials", body = ErrorBody),
        (status = 403, description = "Session without a valid X-CSRF-Token header", body = ErrorBody),
        (status = 404, description = "No such stream or key", body = ErrorBody),
        (status = 409, description = "The key signs the stream's SETs", body = ErrorBody),
    ),
    security(("session" = [], "csrf" = []), ("admin_token" = []))
)]
#[delete("/event-streams/{id}/keys/{kid}")]
pub async fn remove_key(
    api: web::Data<AdminApi>,
    caller: Caller,
    path: web::Path<(String, String)>,
) -> Result<HttpResponse, AdminError> {
    let (store, org) = (api.store().clone(), caller.actor.org);
    let (id, kid) = path.into_inner();
    blocking(move || {
        store
            .write(|c| {
                streams::find_org_stream(c, org, &id)?;
                keys::remove_key(c, &id, &kid)
            })
            .map_err(AdminError::from)
            .map_err(|e| match e {
                AdminError::NotFound(_) => {
                    AdminError::NotFound(format!("no key {kid:?} of event stream {id:?}"))
                }
                other => other,
            })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
