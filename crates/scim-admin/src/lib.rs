//! The admin API and console of scimd: the User Synchronization toggle,
//! SAML settings, SCIM tokens, OAuth clients and activity.
//!
//! Not built yet: until it is, SCIM tokens are managed with the
//! `scimd token` CLI, and this crate contributes no routes.
