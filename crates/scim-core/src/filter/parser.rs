//! Recursive-descent parser for filters (RFC 7644 §3.4.2.2) and PATCH paths
//! (RFC 7644 §3.5.2).
//!
//! The grammar, as RFC 7644 Figure 1 with errata 4690 / 7322 applied (a value
//! filter may use `and`, `or`, `not (…)` and parentheses, but never a nested
//! value path):
//!
//! ```text
//! FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
//! valuePath = attrPath "[" valFilter "]"
//! attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
//! logExp    = FILTER SP ("and" / "or") SP FILTER
//! compValue = false / null / true / number / string
//! attrPath  = [URI ":"] ATTRNAME *1subAttr
//! ```
//!
//! `and` binds tighter than `or` (RFC 7644 §3.4.2.2, Table 5); keywords and
//! operators are case-insensitive. Every error carries the byte offset and
//! the offending token, so the caller knows what to fix.
//!
//! Recursion only happens on `(`, `not (` and `[`, each of which counts
//! against [`MAX_DEPTH`] *before* recursing, and `and` / `or` chains are
//! parsed iteratively, so no input can overflow the stack.

use super::ast::{AttrPath, CompValue, CompareOp, Filter, PatchPath};
use crate::ScimError;

/// The deepest nesting of parentheses, `not` and value paths accepted.
pub const MAX_DEPTH: usize = 32;
/// The longest filter (in bytes) accepted.
pub const MAX_FILTER_LEN: usize = 8192;

/// The operator keywords, for error messages.
const OPERATORS: &str = "eq, ne, co, sw, ew, pr, gt, ge, lt, le";

/// The core schemas' URNs are the only URNs without an extension object, so
/// they are worth naming in the hint for a malformed URN.
const URN_EXAMPLE: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

/// Parses a filter expression (RFC 7644 §3.4.2.2).
///
/// Besides the RFC grammar this accepts Microsoft Entra ID's non-standard
/// `emails[type eq "work"].value eq "x"`, normalised to
/// `ValuePath(emails, And(type eq "work", value eq "x"))`.
///
/// Errors are `invalidFilter`, with a detail naming the position.
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    parse_filter_inner(input).map_err(ScimError::invalid_filter)
}

fn parse_filter_inner(input: &str) -> Result<Filter, String> {
    check_len(input, "filter")?;
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err(
            "the filter is empty; expected an expression such as userName eq \"bjensen\"".into(),
        );
    }
    let filter = p.parse_or(0, Ctx::Filter)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(p.trailing("the end of the filter"));
    }
    Ok(filter)
}

/// Parses an attribute path (`[urn:]attr[.sub]`), as used in `sortBy`,
/// `attributes` and `excludedAttributes` (RFC 7644 §3.4.2.3, §3.9).
///
/// Surrounding whitespace is ignored. Errors are `invalidPath`.
pub fn parse_attr_path(input: &str) -> Result<AttrPath, ScimError> {
    parse_attr_path_inner(input).map_err(ScimError::invalid_path)
}

fn parse_attr_path_inner(input: &str) -> Result<AttrPath, String> {
    check_len(input, "attribute path")?;
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err(
            "the attribute path is empty; expected a name such as userName or name.familyName"
                .into(),
        );
    }
    let path = p.parse_path_token(Ctx::Filter)?;
    p.skip_ws();
    if !p.at_end() {
        return Err(format!(
            "unexpected {} at position {} in the attribute path; expected [urn:]attribute[.subAttribute]",
            p.describe(p.pos),
            p.pos
        ));
    }
    Ok(path)
}

/// Parses a PATCH `path` (RFC 7644 §3.5.2: `PATH = attrPath / valuePath
/// [subAttr]`), e.g. `members`, `name.givenName`,
/// `emails[type eq "work"].value` or
/// `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value`.
///
/// Errors are `invalidPath`, including a malformed filter inside `[…]`.
pub fn parse_patch_path(input: &str) -> Result<PatchPath, ScimError> {
    parse_patch_path_inner(input).map_err(ScimError::invalid_path)
}

fn parse_patch_path_inner(input: &str) -> Result<PatchPath, String> {
    check_len(input, "path")?;
    let mut p = Parser::new(input);
    p.skip_ws();
    if p.at_end() {
        return Err("the path is empty; expected an attribute path such as members or emails[type eq \"work\"].value".into());
    }
    let start = p.pos;
    let path = p.parse_path_token(Ctx::Filter)?;
    let mut out = PatchPath {
        urn: path.urn,
        attr: path.attr,
        filter: None,
        sub_attr: path.sub_attr,
    };
    if p.peek() == Some('[') {
        if let Some(sub) = &out.sub_attr {
            return Err(format!(
                "a value filter \"[...]\" at position {} must follow a multi-valued attribute, not the sub-attribute \"{}.{sub}\"",
                p.pos, out.attr
            ));
        }
        let open = p.pos;
        p.bump();
        let filter = p
            .parse_or(1, Ctx::ValueFilter)
            .map_err(|e| format!("invalid value filter in the path: {e}"))?;
        p.expect_close(']', open)
            .map_err(|e| format!("invalid value filter in the path: {e}"))?;
        out.filter = Some(filter);
        if p.peek() == Some('.') {
            p.bump();
            out.sub_attr = Some(p.parse_sub_attr_name()?);
        }
    }
    p.skip_ws();
    if !p.at_end() {
        return Err(format!(
            "unexpected {} at position {} in the path starting at position {start}; expected attribute[.subAttribute] or attribute[filter][.subAttribute]",
            p.describe(p.pos),
            p.pos
        ));
    }
    Ok(out)
}

fn check_len(input: &str, what: &str) -> Result<(), String> {
    if input.len() > MAX_FILTER_LEN {
        return Err(format!(
            "the {what} is {} bytes long; the limit is {MAX_FILTER_LEN} bytes",
            input.len()
        ));
    }
    Ok(())
}

/// Where an expression is being parsed: at the top of a filter, or inside a
/// value filter `attr[...]`, whose paths name sub-attributes of the element
/// and which may not nest another value path (RFC 7644 errata 4690).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Filter,
    ValueFilter,
}

/// Characters that may appear in an attribute path token: RFC 7643 nameChar,
/// `.` for sub-attributes, `:` for URNs and `$` for `$ref`.
fn is_path_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':' | '$')
}

