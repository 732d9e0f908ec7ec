//! The SCIM 2.0 HTTP API of scimd (RFC 7644) on actix-web.
//!
//! [`ScimApi::configure`] mounts every endpoint under the configured base
//! path: discovery (`/ServiceProviderConfig`, `/Schemas`,
//! `/ResourceTypes`), `/Users` and `/Groups`. Every endpoint requires a bearer token;
//! every response, errors included, is `application/scim+json`.
//!
//! While User Synchronization is disabled (the admin side's switch, stored
//! in the database), every authenticated request gets 403: handlers reach
//! the store only through [`GatedStore`], discovery calls
//! [`ScimApi::require_sync`], and [`auth::require_bearer`] asks the gate
//! before sending any other error (a 404, 405, 415 or 400 decided before
//! a handler reached the store). A 405 carries `Allow` (RFC 9110
//! §15.5.6). The same per-request query reads the run-time
//! settings the API applies (page sizes, the deprovisioning policy), so an
//! administrator's change takes effect on the next request of every
//! replica.
//!
//! An authenticated credential over its request budget gets 429 with
//! `Retry-After` ([`rate_limit`]), before the gate is asked.

pub mod auth;
pub mod bulk;
mod cursor;
pub mod discovery;
pub mod error;
pub mod events;
pub mod groups;
pub mod health;
pub mod metrics;
pub mod rate_limit;
pub mod request;
pub mod search;
pub mod users;

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::schema::ResourceType;
use scim_store::changes::Actor;
use scim_store::lookup::LookupBy;
use scim_store::settings::ScimRuntime;
use scim_store::{Edit, EditBy};
use scim_store::{OrgId, Store};

pub use error::{ApiError, SCIM_CONTENT_TYPE};

/// Settings of the SCIM API.
#[derive(Debug, Clone)]
pub struct ScimConfig {
    /// Mount point, e.g. `/scim/v2` (no trailing slash).
    pub base_path: String,
    /// Absolute base URL for `meta.location` (no trailing slash); `None`
    /// derives it from each request's scheme and Host.
    pub public_url: Option<String>,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// How long a verified token is remembered (zero: always ask the
    /// database).
    pub token_cache_ttl: Duration,
    /// The process's bounded Argon2id gate, shared with the admin side: a
    /// User's `password` is hashed there (RFC 7643 §4.1.1: write-only, and
    /// only a hash is kept).
    pub password_hasher: scim_store::PasswordHasher,
    /// The per-credential request budget (`None`: unlimited); one limiter
    /// per process, shared by every worker's app.
    pub rate_limiter: Option<rate_limit::RateLimiter>,
    /// The clock that token expiry and the token cache's lifetime are
    /// decided by (shared with the admin side).
    pub clock: scim_core::Clock,
    /// Whether the client address recorded in the change log is the last
    /// `X-Forwarded-For` entry (scimd behind a proxy:
    /// `admin.trust_forwarded_for`) rather than the TCP peer.
    pub trust_forwarded_for: bool,
    /// The limits of `/Bulk`.
    pub bulk: BulkLimits,
    /// The process's record of each credential's traffic (one per
    /// process, shared by every worker's app).
    pub health: health::Health,
}

/// The limits of `/Bulk` (RFC 7644 §3.7.4), advertised in
/// `/ServiceProviderConfig`: a request over either gets 413.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BulkLimits {
    /// The most operations one request may carry (`maxOperations`).
    pub max_operations: usize,
    /// The largest request body, in bytes (`maxPayloadSize`).
    pub max_payload_bytes: usize,
}

impl Default for BulkLimits {
    fn default() -> Self {
        BulkLimits {
            max_operations: 1000,
            max_payload_bytes: 1024 * 1024,
        }
    }
}

impl Default for ScimConfig {
    fn default() -> Self {
        ScimConfig {
            base_path: "/scim/v2".into(),
            public_url: None,
            max_body_bytes: 1024 * 1024,
            token_cache_ttl: Duration::from_secs(5),
            password_hasher: scim_store::PasswordHasher::default(),
            rate_limiter: None,
            clock: scim_core::Clock::system(),
            trust_forwarded_for: false,
            bulk: BulkLimits::default(),
            health: health::Health::new(),
        }
    }
}

