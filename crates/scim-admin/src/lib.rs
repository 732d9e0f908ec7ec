//! The admin side of scimd: the User Synchronization switch and its
//! cautions, SAML sign-in settings, run-time settings, SCIM and admin API
//! tokens, and administrator accounts.
//!
//! [`service`] holds every operation, shared by the HTTP API and the
//! `scimd` CLI.

pub mod cautions;
pub mod error;
pub mod model;
pub mod saml;
pub mod service;

pub use error::{AdminError, ErrorBody, FieldError};
