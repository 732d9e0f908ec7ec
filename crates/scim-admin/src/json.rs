//! The admin API's JSON request bodies: like `web::Json`, but a body that
//! does not fit its type is a 422 naming the field at fault by its JSON
//! path (`serde_path_to_error`), e.g. `expires_at: invalid type: integer
//! `5`, expected a string`, instead of a position in the body.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpMessage, HttpRequest};
use serde::de::DeserializeOwned;
use serde_json::error::Category;

use crate::error::AdminError;

/// A JSON request body of type `T`.
#[derive(Debug)]
pub struct Json<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = actix_web::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self, actix_web::Error>>>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json_type = match req.mime_type() {
            Ok(Some(m)) => m.subtype() == "json" || m.suffix().is_some_and(|s| s == "json"),
            _ => false,
        };
        // `Bytes` honours the app's `PayloadConfig` (server.max_body_bytes).
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json_type {
                return Err(AdminError::field(
                    "body",
                    "send the body as JSON, with Content-Type: application/json",
                )
                .into());
            }
            Ok(Json(parse(&body.await?)?))
        })
    }
}

/// Deserialises `body`, naming the field at fault when it does not fit.
pub fn parse<T: DeserializeOwned>(body: &[u8]) -> Result<T, AdminError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        describe(&path, e.into_inner())
    })?;
    de.end().map_err(|e| describe(".", e))?;
    Ok(value)
}

/// A 422 for `error` at `path` (`.` is the whole body).
fn describe(path: &str, error: serde_json::Error) -> AdminError {
    let position = format!(" at line {} column {}", error.line(), error.column());
    let full = error.to_string();
    let what = full.strip_suffix(&position).unwrap_or(&full);
    match error.classify() {
        Category::Syntax | Category::Eof | Category::Io => {
            AdminError::field("body", format!("not valid JSON: {what}{position}"))
        }
        Category::Data => {
            // serde names a missing field in its message, at the path of
            // the object that lacks it.
            if let Some(name) = backquoted(what, "missing field ") {
                let field = if path == "." {
                    name.to_owned()
                } else {
                    format!("{path}.{name}")
                };
                return AdminError::field(&field, "is required");
            }
            let field = if path == "." { "body" } else { path };
            AdminError::field(field, what.to_owned())
        }
    }
}

/// `name` from "<prefix>`name`…".
fn backquoted<'a>(message: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = message.strip_prefix(prefix)?.strip_prefix('`')?;
    rest.split('`').next()
}

/// The 422 for an admin API body that failed to extract: the one built by
/// [`Json`] as it is, anything else (a body too large or cut off) naming
/// the body.
pub fn body_error(error: actix_web::Error) -> AdminError {
    match error.as_error::<AdminError>() {
        Some(admin) => admin.clone(),
        None => AdminError::field("body", format!("invalid JSON body: {error}")),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        value: String,
    }

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Body {
        name: String,
        expires_at: Option<String>,
        items: Option<Vec<Inner>>,
    }

    fn field_and_message(body: &str) -> (String, String) {
        match parse::<Body>(body.as_bytes()) {
            Err(AdminError::Validation { fields, .. }) => {
                (fields[0].field.clone(), fields[0].message.clone())
            }
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn errors_name_the_field() {
        let cases = [
            (
                r#"{"name": 5}"#,
                "name",
                "invalid type: integer `5`, expected a string",
            ),
            (r#"{}"#, "name", "is required"),
            (
                r#"{"name": "x", "expires_at": 1}"#,
                "expires_at",
                "invalid type",
            ),
            (
                r#"{"name": "x", "items": [{"value": "a"}, {"value": 2}]}"#,
                "items[1].value",
                "invalid type",
            ),
            (
                r#"{"name": "x", "items": [{}]}"#,
                "items[0].value",
                "is required",
            ),
            (
                r#"{"name": "x", "nmae": 1}"#,
                "nmae",
                "unknown field `nmae`",
            ),
            (r#"{"name": "x""#, "body", "not valid JSON"),
            (r#"{"name": "x"} trailing"#, "body", "not valid JSON"),
            (r#""name""#, "body", "invalid type: string"),
        ];
        for (body, field, message) in cases {
            let (f, m) = field_and_message(body);
            assert_eq!(f, field, "{body}: {m}");
            assert!(m.contains(message), "{body}: {m}");
            assert!(
                !m.contains("line 1 column") || field == "body",
                "{body}: {m}"
            );
        }
    }
}
