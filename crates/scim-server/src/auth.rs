//! Bearer-token authentication of the SCIM API (RFC 6750 §2.1).
//!
//! Two kinds of bearer token open it, side by side: the long-lived secret
//! tokens an administrator mints (`scim_tokens`), and the access tokens of
//! the OAuth 2.0 authorization server (`oauth_tokens`, issued to an
//! identity provider that connected with Authorize).
//!
//! The presented secret is hashed with SHA-256 and looked up by hash; the
//! store compares hashes in constant time. A verified token is remembered
//! in memory for `token_cache_ttl` so that the hot path costs no database
//! round trip; `last_used_at` (of the secret token, or of the OAuth grant)
//! is written at most once a minute.
//!
//! Expiry is checked on every request, cached or not, so an expired
//! access token gets 401 at once. Revocation (of a secret token, an OAuth
//! grant or an access token, or deletion of an OAuth client) is seen when
//! the cache entry is next verified: within `token_cache_ttl`
//! (`auth.token_cache_ttl_secs`, 5 s by default) on every replica.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::RwLock;
use std::time::{Duration, Instant};

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, Error, HttpMessage};

use scim_store::changes::{Actor, ActorKind, RequestId};
use scim_store::organizations::Organization;
use scim_store::OrgId;

use crate::error::ApiError;
use crate::ScimApi;

/// How often `last_used_at` is written for a busy token.
const TOUCH_EVERY: Duration = Duration::from_secs(60);
/// Entries kept at most; the cache is cleared when it grows past this.
const MAX_ENTRIES: usize = 10_000;

/// The identity of an authenticated SCIM client, put into the request's
/// extensions for handlers, which record it as the actor of the changes
/// they make ([`Principal::actor`]).
#[derive(Debug, Clone)]
pub struct Principal {
    /// The secret token's id, or the OAuth grant's id.
    pub token_id: String,
    /// How the client authenticated.
    pub kind: TokenKind,
    /// The secret token's name, or the OAuth client's name.
    pub name: String,
    /// The OAuth client's id (`client_id`); `None` for a secret token.
    pub client_id: Option<String>,
    /// The organization the credential belongs to, which is the one the
    /// request addressed (else it got 401).
    pub org: OrgId,
}

impl Principal {
    /// Who the change log records: the secret token (kind `scim_token`,
    /// by its id and name) or the OAuth client (kind `oauth_client`, by
    /// its client id and name), not yet tied to a request.
    pub fn actor(&self) -> Actor {
        match self.kind {
            TokenKind::Secret => Actor::new(
                ActorKind::ScimToken,
                Some(self.token_id.clone()),
                Some(self.name.clone()),
            ),
            TokenKind::OAuth => Actor::new(
                ActorKind::OauthClient,
                self.client_id.clone(),
                Some(self.name.clone()),
            ),
        }
        .in_org(self.org)
    }
}

impl Principal {
    /// The credential provisioning health counts the request against: the
    /// change log's actor (the secret token, or the OAuth client).
    pub fn health_caller(&self) -> crate::health::Caller {
        let credential = match self.kind {
            TokenKind::Secret => scim_store::health::Credential::scim_token(&self.token_id),
            TokenKind::OAuth => scim_store::health::Credential::oauth_client(
                self.client_id.as_deref().unwrap_or(&self.token_id),
            ),
        };
        crate::health::Caller {
            credential,
            name: Some(self.name.clone()),
            refusal: None,
        }
    }
}

/// The kind of bearer token presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenKind {
    /// A secret token minted by an administrator.
    Secret,
    /// An OAuth 2.0 access token; `token_id` is its grant.
    OAuth,
}

#[derive(Debug, Clone)]
struct Entry {
    token_id: String,
    org: OrgId,
    kind: TokenKind,
    name: String,
    client_id: Option<String>,
    expires_at: Option<String>,
    verified: Instant,
    touched: Instant,
}

/// Verified tokens by the SHA-256 of their secret.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: RwLock<HashMap<String, Entry>>,
}

