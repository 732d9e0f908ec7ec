//! The identity provider's **Authorize** connection end to end, over real
//! HTTP through the whole app (`scimd::configure_app`: console sign-in,
//! consent, OAuth endpoints, admin API and SCIM API on one listener), on
//! SQLite and PostgreSQL. The test plays Entra ID's part: register a
//! client → authorize (admin sign-in + consent with CSRF) → code → token →
//! Test Connection → provision → let the access token expire → refresh →
//! continue; then every failure path. Lifetimes run out on the app's
//! injected clock (`scim_core::Clock`), moved forward by the test: nothing
//! waits for real time to pass.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Duration;

use scim_store::testing::{backends, TestDb};
use serde_json::{json, Value};

const REDIRECT: &str = "https://portal.azure.com/TokenAuthorize";
const PASSWORD: &str = "correct horse battery staple";
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
/// Lifetimes as configured by default; the test moves the clock past them.
const ACCESS_TTL: u64 = 3600;
const CODE_TTL: u64 = 60;
const CACHE_TTL: Duration = Duration::from_secs(5);

/// One app on a real socket, stopped on drop.
struct Server {
    port: u16,
    /// The app's clock: [`Server::advance`] moves it.
    clock: scim_core::Clock,
    handle: actix_web::dev::ServerHandle,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Server {
    fn start(db: &TestDb) -> Server {
        Server::start_with(db, |s| s.oauth.token_max_failures = 100)
    }

    fn start_with(db: &TestDb, tweak: impl FnOnce(&mut scimd::settings::Settings)) -> Server {
        let env = vec![("SCIMD__DATABASE__URL".to_string(), db.url().to_string())];
        let mut settings = scimd::settings::Settings::load_from(None, env).unwrap();
        settings.oauth.access_token_ttl_secs = ACCESS_TTL;
        settings.oauth.code_ttl_secs = CODE_TTL;
        tweak(&mut settings);
        settings.auth.token_cache_ttl_secs = CACHE_TTL.as_secs();
        let store = db.store().clone();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = std::sync::mpsc::channel();
        let shared = settings.shared();
        let clock = shared.clock.clone();
        let thread = std::thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = actix_web::HttpServer::new(move || {
                    let (store, settings) = (store.clone(), settings.clone());
                    let shared = shared.clone();
                    actix_web::App::new()
                        .wrap(actix_web::middleware::from_fn(scimd::logging::request_log))
                        .configure(move |cfg| scimd::configure_app(cfg, &store, &shared, &settings))
                })
                .workers(2)
                .listen(listener)
                .unwrap()
                .run();
                tx.send(server.handle()).unwrap();
                server.await.unwrap();
            });
        });
        let handle = rx.recv().unwrap();
        Server {
            port,
            clock,
            handle,
            thread: Some(thread),
        }
    }

    fn send(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Res {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.port,
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        req.push_str(body);
        stream.write_all(req.as_bytes()).unwrap();
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).unwrap();
        Res::parse(&String::from_utf8_lossy(&raw))
    }

    /// Lets `by` pass on the app's clock.
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    fn get(&self, path: &str, headers: &[(&str, &str)]) -> Res {
        self.send("GET", path, headers, "")
    }

    fn form(&self, path: &str, headers: &[(&str, &str)], pairs: &[(&str, &str)]) -> Res {
        let mut h = headers.to_vec();
        h.push(("Content-Type", "application/x-www-form-urlencoded"));
        self.send("POST", path, &h, &encode(pairs))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

struct Res {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Res {
    fn parse(raw: &str) -> Res {
        let (head, body) = raw.split_once("\r\n\r\n").unwrap_or((raw, ""));
        let mut lines = head.lines();
        let status = lines
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let chunked = headers
            .iter()
            .any(|(k, v)| k == "transfer-encoding" && v.contains("chunked"));
        let body = if chunked {
            dechunk(body)
        } else {
            body.to_string()
        };
        Res {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

fn encode(pairs: &[(&str, &str)]) -> String {
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", pct(k), pct(v)))
        .collect::<Vec<_>>()
        .join("&")
}

fn pct(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn unpct(s: &str) -> String {
    let s = s.replace('+', " ");
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).unwrap()
}

/// The query parameters of a URL.
fn query(url: &str) -> Vec<(String, String)> {
    let q = url.split_once('?').map_or("", |(_, q)| q);
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| (unpct(k), unpct(v)))
        .collect()
}

fn param(url: &str, name: &str) -> Option<String> {
    query(url)
        .into_iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v)
}

/// The value of the hidden input `name` in an HTML page.
fn hidden(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("{name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].replace("&#43;", "+").replace("&#61;", "=")
}

fn basic(id: &str, secret: &str) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let raw = format!("{id}:{secret}").into_bytes();
    let mut out = String::new();
    for chunk in raw.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    format!("Basic {out}")
}

/// The registered client, and what the identity provider keeps.
struct Client {
    id: String,
    secret: String,
}

fn authorize_path(client_id: &str, redirect_uri: &str, state: &str, pkce: bool) -> String {
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("state", state),
        ("scope", "scim"),
    ];
    let challenge = scim_admin::oauth::pkce_s256(VERIFIER);
    if pkce {
        pairs.push(("code_challenge", &challenge));
        pairs.push(("code_challenge_method", "S256"));
    }
    format!("/oauth/authorize?{}", encode(&pairs))
}

/// With the admin's console cookie: the consent page, then Approve (or
/// Deny); returns the redirect back to the identity provider.
fn consent(server: &Server, cookie: &str, path: &str, decision: &str) -> String {
    let page = server.get(path, &[("Cookie", cookie)]);
    assert_eq!(page.status, 200, "{}", page.body);
    let csrf = hidden(&page.body, "csrf");
    let mut fields: Vec<(String, String)> = query(path);
    fields.push(("csrf".into(), csrf));
    fields.push(("decision".into(), decision.into()));
    let pairs: Vec<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let res = server.form("/oauth/authorize", &[("Cookie", cookie)], &pairs);
    assert_eq!(res.status, 303, "{}", res.body);
    res.header("location").unwrap().to_string()
}

/// A fresh authorization code (with PKCE when `pkce`).
fn code(server: &Server, cookie: &str, client: &Client, pkce: bool) -> String {
    let to = consent(
        server,
        cookie,
        &authorize_path(&client.id, REDIRECT, "s1", pkce),
        "approve",
    );
    assert!(to.starts_with(REDIRECT), "{to}");
    param(&to, "code").unwrap()
}

fn exchange(server: &Server, client: &Client, code: &str, verifier: Option<&str>) -> Res {
    let mut pairs = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
    ];
    if let Some(v) = verifier {
        pairs.push(("code_verifier", v));
    }
    let auth = basic(&client.id, &client.secret);
    server.form("/oauth/token", &[("Authorization", &auth)], &pairs)
}

/// Refreshes with client_secret_post (the other authentication method).
fn refresh(server: &Server, client: &Client, token: &str) -> Res {
    server.form(
        "/oauth/token",
        &[],
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", token),
            ("client_id", &client.id),
            ("client_secret", &client.secret),
        ],
    )
}

