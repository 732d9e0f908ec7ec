//! `/Users` (RFC 7644 §3.3–§3.6): create, read, list, search, replace,
//! patch and delete.
//!
//! Every write is one store transaction. PUT and PATCH read the current
//! version, check `If-Match`, apply the change in memory (a User is
//! small) and write it back conditionally on that version, so a request
//! either applies whole or not at all.

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::patch::{self, PatchOp};
use scim_core::resource::{self, Meta, Projection};
use scim_core::schema::{ResourceType, LIST_RESPONSE_SCHEMA, USER};
use std::collections::HashMap;

use scim_store::changes::{record, Event};
use scim_store::recorded;
use scim_store::settings::Deprovisioning;
use scim_store::{Edit, EditBy, Found};
use scim_store::{GroupRef, ListQuery, PasswordChange, StoreError, UserRecord};
use serde_json::{json, Map, Value};

use crate::error::ApiError;
use crate::request::{etag, ListParams, Precondition, QueryParams, ScimJson, UserBody, UserPatch};
use crate::{resource_response, scim_json, store_err, Call, ScimApi};

/// The groups of each user, keyed by user id, or nothing when the
/// response will not show `groups` (then the membership table is not
/// read). One query for any number of users.
pub(crate) fn load_groups(
    conn: &mut scim_store::DbConnection,
    ids: &[&str],
    projection: &Projection,
) -> Result<HashMap<String, Vec<GroupRef>>, StoreError> {
    if ids.is_empty() || !projection.includes(&USER, "groups") {
        return Ok(HashMap::new());
    }
    scim_store::groups_of_users(conn, ids)
}

/// Renders a stored user as its SCIM representation, with its read-only
/// `groups` (RFC 7643 §4.1.2, direct memberships), projected.
pub(crate) fn render(
    rt: &ResourceType,
    rec: &UserRecord,
    groups: Option<&Vec<GroupRef>>,
    base: &str,
    projection: &Projection,
) -> Map<String, Value> {
    let meta = Meta {
        resource_type: USER.name,
        created: rec.created.clone(),
        last_modified: rec.last_modified.clone(),
        location: format!("{base}/Users/{}", rec.id),
        version: etag(rec.version),
    };
    let mut doc = resource::render(rt, &rec.id, &rec.attrs, &meta);
    if let Some(groups) = groups.filter(|g| !g.is_empty()) {
        let groups = groups
            .iter()
            .map(|g| {
                json!({
                    "value": g.value,
                    "$ref": format!("{base}/Groups/{}", g.value),
                    "display": g.display,
                    "type": "direct",
                })
            })
            .collect();
        doc.insert("groups".into(), Value::Array(groups));
    }
    projection.apply(rt, &mut doc);
    doc
}

fn user_response(
    rt: &ResourceType,
    status: StatusCode,
    rec: &UserRecord,
    groups: Option<&Vec<GroupRef>>,
    base: &str,
    projection: &Projection,
) -> Result<HttpResponse, ApiError> {
    let doc = render(rt, rec, groups, base, projection);
    let body = serde_json::to_vec(&doc).map_err(|_| ApiError::Internal)?;
    let location = (status == StatusCode::CREATED).then(|| format!("{base}/Users/{}", rec.id));
    Ok(resource_response(
        status,
        body,
        rec.version,
        location.as_deref(),
    ))
}

fn not_found(id: &str) -> ApiError {
    ApiError::resource_not_found("User", id)
}

/// Hashes a password on the process's bounded Argon2id gate (503 when it
/// stays full): only the hash is kept, never anything reversible (RFC 7643
/// §4.1.1).
async fn hash_password(
    api: &ScimApi,
    password: Option<String>,
) -> Result<Option<String>, ApiError> {
    match password {
        None => Ok(None),
        Some(pw) => Ok(Some(api.config().password_hasher.hash(pw).await?)),
    }
}

/// `POST /Users`
pub async fn create(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson<UserBody>,
) -> Result<HttpResponse, ApiError> {
    create_user(&api, Call::of(&api, &req)?, &body.0).await
}

