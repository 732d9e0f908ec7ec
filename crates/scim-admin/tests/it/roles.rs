//! Administrator roles (docs/ORGANIZATIONS.md, "Administrators"): an
//! organization administrator acts only on the organizations granted to
//! it, through the header, with its tokens, and never on what belongs to
//! the instance; an instance administrator can do all; role changes take
//! effect at once and are in the change log. Both backends.

use actix_web::http::Method;
use scim_admin::auth::{access, Access};
use scim_store::changes;
use serde_json::{json, Value};

use crate::{assert_error, documented_operations, Auth, TestApp, PASSWORD};

/// Signs `username` in (password [`PASSWORD`]).
async fn sign_in(app: &TestApp, username: &str) -> Auth {
    let res = app
        .send(
            Method::POST,
            "/admin/api/v1/session",
            &Auth::None,
            Some(json!({"username": username, "password": PASSWORD})),
        )
        .await;
    assert_eq!(res.status, 200, "{}", res.body);
    Auth::Session {
        cookie: crate::cookie_value(&res).unwrap(),
        csrf: Some(res.body["csrf_token"].as_str().unwrap().to_string()),
    }
}

/// `method path` as `auth`, naming `org` in `X-Scimd-Organization`.
async fn send_in(
    app: &TestApp,
    method: Method,
    path: &str,
    auth: &Auth,
    org: Option<&str>,
    body: Option<Value>,
) -> crate::Res {
    let org = org.map(str::to_owned);
    app.send_with(method, path, auth, body, move |r| match org {
        Some(o) => r.insert_header(("X-Scimd-Organization", o)),
        None => r,
    })
    .await
}

async fn create_org(app: &TestApp, root: &Auth, slug: &str) {
    let res = app
        .send(
            Method::POST,
            "/admin/api/v1/organizations",
            root,
            Some(json!({"slug": slug, "name": slug.to_uppercase()})),
        )
        .await;
    assert_eq!(res.status, 201, "{}", res.body);
}

