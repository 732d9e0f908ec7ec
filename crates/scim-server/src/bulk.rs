//! `POST /Bulk` (RFC 7644 §3.7): many writes on `/Users` and `/Groups`
//! in one request.
//!
//! Each operation runs the very function its single request runs
//! (`users::create_user`, `groups::patch_group`, …) with a [`Call`] made
//! of the bulk request's actor and base URL and the operation's own
//! `version` as `If-Match`: the same validation, the same User
//! Synchronization gate, the same change-log rows (with the bulk
//! request's actor and request id) and the same versions as the single
//! request. An operation is atomic on its own; the bulk request is not
//! (docs/SCIM.md, "Bulk"): RFC 7644 does not ask for it, and an identity
//! provider reads a result per operation.
//!
//! `bulkId` references (`"bulkId:qwerty"` as the id in `path`, or as a
//! whole string anywhere in `data`, e.g. a member's `value`) are resolved
//! in any order (RFC 7644 §3.7.2): an operation runs once every POST it
//! refers to has run, in request order otherwise. Circular references
//! through Group members are resolved, as RFC 7644 §3.7.1 asks: when
//! every operation left waits on another, the first Group POST whose
//! waiting references are all `members` runs without those members, and
//! they are added (the PATCH `add` of `members` the single request would
//! be) once every operation has run; its result is then the group's final
//! version, or, if they cannot be added, that error with the group's
//! `location` (the group exists, without those members). An operation
//! referring to a POST that failed, to no POST of the request, to itself,
//! or in a cycle of other references (a PUT or PATCH path, a User
//! attribute) fails with 409.
//!
//! The whole request is refused (no operation runs) when it is malformed
//! (400), over `maxOperations` or `maxPayloadSize` (413, RFC 7644
//! §3.7.4), or while synchronization is disabled (403). A malformed
//! operation (an unknown method, a path outside `/Users` and `/Groups`, a
//! POST without `bulkId`, a missing `data`) fails on its own, with the
//! RFC 7644 §3.12 error as its `response`.

use std::collections::{HashMap, HashSet};

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::ScimError;
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::request::{BulkBody, Precondition, QueryParams, ScimJson};
use crate::{groups, scim_json, users, BulkLimits, Call, ScimApi};

/// The schema of a bulk request (RFC 7644 §3.7).
pub const BULK_REQUEST_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkRequest";
/// The schema of a bulk response (RFC 7644 §3.7).
pub const BULK_RESPONSE_SCHEMA: &str = "urn:ietf:params:scim:api:messages:2.0:BulkResponse";

/// The prefix of a reference to the resource a POST of the same request
/// creates (RFC 7644 §3.7.2).
const BULK_ID_PREFIX: &str = "bulkId:";

/// `POST /Bulk`: answers 200 with a BulkResponse holding one result per
/// operation run, in the order they ran.
pub async fn bulk(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson<BulkBody>,
) -> Result<HttpResponse, ApiError> {
    // While synchronization is disabled the whole request is 403, as any
    // other request; each operation still passes the gate itself.
    api.require_sync(crate::request_org(&req)?).await?;
    let request = BulkRequest::parse(body.0, api.config().bulk)?;
    let actor = crate::auth::request_actor(&api, &req)?;
    let base = api.location_base(&req);
    let mut run = Run {
        api: &api,
        actor,
        base,
        created: HashMap::new(),
    };
    let results = run.all(request).await;
    Ok(scim_json(
        StatusCode::OK,
        &json!({
            "schemas": [BULK_RESPONSE_SCHEMA],
            "Operations": results,
        }),
    ))
}

/// A bulk request, read: its operations and `failOnErrors`.
#[derive(Debug)]
struct BulkRequest {
    fail_on_errors: Option<usize>,
    ops: Vec<Operation>,
}

/// The resource type an operation's path names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Users,
    Groups,
}

impl Kind {
    fn endpoint(self) -> &'static str {
        match self {
            Kind::Users => "Users",
            Kind::Groups => "Groups",
        }
    }
}

/// The methods of a bulk operation (RFC 7644 §3.7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Method {
    Post,
    Put,
    Patch,
    Delete,
}

/// One operation as read from the request.
#[derive(Debug)]
struct Operation {
    /// `method` as sent, echoed in the result.
    method: Value,
    bulk_id: Option<String>,
    /// What to run, or why the operation fails without running.
    target: Result<Target, ScimError>,
    /// The bulkIds it refers to, in `path` and `data`.
    refs: Vec<String>,
}

