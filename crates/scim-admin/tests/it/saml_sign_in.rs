//! SAML sign-in to the console over HTTP, on both backends: a response
//! signed by a test IdP (key and certificate made by the test) signs an
//! administrator in; each refused case says why on the sign-in page and
//! is recorded as `admin.sign_in_failed`. Expiry is reached by moving the
//! injected clock. An SP-initiated response must answer an outstanding
//! request of the browser that posts it (its cookie), once; IdP-initiated
//! responses sign in only when `allow_idp_initiated` is set.

use actix_web::dev::Service;
use actix_web::http::{header, StatusCode};
use actix_web::test;
use scim_admin::saml_sign_in::test_idp::{request_id, Spec, TestIdp};
use scim_admin::saml_sign_in::SpUrls;
use scim_admin::service::AttemptLimits;
use scim_store::changes::{list_changes, ChangeQuery};
use scim_store::testing::backends;

use super::{create_root, TestApp, PASSWORD};

const BASE: &str = "https://scimd.example.com";
const IDP: &str = "https://sts.windows.net/test-tenant/";

struct Page {
    status: StatusCode,
    headers: header::HeaderMap,
    html: String,
}

impl Page {
    fn session(&self) -> Option<String> {
        self.cookie("scimd_admin_session")
    }

    /// The value of the cookie `name` the response sets.
    fn cookie(&self, name: &str) -> Option<String> {
        self.set_cookie(name)
            .map(|c| c.split(';').next().unwrap_or("").to_owned())
            .filter(|c| !c.is_empty())
    }

    /// The whole `Set-Cookie` of the cookie `name`, without its name.
    fn set_cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix(&format!("{name}=")))
            .map(str::to_owned)
    }

    fn location(&self) -> String {
        self.headers
            .get(header::LOCATION)
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned()
    }
}

async fn send(
    app: &TestApp,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<String>,
) -> Page {
    let cookie = cookie.map(|c| format!("scimd_admin_session={c}"));
    send_with(app, method, path, cookie, form, &[]).await
}