#[actix_web::test]
async fn organization_administrators_act_only_on_their_organizations() {
    for db in scim_store::testing::backends() {
        let app = TestApp::new(db);
        let root = app.signed_in().await;
        create_org(&app, &root, "acme").await;
        create_org(&app, &root, "globex").await;

        // Roles are checked: unknown ones, none or unknown organizations.
        for (body, field) in [
            (json!({"role": "owner"}), "role"),
            (json!({"role": "organization"}), "organizations"),
            (
                json!({"role": "organization", "organizations": ["nope"]}),
                "organizations",
            ),
            (
                json!({"role": "instance", "organizations": ["acme"]}),
                "organizations",
            ),
        ] {
            let mut body = body;
            body["username"] = "x".into();
            body["password"] = PASSWORD.into();
            let res = app
                .send(Method::POST, "/admin/api/v1/admins", &root, Some(body))
                .await;
            assert_error(&res, 422, "validation_failed");
            assert_eq!(crate::field_names(&res), [field], "{}", res.body);
        }
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "olga", "password": PASSWORD,
                            "role": "organization", "organizations": ["acme"]})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        assert_eq!(res.body["role"], "organization");
        assert_eq!(res.body["organizations"], json!(["acme"]));
        let olga_id = res.body["id"].as_str().unwrap().to_owned();
        let olga = sign_in(&app, "olga").await;

        // Without the header, her only organization: a SCIM token she
        // makes is acme's.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/scim-tokens",
                &olga,
                Some(json!({"name": "Acme Entra"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/scim-tokens",
            &root,
            Some("acme"),
            None,
        )
        .await;
        assert_eq!(res.body.as_array().unwrap().len(), 1, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/scim-tokens", &root, None)
            .await;
        assert!(res.body.as_array().unwrap().is_empty(), "{}", res.body);
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/sync",
            &olga,
            Some("acme"),
            None,
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.body);

        // Another organization through the header, or one that does not
        // exist, is 403 alike.
        for slug in ["globex", "default", "nope"] {
            let res = send_in(
                &app,
                Method::GET,
                "/admin/api/v1/sync",
                &olga,
                Some(slug),
                None,
            )
            .await;
            assert_error(&res, 403, "forbidden");
            assert!(
                res.body["message"].as_str().unwrap().contains(slug),
                "{}",
                res.body
            );
        }
        // The organizations: only hers listed; managing them is 403.
        let res = app
            .send(Method::GET, "/admin/api/v1/organizations", &olga, None)
            .await;
        let slugs: Vec<&str> = res
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["slug"].as_str().unwrap())
            .collect();
        assert_eq!(slugs, ["acme"]);
        for (method, path, body) in [
            (
                Method::POST,
                "/admin/api/v1/organizations",
                Some(json!({"slug": "x", "name": "X"})),
            ),
            (
                Method::PATCH,
                "/admin/api/v1/organizations/acme",
                Some(json!({"name": "Mine"})),
            ),
            (
                Method::DELETE,
                "/admin/api/v1/organizations/globex?confirm=globex",
                None,
            ),
            (Method::GET, "/admin/api/v1/admins", None),
            (Method::GET, "/admin/api/v1/event-streams", None),
        ] {
            let res = app.send(method.clone(), path, &olga, body).await;
            assert_error(&res, 403, "forbidden");
            assert!(
                res.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("needs an instance administrator"),
                "{method} {path}: {}",
                res.body
            );
        }
        // Every documented instance-wide operation is 403 for her, and
        // changes nothing.
        let instance_ops: Vec<_> = documented_operations()
            .into_iter()
            .filter(|(m, path, _, protected)| *protected && access(m, path) == Access::Instance)
            .collect();
        assert!(instance_ops.len() >= 20, "{instance_ops:?}");
        for (method, path, uri, _) in &instance_ops {
            let res = app.send(method.clone(), uri, &olga, Some(json!({}))).await;
            assert_eq!(res.status, 403, "{method} {path}: {}", res.body);
            assert_error(&res, 403, "forbidden");
        }
        let res = app
            .send(Method::GET, "/admin/api/v1/organizations", &root, None)
            .await;
        assert_eq!(res.body.as_array().unwrap().len(), 3, "{}", res.body);

        // Her admin API token is bound to acme: it acts there only.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admin-tokens",
                &olga,
                Some(json!({"name": "olga's automation"})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let token = Auth::Bearer(res.body["secret"].as_str().unwrap().to_owned());
        let token_id = res.body["token"]["id"].as_str().unwrap().to_owned();
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &token, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/sync",
            &token,
            Some("globex"),
            None,
        )
        .await;
        assert_error(&res, 403, "forbidden");
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/organizations",
                &token,
                Some(json!({"slug": "y", "name": "Y"})),
            )
            .await;
        assert_error(&res, 403, "forbidden");
        let res = app
            .send(Method::GET, "/admin/api/v1/admins", &token, None)
            .await;
        assert_error(&res, 403, "forbidden");
        // She sees the tokens bound to acme only; root sees every one.
        let root_token = app
            .send(
                Method::POST,
                "/admin/api/v1/admin-tokens",
                &root,
                Some(json!({"name": "root's"})),
            )
            .await;
        let root_token_id = root_token.body["token"]["id"].as_str().unwrap().to_owned();
        let res = app
            .send(Method::GET, "/admin/api/v1/admin-tokens", &olga, None)
            .await;
        let ids: Vec<&str> = res
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["id"].as_str().unwrap())
            .collect();
        assert_eq!(ids, [token_id.as_str()]);
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admin-tokens/{root_token_id}"),
                &olga,
                None,
            )
            .await;
        assert_error(&res, 404, "not_found");
        let res = app
            .send(Method::GET, "/admin/api/v1/admin-tokens", &root, None)
            .await;
        assert_eq!(res.body.as_array().unwrap().len(), 2, "{}", res.body);

        // The instance administrator can do all, in any organization.
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/sync",
            &root,
            Some("globex"),
            None,
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/admins", &root, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);

        // Grants change: acme and globex. Without the header she must
        // now name one (400); globex opens.
        let set_role = |orgs: Value, role: &'static str| {
            let path = format!("/admin/api/v1/admins/{olga_id}/role");
            let root = root.clone();
            let app = &app;
            async move {
                app.send(
                    Method::PUT,
                    &path,
                    &root,
                    Some(json!({"role": role, "organizations": orgs})),
                )
                .await
            }
        };
        let res = set_role(json!(["acme", "globex"]), "organization").await;
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.body["organizations"], json!(["acme", "globex"]));
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &olga, None)
            .await;
        assert_error(&res, 400, "bad_request");
        assert!(
            res.body["message"]
                .as_str()
                .unwrap()
                .contains("X-Scimd-Organization"),
            "{}",
            res.body
        );
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/sync",
            &olga,
            Some("globex"),
            None,
        )
        .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/organizations", &olga, None)
            .await;
        assert_eq!(res.body.as_array().unwrap().len(), 2, "{}", res.body);
        // Her acme token still works.
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &token, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        // globex only: acme closes, and her acme token is revoked.
        let res = set_role(json!(["globex"]), "organization").await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = send_in(
            &app,
            Method::GET,
            "/admin/api/v1/sync",
            &olga,
            Some("acme"),
            None,
        )
        .await;
        assert_error(&res, 403, "forbidden");
        let res = app
            .send(Method::GET, "/admin/api/v1/sync", &token, None)
            .await;
        assert_error(&res, 401, "unauthorized");
        // An instance administrator now: everything opens.
        let res = set_role(json!([]), "instance").await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/admins", &olga, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);

        // The change log has each change of role, by root, with the
        // organizations before and after.
        let rows: Vec<changes::Change> = app
            .db
            .store()
            .read(|c| changes::read_after(c, 0, 10_000))
            .unwrap()
            .into_iter()
            .filter(|c| c.resource_id.as_deref() == Some(olga_id.as_str()))
            .filter(|c| c.event != "admin.signed_in")
            .collect();
        let details: Vec<(String, Value)> = rows
            .iter()
            .map(|c| (c.event.clone(), serde_json::from_str(&c.detail).unwrap()))
            .collect();
        let events: Vec<&str> = details.iter().map(|(e, _)| e.as_str()).collect();
        assert_eq!(
            events,
            [
                "admin.created",
                "admin.changed",
                "admin.changed",
                "admin.changed"
            ],
            "{details:?}"
        );
        assert_eq!(details[0].1["organizations"], json!(["acme"]));
        assert_eq!(details[1].1["organizations"], json!(["acme", "globex"]));
        assert_eq!(details[1].1["previous_organizations"], json!(["acme"]));
        assert_eq!(details[2].1["organizations"], json!(["globex"]));
        assert_eq!(details[3].1["role"], "instance");
        assert_eq!(details[3].1["previous_role"], "organization");
        assert!(rows.iter().all(|r| r.actor_name.as_deref() == Some("root")));
    }
}