/// A well-formed operation.
#[derive(Debug)]
struct Target {
    method: Method,
    kind: Kind,
    /// The resource id (or `bulkId:…` reference) of PUT, PATCH and DELETE.
    id: Option<String>,
    version: Option<String>,
    data: Value,
}

/// A member of `obj` by name, matched case-insensitively (RFC 7643 §2.1).
fn member<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v)
}

/// Takes the member `name` out of `obj`, matched case-insensitively.
fn take(obj: &mut Map<String, Value>, name: &str) -> Option<Value> {
    let key = obj.keys().find(|k| k.eq_ignore_ascii_case(name))?.clone();
    obj.remove(&key)
}

fn invalid(detail: impl Into<String>) -> ScimError {
    ScimError::invalid_value(detail)
}

impl BulkRequest {
    /// Reads `body`, moving each operation's `data` out of it; an error
    /// here refuses the whole request.
    fn parse(body: Value, limits: BulkLimits) -> Result<BulkRequest, ApiError> {
        let Value::Object(mut obj) = body else {
            return Err(
                ScimError::invalid_syntax("the BulkRequest body must be a JSON object").into(),
            );
        };
        if let Some(schemas) = member(&obj, "schemas") {
            let ok = schemas
                .as_array()
                .is_some_and(|a| a.iter().any(|s| s.as_str() == Some(BULK_REQUEST_SCHEMA)));
            if !ok {
                return Err(
                    invalid(format!("schemas must contain {BULK_REQUEST_SCHEMA:?}")).into(),
                );
            }
        }
        let fail_on_errors = match member(&obj, "failOnErrors") {
            None | Some(Value::Null) => None,
            Some(v) => match v.as_u64().and_then(|n| usize::try_from(n).ok()) {
                Some(n) if n > 0 => Some(n),
                _ => {
                    return Err(invalid(format!(
                        "failOnErrors must be a positive integer (the number of errors after which processing stops), got {v}"
                    )).into())
                }
            },
        };
        let ops = match take(&mut obj, "Operations") {
            Some(Value::Array(ops)) => ops,
            _ => {
                return Err(invalid(
                    "Operations is required: an array of operations, each with method, path and (for POST, PUT and PATCH) data",
                ).into())
            }
        };
        if ops.len() > limits.max_operations {
            return Err(ApiError::BulkTooLarge(format!(
                "the bulk request has {} operations, more than maxOperations ({}); split it into smaller requests",
                ops.len(),
                limits.max_operations
            )));
        }
        let mut seen = HashSet::new();
        let mut read = Vec::with_capacity(ops.len());
        for (i, op) in ops.into_iter().enumerate() {
            let Value::Object(mut op) = op else {
                return Err(invalid(format!(
                    "Operations[{i}] must be an object with method and path"
                ))
                .into());
            };
            let bulk_id = match member(&op, "bulkId") {
                None | Some(Value::Null) => None,
                Some(Value::String(id)) if !id.is_empty() && !id.contains('\0') => Some(id.clone()),
                Some(_) => {
                    return Err(invalid(format!(
                        "Operations[{i}].bulkId must be a non-empty string"
                    ))
                    .into())
                }
            };
            if let Some(id) = &bulk_id {
                if !seen.insert(id.clone()) {
                    return Err(invalid(format!(
                        "bulkId {id:?} is used by more than one operation; each bulkId must be unique within the request"
                    )).into());
                }
            }
            let mut refs = Vec::new();
            let target = Target::read(&mut op, bulk_id.is_some(), &mut refs);
            read.push(Operation {
                method: take(&mut op, "method").unwrap_or(Value::Null),
                bulk_id,
                target,
                refs,
            });
        }
        Ok(BulkRequest {
            fail_on_errors,
            ops: read,
        })
    }
}