impl TokenCache {
    fn get(&self, hash: &str, ttl: Duration, now: &str, at: Instant) -> Option<Entry> {
        let entries = self.entries.read().ok()?;
        let entry = entries.get(hash)?;
        let fresh = at.saturating_duration_since(entry.verified) < ttl;
        let unexpired = entry.expires_at.as_deref().is_none_or(|e| e > now);
        (fresh && unexpired).then(|| entry.clone())
    }

    /// Stores a verified token, keeping when it was last recorded as used.
    fn put(&self, hash: String, mut entry: Entry) -> Entry {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
            if let Some(old) = entries.get(&hash) {
                entry.touched = old.touched;
            }
            entries.insert(hash, entry.clone());
        }
        entry
    }

    fn mark_touched(&self, hash: &str, at: Instant) {
        if let Ok(mut entries) = self.entries.write() {
            if let Some(e) = entries.get_mut(hash) {
                e.touched = at;
            }
        }
    }

    /// Forgets every cached token (e.g. after a revocation in-process).
    pub fn clear(&self) {
        if let Ok(mut entries) = self.entries.write() {
            entries.clear();
        }
    }
}

/// Extracts the bearer secret from an `Authorization` header value.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, rest) = value.trim().split_once(' ')?;
    let secret = rest.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !secret.is_empty()).then_some(secret)
}