/// A request with `cookies` (the `Cookie` header) and extra `headers`.
async fn send_with(
    app: &TestApp,
    method: &str,
    path: &str,
    cookies: Option<String>,
    form: Option<String>,
    headers: &[(&str, &str)],
) -> Page {
    let mut req = test::TestRequest::default()
        .method(actix_web::http::Method::from_bytes(method.as_bytes()).unwrap())
        .uri(path)
        .peer_addr("192.0.2.9:40000".parse().unwrap());
    if let Some(c) = cookies {
        req = req.insert_header((header::COOKIE, c));
    }
    for (name, value) in headers {
        req = req.insert_header((*name, *value));
    }
    if let Some(body) = form {
        req = req
            .insert_header((header::CONTENT_TYPE, "application/x-www-form-urlencoded"))
            .set_payload(body);
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

async fn post_response(app: &TestApp, saml_response: &str) -> Page {
    post_response_from(app, saml_response, None).await
}

/// Posts `saml_response` to the ACS from the browser holding the SAML
/// request cookie `browser` (none: a browser that started no sign-in).
async fn post_response_from(app: &TestApp, saml_response: &str, browser: Option<&str>) -> Page {
    let enc: String = form_urlencoded::byte_serialize(saml_response.as_bytes()).collect();
    send_with(
        app,
        "POST",
        "/admin/saml/acs",
        browser.map(|b| format!("scimd_saml_request={b}")),
        Some(format!("SAMLResponse={enc}&RelayState=%2Fadmin%2Fusers")),
        &[],
    )
    .await
}

/// A browser starts a sign-in ("Sign in with SAML"), holding the SAML
/// request cookie `browser` already if given: the cookie it holds now and
/// the ID of the request sent to the IdP.
async fn start_sign_in(app: &TestApp, browser: Option<&str>) -> (String, String) {
    let go = send_with(
        app,
        "GET",
        "/admin/saml/sign-in?next=%2Fadmin%2Fusers",
        browser.map(|b| format!("scimd_saml_request={b}")),
        None,
        &[],
    )
    .await;
    assert_eq!(go.status, 303, "{}", go.html);
    let cookie = go
        .cookie("scimd_saml_request")
        .expect("the SAML request cookie");
    (cookie, request_id(&go.location()))
}

/// An app whose public URL is [`BASE`], with sign-in limits high enough
/// for the many refusals below, and the IdP configured; IdP-initiated
/// sign-in allowed if `idp_initiated`.
async fn app_with_idp(
    db: scim_store::testing::TestDb,
    required_group: Option<&str>,
    idp_initiated: bool,
) -> (TestApp, TestIdp, SpUrls) {
    let group = required_group.map(str::to_owned);
    let app = TestApp::with_config(db, move |c| {
        c.oauth.public_url = Some(BASE.into());
        c.login_limits = AttemptLimits {
            max_failures: 1000,
            address_max_failures: 0,
            slow_after: 1000,
            ..c.login_limits
        };
        c.saml.required_group = group;
        c.saml.allow_idp_initiated = idp_initiated;
    });
    create_root(&app).await;
    let idp = TestIdp::new(IDP);
    scim_admin::service::set_saml(
        app.db.store(),
        &scim_store::changes::Actor::cli("test"),
        &scim_admin::model::SamlUpdate {
            metadata_xml: None,
            entity_id: Some(IDP.into()),
            sso_url: Some("https://login.example.com/test-tenant/saml2".into()),
            certificate_pem: Some(idp.certificate_pem()),
        },
    )
    .unwrap();
    (app, idp, SpUrls::under(BASE))
}

fn events(app: &TestApp, event: &str) -> Vec<scim_store::changes::Change> {
    app.db
        .store()
        .read(|c| {
            list_changes(
                c,
                &ChangeQuery {
                    events: vec![event.into()],
                    limit: 100,
                    ..ChangeQuery::default()
                },
            )
        })
        .unwrap()
}

fn valid(app: &TestApp, idp: &TestIdp, sp: &SpUrls, name: &str) -> Spec {
    idp.assertion(
        name,
        &sp.entity_id,
        &sp.acs_url,
        app.api.config().clock.now(),
    )
}

#[actix_web::test]
async fn a_signed_response_to_this_browsers_request_signs_an_administrator_in_once() {
    for db in backends() {
        let (app, idp, sp) = app_with_idp(db, None, false).await;

        // What to paste into the IdP: on the metadata and the SAML page.
        let meta = send(&app, "GET", "/admin/saml/metadata", None, None).await;
        assert_eq!(meta.status, 200);
        assert!(
            meta.html
                .contains(&format!("entityID=\"{BASE}/admin/saml/metadata\"")),
            "{}",
            meta.html
        );
        assert!(
            meta.html
                .contains(&format!("Location=\"{BASE}/admin/saml/acs\"")),
            "{}",
            meta.html
        );

        // The sign-in page offers SAML; its button redirects to the IdP
        // with an AuthnRequest and the page to come back to, and binds
        // the request to the browser with a cookie only /admin/saml gets.
        let login = send(
            &app,
            "GET",
            "/admin/login?next=%2Fadmin%2Fusers",
            None,
            None,
        )
        .await;
        assert!(login.html.contains("id=\"saml-sign-in\""), "{}", login.html);
        let go = send(
            &app,
            "GET",
            "/admin/saml/sign-in?next=%2Fadmin%2Fusers",
            None,
            None,
        )
        .await;
        assert_eq!(go.status, 303);
        let to = go.location();
        assert!(
            to.starts_with("https://login.example.com/test-tenant/saml2?SAMLRequest="),
            "{to}"
        );
        assert!(to.contains("RelayState=%2Fadmin%2Fusers"), "{to}");
        let set = go.set_cookie("scimd_saml_request").unwrap();
        for attribute in [
            "HttpOnly",
            "Path=/admin/saml",
            "SameSite=Lax",
            "Max-Age=600",
        ] {
            assert!(set.contains(attribute), "{set}");
        }
        let browser = go.cookie("scimd_saml_request").unwrap();
        let request = request_id(&to);
        // Over HTTPS the IdP's cross-site POST must carry it: None; Secure.
        let tls = send_with(
            &app,
            "GET",
            "/admin/saml/sign-in",
            None,
            None,
            &[("X-Forwarded-Proto", "https")],
        )
        .await;
        let set = tls.set_cookie("scimd_saml_request").unwrap();
        assert!(
            set.contains("SameSite=None") && set.contains("Secure"),
            "{set}"
        );

        // IdP-initiated (answering no request): refused by default.
        let page = post_response_from(
            &app,
            &idp.response(&valid(&app, &idp, &sp, "root")),
            Some(&browser),
        )
        .await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(
            page.html.contains("answers no sign-in request")
                && page.html.contains("admin.saml_allow_idp_initiated"),
            "{}",
            page.html
        );
        assert!(page.session().is_none());

        let answering = |id: &str| {
            let mut spec = valid(&app, &idp, &sp, "root");
            spec.in_response_to = Some(id.to_owned());
            spec
        };
        let not_this_browsers = "answers a sign-in that was not started in this browser";
        // The right response, from a browser that did not start it (no
        // cookie: e.g. posted by another site to log the victim in).
        let page = post_response_from(&app, &idp.response(&answering(&request)), None).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains(not_this_browsers), "{}", page.html);
        // A request scimd never sent.
        let page = post_response_from(
            &app,
            &idp.response(&answering("_never-sent")),
            Some(&browser),
        )
        .await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains(not_this_browsers), "{}", page.html);
        // Another browser's request, posted from this one.
        let (other_browser, other_request) = start_sign_in(&app, None).await;
        assert_ne!(other_browser, browser);
        let page = post_response_from(
            &app,
            &idp.response(&answering(&other_request)),
            Some(&browser),
        )
        .await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains(not_this_browsers), "{}", page.html);
        assert_eq!(events(&app, "admin.signed_in").len(), 0);
        let failed = events(&app, "admin.sign_in_failed");
        assert!(failed
            .iter()
            .any(|c| c.detail.contains("\"reason\":\"unknown_request\"")));
        assert!(failed
            .iter()
            .any(|c| c.detail.contains("\"reason\":\"idp_initiated\"")));

        // This browser's response to its request signs root in, and the
        // session opens the console.
        let response = idp.response(&answering(&request));
        let page = post_response_from(&app, &response, Some(&browser)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("url=/admin/users"), "{}", page.html);
        let session = page.session().expect("a session cookie");
        let users = send(&app, "GET", "/admin/users", Some(&session), None).await;
        assert_eq!(users.status, 200, "{}", users.html);
        let signed_in = events(&app, "admin.signed_in");
        assert_eq!(signed_in.len(), 1);
        assert_eq!(signed_in[0].actor_name.as_deref(), Some("root"));
        assert!(
            signed_in[0].detail.contains("\"method\":\"saml\""),
            "{}",
            signed_in[0].detail
        );

        // The same response again, or another one to the same request:
        // the request was answered.
        for again in [response, idp.response(&answering(&request))] {
            let page = post_response_from(&app, &again, Some(&browser)).await;
            assert_eq!(page.status, 401, "{}", page.html);
            assert!(page.html.contains("already answered"), "{}", page.html);
            assert!(page.session().is_none());
        }

        // The browser starts again (keeping its cookie, so a sign-in in
        // another tab stays answerable); a response whose assertion alone
        // is signed also signs in.
        let (same, second) = start_sign_in(&app, Some(&browser)).await;
        assert_eq!(same, browser);
        let (_, third) = start_sign_in(&app, Some(&browser)).await;
        let mut spec = answering(&second);
        spec.sign_response = false;
        let page = post_response_from(&app, &idp.response(&spec), Some(&browser)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.session().is_some());

        // A request expires after 10 minutes, however fresh the response.
        app.api
            .config()
            .clock
            .advance(std::time::Duration::from_secs(10 * 60 + 1));
        let page =
            post_response_from(&app, &idp.response(&answering(&third)), Some(&browser)).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains(not_this_browsers), "{}", page.html);

        // The password stays a way in.
        let _ = PASSWORD;
    }
}