fn is_ws(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_delim(c: char) -> bool {
    matches!(c, '(' | ')' | '[' | ']' | '"')
}

/// Quotes a fragment of input for an error message, escaping only control
/// characters so that multi-byte text stays readable.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_debug());
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

struct Parser<'a> {
    src: &'a str,
    /// Byte offset; always on a char boundary, because it only moves past
    /// whole chars.
    pos: usize,
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> Self {
        Self { src, pos: 0 }
    }

    fn rest(&self) -> &'a str {
        self.src.get(self.pos..).unwrap_or("")
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.src.len()
    }

    fn skip_ws(&mut self) {
        while self.peek().is_some_and(is_ws) {
            self.bump();
        }
    }

    /// Advances over chars satisfying `keep` and returns them.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> &'a str {
        let rest = self.rest();
        let len = rest
            .char_indices()
            .find(|&(_, c)| !keep(c))
            .map_or(rest.len(), |(i, _)| i);
        self.pos += len;
        rest.get(..len).unwrap_or("")
    }

    /// Whether the case-insensitive keyword `kw` starts here as a whole word.
    fn at_keyword(&self, kw: &str) -> bool {
        let rest = self.rest();
        match rest.get(..kw.len()) {
            Some(word) if word.eq_ignore_ascii_case(kw) => !rest
                .get(kw.len()..)
                .and_then(|after| after.chars().next())
                .is_some_and(is_path_char),
            _ => false,
        }
    }

    /// The token at `pos`, quoted, for error messages.
    fn describe(&self, pos: usize) -> String {
        let rest = self.src.get(pos..).unwrap_or("");
        match rest.chars().next() {
            None => "the end of the input".to_string(),
            // A lone quote would read `"""`; name it instead.
            Some('"') => "a '\"'".to_string(),
            Some(c) if is_delim(c) => quoted(&c.to_string()),
            Some(_) => {
                let end = rest
                    .char_indices()
                    .find(|&(_, c)| is_ws(c) || is_delim(c))
                    .map_or(rest.len(), |(i, _)| i);
                let token: String = rest.get(..end).unwrap_or("").chars().take(40).collect();
                quoted(&token)
            }
        }
    }

    /// The error for input left over where `expected` should be.
    fn trailing(&self, expected: &str) -> String {
        match self.peek() {
            Some(c @ (')' | ']')) => {
                let open = if c == ')' { '(' } else { '[' };
                format!(
                    "unexpected \"{c}\" at position {} with no matching \"{open}\"",
                    self.pos
                )
            }
            _ => format!(
                "unexpected {} at position {}; expected \"and\", \"or\" or {expected}",
                self.describe(self.pos),
                self.pos
            ),
        }
    }

    /// Counts one level of nesting, refusing to go past [`MAX_DEPTH`].
    fn enter(depth: usize, pos: usize) -> Result<usize, String> {
        if depth >= MAX_DEPTH {
            return Err(format!(
                "the filter nests deeper than {MAX_DEPTH} levels of parentheses, \"not\" and value paths (at position {pos})"
            ));
        }
        Ok(depth + 1)
    }

    fn expect_close(&mut self, close: char, open_pos: usize) -> Result<(), String> {
        self.skip_ws();
        if self.peek() == Some(close) {
            self.bump();
            return Ok(());
        }
        let open = if close == ')' { '(' } else { '[' };
        let expected = format!("\"{close}\" to close the \"{open}\" at position {open_pos}");
        if self.at_end() {
            return Err(format!("missing {expected}"));
        }
        match self.peek() {
            Some(c @ (')' | ']')) => Err(format!(
                "unexpected \"{c}\" at position {}; expected {expected}",
                self.pos
            )),
            _ => Err(self.trailing(&expected)),
        }
    }

    /// `FILTER *( "or" FILTER )`, left-associative.
    fn parse_or(&mut self, depth: usize, ctx: Ctx) -> Result<Filter, String> {
        let mut left = self.parse_and(depth, ctx)?;
        loop {
            self.skip_ws();
            if !self.at_keyword("or") {
                return Ok(left);
            }
            self.pos += 2;
            let right = self.parse_and(depth, ctx)?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
    }

    /// `FILTER *( "and" FILTER )`, left-associative; binds tighter than `or`.
    fn parse_and(&mut self, depth: usize, ctx: Ctx) -> Result<Filter, String> {
        let mut left = self.parse_unary(depth, ctx)?;
        loop {
            self.skip_ws();
            if !self.at_keyword("and") {
                return Ok(left);
            }
            self.pos += 3;
            let right = self.parse_unary(depth, ctx)?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
    }

    /// `"(" FILTER ")"`, `"not" "(" FILTER ")"`, or an attribute expression.
    fn parse_unary(&mut self, depth: usize, ctx: Ctx) -> Result<Filter, String> {
        self.skip_ws();
        let start = self.pos;
        if self.peek() == Some('(') {
            let depth = Self::enter(depth, start)?;
            self.bump();
            let inner = self.parse_or(depth, ctx)?;
            self.expect_close(')', start)?;
            return Ok(inner);
        }
        if self.at_keyword("not") {
            self.pos += 3;
            self.skip_ws();
            if self.peek() != Some('(') {
                return Err(format!(
                    "\"not\" at position {start} must be followed by a parenthesised filter, as in not (title pr); found {} at position {}",
                    self.describe(self.pos),
                    self.pos
                ));
            }
            let open = self.pos;
            let depth = Self::enter(depth, start)?;
            self.bump();
            let inner = self.parse_or(depth, ctx)?;
            self.expect_close(')', open)?;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.parse_attr_exp(depth, ctx)
    }

    /// `attrPath "pr"`, `attrPath op value`, `attrPath "[" valFilter "]"`,
    /// or Entra's `attrPath "[" valFilter "]" "." subAttr (op value / "pr")`.
    fn parse_attr_exp(&mut self, depth: usize, ctx: Ctx) -> Result<Filter, String> {
        let start = self.pos;
        let path = self.parse_path_token(ctx)?;
        let after_path = self.pos;
        self.skip_ws();
        if self.peek() != Some('[') {
            self.pos = after_path;
            return self.parse_operator_and_value(path);
        }
        let open = self.pos;
        if ctx == Ctx::ValueFilter {
            return Err(format!(
                "nested value paths are not allowed: \"[\" at position {open} is inside another value filter (RFC 7644 §3.4.2.2)"
            ));
        }
        if let Some(sub) = &path.sub_attr {
            return Err(format!(
                "a value filter \"[...]\" at position {open} must follow a multi-valued attribute, not the sub-attribute \"{}.{sub}\" at position {start}",
                path.attr
            ));
        }
        let depth = Self::enter(depth, open)?;
        self.bump();
        let inner = self.parse_or(depth, Ctx::ValueFilter)?;
        self.expect_close(']', open)?;
        if self.peek() == Some('.') {
            // Entra ID sends `emails[type eq "work"].value eq "x"`; the
            // element must satisfy both conditions, so it becomes one value
            // path over their conjunction.
            self.bump();
            let sub = self.parse_sub_attr_name()?;
            let cond = self.parse_operator_and_value(AttrPath::new(sub))?;
            let both = Filter::And(Box::new(inner), Box::new(cond));
            return Ok(Filter::ValuePath(path, Box::new(both)));
        }
        Ok(Filter::ValuePath(path, Box::new(inner)))
    }

    /// An attribute path token, split into URN, attribute and sub-attribute.
    fn parse_path_token(&mut self, ctx: Ctx) -> Result<AttrPath, String> {
        let start = self.pos;
        let token = self.take_while(is_path_char);
        if token.is_empty() {
            return Err(format!(
                "expected an attribute path at position {start}, found {}",
                self.describe(start)
            ));
        }
        let path = split_attr_path(token, start)?;
        if ctx == Ctx::ValueFilter && (path.urn.is_some() || path.sub_attr.is_some()) {
            return Err(format!(
                "{} at position {start} is not allowed inside a value filter: name a sub-attribute of the multi-valued attribute directly, as in emails[type eq \"work\"]",
                quoted(token)
            ));
        }
        Ok(path)
    }

    /// The sub-attribute name after `].`.
    fn parse_sub_attr_name(&mut self) -> Result<String, String> {
        let start = self.pos;
        let token = self.take_while(is_path_char);
        if token.is_empty() {
            return Err(format!(
                "expected a sub-attribute name after \"].\" at position {start}, found {}",
                self.describe(start)
            ));
        }
        check_name(token, start)?;
        Ok(token.to_string())
    }

    /// The word at the cursor (up to whitespace or a delimiter).
    fn take_word(&mut self) -> &'a str {
        self.take_while(|c| !is_ws(c) && !is_delim(c))
    }

    fn parse_operator_and_value(&mut self, path: AttrPath) -> Result<Filter, String> {
        self.skip_ws();
        let op_pos = self.pos;
        let word = self.take_word();
        if word.is_empty() {
            return Err(format!(
                "expected an operator (one of {OPERATORS}) after \"{path}\" at position {op_pos}, found {}",
                self.describe(op_pos)
            ));
        }
        let op = match word.to_ascii_lowercase().as_str() {
            "pr" => return self.finish_present(path, op_pos),
            "eq" => CompareOp::Eq,
            "ne" => CompareOp::Ne,
            "co" => CompareOp::Co,
            "sw" => CompareOp::Sw,
            "ew" => CompareOp::Ew,
            "gt" => CompareOp::Gt,
            "ge" => CompareOp::Ge,
            "lt" => CompareOp::Lt,
            "le" => CompareOp::Le,
            _ => {
                return Err(format!(
                    "unknown operator {} at position {op_pos}; expected one of {OPERATORS}",
                    quoted(word)
                ))
            }
        };
        self.skip_ws();
        let value = self.parse_comp_value(word, op_pos)?;
        Ok(Filter::Compare(path, op, value))
    }

    /// `pr` takes no value; a value after it is a client mistake worth
    /// naming rather than a generic "unexpected token".
    fn finish_present(&mut self, path: AttrPath, op_pos: usize) -> Result<Filter, String> {
        let save = self.pos;
        self.skip_ws();
        let value_follows = matches!(self.peek(), Some('"' | '-' | '0'..='9'))
            || self.at_keyword("true")
            || self.at_keyword("false")
            || self.at_keyword("null");
        if value_follows {
            return Err(format!(
                "the \"pr\" operator at position {op_pos} takes no value, but {} follows at position {}",
                self.describe(self.pos),
                self.pos
            ));
        }
        self.pos = save;
        Ok(Filter::Present(path))
    }

    /// `compValue = false / null / true / number / string` (JSON literals),
    /// and, leniently, an unquoted word (see [`unquoted_value`]).
    fn parse_comp_value(&mut self, op: &str, op_pos: usize) -> Result<CompValue, String> {
        let pos = self.pos;
        match self.peek() {
            Some('"') => self.parse_string(),
            Some(c) if !is_delim(c) => {
                let word = self.take_word();
                let value = unquoted_value(word, pos)?;
                if matches!(value, CompValue::String(_)) {
                    self.refuse_split_word(word, pos)?;
                }
                Ok(value)
            }
            _ => Err(format!(
                "missing value after operator {} at position {op_pos}; expected a JSON string in double quotes, a number, true, false or null, found {}",
                quoted(op),
                self.describe(pos)
            )),
        }
    }

    /// An unquoted value ends at whitespace, so `name.familyName eq Van
    /// Dyke` would leave "Dyke" behind; name the fix (quote the value)
    /// instead of the generic "expected and or or".
    fn refuse_split_word(&self, word: &str, pos: usize) -> Result<(), String> {
        let mut ahead = Parser {
            src: self.src,
            pos: self.pos,
        };
        ahead.skip_ws();
        let next = ahead.peek();
        let continues = ahead.pos > self.pos
            && next.is_some_and(|c| !is_delim(c))
            && !ahead.at_keyword("and")
            && !ahead.at_keyword("or");
        if continues {
            return Err(format!(
                "the unquoted value {} at position {pos} is followed by {} at position {}; a value containing spaces must be a JSON string in double quotes",
                quoted(word),
                ahead.describe(ahead.pos),
                ahead.pos
            ));
        }
        Ok(())
    }

    /// A JSON string; the escapes (`\"`, `\\`, `\uXXXX`, …) are decoded by
    /// serde_json so that they follow RFC 8259 exactly.
    fn parse_string(&mut self) -> Result<CompValue, String> {
        let start = self.pos;
        let rest = self.rest();
        let mut escaped = false;
        let mut end = None;
        for (i, c) in rest.char_indices().skip(1) {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                end = Some(i);
                break;
            }
        }
        let Some(end) = end else {
            return Err(format!(
                "unterminated string starting at position {start}; add the closing '\"' (and escape quotes inside it as \\\")"
            ));
        };
        let literal = rest.get(..=end).unwrap_or("");
        self.pos += end + 1;
        let value = serde_json::from_str::<String>(literal).map_err(|e| {
            format!(
                "invalid string at position {start}: {}; strings are JSON strings (valid escapes are \\\" \\\\ \\/ \\b \\f \\n \\r \\t \\uXXXX)",
                json_error(&e, start)
            )
        })?;
        // No stored value contains U+0000 (attribute values refuse it,
        // resource::nul_error), and PostgreSQL text cannot hold it.
        if value.contains('\0') {
            return Err(format!(
                "the string at position {start} contains the NUL character (U+0000), which no attribute value contains; remove it"
            ));
        }
        Ok(CompValue::String(value))
    }
}