/// Entra's Test Connection: a filter on a random userName.
fn test_connection(server: &Server, access_token: &str) -> Res {
    let filter = format!("userName eq \"{}\"", uuid_like());
    let auth = format!("Bearer {access_token}");
    server.get(
        &format!("/scim/v2/Users?filter={}", pct(&filter)),
        &[("Authorization", &auth)],
    )
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    format!(
        "{:08x}-0000-4000-8000-{:012x}",
        nanos as u32,
        nanos as u64 & 0xffff_ffff_ffff
    )
}

fn assert_invalid_grant(res: &Res) {
    assert_eq!(res.status, 400, "{}", res.body);
    assert_eq!(res.json()["error"], "invalid_grant", "{}", res.body);
    assert_eq!(res.header("cache-control"), Some("no-store"));
}

#[test]
fn entra_authorize_connection_end_to_end() {
    for db in backends() {
        let store = db.store();
        store
            .write(|c| scim_store::sync::enable_sync(c, scim_store::OrgId::DEFAULT, "tests", &[]))
            .unwrap();
        actix_web::rt::System::new()
            .block_on(scim_admin::service::create_admin(
                store,
                &scim_store::PasswordHasher::default(),
                &scim_store::changes::Actor::cli("test"),
                "root",
                PASSWORD,
            ))
            .unwrap();
        let server = Server::start(&db);

        // Metadata (RFC 8414).
        let meta = server.get("/.well-known/oauth-authorization-server", &[]);
        assert_eq!(meta.status, 200);
        let meta = meta.json();
        let issuer = meta["issuer"].as_str().unwrap().to_string();
        assert_eq!(
            meta["authorization_endpoint"],
            format!("{issuer}/oauth/authorize")
        );
        assert_eq!(meta["token_endpoint"], format!("{issuer}/oauth/token"));
        assert_eq!(meta["code_challenge_methods_supported"], json!(["S256"]));

        // The admin registers a client for Entra in the admin API. The
        // change log records the request id the response carries: the
        // caller's when it is short and plain, else scimd's own.
        let refused = server.send(
            "POST",
            "/admin/api/v1/session",
            &[
                ("Content-Type", "application/json"),
                ("X-Request-Id", "not plain <id>"),
            ],
            &json!({"username": "root", "password": "wrong password"}).to_string(),
        );
        assert_eq!(refused.status, 401, "{}", refused.body);
        let login = server.send(
            "POST",
            "/admin/api/v1/session",
            &[
                ("Content-Type", "application/json"),
                ("X-Request-Id", "entra-login-1"),
            ],
            &json!({"username": "root", "password": PASSWORD}).to_string(),
        );
        assert_eq!(login.status, 200, "{}", login.body);
        assert_eq!(login.header("x-request-id"), Some("entra-login-1"));
        let log = store
            .read(|c| scim_store::changes::read_after(c, 0, 100))
            .unwrap();
        let request_of = |event: &str| {
            log.iter()
                .find(|c| c.event == event)
                .and_then(|c| c.request_id.clone())
        };
        assert_eq!(
            request_of("admin.signed_in").as_deref(),
            Some("entra-login-1")
        );
        let generated = refused.header("x-request-id").unwrap();
        assert_ne!(generated, "not plain <id>");
        assert_eq!(
            request_of("admin.sign_in_failed").as_deref(),
            Some(generated)
        );
        let api_cookie = login
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let api_csrf = login.json()["csrf_token"].as_str().unwrap().to_string();
        let created = server.send(
            "POST",
            "/admin/api/v1/oauth-clients",
            &[
                ("Content-Type", "application/json"),
                ("Cookie", &api_cookie),
                ("X-CSRF-Token", &api_csrf),
            ],
            &json!({"name": "Microsoft Entra ID", "redirect_uris": [REDIRECT]}).to_string(),
        );
        assert_eq!(created.status, 201, "{}", created.body);
        let created = created.json();
        let client = Client {
            id: created["client"]["client_id"].as_str().unwrap().to_string(),
            secret: created["client_secret"].as_str().unwrap().to_string(),
        };
        let listed = server.get("/admin/api/v1/oauth-clients", &[("Cookie", &api_cookie)]);
        assert!(!listed.body.contains(&client.secret), "never listed again");
        // Every secret the test sees (client secrets, codes, access and
        // refresh tokens): the change log must hold none of them.
        let mut secrets = vec![client.secret.clone()];

        // Entra opens the authorization URL in the admin's browser: not
        // signed in (a cross-site navigation carries no SameSite=Strict
        // cookie), so the console's sign-in comes first and returns here.
        let path = authorize_path(&client.id, REDIRECT, "xyz-state", true);
        let res = server.get(&path, &[]);
        assert_eq!(res.status, 303, "{}", res.body);
        let to_login = res.header("location").unwrap().to_string();
        assert!(to_login.starts_with("/admin/login?next="), "{to_login}");
        let next = param(&to_login, "next").unwrap();
        assert_eq!(next, path);
        let form = server.get(&to_login, &[]);
        assert_eq!(form.status, 200);
        // The sign-in form's pre-session CSRF token, in its cookie and field.
        let csrf_cookie = form
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();
        let csrf = csrf_cookie.split_once('=').unwrap().1.to_string();
        assert!(form
            .body
            .contains(&format!(r#"name="csrf" value="{csrf}""#)));
        let signed_in = server.form(
            "/admin/login",
            &[("Cookie", &csrf_cookie)],
            &[
                ("username", "root"),
                ("password", PASSWORD),
                ("next", &next),
                ("csrf", &csrf),
            ],
        );
        assert_eq!(signed_in.status, 303, "{}", signed_in.body);
        assert_eq!(signed_in.header("location"), Some(path.as_str()));
        let cookie = signed_in
            .header("set-cookie")
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_string();

        // The consent page names the client and the scope.
        let page = server.get(&path, &[("Cookie", &cookie)]);
        assert_eq!(page.status, 200);
        assert!(page.body.contains("Microsoft Entra ID"), "{}", page.body);
        assert!(page.body.contains("SCIM provisioning"));
        assert!(page
            .header("content-security-policy")
            .unwrap()
            .contains("form-action 'self' https://portal.azure.com"));
        assert_eq!(page.header("x-frame-options"), Some("DENY"));
        // A decision without the session's CSRF token is refused, never redirected.
        let forged = server.form(
            "/oauth/authorize",
            &[("Cookie", &cookie)],
            &[
                ("response_type", "code"),
                ("client_id", &client.id),
                ("redirect_uri", REDIRECT),
                ("decision", "approve"),
                ("csrf", "forged"),
            ],
        );
        assert_eq!(forged.status, 403);
        assert!(forged.header("location").is_none());
        // Approve: back to Entra with a code and the unchanged state.
        let back = consent(&server, &cookie, &path, "approve");
        assert!(back.starts_with(&format!("{REDIRECT}?")), "{back}");
        assert_eq!(param(&back, "state").as_deref(), Some("xyz-state"));
        let code1 = param(&back, "code").unwrap();
        secrets.push(code1.clone());

        // Code → tokens (HTTP Basic, PKCE).
        let res = exchange(&server, &client, &code1, Some(VERIFIER));
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        assert_eq!(res.header("pragma"), Some("no-cache"));
        let tokens = res.json();
        assert_eq!(tokens["token_type"], "Bearer");
        assert_eq!(tokens["expires_in"], ACCESS_TTL);
        assert_eq!(tokens["scope"], "scim");
        let access = tokens["access_token"].as_str().unwrap().to_string();
        let refresh1 = tokens["refresh_token"].as_str().unwrap().to_string();
        secrets.extend([access.clone(), refresh1.clone()]);

        // Test Connection, then provisioning.
        let res = test_connection(&server, &access);
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["totalResults"], 0);
        assert_eq!(res.json()["Resources"], json!([]));
        let bearer = format!("Bearer {access}");
        let res = server.send(
            "POST",
            "/scim/v2/Users",
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/scim+json"),
            ],
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada@example.com","active":true}"#,
        );
        assert_eq!(res.status, 201, "{}", res.body);
        let ada = res.json()["id"].as_str().unwrap().to_string();

        // The access token expires; Entra refreshes and continues.
        server.advance(Duration::from_secs(ACCESS_TTL + 1));
        let res = test_connection(&server, &access);
        assert_eq!(res.status, 401, "{}", res.body);
        let res = refresh(&server, &client, &refresh1);
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.header("cache-control"), Some("no-store"));
        let access2 = res.json()["access_token"].as_str().unwrap().to_string();
        let refresh2 = res.json()["refresh_token"].as_str().unwrap().to_string();
        assert_ne!(refresh2, refresh1, "refresh tokens rotate");
        secrets.extend([access2.clone(), refresh2.clone()]);
        let res = server.get(
            "/scim/v2/Users?filter=userName%20eq%20%22ada%40example.com%22",
            &[("Authorization", &format!("Bearer {access2}"))],
        );
        assert_eq!(res.status, 200, "{}", res.body);
        assert_eq!(res.json()["totalResults"], 1);

        // The grant is listed: client, approving admin, when, last used.
        let grants = server.get("/admin/api/v1/oauth-grants", &[("Cookie", &api_cookie)]);
        let grants = grants.json();
        assert_eq!(grants[0]["client_name"], "Microsoft Entra ID");
        assert_eq!(grants[0]["approved_by"], "root");
        assert_eq!(grants[0]["state"], "active");
        assert!(grants[0]["last_used_at"].is_string());

        // Secret tokens keep working side by side.
        let (_, secret) = store
            .write(|c| scim_store::create_token(c, "non-gallery", None))
            .unwrap();
        assert_eq!(test_connection(&server, &secret).status, 200);

        // --- Reused refresh token: the whole grant is revoked.
        let res = refresh(&server, &client, &refresh1);
        assert_invalid_grant(&res);
        assert!(res.body.contains("already used"), "{}", res.body);
        server.advance(CACHE_TTL);
        assert_eq!(test_connection(&server, &access2).status, 401);
        assert_invalid_grant(&refresh(&server, &client, &refresh2));
        let grants = server
            .get("/admin/api/v1/oauth-grants", &[("Cookie", &api_cookie)])
            .json();
        assert_eq!(grants[0]["state"], "revoked");
        assert_eq!(grants[0]["revoked_reason"], "refresh token reused");

        // --- Wrong redirect URI, unknown client: an error page, never a redirect.
        for bad in [
            authorize_path(&client.id, "https://evil.example/cb", "s", false),
            authorize_path(&client.id, &format!("{REDIRECT}/x"), "s", false),
            authorize_path("no-such-client", REDIRECT, "s", false),
        ] {
            let res = server.get(&bad, &[("Cookie", &cookie)]);
            assert_eq!(res.status, 400, "{bad}: {}", res.body);
            assert!(res.header("location").is_none());
            assert!(res.body.contains("cannot be processed"), "{}", res.body);
        }
        // Once the redirect URI is validated, errors go back with the state.
        let unsupported = authorize_path(&client.id, REDIRECT, "st8", false)
            .replace("response_type=code", "response_type=token");
        let res = server.get(&unsupported, &[("Cookie", &cookie)]);
        assert_eq!(res.status, 302);
        let to = res.header("location").unwrap();
        assert!(to.starts_with(REDIRECT));
        assert_eq!(
            param(to, "error").as_deref(),
            Some("unsupported_response_type")
        );
        assert_eq!(param(to, "state").as_deref(), Some("st8"));
        // Deny.
        let to = consent(
            &server,
            &cookie,
            &authorize_path(&client.id, REDIRECT, "d1", false),
            "deny",
        );
        assert_eq!(param(&to, "error").as_deref(), Some("access_denied"));
        assert_eq!(param(&to, "state").as_deref(), Some("d1"));
        assert!(param(&to, "code").is_none());

        // --- Reused code: refused, and the tokens issued from it are revoked.
        let c = code(&server, &cookie, &client, false);
        let res = exchange(&server, &client, &c, None);
        assert_eq!(res.status, 200, "{}", res.body);
        let a = res.json()["access_token"].as_str().unwrap().to_string();
        let r = res.json()["refresh_token"].as_str().unwrap().to_string();
        secrets.extend([c.clone(), a.clone(), r]);
        assert_eq!(test_connection(&server, &a).status, 200);
        let res = exchange(&server, &client, &c, None);
        assert_invalid_grant(&res);
        server.advance(CACHE_TTL);
        assert_eq!(test_connection(&server, &a).status, 401);

        // --- Wrong client secret: 401 invalid_client with a Basic challenge.
        let c = code(&server, &cookie, &client, false);
        let wrong = Client {
            id: client.id.clone(),
            secret: "scimd_cs_wrong".into(),
        };
        secrets.extend([c.clone(), wrong.secret.clone()]);
        let res = exchange(&server, &wrong, &c, None);
        assert_eq!(res.status, 401, "{}", res.body);
        assert_eq!(res.json()["error"], "invalid_client");
        assert!(res
            .header("www-authenticate")
            .unwrap()
            .starts_with("Basic "));
        assert_eq!(res.header("cache-control"), Some("no-store"));
        // The code survives a wrong secret and still works with the right one.
        assert_eq!(exchange(&server, &client, &c, None).status, 200);

        // --- PKCE mismatch.
        let c = code(&server, &cookie, &client, true);
        secrets.push(c.clone());
        let wrong_verifier = VERIFIER.replace('d', "e");
        assert_invalid_grant(&exchange(&server, &client, &c, Some(&wrong_verifier)));
        assert_invalid_grant(&exchange(&server, &client, &c, None));

        // --- Expired code.
        let c = code(&server, &cookie, &client, false);
        secrets.push(c.clone());
        server.advance(Duration::from_secs(CODE_TTL + 1));
        let res = exchange(&server, &client, &c, None);
        assert_invalid_grant(&res);
        assert!(res.body.contains("expired"), "{}", res.body);

        // --- Revoked grant (by an administrator in the admin API).
        let c = code(&server, &cookie, &client, false);
        let res = exchange(&server, &client, &c, None).json();
        let (a, r) = (
            res["access_token"].as_str().unwrap().to_string(),
            res["refresh_token"].as_str().unwrap().to_string(),
        );
        secrets.extend([c.clone(), a.clone(), r.clone()]);
        assert_eq!(test_connection(&server, &a).status, 200);
        let grants = server
            .get("/admin/api/v1/oauth-grants", &[("Cookie", &api_cookie)])
            .json();
        let id = grants[0]["id"].as_str().unwrap();
        let res = server.send(
            "DELETE",
            &format!("/admin/api/v1/oauth-grants/{id}"),
            &[("Cookie", &api_cookie), ("X-CSRF-Token", &api_csrf)],
            "",
        );
        assert_eq!(res.status, 204, "{}", res.body);
        server.advance(CACHE_TTL);
        assert_eq!(test_connection(&server, &a).status, 401);
        assert_invalid_grant(&refresh(&server, &client, &r));

        // --- RFC 7009: the client revokes its refresh token.
        let c = code(&server, &cookie, &client, false);
        let res = exchange(&server, &client, &c, None).json();
        let (a, r) = (
            res["access_token"].as_str().unwrap().to_string(),
            res["refresh_token"].as_str().unwrap().to_string(),
        );
        secrets.extend([c.clone(), a.clone(), r.clone()]);
        let auth = basic(&client.id, &client.secret);
        let res = server.form(
            "/oauth/revoke",
            &[("Authorization", &auth)],
            &[("token", &r), ("token_type_hint", "refresh_token")],
        );
        assert_eq!(res.status, 200, "{}", res.body);
        server.advance(CACHE_TTL);
        assert_eq!(test_connection(&server, &a).status, 401);
        // Unknown tokens are a success too (RFC 7009 §2.2).
        let res = server.form(
            "/oauth/revoke",
            &[("Authorization", &auth)],
            &[("token", "nope")],
        );
        assert_eq!(res.status, 200);

        // --- Unsupported grant type; a deleted client stops everything.
        let res = server.form(
            "/oauth/token",
            &[("Authorization", &auth)],
            &[("grant_type", "password")],
        );
        assert_eq!(res.json()["error"], "unsupported_grant_type");
        let c = code(&server, &cookie, &client, false);
        let a = exchange(&server, &client, &c, None).json()["access_token"]
            .as_str()
            .unwrap()
            .to_string();
        secrets.extend([c.clone(), a.clone()]);
        let res = server.send(
            "DELETE",
            &format!("/admin/api/v1/oauth-clients/{}", client.id),
            &[("Cookie", &api_cookie), ("X-CSRF-Token", &api_csrf)],
            "",
        );
        assert_eq!(res.status, 204);
        server.advance(CACHE_TTL);
        assert_eq!(test_connection(&server, &a).status, 401);
        assert_eq!(exchange(&server, &client, "x", None).status, 401);

        // The change log: every approval by the administrator; each
        // revocation by whoever revoked it, against its grant.
        let log = store
            .read(|c| scim_store::changes::read_after(c, 0, 1000))
            .unwrap();
        let of = |event: &str| -> Vec<&scim_store::changes::Change> {
            log.iter().filter(|c| c.event == event).collect()
        };
        let approved = of("oauth_grant.created");
        assert!(approved.len() >= 5, "{}", approved.len());
        for row in &approved {
            assert_eq!(row.actor_kind, "admin");
            assert_eq!(row.actor_name.as_deref(), Some("root"));
            assert!(row.resource_id.is_some() && row.request_id.is_some());
            assert!(row.detail.contains("Microsoft Entra ID"), "{}", row.detail);
        }
        let revoked = of("oauth_grant.revoked");
        let by = |kind: &str, reason: &str| {
            revoked
                .iter()
                .filter(|r| r.actor_kind == kind && r.detail.contains(reason))
                .count()
        };
        assert_eq!(by("oauth_client", "refresh token was already used"), 1);
        assert_eq!(by("oauth_client", "the code was already used"), 1);
        assert_eq!(by("oauth_client", "RFC 7009"), 1);
        assert_eq!(by("admin", "client_id"), 1);
        assert_eq!(revoked.len(), 4, "{revoked:#?}");
        for row in &revoked {
            assert!(
                approved.iter().any(|a| a.resource_id == row.resource_id),
                "a revocation names an approved grant: {row:?}"
            );
            if row.actor_kind == "oauth_client" {
                assert_eq!(row.actor_id.as_deref(), Some(client.id.as_str()));
                assert_eq!(row.actor_name.as_deref(), Some("Microsoft Entra ID"));
            }
        }
        assert_eq!(of("oauth_client.created").len(), 1);
        assert_eq!(of("oauth_client.deleted").len(), 1);
        // The user provisioned with the first access token: by the OAuth
        // client, in its request.
        let created = log
            .iter()
            .find(|c| c.event == "user.created" && c.resource_id.as_deref() == Some(&ada))
            .unwrap();
        assert_eq!(created.actor_kind, "oauth_client");
        assert_eq!(created.actor_id.as_deref(), Some(client.id.as_str()));
        assert_eq!(created.actor_name.as_deref(), Some("Microsoft Entra ID"));
        assert!(created.request_id.is_some());
        // No row, in any column, holds a secret the test saw, its random
        // part, or its SHA-256 (what the OAuth tables store).
        assert!(log.iter().any(|c| c.event.starts_with("oauth_")));
        for secret in &secrets {
            let random = [
                scim_store::oauth::CLIENT_SECRET_PREFIX,
                scim_store::oauth::ACCESS_TOKEN_PREFIX,
                scim_store::oauth::REFRESH_TOKEN_PREFIX,
            ]
            .iter()
            .find_map(|p| secret.strip_prefix(p))
            .unwrap_or(secret);
            let mut forms = vec![secret.clone(), scim_store::hash_secret(secret)];
            if random.len() >= 32 {
                forms.push(random.to_owned());
            }
            for row in &log {
                let text = format!("{row:?}");
                for form in &forms {
                    assert!(!text.contains(form.as_str()), "{form} in {row:?}");
                }
            }
        }

        // Issued tokens and refusals are counted (the recorder is the
        // test process's: other tests add to it, so at least).
        let (_, admin_token) = store
            .write(|c| scim_store::admin::create_admin_token(c, "prometheus", None, "tests"))
            .unwrap();
        let bearer = format!("Bearer {admin_token}");
        let res = server.get("/metrics", &[("Authorization", &bearer)]);
        assert_eq!(res.status, 200, "{}", res.body);
        let samples = super::metrics::parse(&res.body);
        let count = |name: &str, label: (&str, &str)| {
            super::metrics::value(&samples, name, &[label]).unwrap_or(0.0)
        };
        let issued = |grant| count("scimd_oauth_tokens_issued_total", ("grant_type", grant));
        assert!(issued("authorization_code") >= 6.0, "{}", res.body);
        assert!(issued("refresh_token") >= 1.0, "{}", res.body);
        let failed = |status| count("scimd_oauth_token_failures_total", ("status", status));
        assert!(failed("400") >= 7.0, "{}", res.body);
        assert!(failed("401") >= 2.0, "{}", res.body);
    }
}