#[actix_web::test]
async fn the_last_instance_administrator_keeps_its_role() {
    for db in scim_store::testing::backends() {
        let app = TestApp::new(db);
        let root = app.signed_in().await;
        let res = app
            .send(Method::GET, "/admin/api/v1/session", &root, None)
            .await;
        assert_eq!(res.status, 200, "{}", res.body);
        let res = app
            .send(Method::GET, "/admin/api/v1/admins", &root, None)
            .await;
        let root_id = res.body[0]["id"].as_str().unwrap().to_owned();
        assert_eq!(res.body[0]["role"], "instance");
        let res = app
            .send(
                Method::PUT,
                &format!("/admin/api/v1/admins/{root_id}/role"),
                &root,
                Some(json!({"role": "organization", "organizations": ["default"]})),
            )
            .await;
        assert_error(&res, 409, "conflict");
        // With an organization administrator beside it, still the last
        // instance administrator: it can be neither disabled nor deleted.
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "olga", "password": PASSWORD,
                            "role": "organization", "organizations": ["default"]})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let olga_id = res.body["id"].as_str().unwrap().to_owned();
        let res = app
            .send(
                Method::POST,
                &format!("/admin/api/v1/admins/{root_id}/disable"),
                &root,
                None,
            )
            .await;
        assert_error(&res, 409, "conflict");
        // The organization administrator can go.
        let res = app
            .send(
                Method::DELETE,
                &format!("/admin/api/v1/admins/{olga_id}"),
                &root,
                None,
            )
            .await;
        assert_eq!(res.status, 204, "{}", res.body);
    }
}

