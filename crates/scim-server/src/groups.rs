//! `/Groups` (RFC 7643 §4.2, RFC 7644 §3.3–§3.6), built to stay fast at
//! 100,000 members.
//!
//! Membership lives in its own table in the store. A PATCH that adds or
//! removes members touches only the members named in the request, plus
//! the group's version; the member list is never loaded, diffed or
//! rewritten. The list is read only when a response will show it, and
//! then written straight into the response body without building a JSON
//! value per member.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::members::{member_refs, split_ops, MemberChange};
use scim_core::patch;
use scim_core::resource::{self, Meta, Projection};
use scim_core::schema::{GROUP, LIST_RESPONSE_SCHEMA};
use scim_core::ScimError;
use scim_store::changes::{record, Event, NewChange};
use scim_store::recorded;
use scim_store::OrgId;
use scim_store::{
    GroupRecord, ListQuery, Member, MemberRef, MemberType, MembersChanged, StoreError,
};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::request::{
    etag, GroupBody, GroupPatch, ListParams, Precondition, QueryParams, ScimJson,
};
use crate::{resource_response, retry_on_race, store_err, Call, ScimApi};

fn not_found(id: &str) -> ApiError {
    ApiError::resource_not_found("Group", id)
}

/// Which sub-attributes of `members` a response shows (`None`: no
/// `members` at all, so the membership table is not read).
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemberFields {
    value: bool,
    reference: bool,
    kind: bool,
    display: bool,
}

impl MemberFields {
    pub(crate) fn of(projection: &Projection) -> Option<MemberFields> {
        if !projection.includes(&GROUP, "members") {
            return None;
        }
        if projection.filters_values_of(&GROUP, "members") {
            // The value filter may test any sub-attribute; the projection
            // then keeps the ones asked for (`group_body`).
            return Some(MemberFields {
                value: true,
                reference: true,
                kind: true,
                display: true,
            });
        }
        Some(MemberFields {
            value: projection.includes(&GROUP, "members.value"),
            reference: projection.includes(&GROUP, "members.$ref"),
            kind: projection.includes(&GROUP, "members.type"),
            display: projection.includes(&GROUP, "members.display"),
        })
    }
}

/// Renders a group with its members (when shown) as JSON bytes.
pub(crate) fn group_body(
    rec: &GroupRecord,
    members: Option<&[Member]>,
    fields: Option<MemberFields>,
    base: &str,
    projection: &Projection,
) -> Result<Vec<u8>, ApiError> {
    let meta = Meta {
        resource_type: GROUP.name,
        created: rec.created.clone(),
        last_modified: rec.last_modified.clone(),
        location: format!("{base}/Groups/{}", rec.id),
        version: etag(rec.version),
    };
    let mut doc = resource::render(&GROUP, &rec.id, &rec.attrs, &meta);
    doc.remove("members");
    if let (Some(members), Some(fields), true) = (
        members,
        fields,
        projection.filters_values_of(&GROUP, "members"),
    ) {
        // A value filter on `members` in `attributes` or
        // `excludedAttributes` (docs/SCIM.md, "Leniency") picks members
        // one by one: the projection sees them as JSON.
        let all: Vec<Value> = members
            .iter()
            .map(|m| Value::Object(member_json(m, fields, base)))
            .collect();
        doc.insert("members".into(), Value::Array(all));
        projection.apply(&GROUP, &mut doc);
        return serde_json::to_vec(&doc).map_err(|_| ApiError::Internal);
    }
    projection.apply(&GROUP, &mut doc);
    let mut out = serde_json::to_vec(&doc).map_err(|_| ApiError::Internal)?;
    let (Some(members), Some(fields)) = (members, fields) else {
        return Ok(out);
    };
    if members.is_empty() {
        return Ok(out);
    }
    // Splice `"members":[…]` in before the closing brace, writing each
    // member directly: at 100,000 members this is a few megabytes of
    // output rather than 100,000 JSON maps.
    out.pop();
    if !doc.is_empty() {
        out.push(b',');
    }
    out.reserve(members.len() * 120);
    out.extend_from_slice(br#""members":["#);
    for (i, m) in members.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.push(b'{');
        let mut first = true;
        let mut field = |out: &mut Vec<u8>, name: &str, value: &str| {
            if !first {
                out.push(b',');
            }
            first = false;
            // Writing a &str into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, name);
            out.push(b':');
            let _ = serde_json::to_writer(&mut *out, value);
        };
        if fields.value {
            field(&mut out, "value", &m.value);
        }
        if fields.reference {
            let path = match m.member_type {
                MemberType::User => "Users",
                MemberType::Group => "Groups",
            };
            field(&mut out, "$ref", &format!("{base}/{path}/{}", m.value));
        }
        if fields.kind {
            field(&mut out, "type", m.member_type.as_str());
        }
        if fields.display {
            if let Some(display) = &m.display {
                field(&mut out, "display", display);
            }
        }
        out.push(b'}');
    }
    out.extend_from_slice(b"]}");
    Ok(out)
}

