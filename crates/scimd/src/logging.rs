//! Logging: `tracing-subscriber` in human or JSON form, and one lean line
//! per HTTP request.
//!
//! The request line carries method, path (never the query string, which
//! may hold personal data in filters), status, latency and a request id;
//! never a header value (so never a token) and never a body.
//!
//! A client's malformed HTTP or broken connection is not the server's
//! error: actix-http's connection dispatchers log it at ERROR (through
//! `tracing`, under their module paths), and [`DemoteClientErrors`] logs
//! it at WARN instead. actix-web's own few `log` records (start-up
//! failures) reach the same subscriber through `tracing-log`, which
//! `try_init` installs; none of them is about a client.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::callsite::DefaultCallsite;
use tracing_core::field::FieldSet;
use tracing_core::metadata::Kind;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

use crate::settings::{LogFormat, LogSettings};

/// Installs the global subscriber, writing to stderr. Safe to call once
/// per process.
///
/// Human lines carry ANSI colours only when stderr is a terminal: piped
/// into journald, a file or `docker logs`, escape codes would be noise
/// (and would stick to a setup code copied from the log).
pub fn init(settings: &LogSettings) {
    // A second init (e.g. in tests) keeps the first subscriber.
    let _ = subscriber(settings, std::io::stderr, std::io::stderr().is_terminal()).try_init();
}

/// The subscriber [`init`] installs, writing to `writer`: the configured
/// filter, [`DemoteClientErrors`], and lines in the configured format.
fn subscriber<W>(settings: &LogSettings, writer: W, ansi: bool) -> impl Subscriber + Send + Sync
where
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(&settings.level).unwrap_or_else(|_| EnvFilter::new("info"));
    let lines: Box<dyn Layer<Registry> + Send + Sync> = match settings.format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(writer)
            .boxed(),
    };
    // The demotion is outermost: its warnings go through the filter.
    tracing_subscriber::registry()
        .with(lines)
        .with(filter)
        .with(DemoteClientErrors)
}

/// The targets of actix-http's connection dispatchers. Their ERROR events
/// are about one client's connection: a request that does not parse
/// ("stream error: …"), a body cut short, a peer gone while writing.
const CLIENT_CONNECTION_TARGETS: &[&str] =
    &["actix_http::h1::dispatcher", "actix_http::h2::dispatcher"];

/// Logs the ERROR events of [`CLIENT_CONNECTION_TARGETS`] at WARN, under
/// the target `scimd::client`, and drops the originals: a client sending
/// garbage is worth knowing about, but it is not an error of the server,
/// and it must not page anyone.
///
/// The warning is handed to the layers below this one (the filter, then
/// the lines): an event logged with `tracing::warn!` from inside a
/// subscriber is dropped by tracing's re-entrancy guard.
struct DemoteClientErrors;

/// The metadata of [`DemoteClientErrors`]' warnings.
static CLIENT_WARNING: Metadata<'static> = Metadata::new(
    "client connection",
    "scimd::client",
    Level::WARN,
    Some(file!()),
    Some(line!()),
    Some(module_path!()),
    FieldSet::new(
        &["message"],
        tracing_core::identify_callsite!(&CLIENT_CALLSITE),
    ),
    Kind::EVENT,
);
static CLIENT_CALLSITE: DefaultCallsite = DefaultCallsite::new(&CLIENT_WARNING);

impl<S: Subscriber> Layer<S> for DemoteClientErrors {
    fn event_enabled(&self, event: &Event<'_>, ctx: Context<'_, S>) -> bool {
        let meta = event.metadata();
        if *meta.level() != Level::ERROR || !CLIENT_CONNECTION_TARGETS.contains(&meta.target()) {
            return true;
        }
        let fields = CLIENT_WARNING.fields();
        if let (true, Some(field)) = (ctx.enabled(&CLIENT_WARNING), fields.field("message")) {
            let mut message = Message(String::from("client connection: "));
            event.record(&mut message);
            let value: &dyn tracing::Value = &message.0.as_str();
            let values = [(&field, Some(value))];
            ctx.event(&Event::new(&CLIENT_WARNING, &fields.value_set(&values)));
        }
        false
    }
}

/// The `message` field of an event.
struct Message(String);

impl Visit for Message {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            use std::fmt::Write;
            let _ = write!(self.0, "{value:?}");
        }
    }
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
/// per request and returns the request id in `X-Request-Id` (and puts it
/// in the request's extensions as `scim_store::changes::RequestId`, which
/// the change log records).
pub async fn request_log(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let start = Instant::now();
    let id = caller_request_id(&req).unwrap_or_else(next_request_id);
    // For the handlers: the changes a request makes record its id.
    req.extensions_mut()
        .insert(scim_store::changes::RequestId(id.clone()));
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

    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Log lines captured in memory.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| std::io::ErrorKind::Other)?
                .extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(format: LogFormat, level: &str) -> String {
        let out = Captured::default();
        let writer = out.clone();
        let settings = LogSettings {
            format,
            level: level.into(),
        };
        tracing::subscriber::with_default(
            subscriber(&settings, move || writer.clone(), false),
            || {
                tracing::error!(target: "actix_http::h1::dispatcher", "stream error: {}", "Parse(Header)");
                tracing::error!(target: "actix_http::h2::dispatcher", "Response payload stream error: x");
                tracing::warn!(target: "actix_http::h1::dispatcher", "stays a warning");
                tracing::error!(target: "scim_store::users", "a real error");
            },
        );
        let bytes = out.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes).into_owned()
    }

    #[test]
    fn malformed_http_from_clients_is_a_warning() {
        let out = logged(LogFormat::Human, "info");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 4, "{out}");
        assert!(
            lines[0].contains("WARN")
                && lines[0].contains("scimd::client")
                && lines[0].contains("client connection: stream error: Parse(Header)"),
            "{out}"
        );
        assert!(
            lines[1].contains("WARN") && lines[1].contains("payload stream error"),
            "{out}"
        );
        assert!(
            lines[2].contains("WARN") && lines[2].contains("stays a warning"),
            "{out}"
        );
        // The server's own errors stay errors.
        assert!(
            lines[3].contains("ERROR") && lines[3].contains("a real error"),
            "{out}"
        );
        assert_eq!(out.matches("ERROR").count(), 1, "{out}");

        let out = logged(LogFormat::Json, "warn");
        assert_eq!(out.matches(r#""level":"ERROR""#).count(), 1, "{out}");
        assert_eq!(out.matches(r#""level":"WARN""#).count(), 3, "{out}");
        // Only errors asked for: the demoted ones are not shown at all.
        let out = logged(LogFormat::Human, "error");
        assert_eq!(out.lines().count(), 1, "{out}");
        assert!(out.contains("a real error"), "{out}");
    }

    #[test]
    fn request_ids_are_unique() {
        let a = next_request_id();
        let b = next_request_id();
        assert_ne!(a, b);
    }
}