#[actix_web::test]
async fn idp_initiated_sign_in_when_allowed() {
    for db in backends() {
        let (app, idp, sp) = app_with_idp(db, None, true).await;
        // From the IdP's portal: no request, no cookie.
        let response = idp.response(&valid(&app, &idp, &sp, "root"));
        let page = post_response(&app, &response).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.session().is_some());
        // The same response again is a replay.
        let again = post_response(&app, &response).await;
        assert_eq!(again.status, 401, "{}", again.html);
        assert!(again.html.contains("already used"), "{}", again.html);
        assert!(again.session().is_none());
        // A response that answers a request must still answer one of this
        // browser's.
        let mut spec = valid(&app, &idp, &sp, "root");
        spec.in_response_to = Some("_never-sent".into());
        let page = post_response(&app, &idp.response(&spec)).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(
            page.html.contains("not started in this browser"),
            "{}",
            page.html
        );
        let (browser, request) = start_sign_in(&app, None).await;
        spec.in_response_to = Some(request);
        spec.assertion_id = "_sp-initiated".into();
        let page = post_response_from(&app, &idp.response(&spec), Some(&browser)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert_eq!(events(&app, "admin.signed_in").len(), 2);
    }
}

#[actix_web::test]
async fn refused_responses_say_why_and_are_recorded() {
    for db in backends() {
        let (app, idp, sp) = app_with_idp(db, None, true).await;
        let other = TestIdp::new(IDP);
        scim_admin::service::create_admin(
            app.db.store(),
            &app.api.config().password_hasher,
            &scim_store::changes::Actor::cli("test"),
            "gone",
            PASSWORD,
        )
        .await
        .unwrap();
        let gone = app
            .db
            .store()
            .read(|c| scim_store::admin::find_admin_by_name(c, "gone"))
            .unwrap()
            .unwrap();
        app.db
            .store()
            .write(|c| scim_store::admin::disable_admin(c, &gone.id, "2026-01-01T00:00:00Z"))
            .unwrap();

        let ok = valid(&app, &idp, &sp, "root");
        type Change = fn(&mut Spec);
        let cases: Vec<(&str, Change, u16, &str)> = vec![
            ("unsigned", |s| s.signed = false, 401, "is not signed"),
            ("audience", |s| s.audience = "https://other.example.com/sp".into(), 401, "Identifier (Entity ID) in the identity provider to https://scimd.example.com/admin/saml/metadata"),
            ("destination", |s| s.destination = "https://other.example.com/acs".into(), 401, "Reply URL"),
            ("recipient", |s| { s.recipient = "https://other.example.com/acs".into(); s.sign_response = false; }, 401, "Reply URL"),
            ("issuer", |s| s.issuer = "https://evil.example.com/".into(), 401, "not by the identity provider configured"),
            ("expired", |s| { s.not_on_or_after = s.issued - time::Duration::minutes(3); }, 401, "expired at"),
            ("not yet valid", |s| { s.not_before = s.issued + time::Duration::minutes(10); s.not_on_or_after = s.issued + time::Duration::minutes(20); }, 401, "not valid before"),
            ("unknown user", |s| s.name_id = "mallory@example.com".into(), 403, "is not a scimd administrator"),
            ("disabled", |s| s.name_id = "gone".into(), 403, "is disabled"),
        ];
        let mut refused = 0;
        for (what, change, status, message) in cases {
            let mut spec = ok.clone();
            spec.assertion_id = format!("_{}", what.replace(' ', "-"));
            change(&mut spec);
            let page = post_response(&app, &idp.response(&spec)).await;
            assert_eq!(page.status.as_u16(), status, "{what}: {}", page.html);
            assert!(page.html.contains(message), "{what}: {}", page.html);
            assert!(
                page.html.contains("id=\"login-error\""),
                "{what}: shown on the sign-in page"
            );
            assert!(page.session().is_none(), "{what}");
            refused += 1;
            assert_eq!(
                events(&app, "admin.sign_in_failed").len(),
                refused,
                "{what}"
            );
        }

        // Signed with another key (the IdP's certificate is not its).
        let page = post_response(&app, &other.response(&ok)).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(
            page.html
                .contains("does not verify with the identity provider certificate"),
            "{}",
            page.html
        );

        // Altered after signing: the signature no longer verifies.
        let xml = idp.response_xml(&ok).replace("root", "gone");
        let tampered = base64::Engine::encode(&base64::engine::general_purpose::STANDARD, xml);
        let page = post_response(&app, &tampered).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains("does not verify"), "{}", page.html);

        // Not SAML at all.
        let page = post_response(&app, "not base64!").await;
        assert_eq!(page.status, 400, "{}", page.html);
        assert!(page.html.contains("not a SAML response"), "{}", page.html);

        // A valid response expires once the clock passes NotOnOrAfter and
        // the 2-minute skew.
        let late = valid(&app, &idp, &sp, "root");
        app.api
            .config()
            .clock
            .advance(std::time::Duration::from_secs(7 * 60));
        let page = post_response(&app, &idp.response(&late)).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.html.contains("expired at"), "{}", page.html);
        assert_eq!(events(&app, "admin.signed_in").len(), 0);
        let failed = events(&app, "admin.sign_in_failed");
        assert!(failed
            .iter()
            .all(|c| c.detail.contains("\"method\":\"saml\"")));
    }
}