/// An unquoted `compValue`. RFC 7644 §3.4.2.2 allows only the JSON
/// literals `true`, `false`, `null` and numbers unquoted, and they keep
/// their JSON meaning; any other word is read as a string (Microsoft's
/// SCIMReferenceCode tests send `userName sw O` and `meta.created gt
/// 2015-10-10T14:38:21.8617979-07:00`). The store and [`super::matches`]
/// read a string as a dateTime where the attribute is one, and `true` or a
/// number as text where the attribute is a string (docs/SCIM.md).
fn unquoted_value(word: &str, pos: usize) -> Result<CompValue, String> {
    match word.to_ascii_lowercase().as_str() {
        "true" => return Ok(CompValue::Bool(true)),
        "false" => return Ok(CompValue::Bool(false)),
        "null" => return Ok(CompValue::Null),
        _ => {}
    }
    if word.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        if let Ok(n) = word.parse::<serde_json::Number>() {
            return Ok(CompValue::Number(n));
        }
    }
    // No stored value contains a control character unescaped in a URL
    // query; U+0000 in particular cannot reach PostgreSQL text.
    if word.chars().any(char::is_control) {
        return Err(format!(
            "the unquoted value {} at position {pos} contains a control character; send the value as a JSON string in double quotes, with escapes",
            quoted(word)
        ));
    }
    Ok(CompValue::String(word.to_string()))
}

