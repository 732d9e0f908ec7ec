//! Logging: `tracing-subscriber` in human or JSON form, and one lean line
//! per HTTP request.
//!
//! The request line carries method, path (never the query string, which
//! may hold personal data in filters), status, latency and a request id;
//! never a header value (so never a token) and never a body.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::Error;
use tracing_subscriber::EnvFilter;

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber. Safe to call once per process.
///
/// Human lines carry ANSI colours only when stderr is a terminal: piped
/// into journald, a file or `docker logs`, escape codes would be noise
/// (and would stick to a setup code copied from the log).
pub fn init(settings: &LogSettings) {
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match settings.format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = result;
}

/// The header carrying the request id, both ways.
pub static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// A short unique id: a per-process random prefix and a counter.
fn next_request_id() -> String {
    static PREFIX: OnceLock<u32> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(1);
    let prefix = PREFIX.get_or_init(|| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos() ^ (d.as_secs() as u32))
            .unwrap_or_default();
        nanos ^ std::process::id().rotate_left(16)
    });
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix:08x}-{n:x}")
}

/// Accepts a caller's `X-Request-Id` only if it is short and plain, so
/// that nothing odd is echoed into logs or headers.
fn caller_request_id(req: &ServiceRequest) -> Option<String> {
    let v = req.headers().get(&REQUEST_ID)?.to_str().ok()?;
    let ok = !v.is_empty()
        && v.len() <= 64
        && v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    ok.then(|| v.to_string())
}

/// Middleware (for `actix_web::middleware::from_fn`) that logs one line
/// per request and returns the request id in `X-Request-Id`.
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let id = caller_request_id(&req).unwrap_or_else(next_request_id);
    let method = req.method().clone();
    let path = req.path().to_owned();
    let result = next.call(req).await;
    let latency_ms = start.elapsed().as_secs_f64() * 1000.0;
    match result {
        Ok(mut res) => {
            let status = res.status().as_u16();
            if let Ok(value) = HeaderValue::from_str(&id) {
                res.headers_mut().insert(REQUEST_ID.clone(), value);
            }
            if status >= 500 {
                tracing::error!(request_id = %id, %method, %path, status, latency_ms, "request");
            } else {
                tracing::info!(request_id = %id, %method, %path, status, latency_ms, "request");
            }
            Ok(res)
        }
        Err(err) => {
            let status = err.as_response_error().status_code().as_u16();
            tracing::info!(request_id = %id, %method, %path, status, latency_ms, "request");
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_unique() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
    }
}
