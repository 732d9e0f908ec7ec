//! Typed configuration: `config/default.toml` (compiled in), then an
//! optional file given by `--config`, then `SCIMD__SECTION__KEY`
//! environment variables. Loaded once in `main` and passed down.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The defaults, compiled into the binary so that it starts from any
/// working directory.
pub const DEFAULT_TOML: &str = include_str!("../../../config/default.toml");

/// Every setting scimd reads.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// HTTP listener.
    pub server: ServerSettings,
    /// The SCIM API.
    pub scim: ScimSettings,
    /// The database.
    pub database: DatabaseSettings,
    /// Bearer-token authentication.
    pub auth: AuthSettings,
    /// The admin API.
    pub admin: AdminSettings,
    /// The OAuth 2.0 authorization server.
    pub oauth: OAuthSettings,
    /// Background maintenance.
    pub maintenance: MaintenanceSettings,
    /// SCIM events to the application.
    pub events: EventsSettings,
    /// Logging.
    pub log: LogSettings,
    /// `GET /metrics`.
    pub metrics: MetricsSettings,
}

/// `[metrics]`
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` (and record metrics at all).
    pub enabled: bool,
    /// A read-only bearer token for `GET /metrics` (at least
    /// [`MIN_METRICS_TOKEN_LEN`] characters); empty: only an admin API
    /// token or a console session opens it.
    pub token: String,
}

/// The shortest `metrics.token` accepted.
pub const MIN_METRICS_TOKEN_LEN: usize = 32;

// The token is a secret: never printed with the settings.
impl std::fmt::Debug for MetricsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsSettings")
            .field("enabled", &self.enabled)
            .field(
                "token",
                &if self.token.is_empty() {
                    ""
                } else {
                    "<redacted>"
                },
            )
            .finish()
    }
}

impl MetricsSettings {
    /// `metrics.token`, if set.
    pub fn token(&self) -> Option<String> {
        let token = self.token.trim();
        (!token.is_empty()).then(|| token.to_owned())
    }
}

/// `[server]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSettings {
    /// Address to listen on.
    pub bind: String,
    /// Worker threads (0 = one per core).
    pub workers: usize,
    /// Grace period for in-flight requests on shutdown.
    pub shutdown_timeout_secs: u64,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Seconds a request body may take to arrive after the request head
    /// (then 408 and the connection is closed).
    pub body_timeout_secs: u64,
    /// Open connections allowed per client (TCP peer) address; 0 =
    /// unlimited.
    pub max_connections_per_address: usize,
    /// Absolute base URL for `meta.location`; empty = from the request.
    pub public_url: String,
    /// Argon2id password hashes computed at once (0 = one per core).
    pub password_hash_concurrency: usize,
    /// Seconds a request waits for a hashing slot before 503.
    pub password_hash_queue_secs: u64,
    /// PEM certificate chain for built-in TLS; empty = plain HTTP.
    pub tls_cert: String,
    /// PEM private key of `tls_cert`.
    pub tls_key: String,
}

/// `[scim]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScimSettings {
    /// Mount point of the SCIM API.
    pub base_path: String,
    /// Requests per second each credential may send, sustained, in this
    /// process (0 = unlimited).
    pub rate_limit_per_second: u32,
    /// Requests a credential that has been idle may send at once.
    pub rate_limit_burst: u32,
    /// The most operations one `/Bulk` request may carry.
    pub bulk_max_operations: usize,
    /// The largest `/Bulk` request body, in bytes.
    pub bulk_max_payload_bytes: usize,
}

/// `[maintenance]`: background work of every replica.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaintenanceSettings {
    /// Seconds between two runs of the purge of soft-deleted users (0 = no
    /// background purge; `scimd purge` runs it once).
    pub purge_interval_secs: u64,
}

/// `[events]`: delivery of SCIM events (docs/EVENTS.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsSettings {
    /// The SETs' `iss`; empty = `server.public_url`.
    pub issuer: String,
    /// Mount point of the receiver endpoints (poll, JWKS).
    pub base_path: String,
    /// Whether this process pushes SETs.
    pub deliver: bool,
    /// Whether push receivers may be on non-public addresses.
    pub allow_private_receivers: bool,
    /// Seconds one push may take.
    pub push_timeout_secs: u64,
    /// The most of a receiver's answer that is read.
    pub max_response_bytes: usize,
    /// The first retry's delay, in milliseconds.
    pub retry_base_millis: u64,
    /// The longest delay between retries, in seconds.
    pub retry_max_secs: u64,
    /// Failures in a row after which a stream shows as failing.
    pub failing_after: u32,
    /// Seconds a replica holds a push stream.
    pub lease_secs: u64,
    /// Milliseconds between the deliverer's looks for work.
    pub poll_interval_millis: u64,
    /// The longest a long-poll waits, in seconds.
    pub long_poll_wait_secs: u64,
}

