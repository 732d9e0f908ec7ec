//! A filter (RFC 7644 §3.4.2.2) as an SQL condition over the resource's
//! aliased table, and a PATCH path's value filter (§3.5.2) as one over
//! a row of `group_members`.

use scim_core::filter::{AttrPath, CompValue, CompareOp, Filter};

use crate::db::sql::{Bind, SqlBuilder};
use crate::error::StoreError;
use crate::scim::filter::attributes::{
    col, hashed, Column, ElemCol, Kind, MultiAttr, RelSub, Relation, SingleLeaf,
};
use crate::scim::filter::compare::{invalid, kind_for, op_name, push_compare};
use crate::scim::filter::custom::custom_compare;
use crate::scim::filter::resolve::{resolve, Field, PathPrefix, Resource};

/// How deep `and`/`or`/`not` may nest before we refuse (the parser has its
/// own limit; this one protects the translator if an AST is built by hand).
const MAX_DEPTH: usize = 64;

/// The `user_values` attrs a complex attribute's presence is judged by.
fn push_attr_in(b: &mut SqlBuilder, leaves: &[SingleLeaf]) {
    b.push("v.attr IN (");
    for (i, leaf) in leaves.iter().enumerate() {
        if i > 0 {
            b.push(", ");
        }
        b.bind_text(leaf.attr.clone());
    }
    b.push(")");
}

/// Appends the SQL condition (over the resource's aliased table, `users u`
/// or `groups g`) for `filter`.
pub(crate) fn push_filter(
    b: &mut SqlBuilder,
    res: Resource,
    filter: &Filter,
) -> Result<(), StoreError> {
    expr(b, res, filter, 0)
}

/// Appends the condition over one row of `rel`'s table for a value filter
/// such as the `[…]` of the PATCH path `members[value eq "x"]` (RFC 7644
/// §3.5.2), whose paths name `rel`'s sub-attributes.
pub(crate) fn push_element_filter(
    b: &mut SqlBuilder,
    rel: &'static Relation,
    filter: &Filter,
) -> Result<(), StoreError> {
    elem_expr(b, Elements::Rel(rel), filter, 0)
}

fn expr(
    b: &mut SqlBuilder,
    res: Resource,
    filter: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            let joiner = if matches!(filter, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            expr(b, res, l, depth + 1)?;
            b.push(joiner);
            expr(b, res, r, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            expr(b, res, inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Filter::Present(path) => present(b, res, path),
        Filter::Compare(path, op, value) => compare(b, res, path, *op, value),
        Filter::ValuePath(path, inner) => value_path(b, res, path, inner, depth),
    }
}

/// `<id> [NOT] IN (SELECT <owner> FROM <rel> WHERE <base> AND ` — the
/// caller appends the row condition and the closing parenthesis.
fn push_relation_in(b: &mut SqlBuilder, res: Resource, rel: &Relation, negate: bool) {
    b.push(res.id_column())
        .push(if negate { " NOT IN" } else { " IN" })
        .push(" (SELECT ")
        .push(rel.owner_key)
        .push(" FROM ")
        .push(rel.from)
        .push(" WHERE ")
        .push(rel.base_cond)
        .push(" AND ");
}

/// `rel`'s `value` sub-attribute: what `members eq "x"` compares
/// (RFC 7644 §3.4.2.2, a multi-valued attribute without a sub-attribute).
fn relation_value(rel: &Relation, path: &AttrPath) -> Result<RelSub, StoreError> {
    rel.subs
        .iter()
        .copied()
        .find(|s| s.name == "value")
        .ok_or_else(|| {
            invalid(format!(
                "\"{path}\" has no value sub-attribute; filter on one of its sub-attributes"
            ))
        })
}

fn present(b: &mut SqlBuilder, res: Resource, path: &AttrPath) -> Result<(), StoreError> {
    match resolve(res, path)? {
        // Empty strings are stored as NULL, so presence is non-NULL; a NOT
        // NULL column is always present on a stored resource.
        Field::Column(c) => {
            if c.nullable {
                b.push(c.sql).push(" IS NOT NULL");
            } else {
                b.push("1 = 1");
            }
        }
        Field::ResourceType => {
            b.push("1 = 1");
        }
        Field::Single(leaf) => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr)
                .push(")");
        }
        Field::Custom(leaf) => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr)
                .push(")");
        }
        Field::Complex { leaves, .. } => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND ");
            push_attr_in(b, &leaves);
            b.push(")");
        }
        Field::Multi { attr, sub } => {
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name);
            if let Some(col) = sub {
                b.push(" AND ").push(col.column()).push(" IS NOT NULL");
            }
            b.push(")");
        }
        Field::Relation { rel, sub } => {
            // EXISTS probes the owner's rows through an index instead of
            // collecting every owner of any row.
            b.push("EXISTS (SELECT 1 FROM ")
                .push(rel.from)
                .push(" WHERE ")
                .push(rel.owner_key)
                .push(" = ")
                .push(res.id_column())
                .push(" AND ")
                .push(rel.base_cond);
            if let Some(s) = sub.filter(|s| s.column.nullable) {
                b.push(" AND ").push(s.column.sql).push(" IS NOT NULL");
            }
            b.push(")");
        }
    }
    Ok(())
}