/// serde_json's message for a literal that starts at `start`, with its
/// "line 1 column N" (relative to the literal) turned into a position in
/// the filter.
fn json_error(e: &serde_json::Error, start: usize) -> String {
    let text = e.to_string();
    let message = text
        .rsplit_once(" at line ")
        .map_or(text.as_str(), |(m, _)| m);
    if e.column() == 0 {
        message.to_string()
    } else {
        format!("{message} at position {}", start + e.column() - 1)
    }
}

/// Splits `[urn:]attr[.sub]` at the last `:` (URNs contain dots, as in
/// `2.0`, so the sub-attribute is only looked for after it), and checks the
/// names against RFC 7643 §2.1 `ATTRNAME`.
fn split_attr_path(token: &str, start: usize) -> Result<AttrPath, String> {
    let (urn, name_part, name_pos) = match token.rfind(':') {
        Some(i) => {
            let urn = token.get(..i).unwrap_or("");
            check_urn(urn, token, start)?;
            (
                Some(urn.to_string()),
                token.get(i + 1..).unwrap_or(""),
                start + i + 1,
            )
        }
        None => (None, token, start),
    };
    if name_part.is_empty() {
        return Err(format!(
            "the attribute path {} at position {start} ends with \":\"; expected an attribute name after the schema URN",
            quoted(token)
        ));
    }
    let mut parts = name_part.split('.');
    let attr = parts.next().unwrap_or("");
    let sub = parts.next();
    if parts.next().is_some() {
        return Err(format!(
            "the attribute path {} at position {start} has more than one \".\"; SCIM allows one sub-attribute level, as in name.familyName",
            quoted(token)
        ));
    }
    check_name(attr, name_pos)?;
    if let Some(sub) = sub {
        check_name(sub, name_pos + attr.len() + 1)?;
    }
    Ok(AttrPath {
        urn,
        attr: attr.to_string(),
        sub_attr: sub.map(str::to_string),
    })
}

fn check_urn(urn: &str, token: &str, start: usize) -> Result<(), String> {
    let well_formed = urn.len() > 4
        && urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"))
        && urn.split(':').all(|segment| !segment.is_empty());
    if well_formed {
        Ok(())
    } else {
        Err(format!(
            "the attribute path {} at position {start} is qualified by {}, which is not a schema URN; expected a URN such as {URN_EXAMPLE} followed by \":\" and the attribute name",
            quoted(token),
            quoted(urn)
        ))
    }
}