/// Creates a user from `body`: `POST /Users`, and a `/Bulk` POST.
pub(crate) async fn create_user(
    api: &ScimApi,
    call: Call,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let projection = call.query.projection()?;
    let rt = api.user_type().await?;
    let normalized = resource::normalize(rt, body)?;
    let password_hash = hash_password(api, normalized.password).await?;
    let attrs = normalized.attrs;
    let rec = api
        .gated_store(call.actor.org)
        .insert_user_async(attrs, password_hash, call.actor)
        .await?;
    // A new user belongs to no group yet.
    user_response(rt, StatusCode::CREATED, &rec, None, &call.base, &projection)
}

/// `GET /Users/{id}`
pub async fn get(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(&req)?;
    let id = crate::path_id("User", path)?;
    let projection = QueryParams::from_request(&req)?.projection()?;
    let not_modified = Precondition::from_header(&req, header::IF_NONE_MATCH);
    let rt = api.user_type().await?;
    let store = api.gated_store(org);
    let with_groups = projection.includes(&USER, "groups");
    let found = store.find_user_async(&id, with_groups).await?;
    let (rec, groups) = found.ok_or_else(|| not_found(&id))?;
    if not_modified
        .as_ref()
        .is_some_and(|p| p.matches(rec.version))
    {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(rec.version)))
            .finish());
    }
    user_response(
        rt,
        StatusCode::OK,
        &rec,
        Some(&groups),
        &api.location_base(&req),
        &projection,
    )
}

/// `GET /Users`
pub async fn list(api: web::Data<ScimApi>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_query(&QueryParams::from_request(&req)?)?;
    run_list(&api, &req, params).await
}

/// `POST /Users/.search` (RFC 7644 §3.4.3)
pub async fn search(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_search(&body.0)?;
    run_list(&api, &req, params).await
}

async fn run_list(
    api: &ScimApi,
    req: &HttpRequest,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(req)?;
    if params.cursor.is_some() {
        return run_cursor_list(api, req, params).await;
    }
    let store = api.gated_store(org);
    let rt = api.user_type().await?;
    let ListParams {
        filter,
        sort_by,
        descending,
        start_index,
        count,
        projection,
        ..
    } = params;
    let wanted = projection.clone();
    // `userName eq "…"`, the query identity providers match users with
    // (before every create, and on Test Connection), finds at most one
    // user: the gate, the user and its groups come in one statement
    // instead of three. Sorting and paging past the first page take the
    // general path (which also validates `sortBy`).
    let by_name = match (&filter, &sort_by) {
        (Some(f), None) if start_index <= 1 => {
            scim_store::lookup::user_name_equality(f).map(str::to_owned)
        }
        _ => None,
    };
    let (page, groups) = match by_name {
        Some(name) => {
            let with_groups = projection.includes(&USER, "groups");
            let gated = store.find_user_by_name_async(&name, with_groups).await?;
            let total = i64::from(gated.found.is_some());
            let mut groups = HashMap::new();
            let items = match gated.found {
                Some((rec, of_user)) if gated.runtime.page_size(count) > 0 => {
                    if with_groups {
                        groups.insert(rec.id.clone(), of_user);
                    }
                    vec![rec]
                }
                _ => Vec::new(),
            };
            (scim_store::Page { total, items }, groups)
        }
        None => {
            store
                .read_async(move |conn, settings| {
                    let page = scim_store::users::list_users_of(
                        conn,
                        org,
                        rt,
                        &ListQuery {
                            filter: filter.as_ref(),
                            sort_by: sort_by.as_ref(),
                            descending,
                            start_index,
                            count: settings.page_size(count),
                        },
                    )?;
                    let ids: Vec<&str> = page.items.iter().map(|u| u.id.as_str()).collect();
                    let groups = load_groups(conn, &ids, &wanted)?;
                    Ok((page, groups))
                })
                .await?
        }
    };
    let base = api.location_base(req);
    let resources: Vec<Value> = page
        .items
        .iter()
        .map(|rec| Value::Object(render(rt, rec, groups.get(&rec.id), &base, &projection)))
        .collect();
    let body = json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": page.total,
        "startIndex": start_index,
        "itemsPerPage": resources.len(),
        "Resources": resources,
    });
    Ok(scim_json(StatusCode::OK, &body))
}

