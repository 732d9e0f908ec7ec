//! The admin side's repositories: administrators and their sessions and
//! tokens, SCIM bearer tokens, the OAuth authorization server, SAML, User
//! Synchronization and run-time settings.

pub mod admins;
pub mod health;
pub mod oauth;
pub mod organizations;
pub mod roles;
pub mod saml;
pub mod settings;
pub mod sync;
pub mod tokens;

pub use admins::*;
