//! One column compared with one literal, as every filter comparison
//! ends (RFC 7644 §3.4.2.2), and the `invalidFilter` errors it raises.

use scim_core::filter::{AttrPath, CompValue, CompareOp};
use scim_core::ScimError;

use crate::db::sql::{Bind, PatternKind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::attributes::{Column, Kind};

pub(super) fn kind_for(case_exact: bool) -> Kind {
    if case_exact {
        Kind::TextExact
    } else {
        Kind::TextCi
    }
}

pub(super) fn invalid(detail: String) -> StoreError {
    StoreError::Invalid(ScimError::invalid_filter(detail))
}

pub(super) fn op_name(op: CompareOp) -> &'static str {
    match op {
        CompareOp::Eq => "eq",
        CompareOp::Ne => "ne",
        CompareOp::Co => "co",
        CompareOp::Sw => "sw",
        CompareOp::Ew => "ew",
        CompareOp::Gt => "gt",
        CompareOp::Ge => "ge",
        CompareOp::Lt => "lt",
        CompareOp::Le => "le",
    }
}

/// Writes a two-valued comparison `column op value` (op is never `ne`;
/// callers negate `eq`). `nullable` columns get an `IS NOT NULL` guard so a
/// missing value compares false rather than NULL.
pub(super) fn push_compare(
    b: &mut SqlBuilder,
    c: Column,
    op: CompareOp,
    value: &CompValue,
    path: &AttrPath,
) -> Result<(), StoreError> {
    let Column {
        sql: column,
        nullable,
        kind,
        hashed,
    } = c;
    match kind {
        Kind::Bool => {
            let Some(v) = value.as_bool() else {
                return Err(invalid(format!(
                    "\"{path}\" is a boolean; compare it with true or false"
                )));
            };
            if op != CompareOp::Eq {
                return Err(invalid(format!(
                    "\"{path}\" is a boolean; only eq and ne apply to it (RFC 7644 §3.4.2.2), not {}",
                    op_name(op)
                )));
            }
            if nullable {
                // An absent `primary` is false (RFC 7643 §2.4).
                b.push("COALESCE(").push(column).push(", FALSE) = ");
            } else {
                b.push(column).push(" = ");
            }
            b.bind(Bind::Bool(v));
            Ok(())
        }
        Kind::TextCi | Kind::TextExact | Kind::Date => {
            // An unquoted `true` or number reads as its text here
            // (`CompValue::as_text`, docs/SCIM.md).
            let Some(raw) = value.as_text() else {
                return Err(invalid(format!(
                    "\"{path}\" is a {}; compare it with a quoted string",
                    if kind == Kind::Date {
                        "dateTime"
                    } else {
                        "string"
                    }
                )));
            };
            let literal = match kind {
                Kind::TextCi => raw.to_lowercase(),
                Kind::TextExact => raw.clone().into_owned(),
                Kind::Date => scim_core::datetime::normalize(&raw).ok_or_else(|| {
                    invalid(format!(
                        "\"{raw}\" is not a dateTime; \"{path}\" needs an RFC 3339 date-time such as \"2011-05-13T04:42:34Z\""
                    ))
                })?,
                Kind::Bool => {
                    return Err(invalid(format!(
                        "\"{path}\" is a boolean; compare it with true or false"
                    )))
                }
            };
            if nullable {
                b.push("(").push(column).push(" IS NOT NULL AND ");
            }
            match op {
                CompareOp::Eq | CompareOp::Ne if hashed => {
                    b.push_hashed_eq(column, literal);
                }
                CompareOp::Eq | CompareOp::Ne => {
                    b.push(column).push(" = ").bind_text(literal);
                }
                CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => {
                    let sym = match op {
                        CompareOp::Gt => " > ",
                        CompareOp::Ge => " >= ",
                        CompareOp::Lt => " < ",
                        _ => " <= ",
                    };
                    b.push(column).push(sym).bind_text(literal);
                }
                CompareOp::Co | CompareOp::Sw | CompareOp::Ew => {
                    if kind == Kind::Date {
                        return Err(invalid(format!(
                            "\"{path}\" is a dateTime; co, sw and ew apply only to strings, use eq, gt, ge, lt or le"
                        )));
                    }
                    let pk = match op {
                        CompareOp::Co => PatternKind::Contains,
                        CompareOp::Sw => PatternKind::StartsWith,
                        _ => PatternKind::EndsWith,
                    };
                    b.push_pattern(column, pk, &literal);
                }
            }
            if nullable {
                b.push(")");
            }
            Ok(())
        }
    }
}