/// The token endpoint is rate-limited per (client, address): after
/// `oauth.token_max_failures` failures from one address, even the right
/// secret from there gets 429 with `Retry-After` until the window passes.
#[test]
fn the_token_endpoint_is_rate_limited() {
    for db in backends() {
        let created = scim_admin::oauth::service::create_client(
            db.store(),
            &scim_store::changes::Actor::cli("test"),
            &scim_admin::oauth::model::CreateClientRequest {
                name: "Entra".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: None,
            },
        )
        .unwrap();
        let id = created.client.client_id.clone();
        let server = Server::start_with(&db, |s| s.oauth.token_max_failures = 3);
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", REDIRECT),
        ];
        for _ in 0..3 {
            let res = server.form(
                "/oauth/token",
                &[("Authorization", &basic(&id, "wrong"))],
                &grant,
            );
            assert_eq!(res.status, 401, "{}", res.body);
            assert_eq!(res.json()["error"], "invalid_client");
        }
        let res = server.form(
            "/oauth/token",
            &[("Authorization", &basic(&id, &created.client_secret))],
            &grant,
        );
        assert_eq!(res.status, 429, "{}", res.body);
        assert!(res.header("retry-after").is_some());
        assert_eq!(res.header("cache-control"), Some("no-store"));
    }
}