/// The SCIM API: the store, its settings and the token cache. Cheap to
/// clone.
#[derive(Debug, Clone)]
pub struct ScimApi {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: ScimConfig,
    tokens: auth::TokenCache,
    bulk_observer: BulkObserver,
}

/// What a `/Bulk` request calls before each operation it runs, with the
/// operation's index in the request: set by tests
/// ([`ScimApi::observe_bulk`]) to act between two operations (e.g. turn
/// User Synchronization off) without waiting on a clock.
#[derive(Default)]
struct BulkObserver(std::sync::OnceLock<Arc<dyn Fn(usize) + Send + Sync>>);

impl std::fmt::Debug for BulkObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "BulkObserver(set)"
        } else {
            "BulkObserver(none)"
        })
    }
}

impl ScimApi {
    /// Builds the API over `store`.
    pub fn new(store: Store, config: ScimConfig) -> Self {
        ScimApi {
            inner: Arc::new(Inner {
                store,
                config,
                tokens: auth::TokenCache::default(),
                bulk_observer: BulkObserver::default(),
            }),
        }
    }

    /// For tests: `f` is called, on the request's thread, before each
    /// operation a `/Bulk` request runs, with the operation's index in the
    /// request, so that a test can change the world between two
    /// operations at a known point. Set once; false if one was set before.
    pub fn observe_bulk(&self, f: impl Fn(usize) + Send + Sync + 'static) -> bool {
        self.inner.bulk_observer.0.set(Arc::new(f)).is_ok()
    }

    pub(crate) fn bulk_observer(&self) -> Option<&(dyn Fn(usize) + Send + Sync)> {
        self.inner.bulk_observer.0.get().map(|f| &**f)
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The User resource type in force, with the custom schema extensions
    /// (`scim_store::scim::extensions`: cached, read again at most a second
    /// after it was last read).
    pub async fn user_type(&self) -> Result<&'static ResourceType, ApiError> {
        Ok(self.inner.store.user_schemas().await?.user_type)
    }

    /// The settings.
    pub fn config(&self) -> &ScimConfig {
        &self.inner.config
    }

    /// The verified-token cache.
    pub fn tokens(&self) -> &auth::TokenCache {
        &self.inner.tokens
    }

    /// The organization `org`'s data behind its User Synchronization
    /// gate: what every SCIM handler reads and writes through, so that no
    /// handler can touch the data while synchronization is disabled, nor
    /// another organization's data.
    pub fn gated_store(&self, org: OrgId) -> GatedStore {
        GatedStore {
            store: self.inner.store.clone(),
            org,
        }
    }

    /// The gate alone, for endpoints that read no table (discovery): 403
    /// while the organization's User Synchronization is disabled, else
    /// its run-time settings. It costs one pool checkout and one cached
    /// query.
    pub async fn require_sync(&self, org: OrgId) -> Result<ScimRuntime, ApiError> {
        Ok(self
            .gated_store(org)
            .read_async(|_, settings| Ok(*settings))
            .await?)
    }

    /// The absolute URL of the request's API root for `meta.location`:
    /// the configured public URL, or the request's scheme and host, then
    /// the base path the request came in by (`/scim/v2`, or
    /// `/scim/v2/o/{slug}` for an organization named in the URL).
    pub fn location_base(&self, req: &HttpRequest) -> String {
        let base = &self.inner.config.base_path;
        let path = match req.match_info().get(ORG_SEGMENT) {
            Some(slug) => format!("{base}/o/{slug}"),
            None => base.clone(),
        };
        match &self.inner.config.public_url {
            Some(public) => format!("{public}{path}"),
            None => {
                let info = req.connection_info();
                format!("{}://{}{path}", info.scheme(), info.host())
            }
        }
    }

    /// Mounts the SCIM API (the one route table of this crate) twice: at
    /// `{base}/o/{slug}` for the organization `slug`, and at `{base}` for
    /// the organization whose host name the request's `Host` is, else the
    /// default organization (docs/ORGANIZATIONS.md). The first is
    /// registered first, so that `{base}` does not take its paths.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let base = self.inner.config.base_path.clone();
        cfg.app_data(web::Data::new(self.clone()))
            .service(routes(web::scope(&format!("{base}/o/{{{ORG_SEGMENT}}}"))))
            .service(routes(web::scope(&base)));
    }
}

/// The name of the URL segment that names an organization
/// (`{base}/o/{org}`).
pub const ORG_SEGMENT: &str = "org";

