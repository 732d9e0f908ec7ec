//! Request plumbing shared by every SCIM endpoint: the JSON body
//! extractor, list parameters (query string or SearchRequest body),
//! projection parameters and ETag preconditions.

use std::marker::PhantomData;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use futures_util::StreamExt;
use scim_core::body::{self, Shape};
use scim_core::filter::{parse_attr_path, parse_filter, AttrPath, Filter};
use scim_core::resource::Projection;
use scim_core::schema::{GROUP, SEARCH_REQUEST_SCHEMA, USER};
use scim_core::{ScimError, ScimType};
use serde_json::Value;

use crate::error::ApiError;
use crate::ScimApi;

/// A JSON request body, accepted as `application/scim+json` or
/// `application/json` (RFC 7644 §3.1), limited to the configured size and
/// parsed with the caps of `K` (`scim_core::body`): a body over a cap is
/// refused where the parser meets the first value too many.
#[derive(Debug)]
pub struct ScimJson<K = OtherBody>(pub Value, PhantomData<K>);

/// Which body an endpoint takes, so which caps its parser applies.
pub trait BodyKind {
    /// The shape of the body.
    fn shape() -> Shape;

    /// The largest body accepted, in bytes.
    fn limit(config: &crate::ScimConfig) -> usize {
        config.max_body_bytes
    }

    /// The 413 for a body over [`BodyKind::limit`].
    fn too_large(limit: usize) -> ApiError {
        ApiError::PayloadTooLarge(limit)
    }
}

/// A `POST` or `PUT /Users` body.
#[derive(Debug)]
pub struct UserBody;
/// A `PATCH /Users/{id}` body.
#[derive(Debug)]
pub struct UserPatch;
/// A `POST` or `PUT /Groups` body.
#[derive(Debug)]
pub struct GroupBody;
/// A `PATCH /Groups/{id}` body.
#[derive(Debug)]
pub struct GroupPatch;
/// Any other body (a SearchRequest).
#[derive(Debug)]
pub struct OtherBody;
/// A `POST /Bulk` body (RFC 7644 §3.7): up to the bulk `maxPayloadSize`,
/// with each operation's `data` checked by the code its single request
/// runs.
#[derive(Debug)]
pub struct BulkBody;

impl BodyKind for UserBody {
    fn shape() -> Shape {
        Shape::Resource(&USER)
    }
}
impl BodyKind for UserPatch {
    fn shape() -> Shape {
        Shape::Patch(&USER)
    }
}
impl BodyKind for GroupBody {
    fn shape() -> Shape {
        Shape::Resource(&GROUP)
    }
}
impl BodyKind for GroupPatch {
    fn shape() -> Shape {
        Shape::Patch(&GROUP)
    }
}
impl BodyKind for OtherBody {
    fn shape() -> Shape {
        Shape::Other
    }
}
impl BodyKind for BulkBody {
    fn shape() -> Shape {
        Shape::Other
    }

    fn limit(config: &crate::ScimConfig) -> usize {
        config.bulk.max_payload_bytes
    }

    /// RFC 7644 §3.7.4: 413 with a SCIM error naming the limit.
    fn too_large(limit: usize) -> ApiError {
        ApiError::BulkTooLarge(format!(
            "the bulk request exceeds maxPayloadSize ({limit} bytes); split it into smaller requests"
        ))
    }
}

impl<K: BodyKind> FromRequest for ScimJson<K> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let limit = req
            .app_data::<web::Data<ScimApi>>()
            .map_or(1024 * 1024, |api| K::limit(api.config()));
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| {
                v.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            });
        let declared_len = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        let mut stream = payload.take();
        let shape = K::shape();
        Box::pin(async move {
            if let Some(ct) = content_type {
                if ct != "application/scim+json" && ct != "application/json" {
                    return Err(ApiError::UnsupportedMediaType(format!(
                        "Content-Type {ct:?} is not supported; send application/scim+json or application/json"
                    )));
                }
            }
            if declared_len.is_some_and(|n| n > limit) {
                return Err(K::too_large(limit));
            }
            // The body is kept as it arrives: a declared Content-Length is
            // only a claim, and reserving it before the bytes arrive would
            // let each slow client pin up to `limit` bytes. How long the
            // body may take is bounded by the process
            // (`server.body_timeout_secs`).
            let mut body = Received::default();
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| {
                    ScimError::invalid_syntax(format!("the request body could not be read: {e}"))
                })?;
                if body.len + chunk.len() > limit {
                    return Err(K::too_large(limit));
                }
                body.push(chunk);
            }
            if body.is_blank() {
                return Err(ScimError::invalid_syntax(
                    "the request body is empty; send a JSON object",
                )
                .into());
            }
            let value = if body.len <= INLINE_PARSE_BYTES {
                body::parse(&body.into_bytes(), shape)?
            } else {
                // The chunks move to the blocking thread, are joined there,
                // and are freed there, with whatever was built of them, if
                // the body is refused.
                web::block(move || body::parse(&body.into_bytes(), shape))
                    .await
                    .map_err(|_| ApiError::Internal)??
            };
            Ok(ScimJson(value, PhantomData))
        })
    }
}

