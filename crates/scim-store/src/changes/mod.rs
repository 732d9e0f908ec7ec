//! The change log: one row for every committed change, written in the
//! same transaction as the change itself, the source of the operator's
//! activity trail and of the SCIM events delivered to the application
//! (docs/EVENTS.md).
//!
//! A write records its changes with [`record`] as the **last** statements
//! of its transaction. A reader follows the log by position, up to its
//! [`horizon`]: the position below which no row can still appear. A bare
//! sequence would not give that on PostgreSQL: a transaction that drew a
//! smaller position could commit after one that drew a larger. So `record`
//! takes the change log's transaction-scoped advisory lock **shared**
//! before drawing positions (writers never wait for each other), and the
//! horizon is read under the same lock taken exclusively, once no drawn
//! position is in flight. Taking the lock last keeps it held only for the
//! insert and the commit, and means a transaction holding it never waits
//! for a row lock, so it cannot deadlock with one waiting for it. On
//! SQLite the single writer commits in position order: the horizon is the
//! newest position.
//!
//! Never a secret and never a password, not even a hash, goes into a row:
//! callers build the `detail` and `data` from what the SCIM API returns.

mod actor;
mod event;
mod log;

pub use actor::{Actor, ActorKind, RequestId};
pub use event::Event;
pub use log::{
    horizon, last_position, list_changes, purge_changes, read_after, read_between, record,
    record_each, Change, ChangeQuery, NewChange,
};