/// Middleware (for `actix_web::middleware::from_fn`) requiring a valid
/// bearer token on every request it wraps, applying the credential's rate
/// limit, and putting the User Synchronization gate before every other
/// answer.
///
/// The order of the answers: 401 (no valid credential), then 429 (the
/// credential is over its budget, `crate::rate_limit`; no database work),
/// then 403 (synchronization disabled), then whatever the handler decides.
///
/// The gate first: while synchronization is disabled, an authenticated
/// request gets 403 whatever else is wrong with it (an unknown path, a
/// method not allowed, a body that is not JSON, a bad filter). Every
/// handler already reaches the data only through the gate, which checks
/// the state in the very statement (and transaction) that reads or writes,
/// so a request that succeeds was let through by it; only an error answer
/// can have been decided before the gate was asked. So an error answer
/// (other than 401 and 403) is checked against the gate before it is
/// sent: one cached statement (`scim_store::sync::scim_gate`), paid only
/// by requests that fail anyway, and none by those that succeed.
pub async fn require_bearer(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let api = req
        .app_data::<web::Data<ScimApi>>()
        .cloned()
        .ok_or(ApiError::Internal)?;
    let header_value = req
        .headers()
        .get(header::AUTHORIZATION)
        .map(|v| v.to_str().unwrap_or(""));
    let Some(header_value) = header_value else {
        return Err(ApiError::Unauthorized {
            detail: "authentication required: send Authorization: Bearer <token>".into(),
            token_presented: false,
        }
        .into());
    };
    let Some(secret) = bearer(header_value) else {
        return Err(ApiError::Unauthorized {
            detail:
                "the Authorization header must use the Bearer scheme: Authorization: Bearer <token>"
                    .into(),
            token_presented: false,
        }
        .into());
    };
    let principal = match authenticate(&api, secret).await {
        Ok(principal) => principal,
        Err(err) => {
            if matches!(err, ApiError::Unauthorized { .. }) {
                crate::health::identify_refused(&api, &req, secret).await;
            }
            return Err(err.into());
        }
    };
    // The organization the request addresses: a credential opens only
    // its own organization's API. Another organization's URL, or one that
    // names no organization, answers as an invalid token does, so that
    // the answer tells nothing about which organizations exist.
    let addressed = addressed_org(&api, &req).await?;
    if addressed.as_ref().map(|o| o.id) != Some(principal.org) {
        crate::health::identify_refused(&api, &req, secret).await;
        return Err(ApiError::Unauthorized {
            detail: "the bearer token is invalid, expired or revoked".into(),
            token_presented: true,
        }
        .into());
    }
    crate::metrics::CredentialSlot::fill(
        &req,
        Some(&principal.token_id),
        principal.health_caller(),
    );
    if let Some(org) = addressed.filter(|o| o.suspended()) {
        return Err(ApiError::Forbidden(format!(
            "organization \"{}\" is suspended: its SCIM API refuses every request until an \
             instance administrator resumes it",
            org.slug
        ))
        .into());
    }
    // After authentication (a rejected credential gets 401 and spends
    // nothing) and before the gate: a throttled request costs no database
    // work.
    if let Some(limiter) = &api.config().rate_limiter {
        limiter
            .check(&principal.token_id)
            .map_err(|retry_after_secs| ApiError::TooManyRequests { retry_after_secs })?;
    }
    let org = principal.org;
    req.extensions_mut().insert(principal);
    let res = next.call(req).await;
    let status = match &res {
        Ok(res) => res.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    let decided_before_gate = (status.is_client_error() || status.is_server_error())
        && status != StatusCode::UNAUTHORIZED
        && status != StatusCode::FORBIDDEN;
    if decided_before_gate {
        // Only the gate's own answer replaces the error; if the gate
        // cannot be read, the original error stands.
        if let Err(gate @ ApiError::Forbidden(_)) = api.require_sync(org).await {
            return Err(gate.into());
        }
    }
    res
}

/// The organization a request addresses: the one named in its URL
/// (`{base}/o/{slug}`), else the one whose host name its `Host` is, else
/// the default organization; `None` when the URL names an organization
/// that does not exist. From the store's in-memory list
/// (`scim_store::engine::organizations`): no database round trip while it
/// is fresh.
async fn addressed_org(
    api: &ScimApi,
    req: &ServiceRequest,
) -> Result<Option<Arc<Organization>>, ApiError> {
    let orgs = api.store().organizations().await?;
    if let Some(slug) = req.match_info().get(crate::ORG_SEGMENT) {
        return Ok(orgs.by_slug(slug).cloned());
    }
    let host = req.connection_info().host().to_owned();
    Ok(orgs
        .by_host(&host)
        .or_else(|| orgs.by_slug(scim_store::organizations::DEFAULT_SLUG))
        .cloned())
}

async fn authenticate(api: &ScimApi, secret: &str) -> Result<Principal, ApiError> {
    let hash = scim_store::hash_secret(secret);
    let clock = &api.config().clock;
    let (now, at) = (clock.now_text(), clock.instant());
    let ttl = api.config().token_cache_ttl;
    let cached = if ttl.is_zero() {
        None
    } else {
        api.tokens().get(&hash, ttl, &now, at)
    };
    let entry = match cached {
        Some(entry) => entry,
        None => {
            let store = api.store().clone();
            let secret = secret.to_string();
            let now2 = now.clone();
            let info = web::block(move || {
                store.read(|conn| {
                    if let Some(t) = scim_store::authenticate_token(conn, &secret, &now2)? {
                        return Ok(Some((
                            t.id,
                            t.expires_at,
                            TokenKind::Secret,
                            t.name,
                            None,
                            OrgId(t.org_id),
                        )));
                    }
                    if !secret.starts_with(scim_store::oauth::ACCESS_TOKEN_PREFIX) {
                        return Ok(None);
                    }
                    let t = scim_store::oauth::authenticate_access_token(conn, &secret, &now2)?;
                    Ok(t.map(|t| {
                        (
                            t.grant_id,
                            Some(t.expires_at),
                            TokenKind::OAuth,
                            t.client_name,
                            Some(t.client_id),
                            OrgId(t.org_id),
                        )
                    }))
                })
            })
            .await??;
            let Some((token_id, expires_at, kind, name, client_id, org)) = info else {
                return Err(ApiError::Unauthorized {
                    detail: "the bearer token is invalid, expired or revoked".into(),
                    token_presented: true,
                });
            };
            let touched_long_ago = at.checked_sub(TOUCH_EVERY).unwrap_or(at);
            let entry = Entry {
                token_id,
                org,
                kind,
                name,
                client_id,
                expires_at,
                verified: at,
                touched: touched_long_ago,
            };
            api.tokens().put(hash.clone(), entry)
        }
    };
    if at.saturating_duration_since(entry.touched) >= TOUCH_EVERY {
        api.tokens().mark_touched(&hash, at);
        let store = api.store().clone();
        let id = entry.token_id.clone();
        let kind = entry.kind;
        // Recording last use is best effort and must not delay the request.
        actix_web::rt::spawn(async move {
            let result = web::block(move || {
                store.write(|conn| match kind {
                    TokenKind::Secret => scim_store::touch_token(conn, &id, &now),
                    TokenKind::OAuth => scim_store::oauth::touch_grant(conn, &id, &now),
                })
            })
            .await;
            if !matches!(result, Ok(Ok(()))) {
                tracing::warn!("could not record token last use");
            }
        });
    }
    Ok(Principal {
        token_id: entry.token_id,
        kind: entry.kind,
        name: entry.name,
        client_id: entry.client_id,
        org: entry.org,
    })
}

/// The actor of the changes a request makes: its [`Principal`] (put in
/// the request's extensions by [`require_bearer`]), the request id (put
/// there by the request-logging middleware, scimd's `logging::request_log`,
/// which returns it in `X-Request-Id`), and the client's address: the TCP
/// peer, or, when `trust_forwarded_for` says scimd is behind a proxy, the
/// last `X-Forwarded-For` entry, as the admin side counts sign-ins.
pub fn request_actor(api: &ScimApi, req: &actix_web::HttpRequest) -> Result<Actor, ApiError> {
    let extensions = req.extensions();
    let principal = extensions.get::<Principal>().ok_or(ApiError::Internal)?;
    let request_id = extensions.get::<RequestId>().map(|r| r.0.clone());
    let forwarded = if api.config().trust_forwarded_for {
        last_forwarded_for(req)
    } else {
        None
    };
    let address = forwarded.or_else(|| req.peer_addr().map(|a| a.ip().to_string()));
    Ok(principal.actor().with_request(request_id, address))
}

/// The last entry of the request's `X-Forwarded-For` headers: the address
/// the proxy in front of scimd saw. A proxy appends the address it saw to
/// whatever the client sent, so earlier entries (and a `Forwarded` header,
/// which proxies pass on unchanged) may be forged by the client; the last
/// one is the proxy's own.
fn last_forwarded_for(req: &actix_web::HttpRequest) -> Option<String> {
    let last_header = req.headers().get_all(header::X_FORWARDED_FOR).last()?;
    let entry = last_header.to_str().ok()?.rsplit(',').next()?.trim();
    (!entry.is_empty()).then(|| entry.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(verified: Instant) -> Entry {
        Entry {
            token_id: "t".into(),
            org: OrgId::DEFAULT,
            kind: TokenKind::Secret,
            name: "n".into(),
            client_id: None,
            expires_at: None,
            verified,
            touched: verified,
        }
    }

    /// The bound on revocation: an entry verified `ttl` ago or earlier is
    /// not answered from the cache, so the next request asks the database
    /// (and a revoked token gets 401). A zero TTL skips the cache
    /// altogether (`authenticate`); the two-replica test in
    /// crates/scimd/tests/it/replicas.rs proves that end to end.
    #[test]
    fn a_cached_token_is_verified_again_after_the_ttl() {
        let ttl = Duration::from_secs(5);
        let now = "2026-01-01T00:00:00Z";
        let clock = scim_core::Clock::system();
        let cache = TokenCache::default();
        cache.put("fresh".into(), entry(clock.instant()));
        clock.advance(ttl);
        cache.put("recent".into(), entry(clock.instant()));
        let at = clock.instant();
        assert!(cache.get("fresh", ttl, now, at).is_none());
        assert!(cache.get("recent", ttl, now, at).is_some());
        assert!(cache.get("recent", Duration::ZERO, now, at).is_none());
    }

    #[test]
    fn bearer_parsing() {
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer   abc "), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearer"), None);
        assert_eq!(bearer("Bearer "), None);
    }
}
