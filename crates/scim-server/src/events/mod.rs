//! SCIM events to the application (docs/EVENTS.md): the changes of the
//! change log, as Security Event Tokens (RFC 8417) with the SCIM event
//! URIs of RFC 9967, signed with the stream's key ([`set`]), pushed to
//! the receiver (RFC 8935, [`push`]) or polled by it (RFC 8936,
//! [`poll`]), whose signatures verify with the stream's JWKS.
//!
//! The streams themselves are stored by `scim_store::events` and managed
//! through the admin API. [`Events::configure`] mounts the receiver's
//! endpoints (poll and JWKS, authenticated with the stream's receiver
//! token); `scimd serve` runs the push [`push::Deliverer`].
//!
//! A SCIM write in this process wakes long-polls and the deliverer at
//! once ([`Events::changed`]); changes committed by other replicas are
//! seen within `poll_interval` (the deliverer) or when a long-poll's
//! bounded wait ends.

pub mod poll;
pub mod push;
pub mod receiver;
pub mod set;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::web;
use scim_store::Store;
use tokio::sync::Notify;

/// Settings of event delivery.
#[derive(Debug, Clone)]
pub struct EventsConfig {
    /// The SETs' `iss` when a stream sets none (default: the public URL),
    /// for the default organization's streams; another organization's
    /// add its SCIM base path ([`set::org_issuer`]).
    pub issuer: String,
    /// The SCIM API's base path (`/scim/v2`): an organization's SCIM base
    /// URL is `{issuer}{scim_base_path}/o/{slug}`.
    pub scim_base_path: String,
    /// Where the receiver endpoints are mounted (`/events`).
    pub base_path: String,
    /// Whether push receivers may be on loopback, link-local or private
    /// addresses (off by default: a receiver URL must not reach into the
    /// network scimd runs in).
    pub allow_private_receivers: bool,
    /// The whole of one push (connect, send, answer).
    pub push_timeout: Duration,
    /// The most of a receiver's answer that is read.
    pub max_response_bytes: usize,
    /// The first retry's delay; each further failure doubles it.
    pub retry_base: Duration,
    /// The longest delay between retries.
    pub retry_max: Duration,
    /// Failures in a row after which a stream shows as failing.
    pub failing_after: i32,
    /// How long a replica holds a push stream it delivers.
    pub lease: Duration,
    /// How often the deliverer looks for work it was not woken for
    /// (other replicas' writes, backoffs that ended).
    pub poll_interval: Duration,
    /// The longest a long-poll (`returnImmediately: false`) waits.
    pub long_poll_wait: Duration,
    /// SETs pushed per lease (one at a time, in order).
    pub batch: usize,
    /// The most SETs one poll answer carries.
    pub max_events: usize,
}

impl Default for EventsConfig {
    fn default() -> Self {
        EventsConfig {
            issuer: "scimd".into(),
            scim_base_path: "/scim/v2".into(),
            base_path: "/events".into(),
            allow_private_receivers: false,
            push_timeout: Duration::from_secs(10),
            max_response_bytes: 64 * 1024,
            retry_base: Duration::from_secs(1),
            retry_max: Duration::from_secs(300),
            failing_after: 5,
            lease: Duration::from_secs(60),
            poll_interval: Duration::from_secs(1),
            long_poll_wait: Duration::from_secs(30),
            batch: 100,
            max_events: 1000,
        }
    }
}

/// Event delivery of this process: the store, the settings, the clock
/// and the signal of new changes. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Events {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    config: EventsConfig,
    clock: scim_core::Clock,
    changed: Notify,
    waiting: AtomicUsize,
}

impl Events {
    /// Event delivery over `store`.
    pub fn new(store: Store, config: EventsConfig, clock: scim_core::Clock) -> Events {
        Events {
            inner: Arc::new(Inner {
                store,
                config,
                clock,
                changed: Notify::new(),
                waiting: AtomicUsize::new(0),
            }),
        }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    /// The settings.
    pub fn config(&self) -> &EventsConfig {
        &self.inner.config
    }

    /// The clock backoffs and leases are decided by.
    pub fn clock(&self) -> &scim_core::Clock {
        &self.inner.clock
    }

    /// Signals that changes were committed: wakes every waiting long-poll
    /// and the deliverer.
    pub fn changed(&self) {
        self.inner.changed.notify_waiters();
    }

    /// How many long-polls wait for a change now.
    pub fn long_polls_waiting(&self) -> usize {
        self.inner.waiting.load(Ordering::Acquire)
    }

    /// Counts a long-poll as waiting while the guard lives.
    pub(crate) fn waiting(&self) -> WaitingGuard<'_> {
        self.inner.waiting.fetch_add(1, Ordering::AcqRel);
        WaitingGuard(&self.inner.waiting)
    }

    /// The signal [`Events::changed`] sends.
    pub(crate) fn signal(&self) -> &Notify {
        &self.inner.changed
    }

    /// Mounts the receiver endpoints: `POST {base}/{id}/poll` (RFC 8936)
    /// and `GET {base}/{id}/jwks` (RFC 7517), both authenticated with the
    /// stream's receiver token.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        let base = self.inner.config.base_path.clone();
        cfg.service(
            web::scope(&base)
                .app_data(web::Data::new(self.clone()))
                .route("/{id}/poll", web::post().to(poll::poll))
                .route("/{id}/jwks", web::get().to(poll::jwks)),
        );
    }
}

/// A long-poll counted as waiting ([`Events::long_polls_waiting`]).
pub(crate) struct WaitingGuard<'a>(&'a AtomicUsize);

impl Drop for WaitingGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}