/// A request body as it arrived. Chunks of at least [`GATHERED_BYTES`] are
/// kept as actix hands them over (no copy on the worker thread); smaller
/// ones are copied together into chunks of that size, so that a body sent
/// a few bytes at a time holds about as much memory as its bytes, not a
/// chunk (and a read buffer) per few bytes. The chunks
/// are joined into one buffer only to be parsed, which for a large body
/// happens on the blocking pool.
#[derive(Default)]
struct Received {
    chunks: Vec<web::Bytes>,
    small: web::BytesMut,
    len: usize,
}

/// See [`Received`].
const GATHERED_BYTES: usize = 8 * 1024;

impl Received {
    fn push(&mut self, chunk: web::Bytes) {
        self.len += chunk.len();
        if chunk.len() >= GATHERED_BYTES {
            self.flush();
            self.chunks.push(chunk);
        } else {
            self.small.extend_from_slice(&chunk);
            if self.small.len() >= GATHERED_BYTES {
                self.flush();
            }
        }
    }

    fn flush(&mut self) {
        if !self.small.is_empty() {
            self.chunks.push(self.small.split().freeze());
        }
    }

    /// Whether the body is empty or only whitespace.
    fn is_blank(&self) -> bool {
        self.chunks
            .iter()
            .flat_map(|c| c.iter())
            .chain(self.small.iter())
            .all(u8::is_ascii_whitespace)
    }

    /// The body in one buffer.
    fn into_bytes(mut self) -> web::Bytes {
        self.flush();
        if self.chunks.len() == 1 {
            if let Some(only) = self.chunks.pop() {
                return only;
            }
        }
        let mut all = web::BytesMut::with_capacity(self.len);
        for chunk in &self.chunks {
            all.extend_from_slice(chunk);
        }
        all.freeze()
    }
}

/// Bodies up to this size are parsed on the connection's worker thread;
/// larger ones (up to `max_body_bytes`) on the blocking pool. Parsing a
/// megabyte of JSON takes tens of milliseconds, and on the worker thread
/// it would stall every other connection of that worker meanwhile.
const INLINE_PARSE_BYTES: usize = 64 * 1024;

/// The query parameters of a request, with names matched
/// case-insensitively (clients differ on `startIndex` vs `startindex`).
#[derive(Debug, Default)]
pub struct QueryParams(Vec<(String, String)>);

impl QueryParams {
    /// Parses the query string of `req`.
    pub fn from_request(req: &HttpRequest) -> Result<Self, ApiError> {
        web::Query::<Vec<(String, String)>>::from_query(req.query_string())
            .map(|q| QueryParams(q.into_inner()))
            .map_err(|e| {
                ScimError::invalid_syntax(format!("the query string is malformed: {e}")).into()
            })
    }

    /// The value of parameter `name` (case-insensitive), if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The projection asked for by `attributes` / `excludedAttributes`.
    pub fn projection(&self) -> Result<Projection, ApiError> {
        Ok(Projection::parse(
            self.get("attributes"),
            self.get("excludedAttributes"),
        )?)
    }
}

/// What a list or search asks for (RFC 7644 §3.4.2).
#[derive(Debug)]
pub struct ListParams {
    /// The parsed filter.
    pub filter: Option<Filter>,
    /// The attribute to sort by.
    pub sort_by: Option<AttrPath>,
    /// Descending order.
    pub descending: bool,
    /// 1-based index of the first result.
    pub start_index: i64,
    /// The page size the client asked for, if any. The run-time settings,
    /// read per request by the gate, turn it into the page size
    /// (`ScimRuntime::page_size`: default, cap, negative means 0).
    pub count: Option<i64>,
    /// Attribute projection.
    pub projection: Projection,
    /// RFC 9865: `Some` asks for cursor pagination, `Some("")` for its
    /// first page.
    pub cursor: Option<String>,
    /// The query a cursor belongs to (filter, sortBy and sortOrder as
    /// sent): a cursor is only valid for the query it was issued for.
    pub query_text: String,
}