#[actix_web::test]
async fn a_required_group_must_be_asserted() {
    for db in backends() {
        let (app, idp, sp) = app_with_idp(db, Some("admins-group-id"), true).await;
        let group = scim_admin::saml_sign_in::SamlSignInConfig::default().group_attribute;
        let spec = valid(&app, &idp, &sp, "root");
        let page = post_response(&app, &idp.response(&spec)).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(page.html.contains("not in the group"), "{}", page.html);
        let mut spec = valid(&app, &idp, &sp, "root");
        spec.attributes = vec![(group, vec!["other".into(), "admins-group-id".into()])];
        let page = post_response(&app, &idp.response(&spec)).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.session().is_some());
    }
}

#[actix_web::test]
async fn without_idp_settings_saml_sign_in_is_not_offered() {
    for db in backends() {
        let app = TestApp::new(db);
        create_root(&app).await;
        let login = send(&app, "GET", "/admin/login", None, None).await;
        assert!(!login.html.contains("id=\"saml-sign-in\""));
        let go = send(&app, "GET", "/admin/saml/sign-in", None, None).await;
        assert_eq!(go.status, 409);
        assert!(go.html.contains("not configured"), "{}", go.html);
    }
}

/// Starts a sign-in at the organization `slug`'s own SAML sign-in: the
/// request cookie it sets (only for that organization's SAML paths) and
/// the ID of the request sent to its IdP.
async fn start_org_sign_in(app: &TestApp, slug: &str) -> (String, String) {
    let go = send(
        app,
        "GET",
        &format!("/admin/o/{slug}/saml/sign-in?next=%2Fadmin%2Ftokens"),
        None,
        None,
    )
    .await;
    assert_eq!(go.status, 303, "{}", go.html);
    let set = go.set_cookie("scimd_saml_request").unwrap();
    assert!(set.contains(&format!("Path=/admin/o/{slug}/saml")), "{set}");
    (
        go.cookie("scimd_saml_request").unwrap(),
        request_id(&go.location()),
    )
}

