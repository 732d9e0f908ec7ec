//! Read-only browsing of what the identity provider provisioned: paged,
//! searchable lists of users and groups (evaluated in the database by the
//! same filter translation as the SCIM API), and detail pages with every
//! attribute, the group memberships and the timeline (the newest entries
//! of the change log about the user or group, `console::activity`).

use actix_web::{web, HttpRequest, HttpResponse};
use scim_core::filter::{parse_filter, AttrPath, Filter};
use scim_store::groups;
use scim_store::members::{self, GroupRef, Member};
use scim_store::OrgId;
use scim_store::{users, DbConnection, GroupRecord, ListQuery, Page, StoreError, UserRecord};
use serde_json::{Map, Value};

use super::activity::timeline;
use super::{blocking, error_page, render, require_session, session_error_page, Chrome, Form};
use crate::activity::ActivityEntry;
use crate::error::AdminError;
use crate::AdminApi;

/// Rows per page of the user and group lists.
const PAGE_SIZE: i64 = 25;
/// Members per page of a group's detail page.
const MEMBERS_PAGE_SIZE: i64 = 100;

pub(super) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(users_page))
        .route("/users/{id}", web::get().to(user_page))
        .route("/groups", web::get().to(groups_page))
        .route("/groups/{id}", web::get().to(group_page));
}

macro_rules! session_or_return {
    ($req:expr, $api:expr) => {
        match require_session(&$req, &$api).await {
            Ok(s) => s,
            Err(resp) => return resp,
        }
    };
}

/// A 404 for a console address that does not exist, inside the console's
/// frame (navigation included) for a signed-in administrator.
pub(super) async fn not_found_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    session_error_page(
        &session,
        &AdminError::NotFound(format!(
            "there is no console page at {}; use the navigation above",
            req.path()
        )),
    )
}

/// The filter a search box means: a case-insensitive substring of the
/// names and emails, or the exact externalId. The text is embedded as a
/// JSON string literal, so quotes in it cannot change the filter.
/// With `state`, only users in that state: `active eq true` or `active eq
/// false` (RFC 7643 §4.1.1), and'd with the search.
fn search_filter(users: bool, q: &str, state: UserState) -> Result<Option<Filter>, AdminError> {
    let q = q.trim();
    let search = if q.is_empty() {
        None
    } else {
        let lit = serde_json::to_string(q).map_err(|_| AdminError::Internal)?;
        Some(if users {
            format!(
                "userName co {lit} or displayName co {lit} or emails.value co {lit} or externalId eq {lit}"
            )
        } else {
            format!("displayName co {lit} or externalId eq {lit}")
        })
    };
    let state = match state {
        UserState::Any => None,
        UserState::Active => Some("active eq true"),
        UserState::Suspended => Some("active eq false"),
    };
    let expr = match (search, state) {
        (None, None) => return Ok(None),
        (Some(search), None) => search,
        (None, Some(state)) => state.to_owned(),
        (Some(search), Some(state)) => format!("({search}) and {state}"),
    };
    parse_filter(&expr)
        .map(Some)
        .map_err(|e| AdminError::field("q", e.detail))
}

/// The users list's state filter (`?state=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum UserState {
    /// Every user.
    Any,
    /// `active` true.
    Active,
    /// `active` false: suspended by the identity provider.
    Suspended,
}

impl UserState {
    fn from_query(form: &Form) -> Self {
        match form.text("state") {
            "active" => UserState::Active,
            "suspended" => UserState::Suspended,
            _ => UserState::Any,
        }
    }

    /// The `?state=` value ("" for every user).
    pub fn as_str(self) -> &'static str {
        match self {
            UserState::Any => "",
            UserState::Active => "active",
            UserState::Suspended => "suspended",
        }
    }
}

/// The 1-based page number in `?page=`.
fn page_number(form: &Form) -> i64 {
    form.get("page")
        .and_then(|p| p.parse::<i64>().ok())
        .filter(|p| *p >= 1)
        .unwrap_or(1)
}

/// Paging links of a list.
#[derive(Debug, Clone)]
pub(super) struct Pager {
    /// This page (1-based).
    pub page: i64,
    /// How many pages.
    pub pages: i64,
    /// All matches.
    pub total: i64,
    /// The search text, URL-encoded for the links.
    pub q_encoded: String,
    /// The users list's state filter, kept by the links ("" for none).
    pub state: &'static str,
}

