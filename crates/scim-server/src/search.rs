//! `POST /.search` at the service root (RFC 7644 §3.4.3): one search
//! across every resource type.
//!
//! The filter applies to each type on its own; a type whose attributes the
//! filter does not name (e.g. `userName` for Groups) contributes nothing,
//! and only a filter valid for no type is an error. Results list Users
//! first, then Groups, each type in its own `sortBy` order; `startIndex`
//! and `count` page through that combined list, and `totalResults` is the
//! sum.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::schema::LIST_RESPONSE_SCHEMA;
use scim_store::{GroupRecord, ListQuery, Member, Page, StoreError, UserRecord};

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

/// `POST /.search`
pub async fn search_all(
    api: web::Data<ScimApi>,
    req: HttpRequest,
    body: ScimJson,
) -> Result<HttpResponse, ApiError> {
    let params = ListParams::from_search(&body.0)?;
    let store = api.gated_store();
    let fields = MemberFields::of(&params.projection);
    let projection = params.projection.clone();
    let start_index = params.start_index;
    type Found = (
        i64,
        Vec<UserRecord>,
        std::collections::HashMap<String, Vec<scim_store::GroupRef>>,
        Vec<(GroupRecord, Option<Vec<Member>>)>,
    );
    let found: Found = web::block(move || {
        store.read_with(|conn, settings| {
            let query = |start_index: i64, count: i64| ListQuery {
                filter: params.filter.as_ref(),
                sort_by: params.sort_by.as_ref(),
                descending: params.descending,
                start_index,
                count,
            };
            let mut rejected = None;
            let users_total =
                or_nothing(scim_store::list_users(conn, &query(1, 0)), &mut rejected)?.total;
            let mut rejected_groups = None;
            let groups_total = or_nothing(
                scim_store::list_groups(conn, &query(1, 0)),
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
                users = scim_store::list_users(conn, &query(skip + 1, n))?.items;
                wanted -= users.len() as i64;
            }
            let mut groups = Vec::new();
            if wanted > 0 && groups_total > 0 {
                let group_skip = (skip - users_total).max(0);
                if group_skip < groups_total {
                    for rec in scim_store::list_groups(conn, &query(group_skip + 1, wanted))?.items
                    {
                        let members = load_members(conn, &rec.id, fields)?;
                        groups.push((rec, members));
                    }
                }
            }
            let ids: Vec<&str> = users.iter().map(|u| u.id.as_str()).collect();
            let user_groups = load_groups(conn, &ids, &params.projection)?;
            Ok((users_total + groups_total, users, user_groups, groups))
        })
    })
    .await??;
    let (total, users, user_groups, groups) = found;
    let base = api.location_base(&req);
    let head = serde_json::json!({
        "schemas": [LIST_RESPONSE_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": users.len() + groups.len(),
    });
    let head = serde_json::to_vec(&head).map_err(|_| ApiError::Internal)?;
    let mut out = Vec::with_capacity(head.len() + 1024);
    out.extend_from_slice(&head[..head.len() - 1]);
    out.extend_from_slice(br#","Resources":["#);
    let mut first = true;
    for rec in &users {
        if !first {
            out.push(b',');
        }
        first = false;
        let doc = render(rec, user_groups.get(&rec.id), &base, &projection);
        serde_json::to_writer(&mut out, &doc).map_err(|_| ApiError::Internal)?;
    }
    for (rec, members) in &groups {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend(group_body(
            rec,
            members.as_deref(),
            fields,
            &base,
            &projection,
        )?);
    }
    out.extend_from_slice(b"]}");
    Ok(scim_bytes(StatusCode::OK, out))
}
