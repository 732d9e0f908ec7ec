//! Administrators: list, create, disable, enable, delete, reset another
//! administrator's password, unlock its sign-in, and change one's own
//! password (with the current one). The last enabled administrator can be
//! neither disabled nor deleted, so that someone can always sign in.
//!
//! - [`service`]: the operations, shared by the API, the console and the
//!   `scimd admin` CLI.
//! - [`api`]: `/admin/api/v1/admins` and `/admin/api/v1/session/password`.
//! - [`console`]: the Administrators page (`/admin/admins`) and the
//!   password page (`/admin/account`).

pub mod api;
pub mod console;
pub mod model;
pub mod service;
