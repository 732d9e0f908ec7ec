//! The change log: one row for every committed change, written in the
//! same transaction as the change itself, the source of the operator's
//! activity trail and of the SCIM events delivered to the application
//! (docs/EVENTS.md).
//!
//! A write records its changes with [`record`] as the **last** statements
//! of its transaction. On PostgreSQL, `record` first takes the change
//! log's transaction-scoped advisory lock, so positions are drawn and made
//! visible in commit order: a reader that has seen position `p` never
//! later finds a smaller one appear (a bare sequence would not give that;
//! a transaction that drew a smaller value could commit later). Taking
//! the lock last keeps it held only for the insert and the commit, and
//! means a transaction holding it never waits for a row lock, so it
//! cannot deadlock with one waiting for it. On SQLite the single writer
//! already commits in position order.
//!
//! Never a secret and never a password, not even a hash, goes into a row:
//! callers build the `detail` and `data` from what the SCIM API returns.

mod actor;
mod event;
mod log;

pub use actor::{Actor, ActorKind, RequestId};
pub use event::Event;
pub use log::{
    last_position, list_changes, purge_changes, read_after, record, record_each, Change,
    ChangeQuery, NewChange,
};