/// The route table of the SCIM API, on `scope`.
fn routes(scope: actix_web::Scope) -> impl actix_web::dev::HttpServiceFactory + 'static {
    scope
        .wrap(actix_web::middleware::from_fn(auth::require_bearer))
        // Outside the bearer check: refused requests count too.
        .wrap(actix_web::middleware::from_fn(metrics::observe))
        .service(
            resource(["/ServiceProviderConfig", "/ServiceProviderConfig/"], "GET")
                .route(web::get().to(discovery::service_provider_config)),
        )
        .service(
            resource(["/Schemas", "/Schemas/"], "GET").route(web::get().to(discovery::schemas)),
        )
        .service(
            resource(["/Schemas/{id}", "/Schemas/{id}/"], "GET")
                .route(web::get().to(discovery::schema)),
        )
        .service(
            resource(["/ResourceTypes", "/ResourceTypes/"], "GET")
                .route(web::get().to(discovery::resource_types)),
        )
        .service(
            resource(["/ResourceTypes/{id}", "/ResourceTypes/{id}/"], "GET")
                .route(web::get().to(discovery::resource_type)),
        )
        .service(
            resource(["/.search", "/.search/"], "POST").route(web::post().to(search::search_all)),
        )
        .service(
            resource(["/Users", "/Users/"], "GET, POST")
                .route(web::get().to(users::list))
                .route(web::post().to(users::create)),
        )
        .service(
            resource(["/Users/.search", "/Users/.search/"], "POST")
                .route(web::post().to(users::search)),
        )
        .service(
            resource(["/Users/{id}", "/Users/{id}/"], "GET, PUT, PATCH, DELETE")
                .route(web::get().to(users::get))
                .route(web::put().to(users::replace))
                .route(web::patch().to(users::patch))
                .route(web::delete().to(users::delete)),
        )
        .service(resource(["/Bulk", "/Bulk/"], "POST").route(web::post().to(bulk::bulk)))
        .service(
            resource(["/Groups", "/Groups/"], "GET, POST")
                .route(web::get().to(groups::list))
                .route(web::post().to(groups::create)),
        )
        .service(
            resource(["/Groups/.search", "/Groups/.search/"], "POST")
                .route(web::post().to(groups::search)),
        )
        .service(
            resource(["/Groups/{id}", "/Groups/{id}/"], "GET, PUT, PATCH, DELETE")
                .route(web::get().to(groups::get))
                .route(web::put().to(groups::replace))
                .route(web::patch().to(groups::patch))
                .route(web::delete().to(groups::delete)),
        )
        .default_service(web::to(not_found))
}

/// [`Store`] behind the User Synchronization gate.
///
/// [`GatedStore::read`] and [`GatedStore::write`] check the one-row
/// `sync_state` table on the very connection (and, for writes, inside the
/// very transaction) the handler's closure then uses: the gate costs no
/// second pool checkout and no second blocking hop, and because it asks the
/// database on every request, enabling or disabling takes effect on the
/// next request of every replica. While disabled they fail with
/// `scim_store::sync::sync_disabled_error`, which [`ApiError`] answers with 403.
///
/// The same query (`scim_store::sync::scim_gate`) reads the run-time
/// settings; [`GatedStore::read_with`] and [`GatedStore::write_with`] hand
/// them to the closure, so applying them costs no round trip either.
#[derive(Debug, Clone)]
pub struct GatedStore {
    store: Store,
    /// The organization whose gate is read and whose data is reached.
    org: OrgId,
}

impl GatedStore {
    /// [`Store::read`], after checking that synchronization is enabled.
    pub fn read<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        F: FnOnce(&mut scim_store::DbConnection) -> Result<T, scim_store::StoreError>,
    {
        self.read_with(|conn, _| f(conn))
    }

    /// [`GatedStore::read`], handing the closure the run-time settings read
    /// by the gate.
    pub fn read_with<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        F: FnOnce(&mut scim_store::DbConnection, &ScimRuntime) -> Result<T, scim_store::StoreError>,
    {
        self.store.read(gated(self.org, f))
    }

