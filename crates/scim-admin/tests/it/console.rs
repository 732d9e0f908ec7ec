//! The HTML console over HTTP (the browser test in the scimd crate drives
//! it in Chromium): redirects to sign-in, security headers, CSRF on every
//! form, messages next to the fields, and the same rules as the API.

use actix_web::dev::Service;
use actix_web::http::{header, StatusCode};
use actix_web::test;
use scim_store::testing::{backends, create_user, enable_sync};

use scim_admin::console::LOGIN_CSRF_COOKIE;

use super::{create_root, TestApp, PASSWORD, PEM};

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    html: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
    }

    fn set_cookie(&self) -> Option<String> {
        self.headers
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    /// The value of the first hidden `csrf` field.
    fn csrf(&self) -> String {
        let at = self
            .html
            .find("name=\"csrf\" value=\"")
            .expect("a csrf field")
            + 19;
        self.html[at..].split('"').next().unwrap().to_owned()
    }
}

async fn request(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
) -> Page {
    let header = cookie.map(|c| format!("scimd_admin_session={c}"));
    request_with_cookies(app, method, path, header, form).await
}

async fn request_with_cookies(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie_header: Option<String>,
    form: Option<&str>,
) -> Page {
    let mut req = test::TestRequest::default()
        .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .peer_addr("192.0.2.7:40000".parse().unwrap());
    if let Some(c) = cookie_header {
        req = req.insert_header((header::COOKIE, c));
    }
    if let Some(body) = form {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body.to_owned());
    }
    let svc = app.service().await;
    let res = svc.call(req.to_request()).await.unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let html = String::from_utf8(test::read_body(res).await.to_vec()).unwrap();
    Page {
        status,
        headers,
        html,
    }
}

async fn get(app: &TestApp, path: &str, cookie: Option<&str>) -> Page {
    request(app, "GET", path, cookie, None).await
}

async fn post(app: &TestApp, path: &str, cookie: Option<&str>, form: &str) -> Page {
    request(app, "POST", path, cookie, Some(form)).await
}