impl Target {
    /// Reads an operation; an error fails this operation alone. The
    /// bulkIds it refers to are added to `refs`.
    fn read(
        op: &mut Map<String, Value>,
        has_bulk_id: bool,
        refs: &mut Vec<String>,
    ) -> Result<Target, ScimError> {
        let method = match member(op, "method").and_then(Value::as_str) {
            Some(m) if m.eq_ignore_ascii_case("POST") => Method::Post,
            Some(m) if m.eq_ignore_ascii_case("PUT") => Method::Put,
            Some(m) if m.eq_ignore_ascii_case("PATCH") => Method::Patch,
            Some(m) if m.eq_ignore_ascii_case("DELETE") => Method::Delete,
            _ => return Err(invalid("method must be one of POST, PUT, PATCH and DELETE")),
        };
        let path = member(op, "path").and_then(Value::as_str).ok_or_else(|| {
            invalid("path is required: /Users or /Groups for POST, /Users/{id} or /Groups/{id} otherwise")
        })?;
        let (kind, id) = parse_path(path, method)?;
        if method == Method::Post && !has_bulk_id {
            return Err(invalid(
                "bulkId is required with POST (RFC 7644 §3.7): it names the new resource in the response",
            ));
        }
        let version = match member(op, "version") {
            None | Some(Value::Null) => None,
            Some(Value::String(v)) => Some(v.clone()),
            Some(_) => {
                return Err(invalid(
                    "version must be a string, the resource's meta.version (its ETag)",
                ))
            }
        };
        let data = match (method, take(op, "data")) {
            (Method::Delete, _) => Value::Null,
            (_, None | Some(Value::Null)) => return Err(ScimError::invalid_syntax(
                "data is required with POST, PUT and PATCH: the body the single request would send",
            )),
            (_, Some(data)) => data,
        };
        if let Some(r) = id.as_deref().and_then(|id| id.strip_prefix(BULK_ID_PREFIX)) {
            refs.push(r.to_owned());
        }
        collect_refs(&data, refs);
        Ok(Target {
            method,
            kind,
            id,
            version,
            data,
        })
    }
}

/// The resource type and id named by an operation's `path`: a resource
/// type endpoint for POST, a resource for the other methods (RFC 7644
/// §3.7).
fn parse_path(path: &str, method: Method) -> Result<(Kind, Option<String>), ScimError> {
    let wrong = || {
        invalid(format!(
            "path {path:?} is not {}",
            if method == Method::Post {
                "a resource type endpoint: use /Users or /Groups with POST"
            } else {
                "a resource: use /Users/{id} or /Groups/{id} with PUT, PATCH and DELETE"
            }
        ))
    };
    let trimmed = path.strip_prefix('/').unwrap_or(path);
    let trimmed = trimmed.strip_suffix('/').unwrap_or(trimmed);
    let (endpoint, id) = match trimmed.split_once('/') {
        Some((endpoint, id)) => (endpoint, Some(id)),
        None => (trimmed, None),
    };
    let kind = match endpoint {
        "Users" => Kind::Users,
        "Groups" => Kind::Groups,
        _ => return Err(wrong()),
    };
    match (method, id) {
        (Method::Post, None) => Ok((kind, None)),
        (Method::Post, Some(_)) | (_, None) => Err(wrong()),
        (_, Some(id)) if id.is_empty() || id.contains('/') => Err(wrong()),
        (_, Some(id)) => Ok((kind, Some(id.to_owned()))),
    }
}

/// Adds the bulkIds referred to by the strings of `data` to `refs`.
fn collect_refs(data: &Value, refs: &mut Vec<String>) {
    match data {
        Value::String(s) => {
            if let Some(r) = s.strip_prefix(BULK_ID_PREFIX) {
                refs.push(r.to_owned());
            }
        }
        Value::Array(items) => items.iter().for_each(|v| collect_refs(v, refs)),
        Value::Object(members) => members.values().for_each(|v| collect_refs(v, refs)),
        _ => {}
    }
}

