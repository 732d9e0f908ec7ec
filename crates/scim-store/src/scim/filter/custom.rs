//! The attributes of custom schema extensions (`scim::extensions`) in
//! filters and `sortBy`: kept as `user_values` rows, compared and
//! ordered as their type (string, boolean, number, dateTime) orders.

use scim_core::filter::{AttrPath, CompValue, CompareOp};
use scim_core::schema::AttrType;

use crate::db::sql::{Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::attributes::{col, hashed, Kind};
use crate::scim::filter::compare::{invalid, op_name, push_compare};
use crate::scim::filter::resolve::{resolve, CustomLeaf, Field, Resource};

/// The numeric SQL type custom `integer` and `decimal` values are compared
/// as.
fn numeric_type(b: &SqlBuilder) -> &'static str {
    match b.backend() {
        crate::db::connection::Backend::Sqlite => "REAL",
        crate::db::connection::Backend::Postgres => "NUMERIC",
    }
}

/// `u.id [NOT] IN (SELECT … FROM user_values v WHERE v.attr = … AND <cmp>)`
/// for a custom extension attribute.
pub(super) fn custom_compare(
    b: &mut SqlBuilder,
    res: Resource,
    leaf: &CustomLeaf,
    op: CompareOp,
    negate: bool,
    value: &CompValue,
    path: &AttrPath,
) -> Result<(), StoreError> {
    b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
    b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
        .bind(Bind::Integer(res.org().0))
        .push(" AND v.attr = ")
        .bind_text(leaf.attr.clone())
        .push(" AND ");
    match leaf.ty {
        AttrType::Boolean => {
            let c = col("v.value_ci", true, Kind::Bool);
            let Some(v) = value.as_bool() else {
                return push_compare(b, c, op, value, path);
            };
            if op != CompareOp::Eq {
                return push_compare(b, c, op, value, path);
            }
            b.push("v.value_ci = ")
                .bind_text(if v { "true" } else { "false" });
        }
        AttrType::Integer | AttrType::Decimal => {
            let CompValue::Number(n) = value else {
                return Err(invalid(format!(
                    "\"{path}\" is a number; compare it with an unquoted number"
                )));
            };
            let sym = match op {
                CompareOp::Eq => " = ",
                CompareOp::Gt => " > ",
                CompareOp::Ge => " >= ",
                CompareOp::Lt => " < ",
                CompareOp::Le => " <= ",
                other => {
                    return Err(invalid(format!(
                        "\"{path}\" is a number; co, sw and ew apply only to strings, not {}",
                        op_name(other)
                    )))
                }
            };
            let ty = numeric_type(b);
            // The CASE keeps PostgreSQL from casting another attribute's
            // text, whatever order it evaluates the conditions in.
            b.push("CAST(CASE WHEN v.attr = ")
                .bind_text(leaf.attr.clone())
                .push(" THEN v.value END AS ")
                .push(ty)
                .push(")")
                .push(sym)
                .push("CAST(")
                .bind_text(n.to_string())
                .push(" AS ")
                .push(ty)
                .push(")");
        }
        AttrType::DateTime => {
            if matches!(op, CompareOp::Co | CompareOp::Sw | CompareOp::Ew) {
                return Err(invalid(format!(
                    "\"{path}\" is a dateTime; co, sw and ew apply only to strings, use eq, gt, ge, lt or le"
                )));
            }
            let raw = value.as_text().unwrap_or_default();
            let normal = scim_core::datetime::normalize(&raw).ok_or_else(|| {
                invalid(format!(
                    "\"{raw}\" is not a dateTime; \"{path}\" needs an RFC 3339 date-time such as \"2011-05-13T04:42:34Z\""
                ))
            })?;
            // Stored lowered like every value_ci; the fixed form keeps its
            // text order (`t` and `z` sit at fixed places).
            let c = hashed("v.value_ci", true, Kind::TextCi);
            push_compare(b, c, op, &CompValue::String(normal), path)?;
        }
        _ if leaf.case_exact => {
            if op == CompareOp::Eq {
                // The lowered copy finds the rows through the index, the
                // value as written makes the match exact.
                push_compare(b, hashed("v.value_ci", true, Kind::TextCi), op, value, path)?;
                b.push(" AND ");
            }
            push_compare(b, col("v.value", true, Kind::TextExact), op, value, path)?;
        }
        _ => push_compare(b, hashed("v.value_ci", true, Kind::TextCi), op, value, path)?,
    }
    b.push(")");
    Ok(())
}

/// The sort key of a custom extension attribute: its first value
/// (`idx` order), as its type orders.
pub(super) fn custom_sort_key(b: &mut SqlBuilder, leaf: &CustomLeaf) {
    let expr = match leaf.ty {
        AttrType::Integer | AttrType::Decimal => None,
        _ if leaf.case_exact && matches!(leaf.ty, AttrType::String | AttrType::Reference) => {
            Some("v.value")
        }
        _ => Some("v.value_ci"),
    };
    b.push("(SELECT ");
    match expr {
        Some(e) => {
            b.push(e);
        }
        None => {
            let ty = numeric_type(b);
            b.push("CAST(v.value AS ").push(ty).push(")");
        }
    }
    b.push(" FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
        .bind_text(leaf.attr.clone())
        .push(" ORDER BY v.idx LIMIT 1)");
}

/// The numeric SQL type of the `sortBy` key of `path` when it is a custom
/// number (`integer` or `decimal`), which keyset pages compare as numbers:
/// the position holds the value's text ([`push_sort_text`]), cast like the
/// key on both sides of each comparison.
pub(crate) fn sort_key_number_type(
    b: &SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Option<&'static str> {
    matches!(
        resolve(res, path),
        Ok(Field::Custom(CustomLeaf {
            ty: AttrType::Integer | AttrType::Decimal,
            ..
        }))
    )
    .then(|| numeric_type(b))
}

/// For a custom number's `sortBy` key ([`sort_key_number_type`]): the
/// text of the value it is cast from (its first value as written), which
/// a keyset position keeps so that casting it again gives exactly the key.
pub(crate) fn push_sort_text(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
) -> Result<(), StoreError> {
    match resolve(res, path)? {
        Field::Custom(leaf) => {
            b.push("(SELECT v.value FROM user_values v WHERE v.user_id = u.id AND v.attr = ")
                .bind_text(leaf.attr)
                .push(" ORDER BY v.idx LIMIT 1)");
            Ok(())
        }
        _ => Err(StoreError::Internal(format!(
            "\"{path}\" is not a custom number"
        ))),
    }
}
