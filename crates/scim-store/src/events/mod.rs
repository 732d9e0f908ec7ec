//! Event streams: each delivers the SCIM changes of the change log
//! ([`crate::changes`]) to one application, as Security Event Tokens
//! (RFC 8417) with the SCIM event URIs of RFC 9967, pushed to the
//! application (RFC 8935) or polled by it (RFC 8936). docs/EVENTS.md
//! describes them for the application's developer.
//!
//! This module keeps what is stored: the streams, their selection, their
//! cursor into the change log, their delivery state and lease
//! ([`streams`]), and their signing keys ([`keys`]). Building, signing
//! and delivering the SETs is the HTTP side's job (`scim-server`'s
//! `events`).
//!
//! A stream's cursor is the last change_log position it is done with:
//! delivered (push), acknowledged (poll) or not selected by the stream.
//! The cursor only moves after delivery, so a delivery that is cut short
//! (a crash, a lost lease) is repeated: at-least-once, in position order.

pub mod keys;
pub mod streams;

pub use keys::{jwks, SigningKey};
pub use streams::{Alg, Delivery, EventType, Mode, NewStream, Stream, StreamStatus};
