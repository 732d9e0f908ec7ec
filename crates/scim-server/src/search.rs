//! `POST /.search` at the service root (RFC 7644 §3.4.3): one search
//! across every resource type.
//!
//! The filter applies to each type on its own; a type whose attributes the
//! filter does not name (e.g. `userName` for Groups) contributes nothing,
//! and only a filter valid for no type is an error. Results list Users
//! first, then Groups, each type in its own `sortBy` order; `startIndex`
//! and `count` page through that combined list, and `totalResults` is the
//! sum.

use std::collections::HashMap;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::resource::Projection;
use scim_core::schema::LIST_RESPONSE_SCHEMA;
use scim_store::{GroupRecord, KeysetPage, ListQuery, Member, Page, StoreError, UserRecord};

use crate::error::ApiError;
use crate::groups::{group_body, load_members, MemberFields};
use crate::request::{ListParams, ScimJson};
use crate::users::{load_groups, render};
use crate::{scim_bytes, ScimApi};

/// Runs one type's query, turning "this filter names attributes this type
/// does not have" into "no match", and keeping the error in case no type
/// accepts the filter.
fn or_nothing<T>(
    result: Result<Page<T>, StoreError>,
    rejected: &mut Option<StoreError>,
) -> Result<Page<T>, StoreError> {
    match result {
        Err(StoreError::Invalid(e)) => {
            *rejected = Some(StoreError::Invalid(e));
            Ok(Page {
                total: 0,
                items: Vec::new(),
            })
        }
        other => other,
    }
}