    /// Creates a user behind the gate (`Store::queue_insert_user`: on
    /// PostgreSQL batched with the other user writes that are waiting),
    /// recording `user.created` by `actor`.
    pub async fn insert_user_async(
        &self,
        attrs: serde_json::Map<String, serde_json::Value>,
        password_hash: Option<String>,
        actor: Actor,
    ) -> Result<scim_store::UserRecord, scim_store::StoreError> {
        self.store
            .queue_insert_user(attrs, password_hash, actor.in_org(self.org))
            .await
    }

    /// Edits the user `id` behind the gate (`Store::queue_user_edit`): `f`
    /// gets the user as stored (with its groups when `with_groups`), read
    /// where no other write can change it before `f`'s result is stored.
    /// A write records its change by `by` (the actor, and `user.replaced`
    /// or `user.patched`).
    pub async fn edit_user_async<T, F>(
        &self,
        id: String,
        with_groups: bool,
        by: EditBy,
        f: F,
    ) -> Result<T, scim_store::StoreError>
    where
        T: Send + 'static,
        F: Fn(scim_store::Found) -> Result<Edit<T>, scim_store::StoreError> + Send + 'static,
    {
        let mut by = by;
        by.actor.org = self.org;
        self.store.queue_user_edit(id, with_groups, by, f).await
    }

    /// `GET /Users/{id}`'s read: the gate, the user and (when
    /// `with_groups`) its groups in one statement
    /// (`scim_store::lookup::find_user_gated`), queued for the store's
    /// reader threads (`Store::queue_user_lookup`, which answer the
    /// lookups queued together with one statement) rather than the
    /// blocking pool.
    pub async fn find_user_async(
        &self,
        id: &str,
        with_groups: bool,
    ) -> Result<Option<(scim_store::UserRecord, Vec<scim_store::GroupRef>)>, scim_store::StoreError>
    {
        self.store
            .queue_user_lookup(self.org, LookupBy::Id, id, with_groups)
            .await
            .map(|gated| gated.found)
    }

    /// The gate and the user named `user_name` (case-insensitively) in one
    /// statement (`scim_store::lookup::find_user_by_name_gated`): the
    /// `userName eq` filter an identity provider matches users with;
    /// queued for the store's reader threads.
    pub async fn find_user_by_name_async(
        &self,
        user_name: &str,
        with_groups: bool,
    ) -> Result<scim_store::lookup::GatedUser, scim_store::StoreError> {
        self.store
            .queue_user_lookup(self.org, LookupBy::UserName, user_name, with_groups)
            .await
    }

    /// [`GatedStore::read_with`] from a request handler, queued for the
    /// store's reader threads.
    pub async fn read_async<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut scim_store::DbConnection, &ScimRuntime) -> Result<T, scim_store::StoreError>
            + Send
            + 'static,
    {
        self.store.queue_read(gated(self.org, f)).await
    }

    /// [`Store::write`], after checking (in the same transaction) that
    /// synchronization is enabled.
    pub fn write<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        F: FnOnce(&mut scim_store::DbConnection) -> Result<T, scim_store::StoreError>,
    {
        self.write_with(|conn, _| f(conn))
    }

    /// [`GatedStore::write`], handing the closure the run-time settings
    /// read by the gate (in the same transaction).
    pub fn write_with<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        F: FnOnce(&mut scim_store::DbConnection, &ScimRuntime) -> Result<T, scim_store::StoreError>,
    {
        self.store.write(gated(self.org, f))
    }

    /// [`GatedStore::write_with`] from a request handler, without holding
    /// a thread while the write waits for its turn (`Store::queue_write`:
    /// SQLite's writer thread, or on PostgreSQL the store's reader
    /// threads).
    pub async fn write_async<T, F>(&self, f: F) -> Result<T, scim_store::StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut scim_store::DbConnection, &ScimRuntime) -> Result<T, scim_store::StoreError>
            + Send
            + 'static,
    {
        self.store.queue_write(gated(self.org, f)).await
    }
}

/// `f` behind the gate: fails while synchronization is disabled, else
/// hands `f` the run-time settings read with it, on the same connection.
fn gated<T, F>(
    org: OrgId,
    f: F,
) -> impl FnOnce(&mut scim_store::DbConnection) -> Result<T, scim_store::StoreError>
where
    F: FnOnce(&mut scim_store::DbConnection, &ScimRuntime) -> Result<T, scim_store::StoreError>,
{
    move |conn| {
        let settings = scim_store::sync::scim_gate(conn, org)?;
        f(conn, &settings)
    }
}

