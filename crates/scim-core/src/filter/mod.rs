//! The filter grammar of RFC 7644 §3.4.2.2 and the PATCH path grammar of
//! RFC 7644 §3.5.2, parsed into an AST.
//!
//! The AST is what the store translates into SQL through its allow-list of
//! attributes, and what PATCH uses (through [`matches`](fn@matches)) to select the
//! elements of a multi-valued attribute in memory.

mod ast;
mod eval;
mod parser;

pub use ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
pub use eval::matches;
pub use parser::{parse_attr_path, parse_filter, parse_patch_path, MAX_DEPTH, MAX_FILTER_LEN};