/// RFC 7643 §2.1: `ATTRNAME = ALPHA *(nameChar)`, `nameChar = "-" / "_" /
/// DIGIT / ALPHA`; plus `$ref`, which RFC 7643 itself uses (§2.3.7).
fn check_name(name: &str, pos: usize) -> Result<(), String> {
    if name.eq_ignore_ascii_case("$ref") {
        return Ok(());
    }
    let mut chars = name.chars();
    let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if valid {
        Ok(())
    } else if name.is_empty() {
        Err(format!("empty attribute name at position {pos}"))
    } else {
        Err(format!(
            "invalid attribute name {} at position {pos}; names start with a letter and contain only letters, digits, \"-\" and \"_\"",
            quoted(name)
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::ScimType;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";
    const CORE_USER: &str = "urn:ietf:params:scim:schemas:core:2.0:User";

    fn p(attr: &str) -> AttrPath {
        AttrPath::new(attr)
    }

    fn ps(attr: &str, sub: &str) -> AttrPath {
        AttrPath::with_sub(attr, sub)
    }

    fn purn(urn: &str, attr: &str, sub: Option<&str>) -> AttrPath {
        AttrPath {
            urn: Some(urn.to_string()),
            attr: attr.to_string(),
            sub_attr: sub.map(str::to_string),
        }
    }

    fn s(v: &str) -> CompValue {
        CompValue::String(v.to_string())
    }

    fn n(v: &str) -> CompValue {
        CompValue::Number(v.parse().unwrap())
    }

    fn cmp(path: AttrPath, op: CompareOp, v: CompValue) -> Filter {
        Filter::Compare(path, op, v)
    }

    fn eq(path: AttrPath, v: &str) -> Filter {
        cmp(path, CompareOp::Eq, s(v))
    }

    fn pr(path: AttrPath) -> Filter {
        Filter::Present(path)
    }

    fn and(a: Filter, b: Filter) -> Filter {
        Filter::And(Box::new(a), Box::new(b))
    }

    fn or(a: Filter, b: Filter) -> Filter {
        Filter::Or(Box::new(a), Box::new(b))
    }

    fn not(a: Filter) -> Filter {
        Filter::Not(Box::new(a))
    }

    fn vp(path: AttrPath, f: Filter) -> Filter {
        Filter::ValuePath(path, Box::new(f))
    }

    /// Every example filter of RFC 7644 §3.4.2.2, in order.
    fn rfc_examples() -> Vec<(&'static str, Filter)> {
        use CompareOp::*;
        vec![
            ("userName Eq \"john\"", eq(p("userName"), "john")),
            (
                "name.familyName co \"O'Malley\"",
                cmp(ps("name", "familyName"), Co, s("O'Malley")),
            ),
            ("userName sw \"J\"", cmp(p("userName"), Sw, s("J"))),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName sw \"J\"",
                cmp(purn(CORE_USER, "userName", None), Sw, s("J")),
            ),
            ("title pr", pr(p("title"))),
            (
                "meta.lastModified gt \"2011-05-13T04:42:34Z\"",
                cmp(ps("meta", "lastModified"), Gt, s("2011-05-13T04:42:34Z")),
            ),
            (
                "meta.lastModified ge \"2011-05-13T04:42:34Z\"",
                cmp(ps("meta", "lastModified"), Ge, s("2011-05-13T04:42:34Z")),
            ),
            (
                "meta.lastModified lt \"2011-05-13T04:42:34Z\"",
                cmp(ps("meta", "lastModified"), Lt, s("2011-05-13T04:42:34Z")),
            ),
            (
                "meta.lastModified le \"2011-05-13T04:42:34Z\"",
                cmp(ps("meta", "lastModified"), Le, s("2011-05-13T04:42:34Z")),
            ),
            (
                "title pr and userType eq \"Employee\"",
                and(pr(p("title")), eq(p("userType"), "Employee")),
            ),
            (
                "title pr or userType eq \"Intern\"",
                or(pr(p("title")), eq(p("userType"), "Intern")),
            ),
            (
                "schemas eq \"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\"",
                eq(p("schemas"), ENTERPRISE),
            ),
            (
                "userType eq \"Employee\" and (emails co \"example.com\" or emails.value co \"example.org\")",
                and(
                    eq(p("userType"), "Employee"),
                    or(
                        cmp(p("emails"), Co, s("example.com")),
                        cmp(ps("emails", "value"), Co, s("example.org")),
                    ),
                ),
            ),
            (
                "userType ne \"Employee\" and not (emails co \"example.com\" or emails.value co \"example.org\")",
                and(
                    cmp(p("userType"), Ne, s("Employee")),
                    not(or(
                        cmp(p("emails"), Co, s("example.com")),
                        cmp(ps("emails", "value"), Co, s("example.org")),
                    )),
                ),
            ),
            (
                "userType eq \"Employee\" and (emails.type eq \"work\")",
                and(eq(p("userType"), "Employee"), eq(ps("emails", "type"), "work")),
            ),
            (
                "userType eq \"Employee\" and emails[type eq \"work\" and value co \"@example.com\"]",
                and(
                    eq(p("userType"), "Employee"),
                    vp(
                        p("emails"),
                        and(eq(p("type"), "work"), cmp(p("value"), Co, s("@example.com"))),
                    ),
                ),
            ),
            (
                "emails[type eq \"work\" and value co \"@example.com\"] or ims[type eq \"xmpp\" and value co \"@foo.com\"]",
                or(
                    vp(
                        p("emails"),
                        and(eq(p("type"), "work"), cmp(p("value"), Co, s("@example.com"))),
                    ),
                    vp(
                        p("ims"),
                        and(eq(p("type"), "xmpp"), cmp(p("value"), Co, s("@foo.com"))),
                    ),
                ),
            ),
        ]
    }

    /// Requests Microsoft Entra ID and Okta document sending, and other
    /// accepted forms (URN paths, literals, whitespace, case).
    fn other_examples() -> Vec<(&'static str, Filter)> {
        use CompareOp::*;
        vec![
            (
                "userName eq \"Test_User_dfeef4c5-5681-4387-b016-bdf221e82081\"",
                eq(p("userName"), "Test_User_dfeef4c5-5681-4387-b016-bdf221e82081"),
            ),
            (
                "externalId eq \"0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef\"",
                eq(p("externalId"), "0a21f0f2-8d2a-4f8e-bf98-7363c4aed4ef"),
            ),
            ("displayName eq \"Group 1\"", eq(p("displayName"), "Group 1")),
            (
                "emails[type eq \"work\"].value eq \"x@contoso.com\"",
                vp(
                    p("emails"),
                    and(eq(p("type"), "work"), eq(p("value"), "x@contoso.com")),
                ),
            ),
            (
                "emails[type eq \"work\"].value pr",
                vp(p("emails"), and(eq(p("type"), "work"), pr(p("value")))),
            ),
            (
                "emails[type eq \"work\"].value co \"@contoso.com\" and active eq true",
                and(
                    vp(
                        p("emails"),
                        and(eq(p("type"), "work"), cmp(p("value"), Co, s("@contoso.com"))),
                    ),
                    cmp(p("active"), Eq, CompValue::Bool(true)),
                ),
            ),
            (
                "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
                vp(
                    p("members"),
                    eq(p("value"), "2819c223-7f76-453a-919d-413861904646"),
                ),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department eq \"Sales\"",
                eq(purn(ENTERPRISE, "department", None), "Sales"),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"26118915\"",
                eq(purn(ENTERPRISE, "manager", Some("value")), "26118915"),
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"]",
                vp(purn(CORE_USER, "emails", None), eq(p("type"), "work")),
            ),
            ("members.$ref pr", pr(ps("members", "$ref"))),
            // Precedence: `and` binds tighter than `or` (RFC 7644 Table 5).
            (
                "a eq 1 or b eq 2 and c eq 3",
                or(
                    cmp(p("a"), Eq, n("1")),
                    and(cmp(p("b"), Eq, n("2")), cmp(p("c"), Eq, n("3"))),
                ),
            ),
            (
                "a eq 1 and b eq 2 or c eq 3",
                or(
                    and(cmp(p("a"), Eq, n("1")), cmp(p("b"), Eq, n("2"))),
                    cmp(p("c"), Eq, n("3")),
                ),
            ),
            (
                "(a eq 1 or b eq 2) and c eq 3",
                and(
                    or(cmp(p("a"), Eq, n("1")), cmp(p("b"), Eq, n("2"))),
                    cmp(p("c"), Eq, n("3")),
                ),
            ),
            (
                "a pr and b pr and c pr",
                and(and(pr(p("a")), pr(p("b"))), pr(p("c"))),
            ),
            ("a pr or b pr or c pr", or(or(pr(p("a")), pr(p("b"))), pr(p("c")))),
            // Keywords and operators in any case; `not(` without a space.
            (
                "title PR AND NOT(userType EQ \"Intern\") Or x Pr",
                or(
                    and(pr(p("title")), not(eq(p("userType"), "Intern"))),
                    pr(p("x")),
                ),
            ),
            // Whitespace around every token.
            (
                " \t userName   eq\t\"x\"   and  ( title  pr )  ",
                and(eq(p("userName"), "x"), pr(p("title"))),
            ),
            // Literals.
            ("loginCount gt 42", cmp(p("loginCount"), Gt, n("42"))),
            ("ratio le -1.25", cmp(p("ratio"), Le, n("-1.25"))),
            ("size lt 1.5e3", cmp(p("size"), Lt, n("1.5e3"))),
            ("size lt 2E-2", cmp(p("size"), Lt, n("2E-2"))),
            ("active eq true", cmp(p("active"), Eq, CompValue::Bool(true))),
            ("active eq FALSE", cmp(p("active"), Eq, CompValue::Bool(false))),
            ("manager eq Null", cmp(p("manager"), Eq, CompValue::Null)),
            (
                r#"displayName eq "a\"b\\c\/d\u00e9\n""#,
                eq(p("displayName"), "a\"b\\c/dé\n"),
            ),
            ("displayName eq \"Zoë 日本 🎉\"", eq(p("displayName"), "Zoë 日本 🎉")),
            ("displayName eq \"\"", eq(p("displayName"), "")),
            (
                "displayName eq \"a and b or not (c)\"",
                eq(p("displayName"), "a and b or not (c)"),
            ),
            // Value filters may use or, not and parentheses (errata 7322).
            (
                "emails[type eq \"work\" or (type eq \"home\" and value ew \"@example.com\")]",
                vp(
                    p("emails"),
                    or(
                        eq(p("type"), "work"),
                        and(eq(p("type"), "home"), cmp(p("value"), Ew, s("@example.com"))),
                    ),
                ),
            ),
            (
                "emails[not (type eq \"work\")]",
                vp(p("emails"), not(eq(p("type"), "work"))),
            ),
            // Names that merely start with a keyword are attributes.
            ("notes pr and order pr", and(pr(p("notes")), pr(p("order")))),
        ]
    }

    #[test]
    fn parses_rfc_7644_examples() {
        for (input, expected) in rfc_examples() {
            assert_eq!(parse_filter(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn parses_provider_requests_and_other_forms() {
        for (input, expected) in other_examples() {
            assert_eq!(parse_filter(input), Ok(expected), "{input}");
        }
    }

    /// Unquoted values (docs/SCIM.md, "Leniency"): JSON literals keep their
    /// meaning, any other word is a string, as Microsoft's SCIMReferenceCode
    /// tests send them.
    #[test]
    fn reads_unquoted_words_as_strings() {
        use CompareOp::*;
        let cases = vec![
            ("userName sw O", cmp(p("userName"), Sw, s("O"))),
            (
                "name.familyName eq Employee",
                eq(ps("name", "familyName"), "Employee"),
            ),
            (
                "meta.created gt 2015-10-10T14:38:21.8617979-07:00",
                cmp(
                    ps("meta", "created"),
                    Gt,
                    s("2015-10-10T14:38:21.8617979-07:00"),
                ),
            ),
            ("userName eq john", eq(p("userName"), "john")),
            ("userName eq O'Brien", eq(p("userName"), "O'Brien")),
            ("userName eq 1.2.3", eq(p("userName"), "1.2.3")),
            ("userName eq 01", eq(p("userName"), "01")),
            ("userName eq -", eq(p("userName"), "-")),
            ("userName eq tru", eq(p("userName"), "tru")),
            ("userName eq and", eq(p("userName"), "and")),
            ("userName eq é日本", eq(p("userName"), "é日本")),
            // JSON literals keep their JSON meaning.
            (
                "userName eq true",
                cmp(p("userName"), Eq, CompValue::Bool(true)),
            ),
            ("userName eq 42", cmp(p("userName"), Eq, n("42"))),
            ("userName eq null", cmp(p("userName"), Eq, CompValue::Null)),
            // The word ends at whitespace, a parenthesis or a bracket.
            ("(userName eq Bob)", eq(p("userName"), "Bob")),
            (
                "userName sw O and active eq true",
                and(
                    cmp(p("userName"), Sw, s("O")),
                    cmp(p("active"), Eq, CompValue::Bool(true)),
                ),
            ),
            (
                "emails[type eq work and value co example.com]",
                vp(
                    p("emails"),
                    and(eq(p("type"), "work"), cmp(p("value"), Co, s("example.com"))),
                ),
            ),
            (
                "userName eq a or userName eq b",
                or(eq(p("userName"), "a"), eq(p("userName"), "b")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_filter(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_malformed_filters_with_a_located_detail() {
        let cases: &[(&str, &str)] = &[
            ("", "empty"),
            ("  \t ", "empty"),
            (
                "(userName eq \"x\"",
                "missing \")\" to close the \"(\" at position 0",
            ),
            ("((title pr)", "missing \")\""),
            (
                "userName eq \"x\")",
                "unexpected \")\" at position 15 with no matching \"(\"",
            ),
            (
                "(title pr]",
                "unexpected \"]\" at position 9; expected \")\"",
            ),
            (
                "emails[type eq \"work\"",
                "missing \"]\" to close the \"[\" at position 6",
            ),
            ("emails[type eq \"work\")", "expected \"]\""),
            ("title pr]", "no matching \"[\""),
            (
                "userName eq \"john",
                "unterminated string starting at position 12",
            ),
            ("userName eq \"john\\\"", "unterminated string"),
            (
                "userName eq \"a\\u0000b\"",
                "the string at position 12 contains the NUL character (U+0000)",
            ),
            (
                "name.familyName eq Van Dyke",
                "the unquoted value \"Van\" at position 19 is followed by \"Dyke\" at position 23; a value containing spaces must be a JSON string in double quotes",
            ),
            ("userName eq O Brien and active eq true", "followed by \"Brien\""),
            (
                "userName eq a\u{1}b",
                "the unquoted value \"a\\u{1}b\" at position 12 contains a control character",
            ),
            ("userName eq a\u{0}", "contains a control character"),
            (
                "userName eq",
                "missing value after operator \"eq\" at position 9",
            ),
            ("userName eq   ", "missing value"),
            ("(userName eq)", "missing value"),
            ("userName", "expected an operator"),
            ("userName )", "expected an operator"),
            (
                "title pr \"x\"",
                "\"pr\" operator at position 6 takes no value",
            ),
            ("title pr 1", "takes no value"),
            ("title pr true", "takes no value"),
            (
                "userName eq \"x\" garbage",
                "unexpected \"garbage\" at position 16",
            ),
            (
                "userName eq \"x\" and",
                "expected an attribute path at position 19",
            ),
            (
                "userName eq \"x\" or ()",
                "expected an attribute path at position 20, found \")\"",
            ),
            ("and", "expected an operator"),
            (
                "userName eq \"a\\qb\"",
                "invalid string at position 12: invalid escape at position 15;",
            ),
            ("userName eq \"\\u12\"", "invalid string"),
            ("userName eq \"\\ud800\"", "invalid string"),
            ("userName eq \"tab\there\"", "invalid string"),
            ("userName é \"x\"", "unknown operator \"é\" at position 9"),
            ("userName = \"x\"", "unknown operator \"=\""),
            (
                "not userName eq \"x\"",
                "\"not\" at position 0 must be followed by a parenthesised filter",
            ),
            ("not", "must be followed by a parenthesised filter"),
            (
                "emails[type eq \"work\" and phones[type eq \"x\"]]",
                "nested value paths are not allowed: \"[\" at position 32",
            ),
            (
                "emails[emails.type eq \"work\"]",
                "\"emails.type\" at position 7 is not allowed inside a value filter",
            ),
            (
                "emails[urn:ietf:params:scim:schemas:core:2.0:User:type eq \"work\"]",
                "not allowed inside a value filter",
            ),
            (
                "name.familyName[value eq \"x\"]",
                "must follow a multi-valued attribute",
            ),
            ("emails[]", "expected an attribute path at position 7"),
            (
                "emails[type eq \"work\"].",
                "expected a sub-attribute name after \"].\"",
            ),
            ("emails[type eq \"work\"].value", "expected an operator"),
            (
                "emails[type eq \"work\"].a.b eq 1",
                "invalid attribute name \"a.b\"",
            ),
            ("1abc eq 1", "invalid attribute name \"1abc\" at position 0"),
            ("a.b.c eq 1", "more than one \".\""),
            ("name. eq 1", "empty attribute name at position 5"),
            (
                "foo:bar eq 1",
                "qualified by \"foo\", which is not a schema URN",
            ),
            ("urn:bar eq 1", "not a schema URN"),
            ("urn::x:bar eq 1", "not a schema URN"),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User: eq 1",
                "ends with \":\"",
            ),
            (
                "\"userName\" eq \"x\"",
                "expected an attribute path at position 0, found a '\"'",
            ),
            (
                "日本 eq \"x\"",
                "expected an attribute path at position 0, found \"日本\"",
            ),
            ("userName eq \"x\" \u{0}", "unexpected \"\\0\""),
        ];
        for (input, fragment) in cases {
            let err = parse_filter(input).expect_err(input);
            assert_eq!(err.scim_type, ScimType::InvalidFilter, "{input}");
            assert!(
                err.detail.contains(fragment),
                "{input:?}: detail {:?} lacks {fragment:?}",
                err.detail
            );
        }
    }

    #[test]
    fn unknown_operator_detail_is_exact() {
        let err = parse_filter("userName eqq \"x\"").unwrap_err();
        assert_eq!(
            err,
            ScimError::invalid_filter(
                "unknown operator \"eqq\" at position 9; expected one of eq, ne, co, sw, ew, pr, gt, ge, lt, le"
            )
        );
    }

    #[test]
    fn enforces_depth_limit() {
        let nested = |depth: usize| format!("{}title pr{}", "(".repeat(depth), ")".repeat(depth));
        assert_eq!(parse_filter(&nested(MAX_DEPTH)), Ok(pr(p("title"))));
        let err = parse_filter(&nested(MAX_DEPTH + 1)).unwrap_err();
        assert!(
            err.detail.contains("nests deeper than 32"),
            "{}",
            err.detail
        );

        let nots = |depth: usize| format!("{}title pr{}", "not(".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&nots(MAX_DEPTH)).is_ok());
        assert_eq!(
            parse_filter(&nots(MAX_DEPTH + 1)).unwrap_err().scim_type,
            ScimType::InvalidFilter
        );

        // The value path counts as a level too.
        let in_value_path =
            |depth: usize| format!("emails[{}type pr{}]", "(".repeat(depth), ")".repeat(depth));
        assert!(parse_filter(&in_value_path(MAX_DEPTH - 1)).is_ok());
        assert!(parse_filter(&in_value_path(MAX_DEPTH)).is_err());

        // Deep but within the length limit: refused without recursing.
        let deep = "(".repeat(MAX_FILTER_LEN);
        assert!(parse_filter(&deep).unwrap_err().detail.contains("deeper"));
        let deep_not = "not (".repeat(MAX_FILTER_LEN / 5);
        assert!(parse_filter(&deep_not)
            .unwrap_err()
            .detail
            .contains("deeper"));
    }

    #[test]
    fn enforces_length_limit() {
        let huge = "(".repeat(100_000);
        let err = parse_filter(&huge).unwrap_err();
        assert_eq!(err.scim_type, ScimType::InvalidFilter);
        assert!(
            err.detail.contains("100000 bytes long; the limit is 8192"),
            "{}",
            err.detail
        );

        let long_value = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN));
        assert!(parse_filter(&long_value)
            .unwrap_err()
            .detail
            .contains("limit"));
        let fits = format!("userName eq \"{}\"", "a".repeat(MAX_FILTER_LEN - 14));
        assert_eq!(fits.len(), MAX_FILTER_LEN);
        assert!(parse_filter(&fits).is_ok());

        assert_eq!(
            parse_patch_path(&huge).unwrap_err().scim_type,
            ScimType::InvalidPath
        );
        assert_eq!(
            parse_attr_path(&huge).unwrap_err().scim_type,
            ScimType::InvalidPath
        );
    }

    #[test]
    fn long_flat_chains_parse() {
        // `and`/`or` chains are iterative, so the longest filter that fits is fine.
        let chain = vec!["a pr"; 1000].join(" or ");
        assert!(chain.len() <= MAX_FILTER_LEN);
        assert!(parse_filter(&chain).is_ok());
    }

    #[test]
    fn every_prefix_of_every_example_is_handled_without_panic() {
        let inputs: Vec<&str> = rfc_examples()
            .iter()
            .chain(other_examples().iter())
            .map(|(input, _)| *input)
            .collect();
        for input in inputs {
            for (i, _) in input.char_indices().chain([(input.len(), ' ')]) {
                let prefix = &input[..i];
                if let Err(e) = parse_filter(prefix) {
                    assert_eq!(e.scim_type, ScimType::InvalidFilter, "{prefix:?}");
                    assert!(!e.detail.is_empty());
                }
                if let Err(e) = parse_patch_path(prefix) {
                    assert_eq!(e.scim_type, ScimType::InvalidPath, "{prefix:?}");
                }
                // Suffixes too: they start mid-token.
                let suffix = &input[i..];
                if let Err(e) = parse_filter(suffix) {
                    assert_eq!(e.scim_type, ScimType::InvalidFilter, "{suffix:?}");
                }
            }
        }
    }

    /// A small deterministic generator (an LCG), so the fuzz-style tests are
    /// reproducible without extra dependencies.
    struct Lcg(u64);

    impl Lcg {
        fn next(&mut self) -> u64 {
            self.0 = self
                .0
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            self.0 >> 33
        }

        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    #[test]
    fn random_token_soup_never_panics() {
        let pieces = [
            "userName",
            "emails",
            "name.familyName",
            "urn:ietf:params:scim:schemas:core:2.0:User:",
            "type",
            "value",
            ".",
            ":",
            " ",
            "\t",
            "eq",
            "EQ",
            "pr",
            "co",
            "gt",
            "and",
            "OR",
            "not",
            "(",
            ")",
            "[",
            "]",
            "\"",
            "\\",
            "\\u",
            "\"x\"",
            "\"é\"",
            "42",
            "-1.5e3",
            "true",
            "null",
            "日本",
            "🎉",
            "é",
            "\u{0}",
            "$ref",
            "e",
            "+",
            "-",
        ];
        let mut rng = Lcg(0x5eed);
        for _ in 0..20_000 {
            let len = rng.below(12);
            let input: String = (0..len).map(|_| pieces[rng.below(pieces.len())]).collect();
            match parse_filter(&input) {
                Ok(_) => {}
                Err(e) => assert_eq!(e.scim_type, ScimType::InvalidFilter, "{input:?}"),
            }
            if let Err(e) = parse_patch_path(&input) {
                assert_eq!(e.scim_type, ScimType::InvalidPath, "{input:?}");
            }
            if let Err(e) = parse_attr_path(&input) {
                assert_eq!(e.scim_type, ScimType::InvalidPath, "{input:?}");
            }
        }
    }

    #[test]
    fn random_bytes_never_panic() {
        let mut rng = Lcg(42);
        for _ in 0..5_000 {
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len).map(|_| rng.below(256) as u8).collect();
            let input = String::from_utf8_lossy(&bytes);
            if let Err(e) = parse_filter(&input) {
                assert_eq!(e.scim_type, ScimType::InvalidFilter);
            }
            let _ = parse_patch_path(&input);
            let _ = parse_attr_path(&input);
        }
    }

    #[test]
    fn parses_attribute_paths() {
        let cases: Vec<(&str, AttrPath)> = vec![
            ("userName", p("userName")),
            ("name.familyName", ps("name", "familyName")),
            ("  emails ", p("emails")),
            ("members.$ref", ps("members", "$ref")),
            ("x509Certificates", p("x509Certificates")),
            ("meta.lastModified", ps("meta", "lastModified")),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:userName",
                purn(CORE_USER, "userName", None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                purn(ENTERPRISE, "department", None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                purn(ENTERPRISE, "manager", Some("value")),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_attr_path(input), Ok(expected), "{input}");
        }
        for (input, fragment) in [
            ("", "empty"),
            ("name.", "empty attribute name at position 5"),
            (".name", "empty attribute name at position 0"),
            ("user name", "unexpected \"name\" at position 5"),
            ("emails[type eq \"x\"]", "unexpected \"[\" at position 6"),
            ("1abc", "invalid attribute name"),
            ("foo:bar", "not a schema URN"),
            ("a.b.c", "more than one"),
            ("userName,", "unexpected \",\""),
        ] {
            let err = parse_attr_path(input).unwrap_err();
            assert_eq!(err.scim_type, ScimType::InvalidPath, "{input}");
            assert!(err.detail.contains(fragment), "{input:?}: {}", err.detail);
        }
    }

    fn patch(
        urn: Option<&str>,
        attr: &str,
        filter: Option<Filter>,
        sub: Option<&str>,
    ) -> PatchPath {
        PatchPath {
            urn: urn.map(str::to_string),
            attr: attr.to_string(),
            filter,
            sub_attr: sub.map(str::to_string),
        }
    }

    #[test]
    fn parses_patch_paths() {
        let cases: Vec<(&str, PatchPath)> = vec![
            ("members", patch(None, "members", None, None)),
            (
                "name.givenName",
                patch(None, "name", None, Some("givenName")),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department",
                patch(Some(ENTERPRISE), "department", None, None),
            ),
            (
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value",
                patch(Some(ENTERPRISE), "manager", None, Some("value")),
            ),
            (
                "emails[type eq \"work\"]",
                patch(None, "emails", Some(eq(p("type"), "work")), None),
            ),
            (
                "emails[type eq \"work\"].value",
                patch(None, "emails", Some(eq(p("type"), "work")), Some("value")),
            ),
            (
                "members[value eq \"2819c223-7f76-453a-919d-413861904646\"]",
                patch(
                    None,
                    "members",
                    Some(eq(p("value"), "2819c223-7f76-453a-919d-413861904646")),
                    None,
                ),
            ),
            (
                "members[value eq \"a\" or value eq \"b\"]",
                patch(
                    None,
                    "members",
                    Some(or(eq(p("value"), "a"), eq(p("value"), "b"))),
                    None,
                ),
            ),
            (
                "addresses[type eq \"work\"].streetAddress",
                patch(
                    None,
                    "addresses",
                    Some(eq(p("type"), "work")),
                    Some("streetAddress"),
                ),
            ),
            (
                "urn:ietf:params:scim:schemas:core:2.0:User:emails[type eq \"work\"].display",
                patch(
                    Some(CORE_USER),
                    "emails",
                    Some(eq(p("type"), "work")),
                    Some("display"),
                ),
            ),
            (
                " emails[ type EQ \"work\" ] ",
                patch(None, "emails", Some(eq(p("type"), "work")), None),
            ),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_patch_path(input), Ok(expected), "{input}");
        }
    }

    #[test]
    fn rejects_malformed_patch_paths_as_invalid_path() {
        for (input, fragment) in [
            ("", "the path is empty"),
            (
                "emails[type eq \"work\"",
                "invalid value filter in the path: missing \"]\"",
            ),
            (
                "emails[type eqq \"work\"]",
                "invalid value filter in the path: unknown operator \"eqq\" at position 12",
            ),
            ("emails[]", "expected an attribute path at position 7"),
            ("emails[type eq \"work\"].", "expected a sub-attribute name"),
            (
                "emails[type eq \"work\"]x",
                "unexpected \"x\" at position 22",
            ),
            (
                "emails[type eq \"work\"].value.x",
                "invalid attribute name \"value.x\"",
            ),
            (
                "name.givenName[value eq \"x\"]",
                "must follow a multi-valued attribute",
            ),
            (
                "emails[value[type eq \"x\"]]",
                "nested value paths are not allowed",
            ),
            ("members value", "unexpected \"value\""),
            ("a.b.c", "more than one"),
            ("emails[type eq \"work\"] and x pr", "unexpected \"and\""),
        ] {
            let err = parse_patch_path(input).unwrap_err();
            assert_eq!(err.scim_type, ScimType::InvalidPath, "{input}");
            assert!(err.detail.contains(fragment), "{input:?}: {}", err.detail);
        }
    }
}
