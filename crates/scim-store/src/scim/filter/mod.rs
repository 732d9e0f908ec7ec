//! SCIM filters (RFC 7644 §3.4.2.2) and `sortBy` (§3.4.2.3) translated to
//! SQL over `users` (alias `u`, with `user_values` as `v`) or `groups`
//! (alias `g`), with memberships in `group_members`.
//!
//! Attributes go through an allow-list per resource type ([`Resource`]):
//! each one the store can answer maps to a column of the resource's table
//! or to rows of another table (`user_values`, `group_members`); any other
//! attribute is `invalidFilter`. Every generated expression is two-valued
//! (never SQL NULL), so `not (…)` and `ne` also match resources that lack
//! the attribute, as RFC 7644 §3.4.2.2 requires for `ne`.
//!
//! The allow-list's attributes and columns are in `attributes.rs`, the
//! resource types and the resolution of a path in `resolve.rs`, one
//! column compared with one literal in `compare.rs`, custom extension
//! attributes in `custom.rs`, the filter's SQL in `translate.rs` and
//! `sortBy` keys in `sort.rs`; this module re-exports what the rest of
//! the store calls.

mod attributes;
mod compare;
mod custom;
mod resolve;
mod sort;
mod translate;

pub(crate) use crate::scim::filter::attributes::{
    single_leaves, ElemCol, CORE_USER_URN, MULTI_ATTRS, PATCH_MEMBERS,
};
pub(crate) use crate::scim::filter::custom::{push_sort_text, sort_key_number_type};
pub(crate) use crate::scim::filter::resolve::Resource;
pub(crate) use crate::scim::filter::sort::{push_sort_key, sort_key_is_bool};
pub(crate) use crate::scim::filter::translate::{push_element_filter, push_filter};

#[cfg(test)]
mod tests;