/// Replaces each `bulkId:…` string of `data` with the id it resolved to.
fn resolve_refs(data: &mut Value, created: &HashMap<String, String>) {
    match data {
        Value::String(s) => {
            if let Some(id) = s.strip_prefix(BULK_ID_PREFIX).and_then(|r| created.get(r)) {
                *s = id.clone();
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| resolve_refs(v, created)),
        Value::Object(members) => members.values_mut().for_each(|v| resolve_refs(v, created)),
        _ => {}
    }
}

/// How an operation is run.
enum Step {
    /// Its references have all run.
    Run,
    /// A Group POST run without the members it holds (the `members`
    /// elements returned by [`defer_members`]), added once every
    /// operation has run.
    Deferred(Vec<Value>),
    /// It waits on a cycle that cannot be resolved: 409.
    Cycle,
}

/// Members a Group POST ran without, to add at the end.
struct LaterMembers {
    /// Its result's position among the results.
    result: usize,
    bulk_id: String,
    members: Vec<Value>,
}

/// For a Group POST whose references to operations still `waiting` are
/// all in `members` (and none to itself), takes those members out of its
/// `data` and returns them; `None` (and `op` untouched) otherwise.
fn defer_members(op: &Operation, waiting: &HashSet<&str>) -> Option<Vec<Value>> {
    let target = op.target.as_ref().ok()?;
    if target.kind != Kind::Groups || target.method != Method::Post {
        return None;
    }
    let own = op.bulk_id.as_deref()?;
    let Value::Object(data) = &target.data else {
        return None;
    };
    let members = member(data, "members").and_then(Value::as_array)?;
    let later: Vec<&Value> = members.iter().filter(|m| waits_on(m, waiting)).collect();
    let mut refs = Vec::new();
    later.iter().for_each(|m| collect_refs(m, &mut refs));
    if later.is_empty() || refs.iter().any(|r| r == own) {
        return None;
    }
    // Nothing else in the data may wait.
    let rest_waits = data
        .iter()
        .filter(|(k, _)| !k.eq_ignore_ascii_case("members"))
        .any(|(_, v)| waits_on(v, waiting));
    if rest_waits {
        return None;
    }
    Some(later.into_iter().cloned().collect())
}

/// Whether `v` refers to one of the `waiting` bulkIds.
fn waits_on(v: &Value, waiting: &HashSet<&str>) -> bool {
    let mut refs = Vec::new();
    collect_refs(v, &mut refs);
    refs.iter().any(|r| waiting.contains(r.as_str()))
}

/// Takes the `members` elements that refer to `waiting` bulkIds out of a
/// Group POST's `data` ([`defer_members`] returned them).
fn strip_members(op: &mut Operation, waiting: &HashSet<&str>) {
    if let Ok(Target {
        data: Value::Object(data),
        ..
    }) = &mut op.target
    {
        let key = data
            .keys()
            .find(|k| k.eq_ignore_ascii_case("members"))
            .cloned();
        if let Some(Value::Array(members)) = key.and_then(|k| data.get_mut(&k)) {
            members.retain(|m| !waits_on(m, waiting));
        }
    }
    op.refs.retain(|r| !waiting.contains(r.as_str()));
}

/// One bulk request being run.
struct Run<'a> {
    api: &'a ScimApi,
    actor: scim_store::changes::Actor,
    base: String,
    /// The id each bulkId's POST created.
    created: HashMap<String, String>,
}

