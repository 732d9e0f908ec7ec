//! What the engine does only on PostgreSQL: user writes batched into
//! shared transactions.

pub mod user_writes;