/// Posts the sign-in (or setup) form as a browser does after showing it:
/// with the pre-session CSRF cookie the form page set, and its token in
/// the `csrf` field.
async fn post_form(app: &TestApp, path: &str, form: &str) -> Page {
    let shown = get(app, path, None).await;
    assert_eq!(shown.status, 200, "{}", shown.html);
    let token = shown.csrf();
    let set = shown.set_cookie().unwrap();
    assert!(
        set.starts_with(&format!("{LOGIN_CSRF_COOKIE}={token}"))
            && set.contains("HttpOnly")
            && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = format!("{LOGIN_CSRF_COOKIE}={token}");
    request_with_cookies(
        app,
        "POST",
        path,
        Some(cookie),
        Some(&format!("{form}&csrf={token}")),
    )
    .await
}

fn enc(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Signs in through the login form; returns the cookie value.
async fn sign_in(app: &TestApp) -> String {
    create_root(app).await;
    let page = post_form(
        app,
        "/admin/login",
        &format!("username=root&password={}", enc(PASSWORD)),
    )
    .await;
    assert_eq!(page.status, 303, "{}", page.html);
    let cookie = page.set_cookie().unwrap();
    cookie
        .split(';')
        .next()
        .unwrap()
        .strip_prefix("scimd_admin_session=")
        .unwrap()
        .to_owned()
}

#[actix_web::test]
async fn pages_lead_to_setup_then_sign_in_and_carry_security_headers() {
    for db in backends() {
        let app = TestApp::new(db);
        let page = get(&app, "/admin/", None).await;
        assert_eq!(page.status, 303);
        assert_eq!(page.location(), "/admin/setup");
        let page = get(&app, "/admin/setup", None).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("setup code"));
        let csp = page
            .headers
            .get("content-security-policy")
            .unwrap()
            .to_str()
            .unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
        assert_eq!(page.headers.get("x-frame-options").unwrap(), "DENY");
        assert_eq!(page.headers.get("cache-control").unwrap(), "no-store");

        create_root(&app).await;
        // Setup is closed once an administrator exists.
        let page = get(&app, "/admin/setup", None).await;
        assert_eq!(page.location(), "/admin/login");
        // Every page asks for a sign-in and comes back afterwards.
        for path in [
            "/admin/sync",
            "/admin/saml",
            "/admin/settings",
            "/admin/tokens",
            "/admin/users",
            "/admin/users/x",
            "/admin/groups",
            "/admin/groups/x",
            "/admin/sync/disable",
        ] {
            let page = get(&app, path, None).await;
            assert_eq!(page.status, 303, "{path}");
            assert_eq!(
                page.location(),
                format!("/admin/login?next={}", enc(path)),
                "{path}"
            );
            let page = get(&app, path, Some("forged-session")).await;
            assert_eq!(page.status, 303, "{path}");
        }
        // Forms too: nothing happens without a session.
        for path in [
            "/admin/sync/enable",
            "/admin/sync/disable",
            "/admin/saml",
            "/admin/settings",
            "/admin/tokens",
            "/admin/logout",
        ] {
            let page = post(&app, path, None, "csrf=x").await;
            assert_eq!(page.status, 303, "{path}");
            assert!(page.location().starts_with("/admin/login"), "{path}");
        }
        // The stylesheet and script are served by the binary.
        let css = get(&app, "/admin/static/console.css", None).await;
        assert_eq!(css.status, 200);
        assert!(css
            .headers
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with("text/css"));
        let js = get(&app, "/admin/static/console.js", None).await;
        assert!(js.html.contains("enable-sync"));
    }
}

#[actix_web::test]
async fn the_setup_form_needs_its_pre_session_csrf_token() {
    for db in backends() {
        let app = TestApp::new(db);
        let code = scim_admin::service::issue_setup_code(app.db.store(), time::Duration::hours(1))
            .unwrap()
            .unwrap();
        let form = format!(
            "code={}&username=first&password={p}&password_confirm={p}",
            enc(&code),
            p = enc(PASSWORD)
        );
        let page = post(&app, "/admin/setup", None, &form).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(scim_admin::service::setup_required(app.db.store()).unwrap());
        let page = post_form(&app, "/admin/setup", &form).await;
        assert_eq!(page.status, 303, "{}", page.html);
        assert_eq!(page.location(), "/admin/sync?done=setup");
        assert!(page
            .set_cookie()
            .unwrap()
            .starts_with("scimd_admin_session="));
        assert!(!scim_admin::service::setup_required(app.db.store()).unwrap());
    }
}

#[actix_web::test]
async fn sign_in_returns_to_a_local_page_only_and_sets_a_strict_cookie() {
    for db in backends() {
        let app = TestApp::new(db);
        create_root(&app).await;
        let page = get(
            &app,
            "/admin/login?next=%2Foauth%2Fauthorize%3Fclient_id%3Dx",
            None,
        )
        .await;
        assert!(
            page.html
                .contains(r#"name="next" value="/oauth/authorize?client_id=x""#),
            "{}",
            page.html
        );
        let page = get(&app, "/admin/login?next=%2F%2Fevil.example%2F", None).await;
        assert!(page.html.contains(r#"name="next" value="""#));

        let page = post_form(
            &app,
            "/admin/login",
            "username=root&password=wrong-password&next=%2Fadmin%2Fusers",
        )
        .await;
        assert_eq!(page.status, 401);
        assert!(page.html.contains("Wrong username or password"));
        assert!(
            page.html.contains(r#"value="/admin/users""#),
            "the next page is kept"
        );
        assert!(page.set_cookie().is_none());
        // Without the pre-session CSRF cookie and field (login CSRF), the
        // form is refused before the password is checked.
        let page = post(
            &app,
            "/admin/login",
            None,
            &format!("username=root&password={}", enc(PASSWORD)),
        )
        .await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("expired or was not sent from this site"));
        let token = page.csrf();
        let forged = request_with_cookies(
            &app,
            "POST",
            "/admin/login",
            Some(format!("{LOGIN_CSRF_COOKIE}={token}")),
            Some(&format!(
                "username=root&password={}&csrf={}",
                enc(PASSWORD),
                "A".repeat(43)
            )),
        )
        .await;
        assert_eq!(forged.status, 403);
        assert!(forged.set_cookie().is_none(), "no session");

        for (next, to) in [
            ("%2Fadmin%2Fusers%3Fq%3Da", "/admin/users?q=a"),
            ("%2F%2Fevil.example%2F", "/admin/sync"),
            ("https%3A%2F%2Fevil.example%2F", "/admin/sync"),
            ("%2F%5Cevil.example", "/admin/sync"),
        ] {
            let page = post_form(
                &app,
                "/admin/login",
                &format!("username=root&password={}&next={next}", enc(PASSWORD)),
            )
            .await;
            assert_eq!(page.status, 303);
            assert_eq!(page.location(), to);
            let cookie = page.set_cookie().unwrap();
            assert!(
                cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
                "{cookie}"
            );
        }
    }
}

#[actix_web::test]
async fn every_form_needs_the_sessions_csrf_token() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let sync = get(&app, "/admin/sync", Some(&cookie)).await;
        assert_eq!(sync.status, 200);
        let csrf = sync.csrf();
        scim_admin::service::set_saml(
            app.db.store(),
            &scim_store::changes::Actor::cli("test"),
            &scim_admin::model::SamlUpdate {
                entity_id: Some("https://sts.windows.net/t/".into()),
                sso_url: Some("https://login.microsoftonline.com/t/saml2".into()),
                certificate_pem: Some(PEM.into()),
                metadata_xml: None,
            },
        )
        .unwrap();
        let all: String = scim_admin::cautions::caution_ids()
            .iter()
            .map(|id| format!("&caution={id}"))
            .collect();
        let (token, _) = app
            .db
            .store()
            .write(|c| scim_store::create_token(c, "idp", None))
            .unwrap();
        let forms = [
            ("/admin/sync/enable", all.clone()),
            ("/admin/sync/disable", String::new()),
            ("/admin/saml", "&mode=manual&entity_id=x&sso_url=https%3A%2F%2Fx&certificate_pem=x".into()),
            ("/admin/settings", "&deprovisioning=soft&soft_delete_retention_days=5&default_page_size=5&max_page_size=5&version=1".into()),
            ("/admin/tokens", "&kind=scim&name=x".into()),
            (&*format!("/admin/tokens/scim/{}/revoke", token.id), String::new()),
            ("/admin/logout", String::new()),
        ];
        for (path, rest) in &forms {
            for bad in ["", "csrf=", "csrf=wrong-token"] {
                let page = post(&app, path, Some(&cookie), &format!("{bad}{rest}")).await;
                assert_eq!(page.status, 403, "{path} with {bad:?}");
                assert!(page.html.contains("reload the page"), "{path}");
            }
        }
        // Nothing was changed by the refused forms.
        let status =
            scim_admin::service::sync_status(app.db.store(), scim_store::OrgId::DEFAULT).unwrap();
        assert!(!status.enabled);
        assert_eq!(
            scim_admin::service::list_scim_tokens(app.db.store(), scim_store::OrgId::DEFAULT)
                .unwrap()
                .len(),
            1
        );
        assert_eq!(
            scim_admin::service::get_settings(app.db.store(), scim_store::OrgId::DEFAULT)
                .unwrap()
                .version,
            1
        );
        // With the token, the same form works.
        let page = post(
            &app,
            "/admin/sync/enable",
            Some(&cookie),
            &format!("csrf={csrf}{all}"),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        assert_eq!(page.location(), "/admin/sync?done=enabled");
        let sync = get(&app, "/admin/sync?done=enabled", Some(&cookie)).await;
        assert!(
            sync.html.contains(r#"id="sync-banner""#)
                && sync.html.contains("User synchronization is enabled")
        );
        assert!(sync.html.contains("admin:root"), "who enabled it is shown");
        // Sign-out ends the session.
        let page = post(
            &app,
            "/admin/logout",
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(page.location(), "/admin/login?done=signed-out");
        assert_eq!(get(&app, "/admin/sync", Some(&cookie)).await.status, 303);
    }
}

#[actix_web::test]
async fn invalid_input_is_shown_next_to_its_field() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let csrf = get(&app, "/admin/sync", Some(&cookie)).await.csrf();

        // Enable without SAML or cautions: 422, what is missing is listed.
        let page = post(
            &app,
            "/admin/sync/enable",
            Some(&cookie),
            &format!("csrf={csrf}&caution=username-matching"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(page.html.contains(r#"id="saml-error""#), "{}", page.html);
        assert!(page.html.contains("must be read and accepted"));
        assert!(
            page.html
                .contains(r#"id="caution-username-matching" checked"#),
            "ticks are kept"
        );

        // SAML: the certificate's message sits under the certificate.
        let page = post(
            &app,
            "/admin/saml",
            Some(&cookie),
            &format!("csrf={csrf}&mode=manual&entity_id=https%3A%2F%2Fidp&sso_url=https%3A%2F%2Fidp%2Fsso&certificate_pem=nope"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(
            page.html.contains(r#"id="certificate_pem-error""#),
            "{}",
            page.html
        );
        assert!(
            page.html.contains(r#"value="https://idp/sso""#),
            "the input is kept"
        );
        let page = post(
            &app,
            "/admin/saml",
            Some(&cookie),
            &format!("csrf={csrf}&mode=metadata&metadata_xml=%3Cnot-xml"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(
            page.html.contains(r#"id="metadata_xml-error""#),
            "{}",
            page.html
        );
        let page = post(
            &app,
            "/admin/saml",
            Some(&cookie),
            &format!("csrf={csrf}&mode=manual&entity_id=https%3A%2F%2Fidp&sso_url=https%3A%2F%2Fidp%2Fsso&certificate_pem={}", enc(PEM)),
        )
        .await;
        assert_eq!(page.location(), "/admin/saml?done=saml");
        let page = get(&app, "/admin/saml?done=saml", Some(&cookie)).await;
        assert!(page.html.contains("SHA-256 fingerprint"));

        // Settings: bad numbers, then a stale version (another admin saved).
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &format!("csrf={csrf}&deprovisioning=hard&soft_delete_retention_days=0&default_page_size=x&max_page_size=20000&version=1"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(
            page.html.contains("must be a whole number"),
            "{}",
            page.html
        );
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &format!("csrf={csrf}&deprovisioning=soft&soft_delete_retention_days=30&default_page_size=50&max_page_size=500&version=1"),
        )
        .await;
        assert_eq!(page.location(), "/admin/settings?done=settings");
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &format!("csrf={csrf}&deprovisioning=hard&soft_delete_retention_days=30&default_page_size=50&max_page_size=500&version=1"),
        )
        .await;
        assert_eq!(page.status, 412, "{}", page.html);
        assert!(page.html.contains("changed by someone else"));
        assert!(
            page.html.contains(r#"name="version" value="2""#),
            "the form now builds on what is stored"
        );
        let s =
            scim_admin::service::get_settings(app.db.store(), scim_store::OrgId::DEFAULT).unwrap();
        assert_eq!((s.max_page_size, s.version), (500, 2));

        // Tokens: an empty name is refused; a created secret is shown once.
        let page = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={csrf}&kind=scim&name=+"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(page.html.contains("must be 1 to 200 characters"));
        let page = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={csrf}&kind=scim&name=Entra&expires_at=2000-01-01"),
        )
        .await;
        assert_eq!(page.status, 422);
        assert!(page.html.contains("must be in the future"));
        let page = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={csrf}&kind=scim&name=Entra&expires_at=2999-01-01"),
        )
        .await;
        assert_eq!(page.status, 200);
        let at = page.html.find(r#"id="token-secret" value=""#).unwrap() + 25;
        let secret = page.html[at..].split('"').next().unwrap().to_owned();
        let now = scim_core::datetime::now();
        let found = app
            .db
            .store()
            .write(|c| scim_store::authenticate_token(c, &secret, &now))
            .unwrap();
        assert!(found.is_some(), "the secret shown is the token's");
        let list = get(&app, "/admin/tokens", Some(&cookie)).await;
        assert!(!list.html.contains(&secret), "never shown again");
        let page = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={csrf}&kind=admin&name=ci"),
        )
        .await;
        assert!(page.html.contains("scimd_admin_"));
    }
}

#[actix_web::test]
async fn users_and_groups_can_be_searched_and_inspected() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let store = app.db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let mut ids = Vec::new();
        for i in 0..30 {
            let attrs = serde_json::json!({
                "userName": format!("user{i:02}@example.com"),
                "displayName": format!("User {i:02}"),
                "active": i % 2 == 0,
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": "Ops"}
            });
            let attrs = attrs.as_object().unwrap().clone();
            let rec = create_user(store, scim_store::OrgId::DEFAULT, attrs)
                .await
                .unwrap();
            ids.push(rec.id);
        }
        let group = store
            .write(|c| {
                scim_store::insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    serde_json::json!({"displayName": "Ops \"<team>\""})
                        .as_object()
                        .unwrap(),
                    &[scim_store::MemberRef {
                        value: ids[3].clone(),
                        member_type: None,
                    }],
                )
            })
            .unwrap();

        let page = get(&app, "/admin/users", Some(&cookie)).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("30 users"));
        assert!(
            page.html.contains("user00@example.com") && !page.html.contains("user29@example.com")
        );
        assert!(page.html.contains("Page 1 of 2"));
        let page = get(&app, "/admin/users?page=2", Some(&cookie)).await;
        assert!(page.html.contains("user29@example.com"));
        let page = get(&app, "/admin/users?q=USER07", Some(&cookie)).await;
        assert!(page.html.contains("1 user matching"), "{}", page.html);
        assert!(page.html.contains("suspended"), "user07 is inactive");
        // Search text is data, never filter syntax, and is escaped in HTML.
        let page = get(
            &app,
            "/admin/users?q=%22%20or%20userName%20pr%20or%20%22%3Cb%3E",
            Some(&cookie),
        )
        .await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("0 users matching"), "{}", page.html);
        assert!(!page.html.contains("<b>"));

        let page = get(&app, &format!("/admin/users/{}", ids[3]), Some(&cookie)).await;
        assert_eq!(page.status, 200);
        assert!(page
            .html
            .contains("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department"));
        assert!(page.html.contains(&format!("/admin/groups/{}", group.id)));
        assert!(
            page.html.contains("Ops &#34;&#60;team&#62;&#34;") && !page.html.contains("<team>"),
            "names are HTML-escaped"
        );
        assert_eq!(
            get(&app, "/admin/users/unknown", Some(&cookie))
                .await
                .status,
            404
        );

        let page = get(&app, "/admin/groups?q=ops", Some(&cookie)).await;
        assert!(page.html.contains("1 group matching"));
        let page = get(&app, &format!("/admin/groups/{}", group.id), Some(&cookie)).await;
        assert!(page.html.contains("Members (1)"));
        assert!(page.html.contains(&format!("/admin/users/{}", ids[3])));
        assert!(page.html.contains("User 03"));
        assert_eq!(
            get(&app, "/admin/groups/unknown", Some(&cookie))
                .await
                .status,
            404
        );
    }
}

#[actix_web::test]
async fn oauth_client_and_grant_pages_need_a_session_and_csrf() {
    for db in backends() {
        let app = TestApp::new(db);
        for path in ["/admin/oauth-clients", "/admin/oauth-grants"] {
            let page = get(&app, path, None).await;
            assert_eq!(page.status, 303, "{path}");
            assert!(page.location().starts_with("/admin/login?next="));
        }
        let cookie = sign_in(&app).await;
        let page = get(&app, "/admin/oauth-clients", Some(&cookie)).await;
        assert_eq!(page.status, 200);
        let csrf = page.csrf();
        let entra = enc("https://portal.azure.com/TokenAuthorize");

        // Without the CSRF token nothing is registered.
        let page = post(
            &app,
            "/admin/oauth-clients",
            Some(&cookie),
            &format!("name=Entra&redirect_uris={entra}"),
        )
        .await;
        assert_eq!(page.status, 403);
        let store = app.db.store();
        assert!(
            scim_admin::oauth::service::list_clients(store, scim_store::OrgId::DEFAULT)
                .unwrap()
                .is_empty()
        );

        // A redirect URI that is not https (nor loopback) is refused next
        // to its field, and what was typed is kept.
        let page = post(
            &app,
            "/admin/oauth-clients",
            Some(&cookie),
            &format!(
                "csrf={csrf}&name=Entra&redirect_uris={}",
                enc("http://evil.example/cb")
            ),
        )
        .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("https://"), "{}", page.html);
        assert!(page.html.contains("http://evil.example/cb"));

        // Registered: the secret is shown once, with scimd's URLs.
        let page = post(
            &app,
            "/admin/oauth-clients",
            Some(&cookie),
            &format!("csrf={csrf}&name=Entra&redirect_uris={entra}"),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.html);
        let at = page.html.find(r#"id="client-secret" value=""#).unwrap() + 26;
        let secret = page.html[at..].split('"').next().unwrap().to_owned();
        assert!(page.html.contains("/oauth/authorize") && page.html.contains("/oauth/token"));
        let clients =
            scim_admin::oauth::service::list_clients(store, scim_store::OrgId::DEFAULT).unwrap();
        assert_eq!(clients.len(), 1);
        let client_id = clients[0].client_id.clone();
        let list = get(&app, "/admin/oauth-clients", Some(&cookie)).await;
        assert!(list.html.contains(&client_id) && !list.html.contains(&secret));

        // Rotate and delete need the token too.
        for action in ["rotate", "delete"] {
            let path = format!("/admin/oauth-clients/{client_id}/{action}");
            let page = post(&app, &path, Some(&cookie), "csrf=wrong").await;
            assert_eq!(page.status, 403, "{action}");
        }
        let page = post(
            &app,
            &format!("/admin/oauth-clients/{client_id}/rotate"),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(page.status, 200);
        assert!(!page.html.contains(&secret), "a new secret");
        let page = post(
            &app,
            &format!("/admin/oauth-clients/{client_id}/delete"),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(page.status, 303);
        assert!(
            scim_admin::oauth::service::list_clients(store, scim_store::OrgId::DEFAULT)
                .unwrap()
                .is_empty()
        );

        // Grants: listed (none yet); revoking needs the token.
        let page = get(&app, "/admin/oauth-grants", Some(&cookie)).await;
        assert!(page.html.contains(r#"id="no-grants""#));
        let page = post(&app, "/admin/oauth-grants/x/revoke", Some(&cookie), "").await;
        assert_eq!(page.status, 403);
    }
}

#[actix_web::test]
async fn lists_filter_by_state_show_times_and_creators_and_a_404_keeps_the_navigation() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let store = app.db.store();
        enable_sync(store, scim_store::OrgId::DEFAULT);
        for i in 0..6 {
            let attrs = serde_json::json!({
                "userName": format!("user{i}@example.com"),
                "active": i % 3 != 0,
            });
            let attrs = attrs.as_object().unwrap().clone();
            create_user(store, scim_store::OrgId::DEFAULT, attrs)
                .await
                .unwrap();
        }

        // Users by state: user0 and user3 are suspended.
        let page = get(&app, "/admin/users?state=suspended", Some(&cookie)).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("2 suspended users"), "{}", page.html);
        assert!(page.html.contains("user0@") && page.html.contains("user3@"));
        assert!(!page.html.contains("user1@"));
        assert!(page.html.contains(r#"<option value="suspended" selected>"#));
        let page = get(&app, "/admin/users?state=active&q=user4", Some(&cookie)).await;
        assert!(
            page.html.contains("1 active user matching"),
            "{}",
            page.html
        );
        let page = get(&app, "/admin/users?state=active", Some(&cookie)).await;
        assert!(page.html.contains("4 active users"), "{}", page.html);
        assert!(!page.html.contains("user0@") && !page.html.contains("user3@"));

        // The frame: a skip link to the content, tables that scroll
        // sideways, and timestamps the script localises (UTC in the title).
        assert!(page
            .html
            .contains(r##"<a class="skip-link" href="#main">"##));
        assert!(page.html.contains(r#"<main id="main""#));
        assert!(page.html.contains(r#"<div class="table-wrap">"#));
        let at = page.html.find("<time datetime=\"").expect("a <time>") + 16;
        let stamp = page.html[at..].split('"').next().unwrap();
        assert!(
            stamp.ends_with('Z') && page.html.contains(&format!("title=\"{stamp} (UTC)\"")),
            "{stamp}"
        );

        // A SCIM token records who created it, shown in the token table.
        let tokens = get(&app, "/admin/tokens", Some(&cookie)).await;
        let csrf = tokens.csrf();
        let created = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={}&kind=scim&name=Entra&expires_at=", enc(&csrf)),
        )
        .await;
        assert!(created.status.is_success(), "{}", created.html);
        let tokens = get(&app, "/admin/tokens", Some(&cookie)).await;
        assert!(
            tokens
                .html
                .contains(r#"<td class="created-by">admin:root</td>"#),
            "{}",
            tokens.html
        );
        let listed =
            scim_admin::service::list_scim_tokens(store, scim_store::OrgId::DEFAULT).unwrap();
        assert_eq!(listed[0].created_by.as_deref(), Some("admin:root"));

        // Wrong addresses answer 404 inside the frame, navigation included.
        for path in [
            "/admin/nope",
            "/admin/users/unknown",
            "/admin/groups/unknown",
        ] {
            let page = get(&app, path, Some(&cookie)).await;
            assert_eq!(page.status, 404, "{path}");
            assert!(
                page.html.contains(r#"<nav aria-label="Main">"#)
                    && page.html.contains(r#"href="/admin/users""#),
                "{path}: {}",
                page.html
            );
        }
        // Signed out, an unknown console address asks for a sign-in first.
        assert_eq!(get(&app, "/admin/nope", None).await.status, 303);
    }
}

/// The console's admin events name the signed-in administrator; the
/// Activity page lists them escaped, filters and pages them; a user's
/// page shows its timeline in sentences.
#[actix_web::test]
async fn the_activity_page_and_timelines_show_who_did_what() {
    use scim_store::changes::{self, Actor, ActorKind, Event, NewChange};
    for db in backends() {
        let app = TestApp::new(db);
        // A failed sign-in through the form is recorded.
        create_root(&app).await;
        let page = post_form(
            &app,
            "/admin/login",
            "username=root&password=wrong+password",
        )
        .await;
        assert_eq!(page.status, 401, "{}", page.html);
        let cookie = {
            let page = post_form(
                &app,
                "/admin/login",
                &format!("username=root&password={}", enc(PASSWORD)),
            )
            .await;
            assert_eq!(page.status, 303, "{}", page.html);
            page.set_cookie().unwrap().split(';').next().unwrap()["scimd_admin_session=".len()..]
                .to_owned()
        };
        let store = app.db.store();
        let page = get(&app, "/admin/tokens", Some(&cookie)).await;
        let csrf = page.csrf();
        let page = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!(
                "csrf={csrf}&kind=scim&name={}",
                enc("<script>alert(1)</script>")
            ),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.html);
        let all = store.read(|c| changes::read_after(c, 0, 100)).unwrap();
        let events: Vec<&str> = all.iter().map(|c| c.event.as_str()).collect();
        assert_eq!(
            events,
            [
                "admin.created",
                "admin.sign_in_failed",
                "admin.signed_in",
                "scim_token.created"
            ]
        );
        let created = all.last().unwrap();
        assert_eq!(created.actor_kind, "admin");
        assert_eq!(created.actor_name.as_deref(), Some("root"));
        assert_eq!(created.client_address.as_deref(), Some("192.0.2.7"));
        assert_eq!(all[1].actor_kind, "anonymous");
        assert_eq!(all[1].client_address.as_deref(), Some("192.0.2.7"));

        // A user with a history, in a group: created by Entra ID.
        let entra = Actor::new(
            ActorKind::ScimToken,
            Some("t1".into()),
            Some("Entra ID".into()),
        );
        enable_sync(store, scim_store::OrgId::DEFAULT);
        let attrs = serde_json::json!({"userName": "alice@example.com"});
        let user = store
            .queue_insert_user(attrs.as_object().unwrap().clone(), None, entra.clone())
            .await
            .unwrap();
        let group = store
            .write(|c| {
                scim_store::insert_group(
                    c,
                    scim_store::OrgId::DEFAULT,
                    serde_json::json!({"displayName": "Sales <EU>"})
                        .as_object()
                        .unwrap(),
                    &[],
                )
            })
            .unwrap();
        let at = scim_core::datetime::now();
        let record = |event: Event, kind: &str, id: &str, detail: serde_json::Value| {
            store
                .write(|c| {
                    changes::record(
                        c,
                        &entra,
                        &at,
                        &[NewChange::new(event, kind, Some(id)).detail(detail)],
                    )
                })
                .unwrap();
        };
        record(
            Event::UserPatched,
            "User",
            &user.id,
            serde_json::json!({"paths": ["title"]}),
        );
        record(
            Event::UserSuspended,
            "User",
            &user.id,
            serde_json::json!({}),
        );
        record(
            Event::MembersAdded,
            "Group",
            &group.id,
            serde_json::json!({"members": [user.id]}),
        );
        record(
            Event::MembersRemoved,
            "Group",
            &group.id,
            serde_json::json!({"members": [user.id]}),
        );

        let page = get(&app, &format!("/admin/users/{}", user.id), Some(&cookie)).await;
        assert_eq!(page.status, 200);
        for sentence in [
            "removed from Sales &#60;EU&#62;, by SCIM token Entra ID",
            "added to Sales &#60;EU&#62;, by SCIM token Entra ID",
            "suspended, by SCIM token Entra ID",
            "title changed, by SCIM token Entra ID",
            "created, by SCIM token Entra ID",
        ] {
            assert!(page.html.contains(sentence), "{sentence}: {}", page.html);
        }
        assert!(page.html.contains("id=\"timeline\""));
        let page = get(&app, &format!("/admin/groups/{}", group.id), Some(&cookie)).await;
        assert!(
            page.html
                .contains("members removed: alice@example.com, by SCIM token Entra ID"),
            "{}",
            page.html
        );

        // The Activity page: linked, escaped, filtered, paged.
        let page = get(&app, "/admin/activity", Some(&cookie)).await;
        assert_eq!(page.status, 200);
        assert!(page.html.contains("href=\"/admin/activity\""));
        assert!(!page.html.contains("<script>alert"), "escaped");
        assert!(page
            .html
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;"));
        assert!(page.html.contains("sign-in failed for username"));
        assert!(page
            .html
            .contains("User alice@example.com: suspended, by SCIM token Entra ID"));
        let page = get(&app, "/admin/activity?actor_kind=admin", Some(&cookie)).await;
        assert!(page.html.contains("signed in, by administrator root"));
        assert!(!page.html.contains("suspended, by"));
        let page = get(
            &app,
            &format!("/admin/activity?subject={}&event=user.suspended", user.id),
            Some(&cookie),
        )
        .await;
        assert_eq!(page.html.matches("<tr><td>").count(), 1, "{}", page.html);
        let page = get(&app, "/admin/activity?event=nope", Some(&cookie)).await;
        assert_eq!(page.status, 422);
        assert!(page.html.contains("is not an event"));
        let today = &at[..10];
        let page = get(
            &app,
            &format!("/admin/activity?since={today}&until={today}"),
            Some(&cookie),
        )
        .await;
        assert!(
            page.html.contains("suspended, by"),
            "the To day is included"
        );
        // More than a page: an "Older" link that keeps the filters.
        for i in 0..55 {
            record(
                Event::UserPatched,
                "User",
                &user.id,
                serde_json::json!({"paths": [format!("x{i}")]}),
            );
        }
        let page = get(&app, "/admin/activity?resource_type=User", Some(&cookie)).await;
        assert_eq!(page.html.matches("<tr><td>").count(), 50);
        let at = page.html.find("id=\"next-page\"").expect("an older page");
        let href = page.html[..at]
            .rsplit("href=\"")
            .next()
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        assert!(
            href.starts_with("?resource_type=User&amp;before="),
            "{href}"
        );
        let page = get(
            &app,
            &format!("/admin/activity{}", href.replace("&amp;", "&")),
            Some(&cookie),
        )
        .await;
        assert_eq!(page.html.matches("<tr><td>").count(), 8, "{}", page.html);
        assert!(page.html.contains("id=\"newest-page\""));
        assert!(!page.html.contains("id=\"next-page\""));
        // Without a session: to the sign-in page.
        let page = get(&app, "/admin/activity", None).await;
        assert_eq!(page.status, 303);
    }
}

#[actix_web::test]
async fn event_streams_are_created_paused_replayed_and_deleted_from_the_console() {
    for db in backends() {
        let app = TestApp::new(db);
        let page = get(&app, "/admin/event-streams", None).await;
        assert_eq!(page.status, 303);
        let cookie = sign_in(&app).await;
        let page = get(&app, "/admin/event-streams", Some(&cookie)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("No event stream yet"));
        let csrf = page.csrf();
        let url = enc("https://crm.example.com/scim-events");
        // Without the CSRF token nothing is created.
        let page = post(
            &app,
            "/admin/event-streams",
            Some(&cookie),
            &format!("name=CRM&delivery=push&endpoint_url={url}"),
        )
        .await;
        assert_eq!(page.status, 403);
        // A bad URL is refused, and what was typed is kept.
        let page = post(
            &app,
            "/admin/event-streams",
            Some(&cookie),
            &format!(
                "csrf={csrf}&name=CRM&delivery=push&endpoint_url={}",
                enc("ftp://crm.example.com")
            ),
        )
        .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("endpoint_url"), "{}", page.html);
        assert!(page.html.contains("value=\"CRM\""), "{}", page.html);
        let page = post(
            &app,
            "/admin/event-streams",
            Some(&cookie),
            &format!(
                "csrf={csrf}&name=CRM&delivery=push&endpoint_url={url}&authorization={}&event_types=create&event_types=delete&resource_types=User&mode=notice&alg=HS256",
                enc("Bearer very-secret-value")
            ),
        )
        .await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(
            page.html.contains("scimd_rcv_"),
            "the receiver token is shown once"
        );
        assert!(page.html.contains("HS256 shared secret"));
        let store = app.db.store();
        let streams = store
            .read(|c| scim_store::events::streams::list_streams(c, scim_store::OrgId::DEFAULT))
            .unwrap();
        assert_eq!(streams.len(), 1);
        let s = &streams[0];
        assert_eq!(s.event_types.len(), 2);
        assert_eq!(s.resource_types, ["User"]);
        let page = get(&app, "/admin/event-streams", Some(&cookie)).await;
        assert!(page.html.contains("CRM"), "{}", page.html);
        assert!(
            !page.html.contains("very-secret-value"),
            "the Authorization value is never shown"
        );
        assert!(!page.html.contains("scimd_rcv_"), "nor the receiver token");
        for (action, state) in [("pause", "paused"), ("resume", "active")] {
            let page = post(
                &app,
                &format!("/admin/event-streams/{}/{action}", s.id),
                Some(&cookie),
                &format!("csrf={csrf}"),
            )
            .await;
            assert_eq!(page.status, 303, "{}", page.html);
            let page = get(&app, page.location(), Some(&cookie)).await;
            let row = page
                .html
                .split(&format!("id=\"stream-{}\"", s.id))
                .nth(1)
                .unwrap();
            assert!(
                row.contains(&format!("class=\"state\">{state}")),
                "{action}: {row}"
            );
        }
        let page = post(
            &app,
            &format!("/admin/event-streams/{}/replay", s.id),
            Some(&cookie),
            &format!("csrf={csrf}&position=0&since="),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        assert_eq!(
            store
                .read(|c| scim_store::events::streams::find_stream(c, &s.id))
                .unwrap()
                .cursor,
            0
        );
        let page = post(
            &app,
            &format!("/admin/event-streams/{}/replay", s.id),
            Some(&cookie),
            &format!("csrf={csrf}&since=2026-12-01T10%3A00"),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        let page = post(
            &app,
            &format!("/admin/event-streams/{}/delete", s.id),
            Some(&cookie),
            &format!("csrf={csrf}"),
        )
        .await;
        assert_eq!(page.status, 303);
        assert!(store
            .read(|c| scim_store::events::streams::list_streams(c, scim_store::OrgId::DEFAULT))
            .unwrap()
            .is_empty());
    }
}

#[actix_web::test]
async fn the_administrators_page_manages_accounts_but_keeps_the_last_one() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let c = Some(cookie.as_str());
        let page = get(&app, "/admin/admins", c).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page
            .html
            .contains(r#"href="/admin/admins" aria-current="page""#));
        assert!(page.html.contains("root <span class=\"hint\">(you)</span>"));
        let csrf = page.csrf();
        // Every form needs the session's CSRF token.
        let new_bob = format!(
            "username=bob&password={pw}&password_confirm={pw}",
            pw = enc("bob's long passphrase")
        );
        let res = post(&app, "/admin/admins", c, &new_bob).await;
        assert_eq!(res.status, 403);
        let res = post(
            &app,
            "/admin/admins",
            c,
            &format!(
                "csrf={csrf}&username=bob&password=bob%27s+long+passphrase&password_confirm=other"
            ),
        )
        .await;
        assert_eq!(res.status, 422);
        assert!(
            res.html.contains("the two passwords differ"),
            "{}",
            res.html
        );
        assert!(res.html.contains(r#"value="bob""#), "{}", res.html);
        let res = post(&app, "/admin/admins", c, &format!("csrf={csrf}&{new_bob}")).await;
        assert_eq!(res.status, 303, "{}", res.html);
        assert_eq!(res.location(), "/admin/admins?done=created");
        let page = get(&app, "/admin/admins?done=created", c).await;
        assert!(page.html.contains("Administrator added."));
        assert!(page.html.contains(r#"data-username="bob""#));
        let id = |name: &str| {
            app.db
                .store()
                .read(|conn| scim_store::admin::find_admin_by_name(conn, name))
                .unwrap()
                .unwrap()
                .id
        };
        let (root_id, bob_id) = (id("root"), id("bob"));
        let act = |id: &str, action: &str| format!("/admin/admins/{id}/{action}");
        let with_csrf = format!("csrf={csrf}");

        let res = post(&app, &act(&bob_id, "disable"), c, &with_csrf).await;
        assert_eq!(res.location(), "/admin/admins?done=disabled");
        // bob's sign-in says why it is refused.
        let res = post_form(
            &app,
            "/admin/login",
            &format!("username=bob&password={}", enc("bob's long passphrase")),
        )
        .await;
        assert_eq!(res.status, 403);
        assert!(res.html.contains("is disabled"), "{}", res.html);
        // root is the last enabled one now: the page says why not.
        let res = post(&app, &act(&root_id, "disable"), c, &with_csrf).await;
        assert_eq!(res.status, 409);
        assert!(
            res.html.contains("last enabled administrator"),
            "{}",
            res.html
        );
        let res = post(&app, &act(&root_id, "delete"), c, &with_csrf).await;
        assert_eq!(res.status, 409);
        for (action, done) in [("enable", "enabled"), ("unlock", "unlocked")] {
            let res = post(&app, &act(&bob_id, action), c, &with_csrf).await;
            assert_eq!(res.location(), format!("/admin/admins?done={done}"));
        }
        let res = post(
            &app,
            &act(&bob_id, "password"),
            c,
            &format!("{with_csrf}&password=short"),
        )
        .await;
        assert_eq!(res.status, 422);
        assert!(res.html.contains("at least 12 characters"), "{}", res.html);
        let res = post(
            &app,
            &act(&bob_id, "password"),
            c,
            &format!("{with_csrf}&password={}", enc("bob's next passphrase")),
        )
        .await;
        assert_eq!(res.location(), "/admin/admins?done=password");
        // Your own password is not reset here.
        let res = post(
            &app,
            &act(&root_id, "password"),
            c,
            &format!("{with_csrf}&password={}", enc("root's next passphrase")),
        )
        .await;
        assert_eq!(res.status, 403);
        let res = post(&app, &act(&bob_id, "rename"), c, &with_csrf).await;
        assert_eq!(res.status, 404);
        let res = post(&app, &act(&bob_id, "delete"), c, &with_csrf).await;
        assert_eq!(res.location(), "/admin/admins?done=deleted");

        // Your own password, with the current one.
        let page = get(&app, "/admin/account", c).await;
        assert_eq!(page.status, 200);
        let change = |current: &str, new: &str, again: &str| {
            format!(
                "{with_csrf}&current_password={}&new_password={}&new_password_confirm={}",
                enc(current),
                enc(new),
                enc(again)
            )
        };
        let res = post(
            &app,
            "/admin/account",
            c,
            &change(
                "not my password",
                "root's next passphrase",
                "root's next passphrase",
            ),
        )
        .await;
        assert_eq!(res.status, 422);
        assert!(
            res.html.contains("is not your current password"),
            "{}",
            res.html
        );
        let res = post(
            &app,
            "/admin/account",
            c,
            &change(PASSWORD, "root's next passphrase", "something else"),
        )
        .await;
        assert!(
            res.html.contains("the two passwords differ"),
            "{}",
            res.html
        );
        let res = post(
            &app,
            "/admin/account",
            c,
            &change(PASSWORD, "root's next passphrase", "root's next passphrase"),
        )
        .await;
        assert_eq!(res.location(), "/admin/account?done=changed");
        // This session stays.
        assert_eq!(get(&app, "/admin/admins", c).await.status, 200);
    }
}

#[actix_web::test]
async fn schema_extensions_are_defined_and_removed_from_the_console_after_typing_the_urn() {
    const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let page = get(&app, "/admin/schema-extensions", Some(&cookie)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("No custom extension yet"));
        let csrf = page.csrf();
        let bad = r#"{"id": "urn:x", "attributes": [{"name": "a", "type": "string"}]}"#;
        let page = post(
            &app,
            "/admin/schema-extensions",
            Some(&cookie),
            &format!("csrf={csrf}&definition={}", enc(bad)),
        )
        .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("id must have the form"), "{}", page.html);
        let good = format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string"}}, {{"name": "costCenter", "type": "string", "canonicalValues": ["CC-1"]}}]}}"#
        );
        let page = post(
            &app,
            "/admin/schema-extensions",
            Some(&cookie),
            &format!("csrf={csrf}&definition={}", enc(&good)),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        let page = get(&app, "/admin/schema-extensions?done=created", Some(&cookie)).await;
        assert!(
            page.html.contains(URN) && page.html.contains("one of CC-1"),
            "{}",
            page.html
        );
        // The definition, changed from its own form (prefilled with it):
        // an attribute added; leaving one out is refused with the form kept.
        assert!(page.html.contains("Change the definition"), "{}", page.html);
        assert!(page.html.contains("&#34;costCenter&#34;"), "{}", page.html);
        let dropped = format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string"}}]}}"#
        );
        let page = post(
            &app,
            "/admin/schema-extensions/update",
            Some(&cookie),
            &format!("csrf={csrf}&urn={}&changed={}", enc(URN), enc(&dropped)),
        )
        .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("remove-attribute"), "{}", page.html);
        let added = format!(
            r#"{{"id": "{URN}", "attributes": [{{"name": "CustomAttribute", "type": "string"}}, {{"name": "costCenter", "type": "string", "canonicalValues": ["CC-1", "CC-2"]}}, {{"name": "level", "type": "integer"}}]}}"#
        );
        let page = post(
            &app,
            "/admin/schema-extensions/update",
            Some(&cookie),
            &format!("csrf={csrf}&urn={}&changed={}", enc(URN), enc(&added)),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        let page = get(&app, "/admin/schema-extensions?done=changed", Some(&cookie)).await;
        assert!(
            page.html.contains("one of CC-1 | CC-2")
                && page.html.contains("values users hold are kept"),
            "{}",
            page.html
        );
        // The URN mistyped: nothing is removed.
        let page = post(
            &app,
            "/admin/schema-extensions/remove",
            Some(&cookie),
            &format!("csrf={csrf}&urn={}&confirm=yes", enc(URN)),
        )
        .await;
        assert_eq!(page.status, 422, "{}", page.html);
        assert!(page.html.contains("to confirm"), "{}", page.html);
        let list = |app: &TestApp| {
            app.db
                .store()
                .read(scim_store::scim::extensions::list_extensions)
                .unwrap()
        };
        assert_eq!(list(&app).len(), 1);
        let page = post(
            &app,
            "/admin/schema-extensions/remove",
            Some(&cookie),
            &format!(
                "csrf={csrf}&urn={}&attribute=costCenter&confirm={}",
                enc(URN),
                enc(&format!("{URN}:costCenter"))
            ),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        assert_eq!(list(&app)[0].attributes.len(), 2);
        let page = post(
            &app,
            "/admin/schema-extensions/remove",
            Some(&cookie),
            &format!("csrf={csrf}&urn={}&confirm={}", enc(URN), enc(URN)),
        )
        .await;
        assert_eq!(page.status, 303, "{}", page.html);
        assert!(list(&app).is_empty());
    }
}

/// The Organizations page (instance administrators): add, rename, suspend,
/// resume, and delete only after the slug is typed again; every form with
/// the session's CSRF token. The switcher changes the organization the
/// pages show, and names only the organizations the administrator may
/// act on.
#[actix_web::test]
async fn organizations_are_managed_and_switched_from_the_console() {
    for db in backends() {
        let app = TestApp::new(db);
        let cookie = sign_in(&app).await;
        let page = get(&app, "/admin/organizations", Some(&cookie)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        // One organization: no switcher.
        assert!(!page.html.contains("id=\"org-select\""));
        let csrf = page.csrf();
        let forged = post(
            &app,
            "/admin/organizations",
            Some(&cookie),
            "csrf=x&slug=acme&name=Acme",
        )
        .await;
        assert_eq!(forged.status, 403, "{}", forged.html);
        let bad = post(
            &app,
            "/admin/organizations",
            Some(&cookie),
            &format!("csrf={csrf}&slug=Not+A+Slug&name=X"),
        )
        .await;
        assert_eq!(bad.status, 422, "{}", bad.html);
        assert!(bad.html.contains("value=\"Not A Slug\""), "{}", bad.html);
        let made = post(
            &app,
            "/admin/organizations",
            Some(&cookie),
            &format!("csrf={csrf}&slug=acme&name=Acme+Corp&host="),
        )
        .await;
        assert_eq!(made.status, 303, "{}", made.html);
        for (action, form, done) in [
            ("rename", "&name=Acme+Corporation", "renamed"),
            ("suspend", "", "suspended"),
            ("resume", "", "resumed"),
        ] {
            let res = post(
                &app,
                &format!("/admin/organizations/acme/{action}"),
                Some(&cookie),
                &format!("csrf={csrf}{form}"),
            )
            .await;
            assert_eq!(res.status, 303, "{action}: {}", res.html);
            assert_eq!(res.location(), format!("/admin/organizations?done={done}"));
        }
        let page = get(&app, "/admin/organizations", Some(&cookie)).await;
        assert!(page.html.contains("Acme Corporation"), "{}", page.html);

        // The switcher: acme's pages, then the default organization's.
        assert!(page.html.contains("id=\"org-select\""), "{}", page.html);
        let res = post(
            &app,
            "/admin/switch-organization",
            Some(&cookie),
            &format!("csrf={csrf}&org=acme&next=%2Fadmin%2Ftokens"),
        )
        .await;
        assert_eq!(res.status, 303, "{}", res.html);
        assert_eq!(res.location(), "/admin/tokens");
        let tokens = get(&app, "/admin/tokens", Some(&cookie)).await;
        assert!(tokens.html.contains("id=\"org-banner\""), "{}", tokens.html);
        assert!(tokens.html.contains("Acme Corporation"), "{}", tokens.html);
        let res = post(
            &app,
            "/admin/tokens",
            Some(&cookie),
            &format!("csrf={csrf}&kind=scim&name=Acme+Entra"),
        )
        .await;
        assert!(res.html.contains("/scim/v2/o/acme"), "{}", res.html);
        let store = app.db.store();
        let acme = store
            .organizations_blocking()
            .unwrap()
            .by_slug("acme")
            .unwrap()
            .id;
        assert_eq!(
            store
                .read(|c| scim_store::list_tokens(c, acme))
                .unwrap()
                .len(),
            1
        );
        // An unknown organization, or a forged form, changes nothing.
        let res = post(
            &app,
            "/admin/switch-organization",
            Some(&cookie),
            &format!("csrf={csrf}&org=nope"),
        )
        .await;
        assert_eq!(res.status, 403, "{}", res.html);
        let res = post(
            &app,
            "/admin/switch-organization",
            Some(&cookie),
            "csrf=x&org=default",
        )
        .await;
        assert_eq!(res.status, 403, "{}", res.html);
        let tokens = get(&app, "/admin/tokens", Some(&cookie)).await;
        assert!(tokens.html.contains("Acme Entra"), "{}", tokens.html);

        // Deleting needs the slug typed again; the session falls back to
        // the default organization.
        let res = post(
            &app,
            "/admin/organizations/acme/delete",
            Some(&cookie),
            &format!("csrf={csrf}&confirm=acm"),
        )
        .await;
        assert_eq!(res.status, 422, "{}", res.html);
        let res = post(
            &app,
            "/admin/organizations/acme/delete",
            Some(&cookie),
            &format!("csrf={csrf}&confirm=acme"),
        )
        .await;
        assert_eq!(res.status, 303, "{}", res.html);
        assert!(store
            .organizations_blocking()
            .unwrap()
            .by_slug("acme")
            .is_none());
        let tokens = get(&app, "/admin/tokens", Some(&cookie)).await;
        assert_eq!(tokens.status, 200, "{}", tokens.html);
        assert!(!tokens.html.contains("Acme Entra") && !tokens.html.contains("org-banner"));
    }
}

/// The resource id (`evt-…`) each row of an Activity page names, in the
/// page's order (newest first); `-` for a row naming none (the sign-in's).
fn activity_rows(html: &str) -> Vec<String> {
    html.split("<tr><td>")
        .skip(1)
        .map(|row| {
            let row = &row[..row.find("</tr>").unwrap_or(row.len())];
            match row.find("evt-") {
                Some(at) => row[at..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                    .collect(),
                None => "-".to_owned(),
            }
        })
        .collect()
}

/// The Activity page's From/To, event and actor filters, against rows
/// recorded at explicit instants around the window's edges: what is
/// outside is left out, what is inside (both edge days whole) is shown.
#[actix_web::test]
async fn the_activity_page_filters_by_time_event_and_actor() {
    use scim_store::changes::{self, Actor, ActorKind, Event, NewChange};
    let token = |name: &str| {
        Actor::new(
            ActorKind::ScimToken,
            Some(format!("id-{name}")),
            Some(name.to_owned()),
        )
    };
    for db in backends() {
        let app = TestApp::new(db);
        let backend = app.db.backend();
        // Signing in records rows of today (2025 is long before).
        let cookie = sign_in(&app).await;
        let (entra, okta) = (token("Entra ID"), token("Okta"));
        for (actor, at, event, id) in [
            (
                &entra,
                "2025-02-28T23:59:59.999999Z",
                Event::UserCreated,
                "evt-before",
            ),
            (
                &entra,
                "2025-03-01T00:00:00.000Z",
                Event::UserCreated,
                "evt-first",
            ),
            (
                &okta,
                "2025-03-02T12:00:00.000Z",
                Event::UserSuspended,
                "evt-mid",
            ),
            (
                &entra,
                "2025-03-03T23:59:59.999999Z",
                Event::UserPatched,
                "evt-last",
            ),
            (
                &okta,
                "2025-03-04T00:00:00.000Z",
                Event::UserSuspended,
                "evt-after",
            ),
        ] {
            // In the stored form (microseconds), as the store writes it.
            let at = scim_core::datetime::normalize(at).unwrap();
            app.db
                .store()
                .write(|c| {
                    changes::record(
                        c,
                        actor,
                        &at,
                        &[NewChange::new(event, "User", Some(id))
                            .detail(serde_json::json!({"paths": ["title"]}))],
                    )
                })
                .unwrap();
        }
        let shown = |query: &str| {
            let path = format!("/admin/activity?{query}");
            let app = &app;
            let cookie = cookie.clone();
            async move {
                let page = get(app, &path, Some(&cookie)).await;
                assert_eq!(page.status, 200, "{backend} {path}: {}", page.html);
                (activity_rows(&page.html), page.html)
            }
        };
        // Unfiltered: every row, newest recorded first (the sign-in's,
        // of today, were recorded before).
        let (rows, _) = shown("").await;
        assert_eq!(
            rows[..5],
            [
                "evt-after",
                "evt-last",
                "evt-mid",
                "evt-first",
                "evt-before"
            ],
            "{backend}"
        );
        assert!(
            rows.len() > 5 && rows[5..].iter().all(|r| r == "-"),
            "{backend}: {rows:?}"
        );

        // From and To days: both days whole, nothing either side of them.
        let (rows, html) = shown("since=2025-03-01&until=2025-03-03").await;
        assert_eq!(rows, ["evt-last", "evt-mid", "evt-first"], "{backend}");
        assert!(
            html.contains(r#"name="since" type="date" value="2025-03-01""#)
                && html.contains(r#"name="until" type="date" value="2025-03-03""#),
            "the form keeps the days"
        );
        // One day.
        let (rows, _) = shown("since=2025-03-02&until=2025-03-02").await;
        assert_eq!(rows, ["evt-mid"], "{backend}");
        // From alone: that day on, up to today's rows.
        let (rows, _) = shown("since=2025-03-02").await;
        assert_eq!(rows[..3], ["evt-after", "evt-last", "evt-mid"], "{backend}");
        assert!(
            rows.len() > 3 && rows[3..].iter().all(|r| r == "-"),
            "today's rows are after it too: {backend}: {rows:?}"
        );
        // To alone: up to the end of that day.
        let (rows, _) = shown("until=2025-03-01").await;
        assert_eq!(rows, ["evt-first", "evt-before"], "{backend}");
        // A date-time (as the API takes it) bounds to the instant; an
        // until given as a date-time is exclusive.
        let (rows, _) = shown(&format!(
            "since={}&until={}",
            enc("2025-03-02T12:00:00.000001Z"),
            enc("2025-03-04T00:00:00Z")
        ))
        .await;
        assert_eq!(rows, ["evt-last"], "{backend}");
        let (rows, _) = shown(&format!("since={}", enc("2025-03-02T13:00:00+01:00"))).await;
        assert!(
            rows.starts_with(&["evt-after".into(), "evt-last".into(), "evt-mid".into()]),
            "an offset is an instant: {backend}: {rows:?}"
        );
        // A window with nothing in it says so.
        let (rows, html) = shown("since=2025-03-05&until=2025-03-06").await;
        assert!(rows.is_empty(), "{backend}: {rows:?}");
        assert!(html.contains("No activity matches these filters"));
        // Not a date: refused, named.
        let page = get(&app, "/admin/activity?since=yesterday", Some(&cookie)).await;
        assert_eq!(page.status, 422, "{backend}");
        assert!(
            page.html.contains("is not an RFC 3339 date-time"),
            "{}",
            page.html
        );
        assert!(activity_rows(&page.html).is_empty());

        // The event filter leaves out every other event.
        let (rows, html) = shown("event=user.suspended").await;
        assert_eq!(rows, ["evt-after", "evt-mid"], "{backend}");
        assert!(html.contains(r#"<option value="user.suspended" selected>"#));
        let (rows, _) = shown("event=user.created").await;
        assert_eq!(rows, ["evt-first", "evt-before"], "{backend}");
        // The actor filters: by kind (no administrator row), then by id.
        let (rows, _) = shown("actor_kind=scim_token").await;
        assert_eq!(
            rows,
            [
                "evt-after",
                "evt-last",
                "evt-mid",
                "evt-first",
                "evt-before"
            ],
            "{backend}"
        );
        let (rows, _) = shown("actor_kind=admin").await;
        assert!(
            !rows.is_empty() && rows.iter().all(|r| r == "-"),
            "{backend}: {rows:?}"
        );
        let (rows, _) = shown("actor_kind=scim_token&actor_id=id-Okta").await;
        assert_eq!(rows, ["evt-after", "evt-mid"], "{backend}");
        let (rows, _) = shown("actor_id=id-Entra+ID").await;
        assert_eq!(rows, ["evt-last", "evt-first", "evt-before"], "{backend}");
        // Together: each filter narrows the others.
        let (rows, _) = shown("actor_id=id-Okta&event=user.suspended&until=2025-03-03").await;
        assert_eq!(rows, ["evt-mid"], "{backend}");
        let (rows, _) = shown("actor_id=id-Entra+ID&since=2025-03-01&until=2025-03-02").await;
        assert_eq!(rows, ["evt-first"], "{backend}");
    }
}

/// The settings form's "Retention of the activity log": a new value is
/// stored (and used by the Activity page), a bad one is refused next to
/// the field and changes nothing.
#[actix_web::test]
async fn the_settings_form_sets_the_change_log_retention() {
    let stored = |app: &TestApp| {
        scim_admin::service::get_settings(app.db.store(), scim_store::OrgId::DEFAULT).unwrap()
    };
    /// The HTML from the retention field to the next field.
    fn around_field(html: &str) -> &str {
        let at = html
            .find(r#"id="change_log_retention_days""#)
            .expect("the retention field");
        let end = html[at..].find("<fieldset").map_or(html.len(), |e| at + e);
        &html[at..end]
    }
    let form = |csrf: &str, version: i64, retention: Option<&str>| {
        let mut form = format!("csrf={csrf}&deprovisioning=hard&soft_delete_retention_days=30&default_page_size=100&max_page_size=1000&health_failure_percent=50&health_silence_minutes=60&health_window_requests=100&health_window_minutes=15&version={version}");
        if let Some(r) = retention {
            form.push_str(&format!("&change_log_retention_days={}", enc(r)));
        }
        form
    };
    for db in backends() {
        let app = TestApp::new(db);
        let backend = app.db.backend();
        let cookie = sign_in(&app).await;
        let page = get(&app, "/admin/settings", Some(&cookie)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        let before = stored(&app);
        assert_ne!(before.change_log_retention_days, 400);
        assert!(
            around_field(&page.html)
                .contains(&format!(r#"value="{}""#, before.change_log_retention_days)),
            "{}",
            page.html
        );
        let csrf = page.csrf();

        // Without the session's CSRF token: refused, nothing stored.
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &form("forged", before.version, Some("400")),
        )
        .await;
        assert_eq!(page.status, 403, "{backend}");
        assert_eq!(
            stored(&app).change_log_retention_days,
            before.change_log_retention_days
        );

        // A new value: stored, shown by the form and the Activity page.
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &form(&csrf, before.version, Some("400")),
        )
        .await;
        assert_eq!(page.status, 303, "{backend}: {}", page.html);
        assert_eq!(page.location(), "/admin/settings?done=settings");
        let saved = stored(&app);
        assert_eq!(
            (saved.change_log_retention_days, saved.version),
            (400, before.version + 1),
            "{backend}"
        );
        let page = get(&app, "/admin/settings", Some(&cookie)).await;
        assert!(
            around_field(&page.html).contains(r#"value="400""#),
            "{}",
            page.html
        );
        let page = get(&app, "/admin/activity", Some(&cookie)).await;
        assert!(page.html.contains("Kept 400 days"), "{}", page.html);

        // Bad values: 422, the message under the field, the value kept
        // in the form, nothing stored.
        for (value, message) in [
            ("0", "must be between 1 and 3650 days"),
            ("-5", "must be between 1 and 3650 days"),
            ("3651", "must be between 1 and 3650 days"),
            ("99999999999", "must be a whole number"),
            ("abc", "must be a whole number"),
            ("1.5", "must be a whole number"),
            ("", "must be a whole number"),
        ] {
            let page = post(
                &app,
                "/admin/settings",
                Some(&cookie),
                &form(&csrf, saved.version, Some(value)),
            )
            .await;
            assert_eq!(page.status, 422, "{backend} {value:?}: {}", page.html);
            let field = around_field(&page.html);
            assert!(
                field.contains(&format!(r#"value="{value}" required aria-invalid="true""#))
                    && field.contains(&format!(r#"<p class="field-error">{message}</p>"#)),
                "{backend} {value:?}: {field}"
            );
            let now = stored(&app);
            assert_eq!(
                (now.change_log_retention_days, now.version),
                (400, saved.version),
                "{backend} {value:?}"
            );
        }
        // The other fields' messages stay by their own fields.
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &form(&csrf, saved.version, Some("400")).replace(
                "soft_delete_retention_days=30",
                "soft_delete_retention_days=0",
            ),
        )
        .await;
        assert_eq!(page.status, 422, "{backend}");
        assert!(!around_field(&page.html).contains("field-error"));

        // A form without the field (an older page) keeps the stored value.
        let page = post(
            &app,
            "/admin/settings",
            Some(&cookie),
            &form(&csrf, saved.version, None),
        )
        .await;
        assert_eq!(page.status, 303, "{backend}: {}", page.html);
        assert_eq!(stored(&app).change_log_retention_days, 400);
        // The edges are allowed.
        for value in [1, 3650] {
            let version = stored(&app).version;
            let page = post(
                &app,
                "/admin/settings",
                Some(&cookie),
                &form(&csrf, version, Some(&value.to_string())),
            )
            .await;
            assert_eq!(page.status, 303, "{backend} {value}: {}", page.html);
            assert_eq!(stored(&app).change_log_retention_days, value, "{backend}");
        }
    }
}
