//! The receiver's endpoints: polling (RFC 8936) and the stream's JWKS
//! (RFC 7517), both authenticated with the stream's receiver token
//! (`Authorization: Bearer …`).
//!
//! A poll acknowledges SETs (`ack`), reports SETs in error (`setErrs`,
//! kept as the stream's last error; they are not sent again either), and
//! gets the next SETs after the stream's cursor that are not acknowledged
//! yet, oldest first, up to `maxEvents`, with `moreAvailable`. A SET
//! stays pending, and comes again in each answer, until acknowledged.
//! With `returnImmediately: false` (the default, RFC 8936 §2.4) and
//! nothing pending, the answer waits for a new change, up to
//! `events.long_poll_wait`: a SCIM write in this process wakes it at once;
//! another replica's write is seen when the wait ends.

use std::collections::BTreeMap;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scim_store::events::{keys, streams, Stream};
use scim_store::StoreError;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::events::{set, Events};

/// A poll request (RFC 8936 §2.4).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PollRequest {
    /// The most SETs to return (0: acknowledge only).
    pub max_events: Option<i64>,
    /// Whether to answer at once when nothing is pending.
    pub return_immediately: Option<bool>,
    /// `jti`s of SETs received and processed.
    #[serde(default)]
    pub ack: Vec<String>,
    /// `jti`s of SETs the receiver could not process, with why.
    #[serde(default)]
    pub set_errs: BTreeMap<String, SetErr>,
}

/// An error the receiver reports for one SET (RFC 8936 §2.4.4).
#[derive(Debug, Deserialize)]
pub struct SetErr {
    /// The error code (RFC 8935 §2.3).
    pub err: String,
    /// Why, for humans.
    #[serde(default)]
    pub description: Option<String>,
}

/// An RFC 8935 §2.3-style error answer (`err`, `description`).
fn error(status: StatusCode, err: &str, description: &str) -> HttpResponse {
    let mut res = HttpResponse::build(status);
    if status == StatusCode::UNAUTHORIZED {
        res.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"scimd-events\""));
    }
    res.json(json!({"err": err, "description": description}))
}

fn store_error(e: &StoreError) -> HttpResponse {
    match e {
        StoreError::NotFound => error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "unknown stream or wrong receiver token: send Authorization: Bearer <the stream's receiver token>",
        ),
        StoreError::Unavailable(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the database is unavailable; retry later",
        ),
        _ => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "the request failed on the server",
        ),
    }
}

fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
}

async fn authenticate(
    events: &Events,
    req: &HttpRequest,
    id: String,
) -> Result<Stream, HttpResponse> {
    let Some(token) = bearer(req) else {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "authentication_failed",
            "send Authorization: Bearer <the stream's receiver token>",
        ));
    };
    events
        .store()
        .queue_read(move |c| streams::authenticate_receiver(c, &id, &token))
        .await
        .map_err(|e| store_error(&e))
}

/// `GET {base}/{id}/jwks`: the stream's public keys.
pub async fn jwks(
    events: web::Data<Events>,
    req: HttpRequest,
    id: web::Path<String>,
) -> HttpResponse {
    let stream = match authenticate(&events, &req, id.into_inner()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    match events
        .store()
        .queue_read(move |c| keys::jwks(c, &stream.id))
        .await
    {
        Ok(set) => HttpResponse::Ok()
            .content_type("application/jwk-set+json")
            .json(set),
        Err(e) => store_error(&e),
    }
}

/// `POST {base}/{id}/poll`: RFC 8936 polling.
pub async fn poll(
    events: web::Data<Events>,
    req: HttpRequest,
    id: web::Path<String>,
    body: web::Bytes,
) -> HttpResponse {
    let stream = match authenticate(&events, &req, id.into_inner()).await {
        Ok(s) => s,
        Err(res) => return res,
    };
    let request: PollRequest = if body.iter().all(u8::is_ascii_whitespace) {
        PollRequest::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    "invalid_request",
                    &format!("the body is not an RFC 8936 poll request ({e}); send {{\"ack\": [...], \"setErrs\": {{...}}, \"maxEvents\": 10, \"returnImmediately\": true}}"),
                )
            }
        }
    };
    let max_events = match request.max_events {
        None => events.config().max_events.min(100),
        Some(n) if n >= 0 => usize::try_from(n)
            .unwrap_or(usize::MAX)
            .min(events.config().max_events),
        Some(_) => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request",
                "maxEvents must be 0 or more",
            )
        }
    };
    match answer(&events, stream, request, max_events).await {
        Ok(body) => HttpResponse::Ok().json(body),
        Err(e) => store_error(&e),
    }
}

async fn answer(
    events: &Events,
    stream: Stream,
    request: PollRequest,
    max_events: usize,
) -> Result<Value, StoreError> {
    let store = events.store();
    let mut positions: Vec<i64> = request
        .ack
        .iter()
        .filter_map(|jti| set::position_of(&stream.id, jti))
        .collect();
    let mut errors = Vec::new();
    for (jti, e) in &request.set_errs {
        if let Some(p) = set::position_of(&stream.id, jti) {
            positions.push(p);
            errors.push(format!(
                "SET {jti} reported in error by the receiver: {}: {}",
                e.err.chars().take(100).collect::<String>(),
                e.description
                    .as_deref()
                    .unwrap_or_default()
                    .chars()
                    .take(400)
                    .collect::<String>()
            ));
        }
    }
    let stream = if positions.is_empty() && errors.is_empty() {
        stream
    } else {
        let now = events.clock().now_text();
        // Taken before the write's transaction (it must not run inside one).
        let until = store.queue_read(scim_store::changes::horizon).await?;
        store
            .queue_write(move |c| {
                if let Some(last) = errors.last() {
                    streams::record_rejected(c, &stream.id, last, &now)?;
                }
                streams::acknowledge(c, &stream, until, &positions)?;
                streams::find_stream(c, &stream.id)
            })
            .await?
    };
    if max_events == 0 || stream.paused {
        return Ok(json!({"sets": {}, "moreAvailable": false}));
    }
    let deadline = tokio::time::Instant::now() + events.config().long_poll_wait;
    loop {
        // Registered before reading, so a change committed between the
        // read and the wait still wakes it.
        let signal = events.signal().notified();
        tokio::pin!(signal);
        signal.as_mut().enable();
        let (pending, key, issuer) = {
            let stream = stream.clone();
            let config = events.config().clone();
            store
                .queue_read(move |c| {
                    let (pending, _) = streams::pending_changes(c, &stream, max_events + 1)?;
                    let key = keys::signing_key(c, &stream.id)?;
                    let issuer = set::stream_issuer(c, &config, &stream)?;
                    Ok((pending, key, issuer))
                })
                .await?
        };
        let done = !pending.is_empty() || request.return_immediately.unwrap_or(false) || {
            let _waiting = events.waiting();
            tokio::time::timeout_at(deadline, signal).await.is_err()
        };
        if done {
            let more = pending.len() > max_events;
            let mut sets = serde_json::Map::new();
            for change in pending.iter().take(max_events) {
                let Some(claims) = set::claims(&stream, change, &issuer) else {
                    continue;
                };
                let token = set::sign(&claims, &key).map_err(|e| {
                    tracing::error!(error = %e, "signing a SET failed");
                    StoreError::Internal("signing a SET failed".into())
                })?;
                sets.insert(set::jti(&stream.id, change.position), Value::String(token));
            }
            return Ok(json!({"sets": sets, "moreAvailable": more}));
        }
    }
}