/// The consent page (OAuth authorization code grant) of a client belongs
/// to the client's organization: an organization administrator may
/// authorize its own organization's clients only, and the grant is
/// recorded in the client's organization.
#[actix_web::test]
async fn an_organization_administrator_authorizes_only_its_organizations_clients() {
    for db in scim_store::testing::backends() {
        let app = TestApp::new(db);
        let root = app.signed_in().await;
        create_org(&app, &root, "acme").await;
        create_org(&app, &root, "globex").await;
        let res = app
            .send(
                Method::POST,
                "/admin/api/v1/admins",
                &root,
                Some(json!({"username": "olga", "password": PASSWORD,
                            "role": "organization", "organizations": ["acme"]})),
            )
            .await;
        assert_eq!(res.status, 201, "{}", res.body);
        let olga = sign_in(&app, "olga").await;
        let mut clients = Vec::new();
        for org in ["acme", "globex"] {
            let res = send_in(
                &app,
                Method::POST,
                "/admin/api/v1/oauth-clients",
                &root,
                Some(org),
                Some(json!({"name": format!("{org} Entra"),
                            "redirect_uris": [format!("https://{org}.example/cb")]})),
            )
            .await;
            assert_eq!(res.status, 201, "{}", res.body);
            let id = res.body["client"]["client_id"]
                .as_str()
                .or_else(|| res.body["client_id"].as_str())
                .unwrap()
                .to_owned();
            clients.push((org, id));
        }
        let consent = |org: &str, id: &str| {
            format!(
                "/oauth/authorize?response_type=code&client_id={id}\
                 &redirect_uri=https%3A%2F%2F{org}.example%2Fcb&scope=scim&state=s"
            )
        };
        for (org, id) in &clients {
            let path = consent(org, id);
            let res = app.send(Method::GET, &path, &olga, None).await;
            let expected = if *org == "acme" { 200 } else { 403 };
            assert_eq!(res.status, expected, "olga, {org}'s client: {}", res.body);
            // The decision is refused too, not only the page.
            let res = app
                .send_with(Method::POST, "/oauth/authorize", &olga, None, {
                    let form = format!(
                        "response_type=code&client_id={id}&redirect_uri=https%3A%2F%2F{org}.example%2Fcb\
                         &scope=scim&state=s&decision=approve&csrf={}",
                        match &olga {
                            crate::Auth::Session { csrf: Some(c), .. } => c.clone(),
                            _ => String::new(),
                        }
                    );
                    move |r| {
                        r.insert_header(("Content-Type", "application/x-www-form-urlencoded"))
                            .set_payload(form)
                    }
                })
                .await;
            let expected = if *org == "acme" { 303 } else { 403 };
            assert_eq!(
                res.status, expected,
                "olga approves {org}'s client: {}",
                res.body
            );
            // An instance administrator may authorize either.
            let res = app.send(Method::GET, &path, &root, None).await;
            assert_eq!(res.status, 200, "root, {org}'s client: {}", res.body);
        }
        // Olga's grant is recorded in acme's change log, not the default one's.
        let acme = app
            .api
            .store()
            .organizations()
            .await
            .unwrap()
            .by_slug("acme")
            .unwrap()
            .id;
        let (in_acme, in_default) = app
            .api
            .store()
            .read(move |c| {
                let mut count = |org| -> Result<usize, scim_store::StoreError> {
                    Ok(changes::list_changes(
                        c,
                        &changes::ChangeQuery {
                            org: Some(org),
                            limit: 100,
                            ..Default::default()
                        },
                    )?
                    .into_iter()
                    .filter(|ch| ch.event == "oauth_grant.created")
                    .count())
                };
                Ok((count(acme)?, count(scim_store::OrgId::DEFAULT)?))
            })
            .unwrap();
        assert_eq!((in_acme, in_default), (1, 0));
    }
}
