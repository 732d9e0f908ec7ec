//! `sortBy` (RFC 7644 §3.4.2.3): the key expression of an attribute.

use scim_core::filter::AttrPath;
use scim_core::ScimError;

use crate::db::sql::SqlBuilder;
use crate::error::StoreError;
use crate::scim::filter::attributes::{ElemCol, Kind};
use crate::scim::filter::custom::custom_sort_key;
use crate::scim::filter::resolve::{resolve, Field, Resource};

/// Whether the `sortBy` key of `path` is a boolean (`active`,
/// `emails.primary`): keyset pages read it back as text, so it is cast.
pub(crate) fn sort_key_is_bool(res: Resource, path: &AttrPath) -> bool {
    match resolve(res, path) {
        Ok(Field::Column(c)) => c.kind == Kind::Bool,
        Ok(Field::Multi {
            sub: Some(ElemCol::Primary),
            ..
        }) => true,
        _ => false,
    }
}

/// Appends the `sortBy` key expression (over the resource's aliased table)
/// for `path` (RFC 7644 §3.4.2.3). For a multi-valued User attribute the
/// key is the primary element's value, or the first element's.
pub(crate) fn push_sort_key(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Result<(), StoreError> {
    let sort_err = |p: &AttrPath| {
        StoreError::Invalid(ScimError::invalid_value(format!(
            "cannot sort by \"{p}\"; sortBy takes a filterable single-valued attribute or a multi-valued attribute's sub-attribute{}",
            match res {
                Resource::User(..) => "",
                Resource::Group(_) =>
                    " (for Groups: displayName, externalId, id, meta.created, meta.lastModified)",
            }
        )))
    };
    let field = resolve(res, path).map_err(|e| match e {
        StoreError::Invalid(_) => sort_err(path),
        other => other,
    })?;
    match field {
        Field::Column(c) => b.push(c.sql),
        Field::ResourceType => b.push(res.created_column()),
        Field::Single(leaf) => b
            .push("(SELECT v.value_ci FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
            .bind_text(leaf.attr)
            .push(")"),
        Field::Custom(leaf) => {
            custom_sort_key(b, &leaf);
            b
        }
        Field::Complex { .. } | Field::Relation { .. } => return Err(sort_err(path)),
        Field::Multi { attr, sub } => {
            let col = match sub {
                Some(c) => c,
                None if attr.subs.contains(&ElemCol::Value) => ElemCol::Value,
                None => return Err(sort_err(path)),
            };
            b.push("(SELECT ")
                .push(col.column())
                .push(" FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
                .bind_text(attr.name)
                .push(" ORDER BY COALESCE(v.is_primary, FALSE) DESC, v.idx LIMIT 1)")
        }
    };
    Ok(())
}