/// `attr eq null` / `attr ne null`: absence / presence.
fn compare_null(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
) -> Result<(), StoreError> {
    match op {
        CompareOp::Eq => {
            b.push("NOT (");
            present(b, res, path)?;
            b.push(")");
            Ok(())
        }
        CompareOp::Ne => present(b, res, path),
        other => Err(invalid(format!(
            "null can only be compared with eq or ne, not {}",
            op_name(other)
        ))),
    }
}

fn compare(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
    value: &CompValue,
) -> Result<(), StoreError> {
    if matches!(value, CompValue::Null) {
        return compare_null(b, res, path, op);
    }
    let field = resolve(res, path)?;
    // `ne` is `not eq`: with two-valued `eq` this matches resources lacking
    // the attribute too.
    let (negate, op) = if op == CompareOp::Ne {
        (true, CompareOp::Eq)
    } else {
        (false, op)
    };
    match field {
        Field::Column(c) => {
            if negate {
                b.push("NOT (");
            }
            push_compare(b, c, op, value, path)?;
            if negate {
                b.push(")");
            }
            Ok(())
        }
        Field::ResourceType => resource_type(b, res, path, op, negate, value),
        Field::Custom(leaf) => custom_compare(b, res, &leaf, op, negate, value, path),
        Field::Single(leaf) => {
            b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
            b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(leaf.attr.clone())
                .push(" AND ");
            let c = hashed("v.value_ci", true, kind_for(leaf.case_exact));
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
        Field::Complex { .. } => Err(invalid(format!(
            "\"{path}\" is complex; compare one of its sub-attributes (e.g. \"{path}.{}\")",
            if path.attr.eq_ignore_ascii_case("name") {
                "familyName"
            } else {
                "value"
            }
        ))),
        Field::Multi { attr, sub } => {
            // `emails eq "x"` means `emails.value eq "x"` (RFC 7644 §3.4.2.2
            // for multi-valued attributes without a sub-attribute).
            let col = match sub {
                Some(c) => c,
                None if attr.subs.contains(&ElemCol::Value) => ElemCol::Value,
                None => {
                    return Err(invalid(format!(
                        "\"{path}\" has no value sub-attribute; filter on one of its sub-attributes, e.g. \"{path}.locality\""
                    )))
                }
            };
            b.push(if negate { "u.id NOT IN" } else { "u.id IN" });
            b.push(" (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name)
                .push(" AND ");
            let c = values_column(attr, col);
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
        Field::Relation { rel, sub } => {
            let sub = match sub {
                Some(s) => s,
                None => relation_value(rel, path)?,
            };
            push_relation_in(b, res, rel, negate);
            let c = sub.column;
            push_compare(b, c, op, value, path)?;
            b.push(")");
            Ok(())
        }
    }
}

/// The column of an element row `v` of `user_values` for a sub-attribute
/// of `attr`.
fn values_column(attr: MultiAttr, c: ElemCol) -> Column {
    let kind = match c {
        ElemCol::Primary => Kind::Bool,
        ElemCol::Value => kind_for(attr.value_case_exact),
        _ => Kind::TextCi,
    };
    if c == ElemCol::Value {
        hashed(c.column(), true, kind)
    } else {
        col(c.column(), true, kind)
    }
}

/// `meta.resourceType` is a constant per resource type (caseExact, RFC
/// 7643 §3.1): decide in Rust and emit a constant condition.
fn resource_type(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    op: CompareOp,
    negate: bool,
    value: &CompValue,
) -> Result<(), StoreError> {
    let Some(lit) = value.as_text() else {
        return Err(invalid(format!(
            "\"{path}\" is a string; compare it with a quoted string"
        )));
    };
    let rt = res.type_name();
    let lit = lit.as_ref();
    let hit = match op {
        CompareOp::Eq | CompareOp::Ne => rt == lit,
        CompareOp::Co => rt.contains(lit),
        CompareOp::Sw => rt.starts_with(lit),
        CompareOp::Ew => rt.ends_with(lit),
        CompareOp::Gt => rt > lit,
        CompareOp::Ge => rt >= lit,
        CompareOp::Lt => rt < lit,
        CompareOp::Le => rt <= lit,
    };
    b.push(if hit != negate { "1 = 1" } else { "1 = 0" });
    Ok(())
}

fn value_path(
    b: &mut SqlBuilder,
    res: Resource,
    path: &AttrPath,
    inner: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    match resolve(res, path)? {
        Field::Multi { attr, sub: None } => {
            // One subquery: some element row satisfies the whole inner filter.
            b.push("u.id IN (SELECT v.user_id FROM user_values v WHERE v.org_id = ")
                .bind(Bind::Integer(res.org().0))
                .push(" AND v.attr = ")
                .bind_text(attr.name)
                .push(" AND ");
            elem_expr(b, Elements::Values(attr), inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Field::Relation { rel, sub: None } => {
            push_relation_in(b, res, rel, false);
            elem_expr(b, Elements::Rel(rel), inner, depth + 1)?;
            b.push(")");
            Ok(())
        }
        Field::Complex { prefix, .. } => {
            // A single-valued complex attribute has one "element": the user
            // itself, so `name[givenName eq "x"]` is `name.givenName eq "x"`.
            let rewritten = prefix_paths(inner, &prefix, depth)?;
            expr(b, res, &rewritten, depth + 1)
        }
        _ => Err(invalid(format!(
            "\"{path}\" is not a multi-valued or complex attribute, so it cannot take a [filter]"
        ))),
    }
}

fn prefix_paths(f: &Filter, prefix: &PathPrefix, depth: usize) -> Result<Filter, StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    let sub = |p: &AttrPath| -> Result<AttrPath, StoreError> {
        if p.sub_attr.is_some() || p.urn.is_some() {
            return Err(invalid(format!(
                "inside {}[…] name a sub-attribute only, not \"{p}\"",
                prefix.attr
            )));
        }
        Ok(AttrPath {
            urn: prefix.urn.clone(),
            attr: prefix.attr.clone(),
            sub_attr: Some(p.attr.clone()),
        })
    };
    Ok(match f {
        Filter::And(l, r) => Filter::And(
            Box::new(prefix_paths(l, prefix, depth + 1)?),
            Box::new(prefix_paths(r, prefix, depth + 1)?),
        ),
        Filter::Or(l, r) => Filter::Or(
            Box::new(prefix_paths(l, prefix, depth + 1)?),
            Box::new(prefix_paths(r, prefix, depth + 1)?),
        ),
        Filter::Not(i) => Filter::Not(Box::new(prefix_paths(i, prefix, depth + 1)?)),
        Filter::Present(p) => Filter::Present(sub(p)?),
        Filter::Compare(p, op, v) => Filter::Compare(sub(p)?, *op, v.clone()),
        Filter::ValuePath(p, _) => {
            return Err(invalid(format!(
                "value filters cannot nest: \"{p}[…]\" inside {}[…]",
                prefix.attr
            )))
        }
    })
}

/// The element rows a value filter (`attr[…]`) is evaluated over.
#[derive(Debug, Clone, Copy)]
enum Elements {
    /// Rows `v` of `user_values` for a multi-valued User attribute.
    Values(MultiAttr),
    /// Rows of a relation's table.
    Rel(&'static Relation),
}

impl Elements {
    fn name(self) -> &'static str {
        match self {
            Elements::Values(a) => a.name,
            Elements::Rel(r) => r.name,
        }
    }

    fn column(self, sub: &str) -> Option<Column> {
        match self {
            Elements::Values(a) => a
                .subs
                .iter()
                .copied()
                .find(|c| c.name().eq_ignore_ascii_case(sub))
                .map(|c| values_column(a, c)),
            Elements::Rel(r) => r
                .subs
                .iter()
                .find(|s| s.name.eq_ignore_ascii_case(sub))
                .map(|s| s.column),
        }
    }

    fn sub_names(self) -> Vec<&'static str> {
        match self {
            Elements::Values(a) => a.subs.iter().map(|c| c.name()).collect(),
            Elements::Rel(r) => r.subs.iter().map(|s| s.name).collect(),
        }
    }
}

/// The condition over one element row for a value filter.
fn elem_expr(
    b: &mut SqlBuilder,
    elems: Elements,
    filter: &Filter,
    depth: usize,
) -> Result<(), StoreError> {
    if depth > MAX_DEPTH {
        return Err(invalid(format!(
            "the filter nests deeper than {MAX_DEPTH} levels; simplify it"
        )));
    }
    let column_of = |p: &AttrPath| -> Result<Column, StoreError> {
        let found = if p.urn.is_none() && p.sub_attr.is_none() {
            elems.column(&p.attr)
        } else {
            None
        };
        found.ok_or_else(|| {
            invalid(format!(
                "\"{p}\" is not a filterable sub-attribute of {}; use one of {}",
                elems.name(),
                elems.sub_names().join(", ")
            ))
        })
    };
    match filter {
        Filter::And(l, r) | Filter::Or(l, r) => {
            let joiner = if matches!(filter, Filter::And(..)) {
                " AND "
            } else {
                " OR "
            };
            b.push("(");
            elem_expr(b, elems, l, depth + 1)?;
            b.push(joiner);
            elem_expr(b, elems, r, depth + 1)?;
            b.push(")");
        }
        Filter::Not(inner) => {
            b.push("NOT (");
            elem_expr(b, elems, inner, depth + 1)?;
            b.push(")");
        }
        Filter::Present(p) => {
            let c = column_of(p)?;
            b.push(c.sql).push(" IS NOT NULL");
        }
        Filter::Compare(p, op, value) => {
            let c = column_of(p)?;
            if matches!(value, CompValue::Null) {
                match op {
                    CompareOp::Eq => b.push(c.sql).push(" IS NULL"),
                    CompareOp::Ne => b.push(c.sql).push(" IS NOT NULL"),
                    other => {
                        return Err(invalid(format!(
                            "null can only be compared with eq or ne, not {}",
                            op_name(*other)
                        )))
                    }
                };
                return Ok(());
            }
            let (negate, op) = if *op == CompareOp::Ne {
                (true, CompareOp::Eq)
            } else {
                (false, *op)
            };
            if negate {
                b.push("NOT (");
            }
            push_compare(b, c, op, value, p)?;
            if negate {
                b.push(")");
            }
        }
        Filter::ValuePath(p, _) => {
            return Err(invalid(format!(
                "value filters cannot nest: \"{p}[…]\" inside {}[…]",
                elems.name()
            )))
        }
    }
    Ok(())
}