/// `[database]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://PATH` or `postgres://…`.
    pub url: String,
    /// Pool size.
    pub pool_size: u32,
    /// Seconds to wait for a connection.
    pub connect_timeout_secs: u64,
}

/// `[auth]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    /// Seconds a verified token is cached (0 = off).
    pub token_cache_ttl_secs: u64,
}

/// `[admin]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AdminSettings {
    /// Seconds a console session lasts.
    pub session_ttl_secs: u64,
    /// Failed sign-ins allowed per (account, address) in the window.
    pub login_max_failures: u32,
    /// The rate-limiting window, in seconds.
    pub login_window_secs: u64,
    /// Failed sign-ins allowed per address (all accounts) in the window;
    /// beyond it the address is refused for every account that has not
    /// signed in from it before (0: no cap).
    pub login_address_max_failures: u32,
    /// Failures at one account (all addresses) in the window beyond which
    /// the addresses that failed at it are slowed down.
    pub login_slow_after: u32,
    /// The longest wait imposed by that slow-down, in seconds.
    pub login_max_delay_secs: u64,
    /// Count sign-in attempts per X-Forwarded-For address, and record it
    /// as the client address in the change log (only behind a proxy that
    /// sets it).
    pub trust_forwarded_for: bool,
    /// Seconds the first-run setup code stays valid.
    pub setup_code_ttl_secs: u64,
    /// The attribute naming the administrator in a SAML assertion; empty:
    /// the NameID.
    pub saml_username_attribute: String,
    /// The group value a SAML assertion must carry; empty: none.
    pub saml_required_group: String,
    /// The attribute carrying the groups.
    pub saml_group_attribute: String,
    /// Clock skew allowed on SAML assertions, in seconds.
    pub saml_clock_skew_secs: u64,
    /// Accept SAML responses that answer no sign-in request of scimd's
    /// (IdP-initiated).
    pub saml_allow_idp_initiated: bool,
}

/// `[oauth]`: the authorization server an identity provider connects
/// to with Authorize.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    /// Seconds an access token lives.
    pub access_token_ttl_secs: u64,
    /// Seconds a refresh token lives (each rotation starts a new lifetime).
    pub refresh_token_ttl_secs: u64,
    /// Seconds an authorization code lives.
    pub code_ttl_secs: u64,
    /// Failed token requests allowed per (client, address) within
    /// `token_window_secs`; further requests from that address get 429.
    pub token_max_failures: u32,
    /// The token endpoint's rate-limiting window, in seconds.
    pub token_window_secs: u64,
    /// Like `admin.login_address_max_failures`, for token requests.
    pub token_address_max_failures: u32,
    /// Like `admin.login_slow_after`, for token requests.
    pub token_slow_after: u32,
    /// Like `admin.login_max_delay_secs`, for token requests.
    pub token_max_delay_secs: u64,
}

/// `[log]`
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    /// `human` or `json`.
    pub format: LogFormat,
    /// A level (`trace`, `debug`, `info`, `warn`, `error`, `off`), or
    /// comma-separated `target=level` directives with an optional bare
    /// level for everything else (a tracing `EnvFilter`, e.g.
    /// `scim_store=debug,info`).
    pub level: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Human,
    /// One JSON object per line.
    Json,
}

/// The values `log.format` accepts.
const LOG_FORMATS: [&str; 2] = ["human", "json"];

/// The bare levels `log.level` accepts (alone or after `target=`).
const LOG_LEVELS: [&str; 6] = ["trace", "debug", "info", "warn", "error", "off"];

/// Why `level` is not a `log.level` scimd accepts, if it is not.
///
/// `EnvFilter` itself takes any bare word as a target name enabled at every
/// level, so `"loud"` would parse and silence every log line: here a bare
/// word must be a level, and a `target=level` directive must end in one.
fn log_level_problem(level: &str) -> Option<String> {
    let allowed = "use one of trace, debug, info, warn, error, off, or directives such as \
                   \"scimd=debug,info\" (target=level, comma-separated)";
    if level.trim().is_empty() {
        return Some(format!("is empty; {allowed}"));
    }
    for directive in level.split(',').map(str::trim) {
        let lvl = match directive.rsplit_once('=') {
            Some((target, lvl)) if !target.trim().is_empty() => lvl.trim(),
            _ => directive,
        };
        if !LOG_LEVELS.contains(&lvl.to_ascii_lowercase().as_str()) {
            return Some(format!("{directive:?} is not a log level; {allowed}"));
        }
    }
    tracing_subscriber::EnvFilter::try_new(level)
        .err()
        .map(|e| format!("{level:?} is not a valid filter ({e}); {allowed}"))
}