/// A list or search paged by cursor (RFC 9865; `crate::cursor`).
async fn run_cursor_list(
    api: &ScimApi,
    req: &HttpRequest,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(req)?;
    let token = params.cursor.as_deref().unwrap_or("");
    let paging = crate::cursor::Request::new(api, "Users", &params.query_text, token, 1)?;
    let start = paging.start.clone();
    let rt = api.user_type().await?;
    let ListParams {
        filter,
        sort_by,
        descending,
        count,
        projection,
        ..
    } = params;
    let wanted = projection.clone();
    let (total, page, groups) = api
        .gated_store(org)
        .read_async(move |conn, settings| {
            let size = settings.page_size(count).max(1);
            let query = ListQuery {
                filter: filter.as_ref(),
                sort_by: sort_by.as_ref(),
                descending,
                start_index: 1,
                count: size,
            };
            let page = crate::cursor::page(1, start.as_ref(), size, &mut |_, seek, limit| {
                scim_store::users::list_users_keyset_of(conn, org, rt, &query, seek, limit)
            })?;
            let total = scim_store::users::count_matching_users_of(conn, org, rt, filter.as_ref())?;
            let ids: Vec<&str> = page.items.iter().map(|(_, u, _)| u.id.as_str()).collect();
            let groups = load_groups(conn, &ids, &wanted)?;
            Ok((total, page, groups))
        })
        .await?;
    let mut body = paging.list_head(total, page.items.len(), &page.links)?;
    let base = api.location_base(req);
    let resources: Vec<Value> = page
        .items
        .iter()
        .map(|(_, rec, _)| Value::Object(render(rt, rec, groups.get(&rec.id), &base, &projection)))
        .collect();
    if let Some(obj) = body.as_object_mut() {
        obj.insert("Resources".into(), Value::Array(resources));
    }
    Ok(scim_json(StatusCode::OK, &body))
}

/// `PUT /Users/{id}` (RFC 7644 §3.5.1): replaces every writable
/// attribute; attributes not sent are cleared. A password is kept unless
/// one is sent.
pub async fn replace(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
    body: ScimJson<UserBody>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("User", path)?;
    replace_user(&api, Call::of(&api, &req)?, id, &body.0).await
}

/// Replaces the user `id` with `body`: `PUT /Users/{id}`, and a `/Bulk`
/// PUT.
pub(crate) async fn replace_user(
    api: &ScimApi,
    call: Call,
    id: String,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let org = call.actor.org;
    let projection = call.query.projection()?;
    let if_match = call.if_match;
    let by = EditBy {
        actor: call.actor,
        event: Event::UserReplaced,
    };
    let rt = api.user_type().await?;
    let normalized = resource::normalize(rt, body)?;
    let password = match hash_password(api, normalized.password).await? {
        Some(hash) => PasswordChange::Set(hash),
        None => PasswordChange::Keep,
    };
    let attrs = normalized.attrs;
    let with_groups = projection.includes(&USER, "groups");
    // The user is read where no other write can change it before this
    // one is stored (`Store::queue_user_edit`), so only the client's own
    // `If-Match` can fail.
    let replace = move |found: Found| {
        let (current, groups) = found.ok_or(StoreError::NotFound)?;
        if if_match
            .as_ref()
            .is_some_and(|p| !p.matches(current.version))
        {
            return Err(StoreError::PreconditionFailed);
        }
        scim_core::extensions::check_replace(rt, &current.attrs, &attrs)?;
        Ok(Edit::Store {
            current,
            attrs: attrs.clone(),
            password: password.clone(),
            then: Box::new(move |rec| (rec, groups)),
        })
    };
    let (rec, groups) = api
        .gated_store(org)
        .edit_user_async(id.clone(), with_groups, by, replace)
        .await
        .map_err(store_err("User", &id))?;
    user_response(
        rt,
        StatusCode::OK,
        &rec,
        Some(&groups),
        &call.base,
        &projection,
    )
}

/// What a PATCH transaction ends with: the stored user, or the client
/// error that made the transaction write nothing.
enum PatchResult {
    Stored(UserRecord),
    Invalid(scim_core::ScimError),
}

/// `PATCH /Users/{id}` (RFC 7644 §3.5.2): all operations apply or none
/// do; answers 200 with the resource.
pub async fn patch(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
    body: ScimJson<UserPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("User", path)?;
    patch_user(&api, Call::of(&api, &req)?, id, &body.0).await
}