/// A SCIM 404 for an unknown route (also usable as the app's default
/// service, so that every response is a SCIM document).
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NotFound(format!(
        "no endpoint at {}; SCIM resources are under the configured base path (e.g. /scim/v2/Users)",
        req.path()
    )))
}

/// A resource of the route table at `paths`, answering a method it does
/// not route with 405 and `Allow: allow` (RFC 9110 §15.5.6): `allow` must
/// list the methods of its routes.
fn resource(paths: [&str; 2], allow: &'static str) -> actix_web::Resource {
    web::resource(paths).default_service(web::to(move |req: HttpRequest| {
        method_not_allowed(req, allow)
    }))
}

/// A SCIM 405 for a method an endpoint does not support, listing the
/// ones it does (`allow`, for the `Allow` header).
pub async fn method_not_allowed(
    req: HttpRequest,
    allow: &'static str,
) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed {
        detail: format!(
            "{} is not supported on {}; use {allow}",
            req.method(),
            req.path()
        ),
        allow,
    })
}

/// A response with the SCIM media type and an already-serialised body.
pub(crate) fn scim_bytes(status: actix_web::http::StatusCode, body: Vec<u8>) -> HttpResponse {
    HttpResponse::build(status)
        .content_type(SCIM_CONTENT_TYPE)
        .body(body)
}

/// A single-resource response: the body, its `ETag`, and `Location` when
/// the resource was just created.
pub(crate) fn resource_response(
    status: actix_web::http::StatusCode,
    body: Vec<u8>,
    version: i64,
    location: Option<&str>,
) -> HttpResponse {
    let mut res = scim_bytes(status, body);
    if let Ok(v) = actix_web::http::header::HeaderValue::from_str(&request::etag(version)) {
        res.headers_mut().insert(actix_web::http::header::ETAG, v);
    }
    if let Some(Ok(v)) = location.map(actix_web::http::header::HeaderValue::from_str) {
        res.headers_mut()
            .insert(actix_web::http::header::LOCATION, v);
    }
    res
}

/// What a write takes from its request besides the resource id and the
/// body: who sends it, the base URL of `meta.location`, the query
/// parameters (the response's projection) and the client's `If-Match`.
/// A single request reads it from its HTTP request ([`Call::of`]); each
/// `/Bulk` operation gets the bulk request's actor and base URL, no query
/// parameters, and its own `version` as `If-Match` (RFC 7644 §3.7), and
/// then runs the very function the single request runs.
#[derive(Debug)]
pub(crate) struct Call {
    /// Who makes the change, with the request's id and address.
    pub actor: Actor,
    /// The absolute URL of the API root ([`ScimApi::location_base`]).
    pub base: String,
    /// The query parameters (`attributes`, `excludedAttributes`).
    pub query: request::QueryParams,
    /// The client's `If-Match` (RFC 7644 §3.14).
    pub if_match: Option<request::Precondition>,
}

impl Call {
    /// The call a single HTTP request makes.
    pub(crate) fn of(api: &ScimApi, req: &HttpRequest) -> Result<Call, ApiError> {
        Ok(Call {
            query: request::QueryParams::from_request(req)?,
            if_match: request::Precondition::from_header(req, actix_web::http::header::IF_MATCH),
            actor: auth::request_actor(api, req)?,
            base: api.location_base(req),
        })
    }
}

/// How [`delete_resource`] removes a resource: in the write transaction,
/// with the run-time settings, the id, the version the client's `If-Match`
/// named (if any), and the actor whose change it records.
pub(crate) type DeleteFn = fn(
    &mut scim_store::DbConnection,
    &ScimRuntime,
    &str,
    Option<i64>,
    &Actor,
) -> Result<(), scim_store::StoreError>;