impl Run<'_> {
    /// Runs the operations, each once every POST it refers to has run,
    /// until `failOnErrors` errors have occurred; returns their results.
    async fn all(&mut self, request: BulkRequest) -> Vec<Value> {
        let BulkRequest {
            fail_on_errors,
            ops,
        } = request;
        // The POST each bulkId names.
        let defined: HashMap<String, usize> = ops
            .iter()
            .enumerate()
            .filter(|(_, op)| matches!(&op.target, Ok(t) if t.method == Method::Post))
            .filter_map(|(i, op)| op.bulk_id.clone().map(|id| (id, i)))
            .collect();
        let deps: Vec<Vec<usize>> = ops
            .iter()
            .map(|op| {
                op.refs
                    .iter()
                    .filter_map(|r| defined.get(r.as_str()).copied())
                    .collect()
            })
            .collect();
        let mut pending = vec![true; ops.len()];
        let mut results = Vec::new();
        let mut errors = 0;
        let mut later: Vec<LaterMembers> = Vec::new();
        let mut ops: Vec<Option<Operation>> = ops.into_iter().map(Some).collect();
        while fail_on_errors.is_none_or(|max| errors < max) {
            let ready = (0..ops.len())
                .find(|&i| pending[i] && deps[i].iter().all(|&d| !pending[d] && d != i));
            // Nothing ready while operations remain: they wait on a
            // cycle of references. A Group POST waiting only through
            // members runs without them (added at the end); else the
            // first of them fails, which lets those waiting for it run
            // (and fail) in turn.
            let waiting: HashSet<&str> = match ready {
                Some(_) => HashSet::new(),
                None => defined
                    .iter()
                    .filter(|(_, &d)| pending[d])
                    .map(|(id, _)| id.as_str())
                    .collect(),
            };
            let (i, step) = match ready {
                Some(i) => (i, Step::Run),
                None => match (0..ops.len()).find_map(|i| {
                    let op = ops.get(i)?.as_ref().filter(|_| pending[i])?;
                    defer_members(op, &waiting).map(|m| (i, m))
                }) {
                    Some((i, members)) => (i, Step::Deferred(members)),
                    None => match pending.iter().position(|p| *p) {
                        Some(i) => (i, Step::Cycle),
                        None => break,
                    },
                },
            };
            pending[i] = false;
            let Some(mut op) = ops.get_mut(i).and_then(Option::take) else {
                break;
            };
            if let Some(observe) = self.api.bulk_observer() {
                observe(i);
            }
            let result = match step {
                Step::Cycle => Err(ApiError::Conflict(
                    "circular bulkId reference: this operation's bulkId references lead, directly or through other operations, back to an operation that waits on them; create the resources first and link them with a PATCH in a later operation".to_owned(),
                )),
                Step::Run => self.one(&mut op).await,
                Step::Deferred(members) => {
                    strip_members(&mut op, &waiting);
                    let ran = self.one(&mut op).await;
                    if let (Ok(_), Some(bulk_id)) = (&ran, &op.bulk_id) {
                        later.push(LaterMembers {
                            result: results.len(),
                            bulk_id: bulk_id.clone(),
                            members,
                        });
                    }
                    ran
                }
            };
            let (result, failed) = self.result(&op, result);
            errors += usize::from(failed);
            results.push(result);
        }
        for members in later {
            self.add_later(members, &mut results).await;
        }
        results
    }

    /// Adds the members a Group POST ran without (a cycle of references,
    /// [`defer_members`]) now that every operation has run, as the PATCH
    /// `add` of the single request would, and makes its result tell the
    /// outcome: the group's new version, or the error with its location.
    async fn add_later(&mut self, later: LaterMembers, results: &mut [Value]) {
        let Some(id) = self.created.get(&later.bulk_id).cloned() else {
            return;
        };
        let mut members = Value::Array(later.members);
        resolve_refs(&mut members, &self.created);
        let mut unresolved = Vec::new();
        collect_refs(&members, &mut unresolved);
        let outcome = match unresolved.first() {
            Some(r) => Err(ApiError::Conflict(format!(
                "bulkId:{r} cannot be resolved: no POST of this request with bulkId {r:?} created a resource"
            ))),
            None => {
                let call = Call {
                    actor: self.actor.clone(),
                    base: self.base.clone(),
                    query: QueryParams::default(),
                    if_match: None,
                };
                let body = json!({
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "add", "path": "members", "value": members}],
                });
                groups::patch_group(self.api, call, id, &body).await
            }
        };
        let Some(Value::Object(out)) = results.get_mut(later.result) else {
            return;
        };
        match outcome {
            Ok(res) => {
                if let Some(version) = res
                    .headers()
                    .get(header::ETAG)
                    .and_then(|v| v.to_str().ok())
                {
                    out.insert("version".into(), version.into());
                }
            }
            Err(e) => {
                let status = actix_web::ResponseError::status_code(&e);
                let mut body = e.body();
                if let Some(Value::String(detail)) = body.get_mut("detail") {
                    *detail = format!(
                        "the group was created without its members that referred to operations of a circular reference, and adding them failed: {detail}"
                    );
                }
                out.remove("version");
                out.insert("status".into(), status.as_u16().to_string().into());
                out.insert("response".into(), body);
            }
        }
    }

    /// Runs one operation whose references have all run.
    async fn one(&mut self, op: &mut Operation) -> Result<HttpResponse, ApiError> {
        let target = match &mut op.target {
            Ok(target) => target,
            Err(e) => return Err(e.clone().into()),
        };
        if let Some(r) = op.refs.iter().find(|r| !self.created.contains_key(*r)) {
            return Err(ApiError::Conflict(format!(
                "bulkId:{r} cannot be resolved: no POST of this request with bulkId {r:?} created a resource"
            )));
        }
        let id = target.id.as_deref().map(|id| {
            id.strip_prefix(BULK_ID_PREFIX)
                .and_then(|r| self.created.get(r))
                .map_or_else(|| id.to_owned(), Clone::clone)
        });
        let mut data = std::mem::take(&mut target.data);
        resolve_refs(&mut data, &self.created);
        let call = Call {
            actor: self.actor.clone(),
            base: self.base.clone(),
            query: QueryParams::default(),
            if_match: target.version.as_deref().map(Precondition::parse),
        };
        let api = self.api;
        let kind = match target.kind {
            Kind::Users => "User",
            Kind::Groups => "Group",
        };
        let id = id.map(|id| crate::valid_id(kind, id)).transpose()?;
        match (target.kind, target.method, id) {
            (Kind::Users, Method::Post, _) => users::create_user(api, call, &data).await,
            (Kind::Groups, Method::Post, _) => groups::create_group(api, call, &data).await,
            (Kind::Users, Method::Put, Some(id)) => users::replace_user(api, call, id, &data).await,
            (Kind::Users, Method::Patch, Some(id)) => users::patch_user(api, call, id, &data).await,
            (Kind::Users, Method::Delete, Some(id)) => users::delete_user(api, call, id).await,
            (Kind::Groups, Method::Put, Some(id)) => {
                groups::replace_group(api, call, id, &data).await
            }
            (Kind::Groups, Method::Patch, Some(id)) => {
                groups::patch_group(api, call, id, &data).await
            }
            (Kind::Groups, Method::Delete, Some(id)) => groups::delete_group(api, call, id).await,
            // `parse_path` gives every method but POST an id.
            (_, _, None) => Err(ApiError::Internal),
        }
    }

    /// The RFC 7644 §3.7.3 result of an operation, and whether it failed.
    /// A POST that succeeded records the id its bulkId now resolves to.
    fn result(&mut self, op: &Operation, outcome: Result<HttpResponse, ApiError>) -> (Value, bool) {
        let mut out = Map::new();
        out.insert("method".into(), op.method.clone());
        if let Some(id) = &op.bulk_id {
            out.insert("bulkId".into(), id.clone().into());
        }
        let target = op.target.as_ref().ok();
        // The resource's URL, known unless a POST failed or the path was
        // unusable (RFC 7644 §3.7: `location` is required otherwise).
        let known = target.and_then(|t| {
            let id = t.id.as_deref()?;
            let id = id
                .strip_prefix(BULK_ID_PREFIX)
                .and_then(|r| self.created.get(r))
                .map_or(id, String::as_str);
            Some(format!("{}/{}/{id}", self.base, t.kind.endpoint()))
        });
        match outcome {
            Ok(res) => {
                let header = |name| {
                    res.headers()
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned)
                };
                let location = header(header::LOCATION).or(known);
                if let (Some(bulk_id), Some(location), Some(Method::Post)) =
                    (&op.bulk_id, &location, target.map(|t| t.method))
                {
                    if let Some((_, id)) = location.rsplit_once('/') {
                        self.created.insert(bulk_id.clone(), id.to_owned());
                    }
                }
                if let Some(location) = location {
                    out.insert("location".into(), location.into());
                }
                if let Some(version) = header(header::ETAG) {
                    out.insert("version".into(), version.into());
                }
                out.insert("status".into(), res.status().as_u16().to_string().into());
                (Value::Object(out), false)
            }
            Err(e) => {
                if let Some(location) = known {
                    out.insert("location".into(), location.into());
                }
                let status = actix_web::ResponseError::status_code(&e);
                out.insert("status".into(), status.as_u16().to_string().into());
                out.insert("response".into(), e.body());
                (Value::Object(out), true)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn paths_name_an_endpoint_for_post_and_a_resource_otherwise() {
        let ok = |p, m| parse_path(p, m).unwrap();
        assert_eq!(ok("/Users", Method::Post), (Kind::Users, None));
        assert_eq!(ok("/Groups/", Method::Post), (Kind::Groups, None));
        assert_eq!(
            ok("/Users/abc", Method::Put),
            (Kind::Users, Some("abc".into()))
        );
        assert_eq!(
            ok("/Groups/bulkId:q", Method::Delete),
            (Kind::Groups, Some("bulkId:q".into()))
        );
        for (p, m) in [
            ("/Users/abc", Method::Post),
            ("/Users", Method::Patch),
            ("/Schemas", Method::Post),
            ("/users", Method::Post),
            ("/Users/a/b", Method::Delete),
            ("/Bulk", Method::Post),
            ("", Method::Post),
            ("/Users//", Method::Put),
        ] {
            let err = parse_path(p, m).unwrap_err();
            assert_eq!(err.scim_type, scim_core::ScimType::InvalidValue, "{p}");
        }
    }

    #[test]
    fn references_are_whole_strings_anywhere_in_data() {
        let mut data = json!({
            "members": [{"value": "bulkId:a"}, {"value": "x"}],
            "displayName": "not bulkId:a",
            "nested": {"deep": ["bulkId:b"]},
        });
        let mut refs = Vec::new();
        collect_refs(&data, &mut refs);
        assert_eq!(refs, ["a", "b"]);
        let created = HashMap::from([("a".to_owned(), "id-a".to_owned())]);
        resolve_refs(&mut data, &created);
        assert_eq!(data["members"][0]["value"], "id-a");
        assert_eq!(data["displayName"], "not bulkId:a");
        assert_eq!(data["nested"]["deep"][0], "bulkId:b");
    }
}
