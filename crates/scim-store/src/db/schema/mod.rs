//! Diesel table definitions, one file per area, using only column types
//! both backends share.

pub mod admin;
pub mod changes;
pub mod events;
pub mod oauth;
pub mod scim;