/// A count, or `None` (keeping the error) when the filter names
/// attributes this type does not have.
fn accepted(
    result: Result<i64, StoreError>,
    rejected: &mut Option<StoreError>,
) -> Result<Option<i64>, StoreError> {
    match result {
        Ok(n) => Ok(Some(n)),
        Err(StoreError::Invalid(e)) => {
            *rejected = Some(StoreError::Invalid(e));
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// `POST /.search`
pub async fn search_all(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(&req)?;
    let params = ListParams::from_search(&body.0)?;
    if params.cursor.is_some() {
        return search_by_cursor(&api, &req, params).await;
    }
    let store = api.gated_store(org);
    let rt = api.user_type().await?;
    let fields = MemberFields::of(&params.projection);
    let projection = params.projection.clone();
    let start_index = params.start_index;
    let found: (i64, Listed) = web::block(move || {
        store.read_with(|conn, settings| {
            let query = |start_index: i64, count: i64| ListQuery {
                filter: params.filter.as_ref(),
                sort_by: params.sort_by.as_ref(),
                descending: params.descending,
                start_index,
                count,
            };
            let mut rejected = None;
            let users_total = or_nothing(
                scim_store::users::list_users_of(conn, org, rt, &query(1, 0)),
                &mut rejected,
            )?
            .total;
            let mut rejected_groups = None;
            let groups_total = or_nothing(
                scim_store::list_groups(conn, org, &query(1, 0)),
                &mut rejected_groups,
            )?
            .total;
            if let (Some(e), Some(_)) = (rejected, rejected_groups) {
                return Err(e);
            }
            // Page through Users, then Groups.
            let skip = params.start_index - 1;
            let mut wanted = settings.page_size(params.count);
            let mut users = Vec::new();
            if skip < users_total && wanted > 0 {
                let n = wanted.min(users_total - skip);
                users = scim_store::users::list_users_of(conn, org, rt, &query(skip + 1, n))?.items;
                wanted -= users.len() as i64;
            }
            let mut groups = Vec::new();
            if wanted > 0 && groups_total > 0 {
                let group_skip = (skip - users_total).max(0);
                if group_skip < groups_total {
                    for rec in
                        scim_store::list_groups(conn, org, &query(group_skip + 1, wanted))?.items
                    {
                        let members = load_members(conn, &rec.id, fields)?;
                        groups.push((rec, members));
                    }
                }
            }
            let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
            let user_groups = load_groups(conn, &ids, &params.projection)?;
            let listed = Listed {
                users,
                user_groups,
                groups,
            };
            Ok((users_total + groups_total, listed))
        })
    })
    .await??;
    let (total, listed) = found;
    let head = serde_json::json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": listed.len(),
    });
    write_list(&api, &req, rt, &head, &listed, fields, &projection)
}

/// One page of a search across types: Users with their groups (when
/// shown), then Groups with their members (when shown).
struct Listed {
    users: Vec<UserRecord>,
    user_groups: HashMap<String, Vec<scim_store::GroupRef>>,
    groups: Vec<(GroupRecord, Option<Vec<Member>>)>,
}

impl Listed {
    fn len(&self) -> usize {
        self.users.len() + self.groups.len()
    }
}

/// The ListResponse: `head`'s members, then `listed`.
fn write_list(
    api: &ScimApi,
    req: &HttpRequest,
    rt: &scim_core::schema::ResourceType,
    head: &serde_json::Value,
    listed: &Listed,
    fields: Option<MemberFields>,
    projection: &Projection,
) -> Result<HttpResponse, ApiError> {
    let Listed {
        users,
        user_groups,
        groups,
    } = listed;
    let base = api.location_base(req);
    let head = serde_json::to_vec(head).map_err(|_| ApiError::Internal)?;
    let mut out = Vec::with_capacity(head.len() + 1024);
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(br#","Resources":["#);
    let mut first = true;
    for rec in users {
        if !first {
            out.push(b',');
        }
        first = false;
        let doc = render(rt, rec, user_groups.get(&rec.id), &base, projection);
        serde_json::to_writer(&mut out, &doc).map_err(|_| ApiError::Internal)?;
    }
    for (rec, members) in groups {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend(group_body(
            rec,
            members.as_deref(),
            fields,
            &base,
            projection,
        )?);
    }
    out.extend_from_slice(b"]}");
    Ok(scim_bytes(StatusCode::OK, out))
}

/// One resource of a search across types.
enum Hit {
    User(UserRecord),
    Group(GroupRecord),
}

/// `POST /.search` paged by cursor (RFC 9865; `crate::cursor`): Users are
/// phase 0, Groups phase 1, so a page may end in the Users and the next
/// one continue into the Groups.
async fn search_by_cursor(
    api: &ScimApi,
    req: &HttpRequest,
    params: ListParams,
) -> Result<HttpResponse, ApiError> {
    let org = crate::request_org(req)?;
    let token = params.cursor.as_deref().unwrap_or("");
    let paging = crate::cursor::Request::new(api, "all", &params.query_text, token, 2)?;
    let start = paging.start.clone();
    let fields = MemberFields::of(&params.projection);
    let projection = params.projection.clone();
    let store = api.gated_store(org);
    let rt = api.user_type().await?;
    let found: (i64, crate::cursor::Links, Listed) = web::block(move || {
        store.read_with(|conn, settings| {
            let size = settings.page_size(params.count).max(1);
            let query = ListQuery {
                filter: params.filter.as_ref(),
                sort_by: params.sort_by.as_ref(),
                descending: params.descending,
                start_index: 1,
                count: size,
            };
            // A type whose attributes the filter does not name contributes
            // nothing; a filter no type accepts is the error.
            let mut rejected = None;
            let users_total = accepted(
                scim_store::users::count_matching_users_of(conn, org, rt, query.filter),
                &mut rejected,
            )?;
            let groups_total = accepted(
                scim_store::groups::count_matching_groups(conn, org, query.filter),
                &mut rejected,
            )?;
            let (users_ok, groups_ok) = (users_total.is_some(), groups_total.is_some());
            if let (None, None, Some(e)) = (users_total, groups_total, rejected) {
                return Err(e);
            }
            let total = users_total.unwrap_or(0) + groups_total.unwrap_or(0);
            let none = || KeysetPage {
                items: Vec::new(),
                more: false,
            };
            let page = crate::cursor::page(2, start.as_ref(), size, &mut |phase, seek, limit| {
                Ok(match phase {
                    0 if users_ok => {
                        let p = scim_store::users::list_users_keyset_of(
                            conn, org, rt, &query, seek, limit,
                        )?;
                        KeysetPage {
                            items: p
                                .items
                                .into_iter()
                                .map(|(u, k)| (Hit::User(u), k))
                                .collect(),
                            more: p.more,
                        }
                    }
                    1 if groups_ok => {
                        let p =
                            scim_store::groups::list_groups_keyset(conn, org, &query, seek, limit)?;
                        KeysetPage {
                            items: p
                                .items
                                .into_iter()
                                .map(|(g, k)| (Hit::Group(g), k))
                                .collect(),
                            more: p.more,
                        }
                    }
                    _ => none(),
                })
            })?;
            let mut users = Vec::new();
            let mut groups = Vec::new();
            for (_, item, _) in page.items {
                match item {
                    Hit::User(u) => users.push(u),
                    Hit::Group(g) => {
                        let members = load_members(conn, &g.id, fields)?;
                        groups.push((g, members));
                    }
                }
            }
            let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
            let user_groups = load_groups(conn, &ids, &params.projection)?;
            let listed = Listed {
                users,
                user_groups,
                groups,
            };
            Ok((total, page.links, listed))
        })
    })
    .await??;
    let (total, links, listed) = found;
    let head = paging.list_head(total, listed.len(), &links)?;
    write_list(api, req, rt, &head, &listed, fields, &projection)
}