/// One member as a JSON object, with the fields shown.
fn member_json(m: &Member, fields: MemberFields, base: &str) -> Map<String, Value> {
    let mut o = Map::new();
    if fields.value {
        o.insert("value".into(), m.value.clone().into());
    }
    if fields.reference {
        let path = match m.member_type {
            MemberType::User => "Users",
            MemberType::Group => "Groups",
        };
        o.insert("$ref".into(), format!("{base}/{path}/{}", m.value).into());
    }
    if fields.kind {
        o.insert("type".into(), m.member_type.as_str().into());
    }
    if let (true, Some(display)) = (fields.display, &m.display) {
        o.insert("display".into(), display.clone().into());
    }
    o
}

/// Turns the `members` of a POST/PUT body (already normalised) into
/// member references.
fn take_members(attrs: &mut Map<String, Value>) -> Result<Vec<MemberRef>, ApiError> {
    match attrs.remove("members") {
        None => Ok(Vec::new()),
        Some(v) => Ok(member_refs(&v)?),
    }
}

/// Loads the members of a group when the response shows them.
pub(crate) fn load_members(
    conn: &mut scim_store::DbConnection,
    group_id: &str,
    fields: Option<MemberFields>,
) -> Result<Option<Vec<Member>>, StoreError> {
    match fields {
        Some(_) => scim_store::list_group_members(conn, group_id).map(Some),
        None => Ok(None),
    }
}

/// The group `id`, its row locked for the rest of the transaction (so
/// concurrent membership changes queue), if its version still satisfies
/// the client's `If-Match`.
fn locked_current(
    conn: &mut scim_store::DbConnection,
    org: OrgId,
    id: &str,
    if_match: Option<&Precondition>,
) -> Result<GroupRecord, StoreError> {
    let current = scim_store::lock_group(conn, org, id)?.ok_or(StoreError::NotFound)?;
    if if_match.is_some_and(|p| !p.matches(current.version)) {
        return Err(StoreError::PreconditionFailed);
    }
    Ok(current)
}

/// `rows` with `rec`'s `externalId` on those about it: the `sub_id` of
/// their events.
fn naming(mut rows: Vec<NewChange>, rec: &GroupRecord) -> Vec<NewChange> {
    let external_id = recorded::external_id(&rec.attrs);
    for row in rows
        .iter_mut()
        .filter(|r| r.resource_id.as_deref() == Some(rec.id.as_str()))
    {
        row.external_id.clone_from(&external_id);
    }
    rows
}

/// The change log rows of a membership change of `rec` (at its version
/// after it): one `group.members_added` and one `group.members_removed`,
/// each only when it names members.
fn members_rows(rec: &GroupRecord, changed: &MembersChanged) -> Vec<NewChange> {
    let mut rows = Vec::new();
    if !changed.added.is_empty() {
        rows.push(recorded::members_row(
            Event::MembersAdded,
            &rec.id,
            rec.version,
            &changed.added,
        ));
    }
    if !changed.removed.is_empty() {
        rows.push(recorded::members_row(
            Event::MembersRemoved,
            &rec.id,
            rec.version,
            &changed.removed,
        ));
    }
    rows
}

/// `POST /Groups`
pub async fn create(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson<GroupBody>,
) -> Result<HttpResponse, ApiError> {
    create_group(&api, Call::of(&api, &req)?, &body.0).await
}