impl ListParams {
    /// From a `GET` query string.
    pub fn from_query(q: &QueryParams) -> Result<Self, ApiError> {
        let int = |name: &str| -> Result<Option<i64>, ApiError> {
            q.get(name)
                .map(|v| {
                    v.trim().parse::<i64>().map_err(|_| {
                        ApiError::from(ScimError::invalid_value(format!(
                            "{name} must be an integer, got {v:?}"
                        )))
                    })
                })
                .transpose()
        };
        Self::build(
            Raw {
                filter: q.get("filter"),
                sort_by: q.get("sortBy"),
                sort_order: q.get("sortOrder"),
                start_index: int("startIndex")?,
                count: int("count")?,
                cursor: q.get("cursor").map(str::to_owned),
            },
            q.projection()?,
        )
    }

    /// From a `POST /.search` SearchRequest body (RFC 7644 §3.4.3).
    pub fn from_search(body: &Value) -> Result<Self, ApiError> {
        let obj = body.as_object().ok_or_else(|| {
            ScimError::invalid_syntax("the SearchRequest body must be a JSON object")
        })?;
        let get = |name: &str| {
            obj.iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(name))
                .map(|(_, v)| v)
        };
        if let Some(schemas) = get("schemas") {
            let ok = schemas
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(SEARCH_REQUEST_SCHEMA)));
            if !ok {
                return Err(ScimError::invalid_syntax(format!(
                    "schemas must contain {SEARCH_REQUEST_SCHEMA:?}"
                ))
                .into());
            }
        }
        let string = |name: &str| -> Result<Option<String>, ApiError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(ScimError::invalid_value(format!("{name} must be a string")).into()),
            }
        };
        let int = |name: &str| -> Result<Option<i64>, ApiError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::Number(n)) if n.as_i64().is_some() => Ok(n.as_i64()),
                Some(Value::String(s)) if s.trim().parse::<i64>().is_ok() => {
                    Ok(s.trim().parse::<i64>().ok())
                }
                Some(_) => {
                    Err(ScimError::invalid_value(format!("{name} must be an integer")).into())
                }
            }
        };
        // `attributes` and `excludedAttributes` are arrays in a
        // SearchRequest (RFC 7644 §3.4.3); a comma-separated string is
        // accepted too.
        let list = |name: &str| -> Result<Option<String>, ApiError> {
            match get(name) {
                None | Some(Value::Null) => Ok(None),
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(Value::Array(items)) => {
                    let mut names = Vec::with_capacity(items.len());
                    for item in items {
                        let s = item.as_str().ok_or_else(|| {
                            ScimError::invalid_value(format!("{name} must be an array of strings"))
                        })?;
                        names.push(s);
                    }
                    Ok(Some(names.join(",")))
                }
                Some(_) => Err(ScimError::invalid_value(format!(
                    "{name} must be an array of attribute names"
                ))
                .into()),
            }
        };
        let attributes = list("attributes")?;
        let excluded = list("excludedAttributes")?;
        let projection = Projection::parse(attributes.as_deref(), excluded.as_deref())?;
        let (filter, sort_by, sort_order) =
            (string("filter")?, string("sortBy")?, string("sortOrder")?);
        Self::build(
            Raw {
                filter: filter.as_deref(),
                sort_by: sort_by.as_deref(),
                sort_order: sort_order.as_deref(),
                start_index: int("startIndex")?,
                count: int("count")?,
                cursor: string("cursor")?,
            },
            projection,
        )
    }

    fn build(raw: Raw<'_>, projection: Projection) -> Result<Self, ApiError> {
        let Raw {
            filter,
            sort_by,
            sort_order,
            start_index,
            count,
            cursor,
        } = raw;
        let query_text = format!(
            "{}\n{}\n{}",
            filter.map_or("", str::trim),
            sort_by.map_or("", str::trim),
            sort_order.map_or("", str::trim)
        );
        if cursor.is_some() {
            // RFC 9865 §2: count is a positive integer; a cursor and a
            // startIndex name two ways to page.
            if let Some(c) = count.filter(|c| *c < 1) {
                return Err(ScimError::new(
                    ScimType::InvalidCount,
                    format!("count must be a positive integer with a cursor, got {c}"),
                )
                .into());
            }
            if start_index.is_some_and(|s| s > 1) {
                return Err(ScimError::invalid_value(
                    "cursor and startIndex cannot be combined: page with one or the other",
                )
                .into());
            }
        }
        let filter = match filter.map(str::trim) {
            None | Some("") => None,
            Some(f) => Some(parse_filter(f)?),
        };
        let sort_by = match sort_by.map(str::trim) {
            None | Some("") => None,
            Some(s) => Some(parse_attr_path(s).map_err(|e| {
                ScimError::invalid_value(format!(
                    "sortBy {s:?} is not an attribute path: {}",
                    e.detail
                ))
            })?),
        };
        let descending = match sort_order.map(str::trim) {
            None | Some("") => false,
            Some(o) if o.eq_ignore_ascii_case("ascending") => false,
            Some(o) if o.eq_ignore_ascii_case("descending") => true,
            Some(o) => {
                return Err(ScimError::invalid_value(format!(
                    "sortOrder must be \"ascending\" or \"descending\", got {o:?}"
                ))
                .into())
            }
        };
        // RFC 7644 §3.4.2.4: startIndex < 1 is 1. The count is resolved
        // against the run-time page sizes by the handler.
        let start_index = start_index.unwrap_or(1).max(1);
        Ok(ListParams {
            filter,
            sort_by,
            descending,
            start_index,
            count,
            projection,
            cursor,
            query_text,
        })
    }
}