/// `DELETE` of a resource (204), honouring `If-Match` (RFC 7644 §3.14):
/// `version` reads the current version inside the write transaction
/// (`None` when the resource does not exist), `delete` removes it (as the
/// run-time settings say: a User may be soft-deleted) and records the
/// change, by the call's actor, as its last write.
pub(crate) async fn delete_resource(
    api: &ScimApi,
    call: Call,
    kind: &'static str,
    id: String,
    version: fn(
        &mut scim_store::DbConnection,
        OrgId,
        &str,
    ) -> Result<Option<i64>, scim_store::StoreError>,
    delete: DeleteFn,
) -> Result<HttpResponse, ApiError> {
    let Call {
        actor, if_match, ..
    } = call;
    let store = api.gated_store(actor.org);
    let target = id.clone();
    store
        .write_async(move |conn, settings| match &if_match {
            None => delete(conn, settings, &target, None, &actor),
            Some(p) => {
                let current = version(conn, settings.org, &target)?
                    .ok_or(scim_store::StoreError::NotFound)?;
                if !p.matches(current) {
                    return Err(scim_store::StoreError::PreconditionFailed);
                }
                delete(conn, settings, &target, Some(current), &actor)
            }
        })
        .await
        .map_err(store_err(kind, &id))?;
    Ok(HttpResponse::NoContent().finish())
}

/// The `{id}` segment of a URL path (`/Users/{id}`, `/Schemas/{id}`…),
/// by name: under `{base}/o/{org}` the path has the organization's
/// segment too.
#[derive(Debug, serde::Deserialize)]
pub struct IdPath {
    /// The segment.
    pub id: String,
}

/// The id of the resource `kind` addressed by the URL path
/// (`/Users/{id}`, `/Groups/{id}`).
pub(crate) fn path_id(kind: &str, path: web::Path<IdPath>) -> Result<String, ApiError> {
    valid_id(kind, path.into_inner().id)
}

/// `id` as the id of a resource `kind`. Ids are UUIDs the service
/// provider assigns (RFC 7643 §3.1), so one holding U+0000 names no
/// resource: it is answered 404 as any unknown id, and never reaches SQL
/// (PostgreSQL `text` cannot hold it).
pub(crate) fn valid_id(kind: &str, id: String) -> Result<String, ApiError> {
    if id.contains('\0') {
        return Err(ApiError::resource_not_found(kind, &id));
    }
    Ok(id)
}

/// Maps a store error about resource `kind` `id`, naming it on 404.
pub(crate) fn store_err<'a>(
    kind: &'a str,
    id: &'a str,
) -> impl Fn(scim_store::StoreError) -> ApiError + 'a {
    move |e| match e {
        scim_store::StoreError::NotFound => ApiError::resource_not_found(kind, id),
        other => other.into(),
    }
}

/// How many times a read-modify-write is retried when another writer
/// changed the resource between our read and our conditional write
/// (PostgreSQL; the SQLite writer is serialised).
const WRITE_RETRIES: usize = 5;

/// Runs a read-modify-write, retrying on a version race: `attempt` gets
/// the attempt's number (0 first). With an explicit `If-Match` from the
/// client, a race is the client's 412 instead; without one, running out of
/// retries is a 503 (retry later), never a 412.
pub(crate) async fn retry_on_race<T, Fut>(
    mut attempt: impl FnMut(usize) -> Fut,
    client_precondition: bool,
) -> Result<T, scim_store::StoreError>
where
    Fut: std::future::Future<Output = Result<T, scim_store::StoreError>>,
{
    let mut tries = 0;
    loop {
        match attempt(tries).await {
            Err(scim_store::StoreError::PreconditionFailed) if !client_precondition => {
                tries += 1;
                if tries > WRITE_RETRIES {
                    // The client asked for no precondition, so a 412 would
                    // be wrong: tell it to retry instead (503).
                    return Err(scim_store::StoreError::Unavailable(
                        "the resource is being modified concurrently".into(),
                    ));
                }
            }
            other => return other,
        }
    }
}

/// A JSON response with the SCIM media type.
pub(crate) fn scim_json(
    status: actix_web::http::StatusCode,
    body: &impl serde::Serialize,
) -> HttpResponse {
    match serde_json::to_vec(body) {
        Ok(bytes) => HttpResponse::build(status)
            .content_type(SCIM_CONTENT_TYPE)
            .body(bytes),
        Err(_) => actix_web::ResponseError::error_response(&ApiError::Internal),
    }
}

/// The organization of an authenticated request: its credential's, which
/// [`auth::require_bearer`] checked to be the one the request addresses.
pub(crate) fn request_org(req: &HttpRequest) -> Result<OrgId, ApiError> {
    use actix_web::HttpMessage;
    req.extensions()
        .get::<auth::Principal>()
        .map(|p| p.org)
        .ok_or(ApiError::Internal)
}