/// Posts `saml_response` to the organization `slug`'s ACS from `browser`.
async fn post_org_response(app: &TestApp, slug: &str, saml_response: &str, browser: &str) -> Page {
    let enc: String = form_urlencoded::byte_serialize(saml_response.as_bytes()).collect();
    send_with(
        app,
        "POST",
        &format!("/admin/o/{slug}/saml/acs"),
        Some(format!("scimd_saml_request={browser}")),
        Some(format!("SAMLResponse={enc}&RelayState=%2Fadmin%2Ftokens")),
        &[],
    )
    .await
}

#[actix_web::test]
async fn an_organizations_identity_provider_signs_in_its_own_administrators_to_its_console() {
    for db in backends() {
        let (app, default_idp, _) = app_with_idp(db, None, false).await;
        let store = app.db.store().clone();
        let actor = scim_store::changes::Actor::cli("test");
        let acme = scim_admin::organizations::create(
            &store,
            &actor,
            &scim_admin::organizations::CreateOrganization {
                slug: "acme".into(),
                name: "Acme Corp".into(),
                host: None,
            },
        )
        .unwrap();
        let acme_id = store
            .organizations_blocking()
            .unwrap()
            .by_slug("acme")
            .unwrap()
            .id;
        assert_eq!(acme.slug, "acme");
        let idp = TestIdp::new("https://sts.windows.net/acme-tenant/");
        scim_admin::service::set_saml(
            &store,
            &actor.clone().in_org(acme_id),
            &scim_admin::model::SamlUpdate {
                metadata_xml: None,
                entity_id: Some("https://sts.windows.net/acme-tenant/".into()),
                sso_url: Some("https://login.example.com/acme-tenant/saml2".into()),
                certificate_pem: Some(idp.certificate_pem()),
            },
        )
        .unwrap();
        scim_admin::service::create_admin_with_scope(
            &store,
            &app.api.config().password_hasher,
            &actor,
            "olga",
            PASSWORD,
            scim_store::admin::roles::AdminScope::organization(vec![acme_id]),
            vec!["acme".into()],
        )
        .await
        .unwrap();
        let sp = SpUrls::of_org(BASE, Some("acme"));

        // Its own values for its identity provider.
        let meta = send(&app, "GET", "/admin/o/acme/saml/metadata", None, None).await;
        assert_eq!(meta.status, 200);
        assert!(
            meta.html
                .contains(&format!("entityID=\"{BASE}/admin/o/acme/saml/metadata\""))
                && meta
                    .html
                    .contains(&format!("Location=\"{BASE}/admin/o/acme/saml/acs\"")),
            "{}",
            meta.html
        );
        let none = send(&app, "GET", "/admin/o/nope/saml/sign-in", None, None).await;
        assert_eq!(none.status, 404, "{}", none.html);

        // Olga, an organization administrator of acme, signs in through
        // acme's identity provider, to acme's pages.
        let (browser, request) = start_org_sign_in(&app, "acme").await;
        let mut spec = valid(&app, &idp, &sp, "olga");
        spec.in_response_to = Some(request);
        let page = post_org_response(&app, "acme", &idp.response(&spec), &browser).await;
        assert_eq!(page.status, 200, "{}", page.html);
        assert!(page.html.contains("/admin/tokens"), "{}", page.html);
        let session = page.session().unwrap();
        let session_id = session
            .strip_prefix("scimd_admin_session=")
            .unwrap_or(&session);
        let org = store
            .read(|c| scim_store::admin::roles::session_org(c, session_id))
            .unwrap();
        assert_eq!(org, Some(acme_id));
        let tokens = send(&app, "GET", "/admin/tokens", Some(session_id), None).await;
        assert_eq!(tokens.status, 200, "{}", tokens.html);

        // The instance administrator is not signed in by a customer's
        // identity provider.
        let (browser, request) = start_org_sign_in(&app, "acme").await;
        let mut spec = valid(&app, &idp, &sp, "root");
        spec.in_response_to = Some(request);
        let page = post_org_response(&app, "acme", &idp.response(&spec), &browser).await;
        assert_eq!(page.status, 403, "{}", page.html);
        assert!(
            page.html
                .contains("is not an organization administrator of this organization"),
            "{}",
            page.html
        );
        assert!(page.session().is_none());
        let failed = events(&app, "admin.sign_in_failed");
        assert!(
            failed
                .iter()
                .any(|c| c.detail.contains("not_of_organization")),
            "{failed:?}"
        );

        // The default organization's identity provider cannot sign in
        // at acme's.
        let (browser, request) = start_org_sign_in(&app, "acme").await;
        let mut spec = valid(&app, &default_idp, &sp, "olga");
        spec.in_response_to = Some(request);
        let page = post_org_response(&app, "acme", &default_idp.response(&spec), &browser).await;
        assert_eq!(page.status, 401, "{}", page.html);
        assert!(page.session().is_none());
    }
}
