//! Whole-database tools: the SQLite online backup and the copy between
//! databases, the purge of soft-deleted users. The top layer: they may use everything else.

pub mod backup;
pub mod copy;
pub mod purge;
