//! The database layer: the two-backend connection, hand-built SQL, the
//! Diesel schema, transactions, the embedded migrations and the User
//! Synchronization gate. It imports nothing but [`crate::error`].

pub mod connection;
pub(crate) mod gate;
pub(crate) mod migrations;
pub mod org;
pub mod schema;
pub(crate) mod sql;
pub(crate) mod transaction;
