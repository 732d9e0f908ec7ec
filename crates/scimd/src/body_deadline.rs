//! The request body deadline (`server.body_timeout_secs`), one middleware
//! around every route.
//!
//! actix bounds the request head (`client_request_timeout`) but not the
//! body: a client that declares a large `Content-Length` and then trickles
//! a byte now and then would hold its connection, and whatever the
//! extractor buffered, for as long as it likes. The middleware wraps the
//! request payload in a stream that fails once the deadline, counted from
//! the end of the request head, has passed. Whatever extractor reads the
//! body (the SCIM JSON reader, actix's `Json`, `Bytes` and forms) then
//! fails, and the middleware answers 408 (RFC 9110 §15.5.9) in the format
//! of the API the path belongs to, with `Connection: close`: the rest of
//! the body is never read.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::ConnectionType;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpResponse, ResponseError};
use futures_util::Stream;
use tokio::time::{Instant, Sleep};

/// The deadline and where the SCIM API is mounted (which decides the
/// format of the 408).
#[derive(Debug, Clone)]
pub struct BodyDeadline {
    timeout: Duration,
    scim_base_path: Rc<str>,
}

impl BodyDeadline {
    /// A body must arrive within `timeout` of the request head; paths
    /// under `scim_base_path` get SCIM errors.
    pub fn new(timeout: Duration, scim_base_path: &str) -> Self {
        BodyDeadline {
            timeout,
            scim_base_path: Rc::from(scim_base_path),
        }
    }

    /// The middleware (for `actix_web::middleware::from_fn`).
    pub async fn enforce<B: MessageBody>(
        self,
        mut req: ServiceRequest,
        next: Next<B>,
    ) -> Result<ServiceResponse<EitherBody<B>>, Error> {
        let payload = req.take_payload();
        if matches!(payload, Payload::None) {
            req.set_payload(payload);
            return next
                .call(req)
                .await
                .map(ServiceResponse::map_into_left_body);
        }
        let expired = Rc::new(Cell::new(false));
        let stream = DeadlinePayload {
            inner: payload,
            deadline: Instant::now() + self.timeout,
            timer: None,
            expired: Rc::clone(&expired),
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(stream),
        });
        let scim = self.is_scim(req.path());
        let result = next.call(req).await;
        if !expired.get() {
            return result.map(ServiceResponse::map_into_left_body);
        }
        let timed_out = BodyTimedOut {
            secs: self.timeout.as_secs(),
            scim,
        };
        match result {
            Ok(res) => {
                let (req, _) = res.into_parts();
                Ok(ServiceResponse::new(req, timed_out.error_response()).map_into_right_body())
            }
            Err(_) => Err(timed_out.into()),
        }
    }

    fn is_scim(&self, path: &str) -> bool {
        path.strip_prefix(&*self.scim_base_path)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

/// A request whose body missed the deadline.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive within {secs} seconds")]
struct BodyTimedOut {
    secs: u64,
    /// Under the SCIM API (else the admin format).
    scim: bool,
}

impl ResponseError for BodyTimedOut {
    fn status_code(&self) -> actix_web::http::StatusCode {
        actix_web::http::StatusCode::REQUEST_TIMEOUT
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = if self.scim {
            scim_server::ApiError::RequestTimeout(self.secs).error_response()
        } else {
            scim_admin::AdminError::RequestTimeout(self.secs).error_response()
        };
        // The unread rest of the body may still be on its way: the
        // connection cannot carry another request.
        res.head_mut().set_connection_type(ConnectionType::Close);
        res
    }
}

/// The request payload, failing once `deadline` has passed.
struct DeadlinePayload {
    inner: Payload,
    deadline: Instant,
    /// Armed the first time the client keeps the reader waiting, so that a
    /// body already buffered with its head costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    expired: Rc<Cell<bool>>,
}

impl DeadlinePayload {
    fn expire(&mut self) -> Poll<Option<Result<Bytes, PayloadError>>> {
        self.expired.set(true);
        self.timer = None;
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "the request body did not arrive in time",
        )))))
    }
}

impl Stream for DeadlinePayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.expired.get() {
            return Poll::Ready(None);
        }
        // A client that keeps a trickle going must not outlive the
        // deadline either: once armed, the timer is checked first.
        if let Some(timer) = this.timer.as_mut() {
            if timer.as_mut().poll(cx).is_ready() {
                return this.expire();
            }
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(None) => {
                this.timer = None;
                Poll::Ready(None)
            }
            Poll::Ready(item) => Poll::Ready(item),
            Poll::Pending => {
                let deadline = this.deadline;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                if timer.as_mut().poll(cx).is_ready() {
                    return this.expire();
                }
                Poll::Pending
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn scim_paths_are_those_under_the_base_path() {
        let d = BodyDeadline::new(Duration::from_secs(1), "/scim/v2");
        assert!(d.is_scim("/scim/v2"));
        assert!(d.is_scim("/scim/v2/Users"));
        assert!(!d.is_scim("/scim/v2x/Users"));
        assert!(!d.is_scim("/admin/api/v1/login"));
        assert!(!d.is_scim("/oauth/token"));
    }
}