/// Creates a group from `body`: `POST /Groups`, and a `/Bulk` POST.
pub(crate) async fn create_group(
    api: &ScimApi,
    call: Call,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let org = call.actor.org;
    let projection = call.query.projection()?;
    let fields = MemberFields::of(&projection);
    let mut attrs = resource::normalize(&GROUP, body)?.attrs;
    let members = take_members(&mut attrs)?;
    let actor = call.actor;
    let store = api.gated_store(org);
    let (rec, members) = store
        .write_async(move |conn, _| {
            let rec = scim_store::insert_group(conn, org, &attrs, &members)?;
            let shown = load_members(conn, &rec.id, fields)?;
            // Every member named was added (an unknown one fails the
            // create), each once.
            let mut seen = HashSet::new();
            let added: Vec<&str> = members
                .iter()
                .map(|m| m.value.as_str())
                .filter(|v| seen.insert(*v))
                .collect();
            let mut changes = vec![recorded::group_row(
                Event::GroupCreated,
                &rec.id,
                Some(rec.version),
                &[],
            )];
            if !added.is_empty() {
                changes.push(recorded::members_row(
                    Event::MembersAdded,
                    &rec.id,
                    rec.version,
                    &added,
                ));
            }
            record(conn, &actor, &rec.last_modified, &naming(changes, &rec))?;
            Ok((rec, shown))
        })
        .await?;
    let base = call.base;
    let body = group_body(&rec, members.as_deref(), fields, &base, &projection)?;
    let location = format!("{base}/Groups/{}", rec.id);
    Ok(resource_response(
        StatusCode::CREATED,
        body,
        rec.version,
        Some(&location),
    ))
}

/// `GET /Groups/{id}`: with `excludedAttributes=members` the membership
/// table is never read.
pub async fn get(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(&req)?;
    let id = crate::path_id("Group", path)?;
    let projection = QueryParams::from_request(&req)?.projection()?;
    let fields = MemberFields::of(&projection);
    let not_modified = Precondition::from_header(&req, header::IF_NONE_MATCH);
    let store = api.gated_store(org);
    let lookup = id.clone();
    let found = store
        .read_async(move |conn, _| {
            let Some(rec) = scim_store::find_group(conn, org, &lookup)? else {
                return Ok(None);
            };
            if not_modified
                .as_ref()
                .is_some_and(|p| p.matches(rec.version))
            {
                return Ok(Some((rec, None, true)));
            }
            let members = load_members(conn, &rec.id, fields)?;
            Ok(Some((rec, members, false)))
        })
        .await?;
    let (rec, members, unchanged) = found.ok_or_else(|| not_found(&id))?;
    if unchanged {
        return Ok(HttpResponse::NotModified()
            .insert_header((header::ETAG, etag(rec.version)))
            .finish());
    }
    let base = api.location_base(&req);
    let body = group_body(&rec, members.as_deref(), fields, &base, &projection)?;
    Ok(resource_response(StatusCode::OK, body, rec.version, None))
}

/// `GET /Groups`
pub async fn list(api: web::Data<ScimApi>, req: HttpRequest) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_query(&QueryParams::from_request(&req)?)?;
    run_list(&api, &req, params).await
}

/// `POST /Groups/.search`
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
    let paging = match params.cursor.as_deref() {
        Some(token) => Some(crate::cursor::Request::new(
            api,
            "Groups",
            &params.query_text,
            token,
            1,
        )?),
        None => None,
    };
    let start = paging.as_ref().and_then(|p| p.start.clone());
    let ListParams {
        filter,
        sort_by,
        descending,
        start_index,
        count,
        projection,
        ..
    } = params;
    let fields = MemberFields::of(&projection);
    let store = api.gated_store(org);
    let by_cursor = paging.is_some();
    let (total, page, links) = store
        .read_async(move |conn, settings| {
            let mut query = ListQuery {
                filter: filter.as_ref(),
                sort_by: sort_by.as_ref(),
                descending,
                start_index,
                count: settings.page_size(count),
            };
            let (total, records, links) = if by_cursor {
                // RFC 9865 (`crate::cursor`).
                query.count = query.count.max(1);
                let page =
                    crate::cursor::page(1, start.as_ref(), query.count, &mut |_, seek, limit| {
                        scim_store::groups::list_groups_keyset(conn, org, &query, seek, limit)
                    })?;
                let total = scim_store::groups::count_matching_groups(conn, org, filter.as_ref())?;
                let records = page.items.into_iter().map(|(_, rec, _)| rec).collect();
                (total, records, page.links)
            } else {
                let page = scim_store::list_groups(conn, org, &query)?;
                (page.total, page.items, crate::cursor::Links::default())
            };
            let mut out = Vec::with_capacity(records.len());
            for rec in records {
                let members = load_members(conn, &rec.id, fields)?;
                out.push((rec, members));
            }
            Ok((total, out, links))
        })
        .await?;
    let base = api.location_base(req);
    let mut body = Vec::with_capacity(256 + page.len() * 512);
    let head = match &paging {
        Some(paging) => paging.list_head(total, page.len(), &links)?,
        None => serde_json::json!({
            "schemas": [LIST_RESPONSE_SCHEMA],
            "totalResults": total,
            "startIndex": start_index,
            "itemsPerPage": page.len(),
        }),
    };
    let head = serde_json::to_vec(&head).map_err(|_| ApiError::Internal)?;
    body.extend_from_slice(&head[..head.len() - 1]);
    body.extend_from_slice(br#","Resources":["#);
    for (i, (rec, members)) in page.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend(group_body(
            rec,
            members.as_deref(),
            fields,
            &base,
            &projection,
        )?);
    }
    body.extend_from_slice(b"]}");
    Ok(crate::scim_bytes(StatusCode::OK, body))
}

