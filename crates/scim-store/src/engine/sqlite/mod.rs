//! What the engine does only on SQLite: the single writer with group
//! commit, the background checkpointer, and user edits decided before the
//! writer.

pub(crate) mod checkpoint;
pub(crate) mod user_edit;
pub(crate) mod writer;