/// Keys that moved to the run-time settings (`runtime_settings`, seeded
/// with 100 and 1000 by the migration).
const REMOVED_PAGE_SIZE_KEYS: [&str; 2] = ["scim.default_page_size", "scim.max_page_size"];

/// The largest `scim.rate_limit_per_second` and `scim.rate_limit_burst`:
/// far above what one process serves, so a larger value is a typo.
const MAX_RATE: u32 = 1_000_000;

/// The largest `scim.bulk_max_operations`: a `/Bulk` request runs its
/// operations one after another, so one far larger would hold a
/// connection for minutes.
const MAX_BULK_OPERATIONS: usize = 100_000;

/// The largest `scim.bulk_max_payload_bytes`: a `/Bulk` body is parsed
/// whole in memory.
const MAX_BULK_PAYLOAD_BYTES: usize = 64 * 1024 * 1024;

/// A configuration problem, naming the key at fault.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct SettingsError(pub String);

impl Settings {
    /// Loads the defaults, then `file` (if given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Settings, SettingsError> {
        Self::load_from(file, std::env::vars())
    }

    /// Like [`Settings::load`] with an explicit environment (for tests).
    pub fn load_from(
        file: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Settings, SettingsError> {
        use config::{Config, Environment, File, FileFormat};

        let mut builder =
            Config::builder().add_source(File::from_str(DEFAULT_TOML, FileFormat::Toml));
        if let Some(path) = file {
            if !path.is_file() {
                return Err(SettingsError(format!(
                    "--config: no such file: {}",
                    path.display()
                )));
            }
            builder = builder.add_source(File::from(path).format(FileFormat::Toml));
        }
        let env: config::Map<String, String> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("SCIMD__"))
            .collect();
        builder = builder.add_source(
            Environment::with_prefix("SCIMD")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(env)),
        );
        let config = builder.build().map_err(|e| SettingsError(e.to_string()))?;
        // The page sizes were configuration keys before they became run-time
        // settings: say where they went rather than "unknown field".
        // Checked before deserialising, so the message lists the allowed
        // values instead of serde's "unknown variant" wording.
        if let Ok(format) = config.get_string("log.format") {
            if !LOG_FORMATS.contains(&format.as_str()) {
                return Err(SettingsError(format!(
                    "log.format: {format:?} is not a log format; use \"human\" or \"json\""
                )));
            }
        }
        for key in REMOVED_PAGE_SIZE_KEYS {
            if config.get::<config::Value>(key).is_ok() {
                return Err(SettingsError(format!(
                    "{key}: no longer a configuration key; page sizes are run-time settings \
                     (admin console Settings, or PUT /admin/api/v1/settings), remove it"
                )));
            }
        }
        let settings: Settings = config
            .try_deserialize()
            .map_err(|e| SettingsError(e.to_string()))?;
        settings.validate()?;
        Ok(settings)
    }

    /// Checks values that deserialise but make no sense.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let bad = |key: &str, why: String| Err(SettingsError(format!("{key}: {why}")));
        if self.bind_addr().is_none() {
            return bad(
                "server.bind",
                format!(
                    "{:?} is not an address:port such as \"127.0.0.1:8080\"",
                    self.server.bind
                ),
            );
        }
        if self.server.max_body_bytes < 1024 {
            return bad("server.max_body_bytes", "must be at least 1024".into());
        }
        if !(1..=3600).contains(&self.server.body_timeout_secs) {
            return bad(
                "server.body_timeout_secs",
                "must be between 1 and 3600 (an hour)".into(),
            );
        }
        let public = self.server.public_url.trim();
        if !(public.is_empty() || public.starts_with("http://") || public.starts_with("https://")) {
            return bad(
                "server.public_url",
                format!("{public:?} must start with http:// or https:// (or be empty)"),
            );
        }
        match (self.server.tls_cert.trim(), self.server.tls_key.trim()) {
            ("", "") => {}
            ("", _) => {
                return bad(
                    "server.tls_cert",
                    "must be set when server.tls_key is".into(),
                )
            }
            (_, "") => {
                return bad(
                    "server.tls_key",
                    "must be set when server.tls_cert is".into(),
                )
            }
            _ => {}
        }
        let events = &self.events;
        if !(1..=300).contains(&events.push_timeout_secs) {
            return bad(
                "events.push_timeout_secs",
                "must be between 1 and 300".into(),
            );
        }
        if events.max_response_bytes < 256 {
            return bad("events.max_response_bytes", "must be at least 256".into());
        }
        if events.retry_base_millis == 0 || events.retry_max_secs == 0 {
            return bad(
                "events.retry_base_millis",
                "events.retry_base_millis and events.retry_max_secs must be above 0".into(),
            );
        }
        if events.lease_secs <= events.push_timeout_secs {
            return bad(
                "events.lease_secs",
                "must be longer than events.push_timeout_secs (a push must end within the lease)"
                    .into(),
            );
        }
        if events.poll_interval_millis == 0 || !(1..=300).contains(&events.long_poll_wait_secs) {
            return bad(
                "events.long_poll_wait_secs",
                "events.poll_interval_millis must be above 0, and events.long_poll_wait_secs between 1 and 300".into(),
            );
        }
        let eb = &events.base_path;
        if !eb.starts_with('/')
            || eb.len() < 2
            || eb.ends_with('/')
            || eb.contains(' ')
            || *eb == self.scim.base_path
        {
            return bad(
                "events.base_path",
                format!("{eb:?} must be a path such as \"/events\", other than scim.base_path"),
            );
        }
        let metrics_token = self.metrics.token.trim();
        if !metrics_token.is_empty() && metrics_token.len() < MIN_METRICS_TOKEN_LEN {
            return bad(
                "metrics.token",
                format!("must be empty or at least {MIN_METRICS_TOKEN_LEN} characters (e.g. the output of `openssl rand -hex 32`)"),
            );
        }
        let base = &self.scim.base_path;
        if !base.starts_with('/') || base.len() < 2 || base.ends_with('/') || base.contains(' ') {
            return bad(
                "scim.base_path",
                format!("{base:?} must start with '/' and not end with '/', e.g. \"/scim/v2\""),
            );
        }
        if self.scim.rate_limit_per_second > MAX_RATE {
            return bad(
                "scim.rate_limit_per_second",
                format!("must be 0 (unlimited) or at most {MAX_RATE}"),
            );
        }
        if !(1..=MAX_BULK_OPERATIONS).contains(&self.scim.bulk_max_operations) {
            return bad(
                "scim.bulk_max_operations",
                format!("must be between 1 and {MAX_BULK_OPERATIONS}"),
            );
        }
        if !(1024..=MAX_BULK_PAYLOAD_BYTES).contains(&self.scim.bulk_max_payload_bytes) {
            return bad(
                "scim.bulk_max_payload_bytes",
                format!("must be between 1024 and {MAX_BULK_PAYLOAD_BYTES} (64 MiB)"),
            );
        }
        if !(1..=MAX_RATE).contains(&self.scim.rate_limit_burst) {
            return bad(
                "scim.rate_limit_burst",
                format!("must be between 1 and {MAX_RATE}"),
            );
        }
        let purge = self.maintenance.purge_interval_secs;
        if purge != 0 && !(60..=7 * 86_400).contains(&purge) {
            return bad(
                "maintenance.purge_interval_secs",
                format!("{purge} must be 0 (off) or between 60 and 604800 (a week)"),
            );
        }
        let url = &self.database.url;
        let scheme_ok = ["sqlite://", "sqlite:", "postgres://", "postgresql://"]
            .iter()
            .any(|p| url.starts_with(p));
        if !scheme_ok {
            let scheme = url.split(':').next().unwrap_or_default();
            return bad(
                "database.url",
                format!(
                    "unknown scheme {scheme:?}; use sqlite://PATH or postgres://USER:PASSWORD@HOST/DB"
                ),
            );
        }
        if self.database.pool_size == 0 {
            return bad("database.pool_size", "must be at least 1".into());
        }
        if self.database.connect_timeout_secs == 0 {
            return bad("database.connect_timeout_secs", "must be at least 1".into());
        }
        if !(60..=30 * 86_400).contains(&self.admin.session_ttl_secs) {
            return bad(
                "admin.session_ttl_secs",
                "must be between 60 and 2592000 (30 days)".into(),
            );
        }
        if self.admin.login_max_failures == 0 {
            return bad("admin.login_max_failures", "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.admin.login_window_secs) {
            return bad(
                "admin.login_window_secs",
                "must be between 1 and 86400 (a day)".into(),
            );
        }
        if self.admin.login_address_max_failures != 0
            && self.admin.login_address_max_failures < self.admin.login_max_failures
        {
            return bad(
                "admin.login_address_max_failures",
                "must be 0 (no cap) or at least admin.login_max_failures".into(),
            );
        }
        if self.admin.login_slow_after == 0 {
            return bad("admin.login_slow_after", "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.admin.login_max_delay_secs) {
            return bad(
                "admin.login_max_delay_secs",
                "must be between 1 and 86400 (a day)".into(),
            );
        }
        if self.server.password_hash_queue_secs > 600 {
            return bad(
                "server.password_hash_queue_secs",
                "must be at most 600".into(),
            );
        }
        if self.admin.saml_clock_skew_secs > 3600 {
            return bad(
                "admin.saml_clock_skew_secs",
                "at most 3600 (an hour); keep the clocks in sync with NTP instead".into(),
            );
        }
        if self.admin.setup_code_ttl_secs < 60 {
            return bad("admin.setup_code_ttl_secs", "must be at least 60".into());
        }
        if !(60..=86_400).contains(&self.oauth.access_token_ttl_secs) {
            return bad(
                "oauth.access_token_ttl_secs",
                "must be between 60 and 86400 (1 day)".into(),
            );
        }
        if self.oauth.refresh_token_ttl_secs < self.oauth.access_token_ttl_secs
            || self.oauth.refresh_token_ttl_secs > 366 * 86_400
        {
            return bad(
                "oauth.refresh_token_ttl_secs",
                "must be at least oauth.access_token_ttl_secs and at most 31622400 (366 days)"
                    .into(),
            );
        }
        if !(10..=600).contains(&self.oauth.code_ttl_secs) {
            return bad(
                "oauth.code_ttl_secs",
                "must be between 10 and 600 (RFC 6749 §4.1.2 recommends at most 10 minutes)".into(),
            );
        }
        if self.oauth.token_max_failures == 0 {
            return bad("oauth.token_max_failures", "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.oauth.token_window_secs) {
            return bad(
                "oauth.token_window_secs",
                "must be between 1 and 86400 (a day)".into(),
            );
        }
        if self.oauth.token_address_max_failures != 0
            && self.oauth.token_address_max_failures < self.oauth.token_max_failures
        {
            return bad(
                "oauth.token_address_max_failures",
                "must be 0 (no cap) or at least oauth.token_max_failures".into(),
            );
        }
        if self.oauth.token_slow_after == 0 {
            return bad("oauth.token_slow_after", "must be at least 1".into());
        }
        if !(1..=86_400).contains(&self.oauth.token_max_delay_secs) {
            return bad(
                "oauth.token_max_delay_secs",
                "must be between 1 and 86400 (a day)".into(),
            );
        }
        if let Some(problem) = log_level_problem(&self.log.level) {
            return bad("log.level", problem);
        }
        Ok(())
    }

    /// How long a request body may take to arrive.
    pub fn body_timeout(&self) -> Duration {
        Duration::from_secs(self.server.body_timeout_secs)
    }

    /// The certificate and key files of built-in TLS, when configured.
    pub fn tls_files(&self) -> Option<(PathBuf, PathBuf)> {
        let (cert, key) = (self.server.tls_cert.trim(), self.server.tls_key.trim());
        (!cert.is_empty() && !key.is_empty()).then(|| (PathBuf::from(cert), PathBuf::from(key)))
    }

    /// The parsed listen address.
    pub fn bind_addr(&self) -> Option<SocketAddr> {
        self.server.bind.parse().ok()
    }

    /// The store's settings.
    pub fn store_config(&self) -> scim_store::StoreConfig {
        scim_store::StoreConfig {
            url: self.database.url.clone(),
            pool_size: self.database.pool_size,
            connect_timeout: Duration::from_secs(self.database.connect_timeout_secs),
        }
    }

    /// How often the background purge runs (`None`: never).
    pub fn purge_interval(&self) -> Option<Duration> {
        let secs = self.maintenance.purge_interval_secs;
        (secs > 0).then(|| Duration::from_secs(secs))
    }

    /// The SCIM API's settings.
    pub fn scim_config(&self) -> scim_server::ScimConfig {
        let public = self.server.public_url.trim().trim_end_matches('/');
        scim_server::ScimConfig {
            base_path: self.scim.base_path.clone(),
            public_url: (!public.is_empty()).then(|| public.to_string()),
            max_body_bytes: self.server.max_body_bytes,
            token_cache_ttl: Duration::from_secs(self.auth.token_cache_ttl_secs),
            password_hasher: scim_store::PasswordHasher::default(),
            rate_limiter: None,
            clock: scim_core::Clock::system(),
            trust_forwarded_for: self.admin.trust_forwarded_for,
            bulk: scim_server::BulkLimits {
                max_operations: self.scim.bulk_max_operations,
                max_payload_bytes: self.scim.bulk_max_payload_bytes,
            },
            // Replaced by the process's one record (`Shared::health`).
            health: scim_server::health::Health::new(),
        }
    }

    /// A new per-credential limiter of the SCIM API as configured (`None`
    /// when `scim.rate_limit_per_second` is 0): build one per process and
    /// share it between the workers (`configure_app`).
    pub fn scim_rate_limiter(&self) -> Option<scim_server::rate_limit::RateLimiter> {
        let per_second = NonZeroU32::new(self.scim.rate_limit_per_second)?;
        let burst = NonZeroU32::new(self.scim.rate_limit_burst)?;
        Some(scim_server::rate_limit::RateLimiter::new(
            scim_server::rate_limit::RateLimit { per_second, burst },
        ))
    }

    /// What every worker's app shares, built once per process.
    pub fn shared(&self) -> crate::Shared {
        crate::Shared {
            password_hasher: self.password_hasher(),
            scim_rate_limiter: self.scim_rate_limiter(),
            clock: scim_core::Clock::system(),
            events: None,
            health: scim_server::health::Health::new(),
        }
    }

    /// Event delivery's settings.
    pub fn events_config(&self) -> scim_server::events::EventsConfig {
        let e = &self.events;
        let public = self.server.public_url.trim().trim_end_matches('/');
        let issuer = match (e.issuer.trim(), public) {
            ("", "") => "scimd".to_owned(),
            ("", public) => public.to_owned(),
            (issuer, _) => issuer.to_owned(),
        };
        scim_server::events::EventsConfig {
            issuer,
            scim_base_path: self.scim.base_path.clone(),
            base_path: e.base_path.clone(),
            allow_private_receivers: e.allow_private_receivers,
            push_timeout: Duration::from_secs(e.push_timeout_secs),
            max_response_bytes: e.max_response_bytes,
            retry_base: Duration::from_millis(e.retry_base_millis),
            retry_max: Duration::from_secs(e.retry_max_secs),
            failing_after: i32::try_from(e.failing_after).unwrap_or(i32::MAX),
            lease: Duration::from_secs(e.lease_secs),
            poll_interval: Duration::from_millis(e.poll_interval_millis),
            long_poll_wait: Duration::from_secs(e.long_poll_wait_secs),
            ..scim_server::events::EventsConfig::default()
        }
    }

    /// A new Argon2id gate as configured: build one per process and share
    /// it between the SCIM API and the admin side ([`Settings::shared`]).
    pub fn password_hasher(&self) -> scim_store::PasswordHasher {
        let concurrency = match self.server.password_hash_concurrency {
            0 => scim_store::password::default_concurrency(),
            n => n,
        };
        scim_store::PasswordHasher::new(
            concurrency,
            Duration::from_secs(self.server.password_hash_queue_secs),
        )
    }
}

impl Settings {
    /// The admin API's settings.
    pub fn admin_config(&self) -> scim_admin::AdminConfig {
        let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        scim_admin::AdminConfig {
            session_ttl: secs(self.admin.session_ttl_secs),
            login_limits: scim_admin::service::AttemptLimits {
                max_failures: i64::from(self.admin.login_max_failures),
                window: secs(self.admin.login_window_secs),
                address_max_failures: i64::from(self.admin.login_address_max_failures),
                slow_after: i64::from(self.admin.login_slow_after),
                max_delay: secs(self.admin.login_max_delay_secs),
            },
            trust_forwarded_for: self.admin.trust_forwarded_for,
            scim_base_path: self.scim.base_path.clone(),
            max_body_bytes: self.server.max_body_bytes,
            oauth: self.oauth_config(),
            password_hasher: scim_store::PasswordHasher::default(),
            clock: scim_core::Clock::system(),
            events_base_path: self.events.base_path.clone(),
            events_failing_after: i32::try_from(self.events.failing_after).unwrap_or(i32::MAX),
            saml: self.saml_sign_in_config(),
        }
    }

    /// SAML sign-in to the console: the administrator mapping and skew.
    pub fn saml_sign_in_config(&self) -> scim_admin::saml_sign_in::SamlSignInConfig {
        let a = &self.admin;
        let set = |s: &str| (!s.trim().is_empty()).then(|| s.trim().to_owned());
        scim_admin::saml_sign_in::SamlSignInConfig {
            username_attribute: set(&a.saml_username_attribute),
            group_attribute: a.saml_group_attribute.trim().to_owned(),
            required_group: set(&a.saml_required_group),
            clock_skew: time::Duration::seconds(
                i64::try_from(a.saml_clock_skew_secs).unwrap_or(i64::MAX),
            ),
            allow_idp_initiated: a.saml_allow_idp_initiated,
        }
    }

    /// The OAuth authorization server's settings.
    pub fn oauth_config(&self) -> scim_admin::oauth::OAuthConfig {
        let secs = |s: u64| time::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX));
        let public = self.server.public_url.trim().trim_end_matches('/');
        scim_admin::oauth::OAuthConfig {
            access_token_ttl: secs(self.oauth.access_token_ttl_secs),
            refresh_token_ttl: secs(self.oauth.refresh_token_ttl_secs),
            code_ttl: secs(self.oauth.code_ttl_secs),
            token_limits: scim_admin::service::AttemptLimits {
                max_failures: i64::from(self.oauth.token_max_failures),
                window: secs(self.oauth.token_window_secs),
                address_max_failures: i64::from(self.oauth.token_address_max_failures),
                slow_after: i64::from(self.oauth.token_slow_after),
                max_delay: secs(self.oauth.token_max_delay_secs),
            },
            public_url: (!public.is_empty()).then(|| public.to_string()),
        }
    }

    /// How long the first-run setup code stays valid.
    pub fn setup_code_ttl(&self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.admin.setup_code_ttl_secs).unwrap_or(i64::MAX))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_load() {
        let s = Settings::load_from(None, env(&[])).unwrap();
        assert_eq!(s.server.bind, "127.0.0.1:8080");
        assert_eq!(s.scim.base_path, "/scim/v2");
        assert_eq!(s.database.url, "sqlite://data/scimd.db");
        assert_eq!(s.log.format, LogFormat::Human);
        assert_eq!(s.body_timeout(), Duration::from_secs(30));
        assert_eq!(s.server.max_connections_per_address, 64);
        // Unlimited by default: `make bench` drives one token hard.
        assert_eq!(s.scim.rate_limit_per_second, 0);
        assert!(s.scim_rate_limiter().is_none());
        assert!(s.metrics.enabled);
        assert_eq!(s.metrics.token(), None);
    }

    #[test]
    fn the_metrics_token_is_never_printed_with_the_settings() {
        let token = "m".repeat(MIN_METRICS_TOKEN_LEN);
        let s = Settings::load_from(None, env(&[("SCIMD__METRICS__TOKEN", &token)])).unwrap();
        assert_eq!(s.metrics.token(), Some(token.clone()));
        let printed = format!("{s:?}");
        assert!(!printed.contains(&token), "{printed}");
        assert!(printed.contains("<redacted>"), "{printed}");
    }

    #[test]
    fn the_scim_rate_limit_is_built_as_configured() {
        let s = Settings::load_from(
            None,
            env(&[
                ("SCIMD__SCIM__RATE_LIMIT_PER_SECOND", "50"),
                ("SCIMD__SCIM__RATE_LIMIT_BURST", "100"),
            ]),
        )
        .unwrap();
        let limit = s.scim_rate_limiter().unwrap().limit();
        assert_eq!(limit.per_second.get(), 50);
        assert_eq!(limit.burst.get(), 100);
    }

    #[test]
    fn environment_overrides_one_key() {
        let s = Settings::load_from(
            None,
            env(&[
                ("SCIMD__DATABASE__URL", "postgres://u:p@localhost/db"),
                ("SCIMD__MAINTENANCE__PURGE_INTERVAL_SECS", "600"),
                ("SCIMD__LOG__FORMAT", "json"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(s.database.url, "postgres://u:p@localhost/db");
        assert_eq!(s.purge_interval(), Some(Duration::from_secs(600)));
        assert_eq!(s.log.format, LogFormat::Json);
    }

    #[test]
    fn file_overrides_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scimd.toml");
        std::fs::write(&path, "[server]\nbind = \"0.0.0.0:9000\"\n").unwrap();
        let s = Settings::load_from(Some(&path), env(&[])).unwrap();
        assert_eq!(s.server.bind, "0.0.0.0:9000");
        assert_eq!(s.scim.base_path, "/scim/v2");
    }

    #[test]
    fn bad_values_name_the_key() {
        let cases = [
            ("SCIMD__DATABASE__URL", "mysql://x", "database.url"),
            ("SCIMD__SERVER__BIND", "localhost", "server.bind"),
            ("SCIMD__SCIM__BASE_PATH", "scim", "scim.base_path"),
            (
                "SCIMD__SCIM__DEFAULT_PAGE_SIZE",
                "50",
                "scim.default_page_size",
            ),
            (
                "SCIMD__MAINTENANCE__PURGE_INTERVAL_SECS",
                "5",
                "maintenance.purge_interval_secs",
            ),
            ("SCIMD__LOG__FORMAT", "xml", "log.format"),
            ("SCIMD__DATABASE__POOL_SIZE", "lots", "database.pool_size"),
            ("SCIMD__SERVER__PUBLIC_URL", "ftp://x", "server.public_url"),
            (
                "SCIMD__SERVER__BODY_TIMEOUT_SECS",
                "0",
                "server.body_timeout_secs",
            ),
            (
                "SCIMD__SERVER__MAX_CONNECTIONS_PER_ADDRESS",
                "-1",
                "server.max_connections_per_address",
            ),
            (
                "SCIMD__ADMIN__SESSION_TTL_SECS",
                "5",
                "admin.session_ttl_secs",
            ),
            (
                "SCIMD__ADMIN__LOGIN_MAX_FAILURES",
                "0",
                "admin.login_max_failures",
            ),
            (
                "SCIMD__OAUTH__ACCESS_TOKEN_TTL_SECS",
                "5",
                "oauth.access_token_ttl_secs",
            ),
            (
                "SCIMD__OAUTH__REFRESH_TOKEN_TTL_SECS",
                "60",
                "oauth.refresh_token_ttl_secs",
            ),
            ("SCIMD__OAUTH__CODE_TTL_SECS", "3600", "oauth.code_ttl_secs"),
            (
                "SCIMD__ADMIN__LOGIN_WINDOW_SECS",
                "100000",
                "admin.login_window_secs",
            ),
            (
                "SCIMD__ADMIN__LOGIN_ADDRESS_MAX_FAILURES",
                "3",
                "admin.login_address_max_failures",
            ),
            (
                "SCIMD__ADMIN__LOGIN_SLOW_AFTER",
                "0",
                "admin.login_slow_after",
            ),
            (
                "SCIMD__OAUTH__TOKEN_MAX_DELAY_SECS",
                "0",
                "oauth.token_max_delay_secs",
            ),
            (
                "SCIMD__SERVER__PASSWORD_HASH_QUEUE_SECS",
                "3600",
                "server.password_hash_queue_secs",
            ),
            (
                "SCIMD__SCIM__RATE_LIMIT_PER_SECOND",
                "2000000",
                "scim.rate_limit_per_second",
            ),
            (
                "SCIMD__SCIM__RATE_LIMIT_PER_SECOND",
                "-1",
                "scim.rate_limit_per_second",
            ),
            (
                "SCIMD__SCIM__RATE_LIMIT_BURST",
                "0",
                "scim.rate_limit_burst",
            ),
            (
                "SCIMD__SCIM__BULK_MAX_OPERATIONS",
                "0",
                "scim.bulk_max_operations",
            ),
            (
                "SCIMD__SCIM__BULK_MAX_PAYLOAD_BYTES",
                "100",
                "scim.bulk_max_payload_bytes",
            ),
            ("SCIMD__SERVER__TLS_CERT", "/etc/cert.pem", "server.tls_key"),
            ("SCIMD__SERVER__TLS_KEY", "/etc/key.pem", "server.tls_cert"),
        ];
        for (key, value, named) in cases {
            let err = Settings::load_from(None, env(&[(key, value)])).unwrap_err();
            assert!(
                err.to_string().contains(named),
                "{key}={value}: {err} should name {named}"
            );
        }
    }

    #[test]
    fn log_settings_list_the_allowed_values() {
        for bad in ["loud", "", "scimd=loud", "info,verbose", "=info"] {
            let err = Settings::load_from(None, env(&[("SCIMD__LOG__LEVEL", bad)])).unwrap_err();
            let msg = err.to_string();
            assert!(msg.contains("log.level"), "{bad}: {msg}");
            assert!(
                msg.contains("trace, debug, info, warn, error"),
                "{bad}: {msg}"
            );
        }
        for good in [
            "info",
            "WARN",
            "off",
            "scimd=debug,info",
            "scim_store=trace",
        ] {
            let s = Settings::load_from(None, env(&[("SCIMD__LOG__LEVEL", good)])).unwrap();
            assert_eq!(s.log.level, good);
        }
        let err = Settings::load_from(None, env(&[("SCIMD__LOG__FORMAT", "yaml")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid configuration: log.format: \"yaml\" is not a log format; use \"human\" or \"json\""
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scimd.toml");
        std::fs::write(&path, "[log]\nlevel = \"loud\"\n").unwrap();
        let err = Settings::load_from(Some(&path), env(&[])).unwrap_err();
        assert!(
            err.to_string().contains("\"loud\" is not a log level"),
            "{err}"
        );
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("scimd.toml");
        std::fs::write(&path, "[server]\nbindd = \"0.0.0.0:9000\"\n").unwrap();
        let err = Settings::load_from(Some(&path), env(&[])).unwrap_err();
        assert!(err.to_string().contains("bindd"), "{err}");
        let err =
            Settings::load_from(Some(&dir.path().join("missing.toml")), env(&[])).unwrap_err();
        assert!(err.to_string().contains("--config"), "{err}");
    }
}