impl Pager {
    fn new(page: i64, total: i64, per_page: i64, q: &str) -> Self {
        Pager {
            page,
            pages: ((total + per_page - 1) / per_page).max(1),
            total,
            q_encoded: form_urlencoded::byte_serialize(q.as_bytes()).collect(),
            state: "",
        }
    }

    /// Whether there is a previous page.
    pub fn has_prev(&self) -> bool {
        self.page > 1
    }

    /// Whether there is a next page.
    pub fn has_next(&self) -> bool {
        self.page < self.pages
    }
}

/// One user in the list.
#[derive(Debug, Clone)]
pub(super) struct UserRow {
    pub id: String,
    pub user_name: String,
    pub display_name: String,
    pub email: String,
    pub active: bool,
    pub last_modified: String,
}

fn text(attrs: &Map<String, Value>, key: &str) -> String {
    attrs
        .get(key)
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// The primary email, else the first.
fn primary_email(attrs: &Map<String, Value>) -> String {
    let Some(emails) = attrs.get("emails").and_then(Value::as_array) else {
        return String::new();
    };
    emails
        .iter()
        .find(|e| e.get("primary").and_then(Value::as_bool) == Some(true))
        .or_else(|| emails.first())
        .and_then(|e| e.get("value"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned()
}

/// A repository's list function (`users::list_users`, `groups::list_groups`).
type ListFn<T> = fn(&mut DbConnection, OrgId, &ListQuery<'_>) -> Result<Page<T>, StoreError>;

/// A page of search results, as rows: the users (sorted by userName) or
/// groups (by displayName) matching `q`, and their total; a search the
/// filter grammar refuses is a message instead of rows.
async fn search<T, R>(
    api: &AdminApi,
    q: &str,
    state: UserState,
    page: i64,
    users: bool,
    (org, list): (OrgId, ListFn<T>),
    row: fn(T) -> R,
) -> Result<(Vec<R>, i64, Option<String>), AdminError>
where
    T: Send + 'static,
    R: Send + 'static,
{
    let store = api.store().clone();
    let needle = q.to_owned();
    let result = blocking(move || {
        let filter = search_filter(users, &needle, state)?;
        let sort = AttrPath::new(if users { "userName" } else { "displayName" });
        let query = ListQuery {
            filter: filter.as_ref(),
            sort_by: Some(&sort),
            descending: false,
            start_index: (page - 1) * PAGE_SIZE + 1,
            count: PAGE_SIZE,
        };
        Ok(store.read(|c| list(c, org, &query))?)
    })
    .await;
    match result {
        Ok(p) => Ok((p.items.into_iter().map(row).collect(), p.total, None)),
        Err(AdminError::Validation { message, .. }) => Ok((Vec::new(), 0, Some(message))),
        Err(err) => Err(err),
    }
}

fn user_row(u: UserRecord) -> UserRow {
    UserRow {
        user_name: text(&u.attrs, "userName"),
        display_name: text(&u.attrs, "displayName"),
        email: primary_email(&u.attrs),
        active: u.attrs.get("active").and_then(Value::as_bool) != Some(false),
        last_modified: u.last_modified,
        id: u.id,
    }
}

fn group_row(g: GroupRecord) -> GroupRow {
    GroupRow {
        display_name: text(&g.attrs, "displayName"),
        external_id: text(&g.attrs, "externalId"),
        last_modified: g.last_modified,
        id: g.id,
    }
}

#[derive(askama::Template)]
#[template(path = "users.html")]
struct UsersPage {
    chrome: Chrome,
    q: String,
    state: UserState,
    rows: Vec<UserRow>,
    pager: Pager,
    error: Option<String>,
}

async fn users_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let form = Form::query(&req);
    let q = form.text("q").to_owned();
    let state = UserState::from_query(&form);
    let page = page_number(&form);
    let (rows, total, error) = match search(
        &api,
        &q,
        state,
        page,
        true,
        (session.org, users::list_users),
        user_row,
    )
    .await
    {
        Ok(found) => found,
        Err(err) => return error_page(&err),
    };
    let mut pager = Pager::new(page, total, PAGE_SIZE, &q);
    pager.state = state.as_str();
    render(&UsersPage {
        chrome: Chrome::for_session(&session, "users"),
        pager,
        q,
        state,
        rows,
        error,
    })
}

/// An attribute as shown: its path and its value.
#[derive(Debug, Clone)]
pub(super) struct Attribute {
    pub path: String,
    pub value: String,
}

/// Flattens a resource into one row per simple value: `name.givenName`,
/// `emails[0].value`, `urn:…:User:department`.
fn flatten(prefix: &str, value: &Value, out: &mut Vec<Attribute>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                flatten(&format!("{prefix}.{k}"), v, out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                flatten(&format!("{prefix}[{i}]"), v, out);
            }
        }
        Value::String(s) => out.push(Attribute {
            path: prefix.to_owned(),
            value: s.clone(),
        }),
        Value::Null => {}
        other => out.push(Attribute {
            path: prefix.to_owned(),
            value: other.to_string(),
        }),
    }
}

fn attributes(attrs: &Map<String, Value>) -> Vec<Attribute> {
    let mut out = Vec::new();
    for (k, v) in attrs {
        match v {
            _ if k == "schemas" => {}
            // An extension's attributes, named as in filters:
            // `urn:…:User:department`.
            Value::Object(ext) if k.starts_with("urn:") => {
                for (sub, v) in ext {
                    flatten(&format!("{k}:{sub}"), v, &mut out);
                }
            }
            _ => flatten(k, v, &mut out),
        }
    }
    out
}

#[derive(askama::Template)]
#[template(path = "user.html")]
struct UserPage {
    chrome: Chrome,
    id: String,
    user_name: String,
    active: bool,
    created: String,
    last_modified: String,
    version: i64,
    attributes: Vec<Attribute>,
    groups: Vec<GroupRef>,
    timeline: Vec<ActivityEntry>,
}

async fn user_page(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<String>,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    let id = path.into_inner();
    let store = api.store().clone();
    let org = session.org;
    let result = blocking(move || {
        let found = store.read(|c| {
            let Some(user) = users::find_user(c, org, &id)? else {
                return Ok(None);
            };
            let mut groups = members::groups_of_users(c, &[id.as_str()])?;
            Ok(Some((user, groups.remove(&id).unwrap_or_default())))
        })?;
        match found {
            Some((user, groups)) => Ok(Some((user, groups, timeline(&store, org, &id)?))),
            None => Ok(None),
        }
    })
    .await;
    let (user, groups, timeline) = match result {
        Ok(Some(found)) => found,
        Ok(None) => {
            return session_error_page(
                &session,
                &AdminError::NotFound(
                    "no such user: it may have been deleted by the identity provider".into(),
                ),
            )
        }
        Err(err) => return error_page(&err),
    };
    render(&UserPage {
        chrome: Chrome::for_session(&session, "users"),
        user_name: text(&user.attrs, "userName"),
        active: user.attrs.get("active").and_then(Value::as_bool) != Some(false),
        attributes: attributes(&user.attrs),
        id: user.id,
        created: user.created,
        last_modified: user.last_modified,
        version: user.version,
        groups,
        timeline,
    })
}

/// One group in the list.
#[derive(Debug, Clone)]
pub(super) struct GroupRow {
    pub id: String,
    pub display_name: String,
    pub external_id: String,
    pub last_modified: String,
}

#[derive(askama::Template)]
#[template(path = "groups.html")]
struct GroupsPage {
    chrome: Chrome,
    q: String,
    rows: Vec<GroupRow>,
    pager: Pager,
    error: Option<String>,
}

async fn groups_page(req: HttpRequest, api: web::Data<AdminApi>) -> HttpResponse {
    let session = session_or_return!(req, api);
    let form = Form::query(&req);
    let q = form.text("q").to_owned();
    let page = page_number(&form);
    let (rows, total, error) = match search(
        &api,
        &q,
        UserState::Any,
        page,
        false,
        (session.org, groups::list_groups),
        group_row,
    )
    .await
    {
        Ok(found) => found,
        Err(err) => return error_page(&err),
    };
    render(&GroupsPage {
        chrome: Chrome::for_session(&session, "groups"),
        pager: Pager::new(page, total, PAGE_SIZE, &q),
        q,
        rows,
        error,
    })
}

#[derive(askama::Template)]
#[template(path = "group.html")]
struct GroupPage {
    chrome: Chrome,
    id: String,
    display_name: String,
    created: String,
    last_modified: String,
    version: i64,
    attributes: Vec<Attribute>,
    members: Vec<Member>,
    pager: Pager,
    timeline: Vec<ActivityEntry>,
}

async fn group_page(
    req: HttpRequest,
    api: web::Data<AdminApi>,
    path: web::Path<String>,
) -> HttpResponse {
    let session = session_or_return!(req, api);
    let id = path.into_inner();
    let page = page_number(&Form::query(&req));
    let per_page = MEMBERS_PAGE_SIZE;
    let store = api.store().clone();
    let org = session.org;
    let result = blocking(move || {
        let found = store.read(|c| {
            let Some(group) = groups::find_group(c, org, &id)? else {
                return Ok(None);
            };
            // One page of members, never the whole (possibly 100,000)
            // membership.
            let total = members::count_group_members(c, &id)?;
            let members = members::list_group_members_page(
                c,
                &id,
                (page - 1).saturating_mul(per_page),
                per_page,
            )?;
            Ok(Some((group, total, members)))
        })?;
        match found {
            Some((group, total, members)) => {
                Ok(Some((group, total, members, timeline(&store, org, &id)?)))
            }
            None => Ok(None),
        }
    })
    .await;
    let (group, total, shown, timeline) = match result {
        Ok(Some(found)) => found,
        Ok(None) => {
            return session_error_page(
                &session,
                &AdminError::NotFound(
                    "no such group: it may have been deleted by the identity provider".into(),
                ),
            )
        }
        Err(err) => return error_page(&err),
    };
    let pager = Pager::new(page, total, per_page, "");
    let mut attrs = group.attrs.clone();
    attrs.remove("members");
    render(&GroupPage {
        chrome: Chrome::for_session(&session, "groups"),
        display_name: text(&group.attrs, "displayName"),
        attributes: attributes(&attrs),
        id: group.id,
        created: group.created,
        last_modified: group.last_modified,
        version: group.version,
        members: shown,
        pager,
        timeline,
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    #[test]
    fn search_text_cannot_break_out_of_the_literal() {
        let f = search_filter(true, r#"a" or userName pr or "b"#, UserState::Any)
            .unwrap()
            .unwrap();
        // Four comparisons of the one literal, nothing else.
        let shown = format!("{f:?}");
        assert!(shown.contains(r#"a\" or userName pr or \"b"#), "{shown}");
        assert!(search_filter(true, "  ", UserState::Any).unwrap().is_none());
        assert!(search_filter(false, "x", UserState::Any).unwrap().is_some());
        let f = search_filter(true, "ann", UserState::Suspended)
            .unwrap()
            .unwrap();
        let shown = format!("{f:?}");
        assert!(shown.starts_with("And("), "{shown}");
        assert!(search_filter(true, "", UserState::Active)
            .unwrap()
            .is_some());
    }

    #[test]
    fn attributes_are_flattened_by_path() {
        let attrs = json!({
            "schemas": ["x"],
            "userName": "a@b",
            "active": false,
            "name": {"givenName": "A"},
            "emails": [{"value": "a@b", "primary": true}],
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "R&D", "manager": {"value": "m1"}}
        });
        let rows = attributes(attrs.as_object().unwrap());
        let get = |p: &str| rows.iter().find(|a| a.path == p).map(|a| a.value.clone());
        assert_eq!(get("userName").as_deref(), Some("a@b"));
        assert_eq!(get("active").as_deref(), Some("false"));
        assert_eq!(get("name.givenName").as_deref(), Some("A"));
        assert_eq!(get("emails[0].primary").as_deref(), Some("true"));
        assert_eq!(
            get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").as_deref(),
            Some("R&D")
        );
        assert_eq!(
            get("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value")
                .as_deref(),
            Some("m1")
        );
        assert!(get("schemas").is_none());
        assert_eq!(primary_email(attrs.as_object().unwrap()), "a@b");
    }

    #[test]
    fn pages_are_counted() {
        let p = Pager::new(1, 0, 25, "");
        assert_eq!(p.pages, 1);
        assert!(!p.has_next() && !p.has_prev());
        let p = Pager::new(2, 51, 25, "a b");
        assert_eq!(p.pages, 3);
        assert!(p.has_next() && p.has_prev());
        assert_eq!(p.q_encoded, "a+b");
    }
}