/// Applies the PatchOp `body` to the user `id`: `PATCH /Users/{id}`, and
/// a `/Bulk` PATCH.
pub(crate) async fn patch_user(
    api: &ScimApi,
    call: Call,
    id: String,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let org = call.actor.org;
    let projection = call.query.projection()?;
    let if_match = call.if_match;
    let by = EditBy {
        actor: call.actor,
        event: Event::UserPatched,
    };
    let ops: Vec<PatchOp> = patch::parse_request(body)?;
    let rt = api.user_type().await?;
    let password_hash = hash_password(api, patch::password_in(&ops).map(str::to_owned)).await?;
    let with_groups = projection.includes(&USER, "groups");
    // What the operations make of the user, read where no other write can
    // change it before the result is stored (`Store::queue_user_edit`):
    // nothing to store when nothing changes (RFC 7644 §3.5.2 lets us
    // answer with the unchanged resource and version), a client error
    // when they do not apply.
    let apply = move |found: Found| {
        let (current, groups) = found.ok_or(StoreError::NotFound)?;
        if if_match
            .as_ref()
            .is_some_and(|p| !p.matches(current.version))
        {
            return Err(StoreError::PreconditionFailed);
        }
        let mut attrs = current.attrs.clone();
        let result = match patch::apply(rt, &mut attrs, &ops) {
            Ok(result) => result,
            Err(e) => return Ok(Edit::Answer((PatchResult::Invalid(e), groups))),
        };
        let password = match (&result.password, &password_hash) {
            (Some(_), Some(hash)) => PasswordChange::Set(hash.clone()),
            _ => PasswordChange::Keep,
        };
        if !result.changed && matches!(password, PasswordChange::Keep) {
            return Ok(Edit::Answer((PatchResult::Stored(current), groups)));
        }
        Ok(Edit::Store {
            current,
            attrs,
            password,
            then: Box::new(move |rec| (PatchResult::Stored(rec), groups)),
        })
    };
    let (outcome, groups) = api
        .gated_store(org)
        .edit_user_async(id.clone(), with_groups, by, apply)
        .await
        .map_err(store_err("User", &id))?;
    let rec = match outcome {
        PatchResult::Invalid(e) => return Err(e.into()),
        PatchResult::Stored(rec) => rec,
    };
    user_response(
        rt,
        StatusCode::OK,
        &rec,
        Some(&groups),
        &call.base,
        &projection,
    )
}

/// `DELETE /Users/{id}` (204): removes the user's group memberships, and
/// the user itself as the run-time `deprovisioning` setting says: `hard`
/// deletes the row, `soft` marks it deleted (inactive, attributes kept,
/// invisible to the SCIM API, its userName free again) until the purge.
pub async fn delete(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("User", path)?;
    delete_user(&api, Call::of(&api, &req)?, id).await
}

/// Deletes the user `id`: `DELETE /Users/{id}`, and a `/Bulk` DELETE.
pub(crate) async fn delete_user(
    api: &ScimApi,
    call: Call,
    id: String,
) -> Result<HttpResponse, ApiError> {
    let deleted = crate::delete_resource(
        api,
        call,
        "User",
        id.clone(),
        |conn, org, id| Ok(scim_store::find_user(conn, org, id)?.map(|u| u.version)),
        |conn, settings, id, version, actor| {
            // The delete event names the user's externalId (its `sub_id`).
            let external_id = scim_store::find_user(conn, settings.org, id)?
                .and_then(|u| recorded::external_id(&u.attrs));
            let changes = match settings.deprovisioning {
                Deprovisioning::Hard => {
                    let left = scim_store::delete_user(conn, settings.org, id, version)?;
                    recorded::user_deleted(id, external_id, None, &left)
                }
                Deprovisioning::Soft => {
                    let (version, left) =
                        scim_store::soft_delete_user(conn, settings.org, id, version)?;
                    recorded::user_deleted(id, external_id, Some(version), &left)
                }
            };
            record(conn, actor, &scim_core::datetime::now(), &changes)
        },
    )
    .await?;
    api.store().forget_user(&id);
    Ok(deleted)
}