/// The list parameters as sent, before parsing.
struct Raw<'a> {
    filter: Option<&'a str>,
    sort_by: Option<&'a str>,
    sort_order: Option<&'a str>,
    start_index: Option<i64>,
    count: Option<i64>,
    cursor: Option<String>,
}

/// The weak ETag of a resource version, also its `meta.version`.
pub fn etag(version: i64) -> String {
    format!("W/\"{version}\"")
}

/// A parsed `If-Match` / `If-None-Match` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Precondition {
    /// `*`: any current version.
    Any,
    /// A list of entity tags; versions we could not parse never match.
    Tags(Vec<Option<i64>>),
}

impl Precondition {
    /// Reads header `name` from `req`.
    pub fn from_header(req: &HttpRequest, name: header::HeaderName) -> Option<Self> {
        Some(Self::parse(req.headers().get(name)?.to_str().ok()?))
    }

    /// Parses a header value (or a `/Bulk` operation's `version`, which
    /// RFC 7644 §3.7 makes the operation's `If-Match`).
    pub fn parse(raw: &str) -> Self {
        let raw = raw.trim();
        if raw == "*" {
            return Precondition::Any;
        }
        let tags = raw
            .split(',')
            .map(|t| {
                let t = t.trim();
                let t = t.strip_prefix("W/").unwrap_or(t);
                t.trim_matches('"').parse::<i64>().ok()
            })
            .collect();
        Precondition::Tags(tags)
    }

    /// Whether the current `version` satisfies this (weak comparison).
    pub fn matches(&self, version: i64) -> bool {
        match self {
            Precondition::Any => true,
            Precondition::Tags(tags) => tags.contains(&Some(version)),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn preconditions_parse_weak_and_strong_tags() {
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, r#"W/"3", "4""#))
            .to_http_request();
        let p = Precondition::from_header(&req, header::IF_MATCH).unwrap();
        assert!(p.matches(3) && p.matches(4) && !p.matches(5));
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, "*"))
            .to_http_request();
        assert!(Precondition::from_header(&req, header::IF_MATCH)
            .unwrap()
            .matches(9));
        let req = TestRequest::default()
            .insert_header((header::IF_MATCH, "garbage"))
            .to_http_request();
        assert!(!Precondition::from_header(&req, header::IF_MATCH)
            .unwrap()
            .matches(1));
        assert_eq!(etag(7), "W/\"7\"");
    }

    #[test]
    fn a_body_is_kept_in_large_chunks_and_joined_whole() {
        let mut body = Received::default();
        assert!(body.is_blank());
        let mut want = Vec::new();
        // A trickle of small chunks is gathered; a large chunk is kept.
        for i in 0..3000u32 {
            let piece = format!(" {i}");
            want.extend_from_slice(piece.as_bytes());
            body.push(web::Bytes::from(piece));
        }
        let large = web::Bytes::from(vec![b'x'; GATHERED_BYTES]);
        want.extend_from_slice(&large);
        body.push(large.clone());
        assert!(body.chunks.iter().any(|c| c.as_ptr() == large.as_ptr()));
        // Every kept chunk but one before each large chunk is full size.
        assert!(body.chunks.len() <= 2 * body.len / GATHERED_BYTES + 1);
        assert!(body.chunks.len() >= 2);
        body.push(web::Bytes::from_static(b" end"));
        want.extend_from_slice(b" end");
        assert_eq!(body.len, want.len());
        assert!(!body.is_blank());
        assert_eq!(body.into_bytes(), want);
        let mut blank = Received::default();
        blank.push(web::Bytes::from_static(b" \n\t "));
        assert!(blank.is_blank());
    }

    #[test]
    fn query_names_are_case_insensitive() {
        let req = TestRequest::with_uri("/Users?StartIndex=3&COUNT=2").to_http_request();
        let q = QueryParams::from_request(&req).unwrap();
        assert_eq!(q.get("startIndex"), Some("3"));
        assert_eq!(q.get("count"), Some("2"));
    }
}