/// `PUT /Groups/{id}`: replaces the attributes and the member list.
pub async fn replace(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
    body: ScimJson<GroupBody>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("Group", path)?;
    replace_group(&api, Call::of(&api, &req)?, id, &body.0).await
}

/// Replaces the group `id` with `body`: `PUT /Groups/{id}`, and a `/Bulk`
/// PUT.
pub(crate) async fn replace_group(
    api: &ScimApi,
    call: Call,
    id: String,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let org = call.actor.org;
    let projection = call.query.projection()?;
    let fields = MemberFields::of(&projection);
    let if_match = call.if_match;
    let mut attrs = resource::normalize(&GROUP, body)?.attrs;
    let members = take_members(&mut attrs)?;
    let actor = Arc::new(call.actor);
    let store = api.gated_store(org);
    let target = id.clone();
    let client_precondition = if_match.is_some();
    let (attrs, members) = (Arc::new(attrs), Arc::new(members));
    let (rec, members) = retry_on_race(
        |_| {
            let (store, target, if_match) = (store.clone(), target.clone(), if_match.clone());
            let (attrs, members) = (Arc::clone(&attrs), Arc::clone(&members));
            let actor = Arc::clone(&actor);
            async move {
                store
                    .write_async(move |conn, _| {
                        let current = locked_current(conn, org, &target, if_match.as_ref())?;
                        let changed = scim_store::replace_members(conn, org, &target, &members)?;
                        let rec =
                            scim_store::update_group(conn, org, &target, current.version, &attrs)?;
                        let shown = load_members(conn, &rec.id, fields)?;
                        let paths = recorded::changed_paths(&current.attrs, &rec.attrs);
                        let mut changes = vec![recorded::group_row(
                            Event::GroupReplaced,
                            &rec.id,
                            Some(rec.version),
                            &paths,
                        )];
                        changes.extend(members_rows(&rec, &changed));
                        record(conn, &actor, &rec.last_modified, &naming(changes, &rec))?;
                        Ok((rec, shown))
                    })
                    .await
            }
        },
        client_precondition,
    )
    .await
    .map_err(store_err("Group", &id))?;
    let body = group_body(&rec, members.as_deref(), fields, &call.base, &projection)?;
    Ok(resource_response(StatusCode::OK, body, rec.version, None))
}

/// What a PATCH transaction ends with.
enum PatchResult {
    Stored(GroupRecord, Option<Vec<Member>>),
    Invalid(ScimError),
}

/// `PATCH /Groups/{id}`: membership changes and attribute changes in one
/// transaction. Answers 204 No Content (what Entra and Okta expect, and it
/// never serialises a huge member list), or 200 with the projected
/// resource when the request carries `attributes` or
/// `excludedAttributes`.
pub async fn patch(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
    body: ScimJson<GroupPatch>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("Group", path)?;
    patch_group(&api, Call::of(&api, &req)?, id, &body.0).await
}