/// With `trust_forwarded_for`, wrong client secrets from ten addresses do
/// not stop the real client (Entra's provisioning) from its own address:
/// limits key on (client, address), and the many-address attack only
/// slows the addresses that failed.
#[test]
fn wrong_secrets_from_other_addresses_never_lock_the_client_out() {
    for db in backends() {
        let created = scim_admin::oauth::service::create_client(
            db.store(),
            &scim_store::changes::Actor::cli("test"),
            &scim_admin::oauth::model::CreateClientRequest {
                name: "Entra".into(),
                redirect_uris: vec![REDIRECT.into()],
                scopes: None,
            },
        )
        .unwrap();
        let id = created.client.client_id.clone();
        let server = Server::start_with(&db, |s| {
            s.admin.trust_forwarded_for = true;
            s.oauth.token_max_failures = 3;
            s.oauth.token_slow_after = 5;
        });
        let grant = [
            ("grant_type", "authorization_code"),
            ("code", "no-such-code"),
            ("redirect_uri", REDIRECT),
        ];
        for i in 0..10 {
            let from = format!("203.0.113.{i}");
            let res = server.form(
                "/oauth/token",
                &[
                    ("Authorization", &basic(&id, "wrong")),
                    ("X-Forwarded-For", &from),
                ],
                &grant,
            );
            assert_eq!(res.status, 401, "{}", res.body);
        }
        // An attacking address is slowed down…
        let res = server.form(
            "/oauth/token",
            &[
                ("Authorization", &basic(&id, "wrong")),
                ("X-Forwarded-For", "203.0.113.1"),
            ],
            &grant,
        );
        assert_eq!(res.status, 429, "{}", res.body);
        assert!(res.header("retry-after").is_some());
        // …the real client, from its own address, is authenticated (its
        // made-up code is then refused as a code, not as a client).
        let res = server.form(
            "/oauth/token",
            &[
                ("Authorization", &basic(&id, &created.client_secret)),
                ("X-Forwarded-For", "192.0.2.50"),
            ],
            &grant,
        );
        assert_eq!(res.status, 400, "{}", res.body);
        assert_eq!(res.json()["error"], "invalid_grant");
    }
}
