//! The SCIM 2.0 domain of scimd (RFC 7643, RFC 7644): schemas, resources,
//! the filter and PATCH grammars and the protocol errors.
//!
//! This crate does no I/O and knows nothing of HTTP or databases: the
//! store turns its filter AST into SQL, the server turns its errors into
//! responses.

pub mod body;
pub mod clock;
pub mod datetime;
pub mod error;
pub mod extensions;
pub mod filter;
pub mod members;
pub mod patch;
pub mod resource;
pub mod schema;

pub use clock::Clock;
pub use error::{ScimError, ScimType};