/// Applies the PatchOp `body` to the group `id`: `PATCH /Groups/{id}`,
/// and a `/Bulk` PATCH.
pub(crate) async fn patch_group(
    api: &ScimApi,
    call: Call,
    id: String,
    body: &Value,
) -> Result<HttpResponse, ApiError> {
    let org = call.actor.org;
    let query = &call.query;
    let wants_body = query.get("attributes").is_some() || query.get("excludedAttributes").is_some();
    let projection = query.projection()?;
    let fields = if wants_body {
        MemberFields::of(&projection)
    } else {
        None
    };
    let if_match = call.if_match;
    let (changes, attr_ops) = split_ops(patch::parse_request(body)?)?;
    let actor = Arc::new(call.actor);
    let store = api.gated_store(org);
    let target = id.clone();
    let client_precondition = if_match.is_some();
    let (changes, attr_ops) = (Arc::new(changes), Arc::new(attr_ops));
    let outcome = retry_on_race(
        |_| {
            let (store, target, if_match) = (store.clone(), target.clone(), if_match.clone());
            let (changes, attr_ops) = (Arc::clone(&changes), Arc::clone(&attr_ops));
            let actor = Arc::clone(&actor);
            async move {
                store
                    .write_async(move |conn, _| {
                        let current = locked_current(conn, org, &target, if_match.as_ref())?;
                        let mut attrs = current.attrs.clone();
                        let attrs_changed = if attr_ops.is_empty() {
                            false
                        } else {
                            match patch::apply(&GROUP, &mut attrs, &attr_ops) {
                                Ok(outcome) => outcome.changed,
                                Err(e) => return Ok(PatchResult::Invalid(e)),
                            }
                        };
                        let mut members_changed = MembersChanged::default();
                        for change in changes.iter() {
                            members_changed.extend(match change {
                                MemberChange::Add(refs) => {
                                    scim_store::add_members(conn, org, &target, refs)?
                                }
                                MemberChange::Remove(ids) => {
                                    scim_store::remove_members(conn, &target, ids)?
                                }
                                MemberChange::RemoveMatching(filter) => {
                                    scim_store::remove_members_matching(conn, &target, filter)?
                                }
                                MemberChange::RemoveAll => {
                                    scim_store::remove_all_members(conn, &target)?
                                }
                                MemberChange::Replace(refs) => {
                                    scim_store::replace_members(conn, org, &target, refs)?
                                }
                            });
                        }
                        let rec = if attrs_changed {
                            scim_store::update_group(conn, org, &target, current.version, &attrs)?
                        } else if !members_changed.is_empty() {
                            scim_store::touch_group(conn, org, &target, Some(current.version))?
                        } else {
                            // Nothing changed: nothing written, nothing
                            // recorded.
                            let members = load_members(conn, &current.id, fields)?;
                            return Ok(PatchResult::Stored(current, members));
                        };
                        let members = load_members(conn, &rec.id, fields)?;
                        let mut rows = Vec::new();
                        if attrs_changed {
                            let paths = recorded::changed_paths(&current.attrs, &rec.attrs);
                            rows.push(recorded::group_row(
                                Event::GroupPatched,
                                &rec.id,
                                Some(rec.version),
                                &paths,
                            ));
                        }
                        rows.extend(members_rows(&rec, &members_changed));
                        record(conn, &actor, &rec.last_modified, &naming(rows, &rec))?;
                        Ok(PatchResult::Stored(rec, members))
                    })
                    .await
            }
        },
        client_precondition,
    )
    .await;
    // A membership error (e.g. an unknown member id) aborts the
    // transaction; map it like any other store error.
    let (rec, members) = match outcome.map_err(store_err("Group", &id))? {
        PatchResult::Invalid(e) => return Err(e.into()),
        PatchResult::Stored(rec, members) => (rec, members),
    };
    if !wants_body {
        return Ok(HttpResponse::NoContent()
            .insert_header((header::ETAG, etag(rec.version)))
            .finish());
    }
    let body = group_body(&rec, members.as_deref(), fields, &call.base, &projection)?;
    Ok(resource_response(StatusCode::OK, body, rec.version, None))
}

/// `DELETE /Groups/{id}`: removes the group, its memberships and its own
/// membership in other groups (204).
pub async fn delete(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    path: web::Path<crate::IdPath>,
) -> Result<HttpResponse, ApiError> {
    let id = crate::path_id("Group", path)?;
    delete_group(&api, Call::of(&api, &req)?, id).await
}

/// Deletes the group `id`: `DELETE /Groups/{id}`, and a `/Bulk` DELETE.
pub(crate) async fn delete_group(
    api: &ScimApi,
    call: Call,
    id: String,
) -> Result<HttpResponse, ApiError> {
    crate::delete_resource(
        api,
        call,
        "Group",
        id,
        |conn, org, id| Ok(scim_store::lock_group(conn, org, id)?.map(|g| g.version)),
        |conn, settings, id, version, actor| {
            // The delete event names the group's externalId (its `sub_id`).
            let external_id = scim_store::lock_group(conn, settings.org, id)?
                .and_then(|g| recorded::external_id(&g.attrs));
            let left = scim_store::delete_group(conn, settings.org, id, version)?;
            let mut changes: Vec<NewChange> = left
                .iter()
                .map(|(parent, v)| recorded::members_row(Event::MembersRemoved, parent, *v, &[id]))
                .collect();
            changes.push(
                recorded::group_row(Event::GroupDeleted, id, None, &[]).external_id(external_id),
            );
            record(conn, actor, &scim_core::datetime::now(), &changes)
        },
    )
    .await
}
