//! The console in a real browser: headless Chromium driven over WebDriver
//! (chromedriver) against the real `scimd` binary, on each backend. Plays
//! the administrator of the seed: first-run setup → SAML → the Enable
//! button stays disabled until every caution is ticked → Enable → banner →
//! administrators (add, disable, the last one stays, enable, a wrong
//! current password) → SCIM token → the identity provider's requests work → Disable → 403 →
//! the Provisioning page's warning (synchronization disabled) →
//! Swagger UI's "Try it out" creates a token with the session. A second
//! journey signs in with SAML through a test identity provider's page.
//!
//! Screenshots of every page are saved under
//! `target/browser-screenshots/<backend>/`. `make test` installs Debian's
//! `chromium` and `chromium-driver` when they are missing.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

use super::{databases, free_port, log_lines, raw, scimd, wait_for_log, Server, IDP_PEM};

const CHROMIUM: &str = "/usr/bin/chromium";
const PASSWORD: &str = "correct horse battery staple";

/// chromedriver on a free port, stopped on drop.
struct Driver {
    child: Child,
    port: u16,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        // Its own process group, so that dropping the driver also stops
        // the browsers it started, even when a test failed mid-session.
        let mut child = Command::new("chromedriver")
            .process_group(0)
            .arg(format!("--port={port}"))
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start chromedriver ({e}): install Debian's chromium and chromium-driver \
                     (`make test` does it: scripts/ensure-chromium.sh)"
                )
            });
        // It says so once it listens; the rest of its output is drained on
        // a thread of its own, so that the pipe never fills.
        let stdout = child.stdout.take().unwrap();
        let (tx, started) = mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("started successfully") {
                    if let Some(tx) = tx.take() {
                        let _ = tx.send(());
                    }
                }
            }
        });
        started
            .recv_timeout(Duration::from_secs(20))
            .expect("chromedriver did not start");
        Driver { child, port }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `scimd serve` and returns it with the setup code it logged and
/// its log lines from then on.
fn start_scimd(db_url: &str) -> (Server, String, mpsc::Receiver<String>) {
    let port = free_port();
    let child = scimd(db_url)
        .env("SCIMD__SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("SCIMD__SERVER__WORKERS", "2")
        .env("SCIMD__LOG__FORMAT", "json")
        .env("SCIMD__LOG__LEVEL", super::LOG_LEVEL)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut server = Server::of(child, port);
    let lines = log_lines(&mut server);
    let code = loop {
        let line = lines
            .recv_timeout(Duration::from_secs(30))
            .expect("scimd logs the setup code at startup");
        let Ok(v) = serde_json::from_str::<Value>(&line) else {
            continue;
        };
        // The code stands alone in the message, between spaces.
        if let Some(code) = v
            .get("message")
            .and_then(Value::as_str)
            .and_then(|m| m.split("one-time setup code ").nth(1))
            .and_then(|rest| rest.split(' ').next())
        {
            break code.to_owned();
        }
    };
    // The socket is bound before this line is logged, after the code.
    wait_for_log(&lines, "scimd listening");
    (server, code, lines)
}

/// The WebDriver session over headless Chromium (flags from
/// ../shared/STACK.md: no sandbox as root, no background networking).
async fn browser(driver: &Driver, profile: &std::path::Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,1000",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&format!("http://127.0.0.1:{}", driver.port))
        .await
        .expect("a WebDriver session with headless Chromium")
}

struct Shots {
    dir: PathBuf,
    n: u32,
}

impl Shots {
    fn new(backend: &str) -> Shots {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target"));
        let dir = target.join("browser-screenshots").join(backend);
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Shots { dir, n: 0 }
    }

    async fn take(&mut self, c: &Client, name: &str) {
        self.n += 1;
        let png = c.screenshot().await.unwrap();
        std::fs::write(self.dir.join(format!("{:02}-{name}.png", self.n)), png).unwrap();
    }
}

async fn text_of(c: &Client, css: &str) -> String {
    c.wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("{css} not found: {e}"))
        .text()
        .await
        .unwrap()
}

/// The current value of an input (a secret shown once).
async fn value_of(c: &Client, css: &str) -> String {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .prop("value")
        .await
        .unwrap()
        .unwrap_or_default()
}

async fn fill(c: &Client, css: &str, value: &str) {
    let el = c.find(Locator::Css(css)).await.unwrap();
    el.clear().await.unwrap();
    el.send_keys(value).await.unwrap();
}

/// Sets a (long) field's value directly, as a paste would.
async fn paste(c: &Client, css: &str, value: &str) {
    c.execute(
        "document.querySelector(arguments[0]).value = arguments[1];",
        vec![json!(css), json!(value)],
    )
    .await
    .unwrap();
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// Clicks something that loads another page, and waits for that page: a
/// marker set on the old page's window is gone once the new one loaded
/// (so later lookups never find an element of the old page).
async fn follow(c: &Client, css: &str) {
    c.execute("window.__scimdOldPage = true;", vec![])
        .await
        .unwrap();
    click(c, css).await;
    wait_new_page(c, &format!("clicking {css}")).await;
}

/// Waits until the page that set `window.__scimdOldPage` was replaced by
/// a loaded new one (`what` did it). WebDriver has no event for that: the
/// browser is asked again every 50 ms, for at most 15 s.
async fn wait_new_page(c: &Client, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let loaded = c
            .execute(
                "return window.__scimdOldPage === undefined && document.readyState === 'complete';",
                vec![],
            )
            .await
            .map(|v| v == Value::Bool(true))
            .unwrap_or(false);
        if loaded {
            return;
        }
        assert!(Instant::now() < deadline, "{what} loaded no page");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn form_encode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// A form POST with HTTP Basic client authentication (RFC 6749 §2.3.1).
fn form_post(server: &Server, path: &str, user: &str, password: &str, body: &str) -> (u16, String) {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!(
        "{}:{}",
        form_encode(user),
        form_encode(password)
    ));
    let (status, _, body) = raw(
        server,
        &format!(
            "POST {path} HTTP/1.1\r\nAuthorization: Basic {basic}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
        ),
        body,
    );
    (status, body)
}

async fn path_of(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_owned()
}

/// Waits until the browser is at `path` (a form's redirect may land after
/// the click returns).
async fn wait_path(c: &Client, path: &str) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let now = path_of(c).await;
        if now == path {
            return;
        }
        assert!(Instant::now() < deadline, "expected {path}, still at {now}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn enabled(c: &Client, css: &str) -> bool {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .is_enabled()
        .await
        .unwrap()
}

/// Administrators: add one, disable it (confirmed), find that the last
/// enabled administrator cannot be disabled, enable it again; then the
/// own-password page refusing a wrong current password.
async fn administrators(c: &Client, shots: &mut Shots) {
    follow(c, "nav a[href='/admin/admins']").await;
    assert!(text_of(c, "#admins").await.contains("alice"));
    fill(c, "#new-username", "bob").await;
    fill(c, "#new-password", "bob's long passphrase").await;
    fill(c, "#new-password-confirm", "bob's long passphrase").await;
    follow(c, "#create-admin-submit").await;
    assert!(text_of(c, "#notice").await.contains("Administrator added"));
    shots.take(c, "administrators").await;
    // The confirmation dialogs are the browser's own; accept them.
    let accept = || c.execute("window.confirm = () => true;", vec![]);
    accept().await.unwrap();
    follow(c, "tr[data-username='bob'] form[action$='/disable'] button").await;
    assert!(text_of(c, "tr[data-username='bob'] .state")
        .await
        .starts_with("disabled"));
    accept().await.unwrap();
    follow(
        c,
        "tr[data-username='alice'] form[action$='/disable'] button",
    )
    .await;
    let err = text_of(c, "main .error").await;
    assert!(err.contains("last enabled administrator"), "{err}");
    shots.take(c, "administrators-last-one").await;
    follow(c, "tr[data-username='bob'] form[action$='/enable'] button").await;
    assert!(text_of(c, "#notice").await.contains("enabled"));

    follow(c, "a.who").await;
    fill(c, "#current_password", "not my password at all").await;
    fill(c, "#new_password", "alice's next passphrase").await;
    fill(c, "#new_password_confirm", "alice's next passphrase").await;
    follow(c, "#change-password-submit").await;
    let err = text_of(c, "#change-password").await;
    assert!(err.contains("is not your current password"), "{err}");
    shots.take(c, "your-password").await;
}

async fn administrator_journey(
    c: &Client,
    server: &Server,
    log: &mpsc::Receiver<String>,
    code: &str,
    shots: &mut Shots,
) {
    let base = format!("http://127.0.0.1:{}", server.port);

    // First run: the server's bare address leads a browser to the console,
    // and the console to the setup page.
    c.goto(&format!("{base}/")).await.unwrap();
    assert_eq!(path_of(c).await, "/admin/setup");
    shots.take(c, "setup").await;
    fill(c, "#code", "wrong-code").await;
    fill(c, "#username", "alice").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#password_confirm", PASSWORD).await;
    follow(c, "#setup-submit").await;
    let err = text_of(c, "#code-error").await;
    assert!(err.contains("setup code"), "{err}");
    shots.take(c, "setup-wrong-code").await;
    fill(c, "#code", code).await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#password_confirm", PASSWORD).await;
    follow(c, "#setup-submit").await;

    // Signed in, on User Synchronization: disabled, SAML missing.
    wait_path(c, "/admin/sync").await;
    assert!(text_of(c, "#sync-banner").await.contains("disabled"));
    assert!(!enabled(c, "#enable-sync").await);
    assert!(text_of(c, "#enable-reason").await.contains("SAML"));
    shots.take(c, "sync-needs-saml").await;
    // Even with every caution ticked, no SAML means no Enable.
    for b in c
        .find_all(Locator::Css("input[name=caution]"))
        .await
        .unwrap()
    {
        b.click().await.unwrap();
    }
    assert!(!enabled(c, "#enable-sync").await);

    // SAML: a bad certificate is reported next to its field.
    follow(c, "nav a[href='/admin/saml']").await;
    fill(c, "#entity_id", "https://sts.windows.net/tenant/").await;
    fill(
        c,
        "#sso_url",
        "https://login.microsoftonline.com/tenant/saml2",
    )
    .await;
    paste(c, "#certificate_pem", "not a certificate").await;
    follow(c, "#saml-save").await;
    let err = text_of(c, "#certificate_pem-error").await;
    assert!(!err.is_empty());
    shots.take(c, "saml-invalid-certificate").await;
    paste(c, "#certificate_pem", IDP_PEM).await;
    follow(c, "#saml-save").await;
    assert!(text_of(c, "#notice").await.contains("SAML"));
    assert!(text_of(c, "#saml-current").await.contains("SHA-256"));
    shots.take(c, "saml-saved").await;

    // Enable stays disabled until the last caution is ticked.
    follow(c, "nav a[href='/admin/sync']").await;
    assert!(!enabled(c, "#enable-sync").await);
    let boxes = c
        .find_all(Locator::Css("input[name=caution]"))
        .await
        .unwrap();
    assert!(boxes.len() >= 5, "the cautions are listed");
    let (last, rest) = boxes.split_last().unwrap();
    for b in rest {
        b.click().await.unwrap();
        assert!(!enabled(c, "#enable-sync").await);
    }
    shots.take(c, "sync-one-caution-left").await;
    last.click().await.unwrap();
    assert!(enabled(c, "#enable-sync").await);
    shots.take(c, "sync-ready").await;
    follow(c, "#enable-sync").await;
    let banner = text_of(c, "#sync-banner").await;
    assert!(banner.contains("enabled"), "{banner}");
    assert!(text_of(c, "#sync-state").await.contains("alice"));
    shots.take(c, "sync-enabled").await;

    // A SCIM token, shown once, works against the SCIM API.
    follow(c, "nav a[href='/admin/tokens']").await;
    shots.take(c, "tokens").await;
    fill(c, "#scim-name", "Entra ID").await;
    follow(c, "#create-scim-token-submit").await;
    let secret = value_of(c, "#token-secret").await;
    assert!(secret.starts_with("scimd_"), "{secret}");
    assert!(text_of(c, "#tenant-url").await.ends_with("/scim/v2"));
    shots.take(c, "token-created").await;
    // The token table says who created it, and when in the browser's time
    // zone, with the exact UTC time on hover.
    follow(c, "nav a[href='/admin/tokens']").await;
    assert_eq!(text_of(c, "#scim-tokens .created-by").await, "admin:alice");
    let stamp = c
        .execute(
            "const t = document.querySelector('#scim-tokens time'); return [t.dateTime, t.textContent, t.title];",
            vec![],
        )
        .await
        .unwrap();
    let (utc, shown, title) = (
        stamp[0].as_str().unwrap(),
        stamp[1].as_str().unwrap(),
        stamp[2].as_str().unwrap(),
    );
    assert!(utc.ends_with('Z') && shown != utc, "{utc} shown as {shown}");
    assert_eq!(title, format!("{utc} (UTC)"));
    shots.take(c, "tokens-created-by").await;
    let (status, body) = server.http(
        "GET",
        "/scim/v2/Users?filter=userName%20eq%20%225c1e6a0e-9a4b-4c38-a3b9-0d5e2b7f1c11%22",
        Some(&secret),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["totalResults"],
        0
    );
    let (status, body) = server.http(
        "POST",
        "/scim/v2/Users",
        Some(&secret),
        Some(
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob@example.com","displayName":"Bob Jones","emails":[{"value":"bob@example.com","type":"work","primary":true}],"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":"Sales"}}"#,
        ),
    );
    assert_eq!(status, 201, "{body}");
    let bob = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, body) = server.http(
        "POST",
        "/scim/v2/Groups",
        Some(&secret),
        Some(&format!(
            r#"{{"schemas":["urn:ietf:params:scim:schemas:core:2.0:Group"],"displayName":"Sales team","members":[{{"value":"{bob}"}}]}}"#
        )),
    );
    assert_eq!(status, 201, "{body}");
    let sales = serde_json::from_str::<Value>(&body).unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The users and groups the identity provider provisioned.
    follow(c, "nav a[href='/admin/users']").await;
    assert!(text_of(c, "#user-count").await.starts_with("1 user"));
    fill(c, "#q", "BOB@").await;
    follow(c, "#search-users").await;
    assert!(text_of(c, "#users").await.contains("bob@example.com"));
    shots.take(c, "users").await;
    follow(c, "#users a").await;
    let attrs = text_of(c, "#attributes").await;
    assert!(
        attrs.contains("Sales") && attrs.contains("Bob Jones"),
        "{attrs}"
    );
    assert!(text_of(c, "#groups").await.contains("Sales team"));
    shots.take(c, "user-detail").await;
    follow(c, "#groups a").await;
    assert!(text_of(c, "#members").await.contains("Bob Jones"));
    shots.take(c, "group-detail").await;
    follow(c, "nav a[href='/admin/groups']").await;
    assert!(text_of(c, "#groups").await.contains("Sales team"));
    shots.take(c, "groups").await;

    // Users by state: a suspended user, found with the State filter.
    let (status, body) = server.http(
        "POST",
        "/scim/v2/Users",
        Some(&secret),
        Some(
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"carol@example.com","displayName":"Carol Suspended","active":false}"#,
        ),
    );
    assert_eq!(status, 201, "{body}");
    follow(c, "nav a[href='/admin/users']").await;
    c.find(Locator::Css("#state"))
        .await
        .unwrap()
        .select_by_value("suspended")
        .await
        .unwrap();
    follow(c, "#search-users").await;
    let count = text_of(c, "#user-count").await;
    assert!(count.starts_with("1 suspended user"), "{count}");
    let rows = text_of(c, "#users").await;
    assert!(
        rows.contains("carol@example.com") && !rows.contains("bob@"),
        "{rows}"
    );
    shots.take(c, "users-suspended").await;

    // On a narrow screen the table scrolls inside its frame.
    c.set_window_size(420, 900).await.unwrap();
    follow(c, "nav a[href='/admin/users']").await;
    let scrolls = c
        .execute(
            "const w = document.querySelector('.table-wrap'); return w.scrollWidth > w.clientWidth && w.getBoundingClientRect().right <= window.innerWidth;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(scrolls, Value::Bool(true));
    shots.take(c, "users-narrow").await;
    c.set_window_size(1280, 1000).await.unwrap();

    // The first Tab reaches the skip link, which leads to the content.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("\u{E004}")
        .await
        .unwrap();
    let focused = c
        .execute("return document.activeElement.className;", vec![])
        .await
        .unwrap();
    assert_eq!(focused, Value::String("skip-link".into()));
    shots.take(c, "skip-link").await;

    // A wrong console address keeps the navigation.
    c.goto(&format!("{base}/admin/no-such-page")).await.unwrap();
    assert!(text_of(c, "#error-message")
        .await
        .contains("no console page"));
    assert!(text_of(c, "nav[aria-label='Main']").await.contains("Users"));
    shots.take(c, "not-found").await;

    // Settings: invalid values are reported next to their field.
    follow(c, "nav a[href='/admin/settings']").await;
    fill(c, "#max_page_size", "20000").await;
    // The browser's own range check would stop the form; the server's
    // message is what this test is about.
    c.execute(
        "document.getElementById('settings-form').noValidate = true;",
        vec![],
    )
    .await
    .unwrap();
    follow(c, "#settings-save").await;
    let page = text_of(c, "#settings-form").await;
    assert!(page.contains("between 1 and 10000"), "{page}");
    shots.take(c, "settings-invalid").await;
    fill(c, "#max_page_size", "500").await;
    follow(c, "#settings-save").await;
    assert!(text_of(c, "#notice").await.contains("Settings saved"));
    shots.take(c, "settings-saved").await;

    administrators(c, shots).await;

    // "Authorize": register an OAuth client for a gallery-style identity
    // provider; its redirect URI is a page on this host, so the browser
    // shows where the identity provider would receive the code.
    let callback = format!("{base}/oauth-test-callback");
    follow(c, "nav a[href='/admin/oauth-clients']").await;
    fill(c, "#client-name", "Entra ID (gallery)").await;
    paste(c, "#client-redirect-uris", &callback).await;
    follow(c, "#create-oauth-client-submit").await;
    let client_id = text_of(c, "#client-id").await;
    let client_secret = value_of(c, "#client-secret").await;
    assert!(text_of(c, "#authorization-url")
        .await
        .ends_with("/oauth/authorize"));
    shots.take(c, "oauth-client-created").await;

    // The identity provider sends a signed-out browser to /oauth/authorize:
    // sign-in first (a wrong password is refused with a message), then the
    // consent page, then back to the identity provider with a code.
    follow(c, ".signout button").await;
    wait_path(c, "/admin/login").await;
    shots.take(c, "signed-out").await;
    let state = "st-4f1c";
    c.goto(&format!(
        "{base}/oauth/authorize?response_type=code&client_id={client_id}&redirect_uri={}&state={state}&scope=scim",
        form_encode(&callback)
    ))
    .await
    .unwrap();
    wait_path(c, "/admin/login").await;
    fill(c, "#username", "alice").await;
    fill(c, "#password", "wrong password!").await;
    follow(c, "#login-submit").await;
    assert!(text_of(c, "#login-error")
        .await
        .to_lowercase()
        .contains("wrong username or password"));
    shots.take(c, "login-refused").await;
    fill(c, "#password", PASSWORD).await;
    follow(c, "#login-submit").await;
    wait_path(c, "/oauth/authorize").await;
    assert!(text_of(c, "#consent-summary")
        .await
        .contains("Entra ID (gallery)"));
    assert!(text_of(c, "#consent-scope").await.contains("SCIM"));
    shots.take(c, "oauth-consent").await;
    follow(c, "#consent-approve").await;
    let landed = c.current_url().await.unwrap();
    assert_eq!(landed.path(), "/oauth-test-callback");
    let query: std::collections::HashMap<String, String> =
        landed.query_pairs().into_owned().collect();
    assert_eq!(query.get("state").map(String::as_str), Some(state));
    let code = query.get("code").expect("an authorization code").clone();

    // The identity provider redeems the code and provisions with the token.
    let (status, body) = form_post(
        server,
        "/oauth/token",
        &client_id,
        &client_secret,
        &format!(
            "grant_type=authorization_code&code={}&redirect_uri={}",
            form_encode(&code),
            form_encode(&callback)
        ),
    );
    assert_eq!(status, 200, "{body}");
    let tokens: Value = serde_json::from_str(&body).unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_owned();
    assert!(tokens["refresh_token"].is_string());
    let (status, body) = server.http(
        "GET",
        "/scim/v2/Users?filter=userName%20eq%20%22b8a3c1e2-0000-4000-8000-000000000000%22",
        Some(&access),
        None,
    );
    assert_eq!(status, 200, "{body}");
    c.goto(&format!("{base}/admin/oauth-clients"))
        .await
        .unwrap();
    follow(c, "#grants-link").await;
    assert!(text_of(c, "#oauth-grants").await.contains("alice"));
    shots.take(c, "oauth-grants").await;

    // A provisioning run through the OAuth client: Bob's title changes,
    // he leaves the Sales team and is suspended.
    let (status, body) = server.http(
        "PATCH",
        &format!("/scim/v2/Users/{bob}"),
        Some(&access),
        Some(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","path":"title","value":"Account Manager"}]}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");
    let (status, body) = server.http(
        "PATCH",
        &format!("/scim/v2/Groups/{sales}"),
        Some(&access),
        Some(&format!(
            r#"{{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{{"op":"remove","path":"members[value eq \"{bob}\"]"}}]}}"#
        )),
    );
    assert!(status == 200 || status == 204, "{status} {body}");
    let (status, body) = server.http(
        "PATCH",
        &format!("/scim/v2/Users/{bob}"),
        Some(&access),
        Some(
            r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],"Operations":[{"op":"replace","value":{"active":"False"}}]}"#,
        ),
    );
    assert_eq!(status, 200, "{body}");

    // The Activity page: who did what, newest first; filtered by actor.
    follow(c, "nav a[href='/admin/activity']").await;
    let activity = text_of(c, "#activity").await;
    for what in [
        "OAuth grant for \u{201c}Entra ID (gallery)\u{201d} approved, by administrator alice",
        "sign-in failed for username \u{201c}alice\u{201d}",
        "OAuth client \u{201c}Entra ID (gallery)\u{201d} registered, by administrator alice",
        "User Synchronization enabled, by administrator alice",
        "SCIM token \u{201c}Entra ID\u{201d} created, by administrator alice",
        // The provisioning run, by the identity provider's credentials.
        "User bob@example.com: suspended, by OAuth client Entra ID (gallery)",
        "Group Sales team: members removed: bob@example.com, by OAuth client Entra ID (gallery)",
        "User bob@example.com: title changed, by OAuth client Entra ID (gallery)",
        "Group Sales team: members added: bob@example.com, by SCIM token Entra ID",
        "User bob@example.com: created, by SCIM token Entra ID",
    ] {
        assert!(activity.contains(what), "{what}: {activity}");
    }
    shots.take(c, "activity").await;
    c.find(Locator::Css("#actor_kind"))
        .await
        .unwrap()
        .select_by_value("anonymous")
        .await
        .unwrap();
    follow(c, "#filter-activity").await;
    let filtered = text_of(c, "#activity").await;
    assert!(
        filtered.contains("sign-in failed") && !filtered.contains("approved"),
        "{filtered}"
    );
    shots.take(c, "activity-filtered").await;
    // Bob's page: his timeline.
    c.goto(&format!("{base}/admin/users/{bob}")).await.unwrap();
    let timeline = text_of(c, "#timeline").await;
    for what in [
        "suspended, by OAuth client Entra ID (gallery)",
        "removed from Sales team, by OAuth client Entra ID (gallery)",
        "title changed, by OAuth client Entra ID (gallery)",
        "added to Sales team, by SCIM token Entra ID",
        "created, by SCIM token Entra ID",
    ] {
        assert!(timeline.contains(what), "{what}: {timeline}");
    }
    // Newest first.
    assert!(
        timeline.find("suspended").unwrap() < timeline.find("created, by").unwrap(),
        "{timeline}"
    );
    c.execute(
        "document.querySelector('#timeline-section').scrollIntoView();",
        vec![],
    )
    .await
    .unwrap();
    shots.take(c, "user-timeline").await;

    // Disable, with confirmation: SCIM requests get 403 again, whatever
    // the credential.
    follow(c, "nav a[href='/admin/sync']").await;
    follow(c, "#disable-sync").await;
    shots.take(c, "disable-confirmation").await;
    follow(c, "#confirm-disable").await;
    assert!(text_of(c, "#sync-banner").await.contains("disabled"));
    shots.take(c, "sync-disabled").await;
    for token in [&secret, &access] {
        let (status, body) = server.http("GET", "/scim/v2/Users", Some(token), None);
        assert_eq!(status, 403, "{body}");
        assert!(body.contains("disabled"), "{body}");
    }

    // The identity provider keeps sending: every request gets 403. The
    // replica's health round (every 10 s) raises the warning and logs it
    // once; the Provisioning page shows it with its cause.
    for _ in 0..10 {
        let (status, body) = server.http("GET", "/scim/v2/Users", Some(&secret), None);
        assert_eq!(status, 403, "{body}");
    }
    loop {
        let line = wait_for_log(log, "provisioning at risk");
        if line.contains("sync_disabled") {
            break;
        }
    }
    follow(c, "nav a[href='/admin/provisioning']").await;
    let warning = text_of(c, "#warning-sync_disabled").await;
    assert!(
        warning.contains("Entra ID: ") && warning.contains("User Synchronization is disabled"),
        "{warning}"
    );
    assert!(warning.contains("Enable User Synchronization"), "{warning}");
    let page = text_of(c, "main").await;
    assert!(page.contains("Entra ID (gallery)"), "{page}");
    assert!(!page.contains(&secret) && !page.contains(&access), "{page}");
    shots.take(c, "provisioning-warning").await;

    // Swagger UI, served by the binary for administrators, renders offline.
    c.goto(&format!("{base}/docs/")).await.unwrap();
    let title = text_of(c, ".swagger-ui .info .title").await;
    assert!(title.contains("scimd admin API"), "{title}");
    shots.take(c, "swagger-ui").await;

    // "Try it out" with the console session: the documented example of
    // POST /admin/api/v1/scim-tokens goes out with the session's CSRF
    // token (Swagger UI's request interceptor adds it) and creates a token.
    let op = "#operations-SCIM_tokens-create_scim_token";
    for step in [".opblock-summary", ".try-out__btn", ".execute"] {
        c.wait()
            .at_most(Duration::from_secs(10))
            .for_element(Locator::Css(&format!("{op} {step}")))
            .await
            .unwrap_or_else(|e| panic!("{op} {step} not found: {e}"))
            .click()
            .await
            .unwrap();
    }
    let status = text_of(
        c,
        &format!("{op} .live-responses-table tbody .response-col_status"),
    )
    .await;
    assert!(status.starts_with("201"), "Try it out answered {status}");
    c.execute(
        "document.querySelector(arguments[0]).scrollIntoView();",
        vec![json!(format!("{op} .live-responses-table"))],
    )
    .await
    .unwrap();
    shots.take(c, "swagger-try-it-out").await;
}

#[test]
fn the_administrator_enables_synchronization_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    for (url, db) in databases(dir.path()) {
        let backend = if db.is_some() { "postgres" } else { "sqlite" };
        let (server, code, log) = start_scimd(&url);
        let profile = tempfile::tempdir().unwrap();
        let mut shots = Shots::new(backend);
        rt.block_on(async {
            let c = browser(&driver, profile.path()).await;
            administrator_journey(&c, &server, &log, &code, &mut shots).await;
            c.close().await.unwrap();
        });
        drop(server);
        drop(db);
    }
}

/// A tiny identity provider on loopback, as a browser meets one: `GET
/// /sso?SAMLRequest=…&RelayState=…` (scimd's SP-initiated sign-in)
/// answers a page that auto-posts a `SAMLResponse` to scimd's ACS for the
/// user in `user` (set by the test: who signs in at the IdP), signed by
/// `idp`'s key and answering the request (`InResponseTo`), with the
/// `RelayState`. Serves at most 10 requests, then stops.
fn serve_test_idp(
    idp: scim_admin::saml_sign_in::test_idp::TestIdp,
    scimd_base: String,
    user: std::sync::Arc<std::sync::Mutex<String>>,
) -> u16 {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let sp = scim_admin::saml_sign_in::SpUrls::under(&scimd_base);
    std::thread::spawn(move || {
        for stream in listener.incoming().take(10) {
            let Ok(mut stream) = stream else { continue };
            let mut buf = [0u8; 8192];
            let n = stream.read(&mut buf).unwrap_or(0);
            let head = String::from_utf8_lossy(&buf[..n]).into_owned();
            let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
            if !path.starts_with("/sso?") {
                // The browser's /favicon.ico.
                let _ = write!(
                    stream,
                    "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                continue;
            }
            let url = format!("http://127.0.0.1:{port}{path}");
            let request = scim_admin::saml_sign_in::test_idp::request_id(&url);
            let relay_state = form_urlencoded::parse(path.split_once('?').unwrap().1.as_bytes())
                .find(|(k, _)| k == "RelayState")
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default();
            let user = user.lock().unwrap().clone();
            let mut spec = idp.assertion(
                &user,
                &sp.entity_id,
                &sp.acs_url,
                time::OffsetDateTime::now_utc(),
            );
            spec.in_response_to = Some(request);
            let html = format!(
                r#"<!doctype html><html><head><title>Test identity provider</title></head><body>
<h1>Test identity provider</h1><p>Signing in {user}…</p>
<form method="post" action="{acs}"><input type="hidden" name="SAMLResponse" value="{response}"><input type="hidden" name="RelayState" value="{relay_state}"><noscript><button>Continue</button></noscript></form>
<script>document.forms[0].submit();</script></body></html>"#,
                acs = sp.acs_url,
                response = idp.response(&spec),
            );
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{html}",
                html.len()
            );
        }
    });
    port
}

/// Waits until the browser shows a page of scimd's at `path` (after the
/// IdP page's automatic POST and scimd's own continue page).
async fn goto_and_wait(c: &Client, url: &str, path: &str) {
    c.goto(url).await.unwrap();
    wait_path(c, path).await;
}

async fn saml_journey(c: &Client, server: &Server, db_url: &str, shots: &mut Shots) {
    let base = format!("http://127.0.0.1:{}", server.port);
    // The operator's part, from the CLI: an administrator, and the
    // identity provider's SAML settings (its certificate made by the test).
    let idp = scim_admin::saml_sign_in::test_idp::TestIdp::new("https://idp.test/entity");
    let dir = tempfile::tempdir().unwrap();
    let pem = dir.path().join("idp.pem");
    std::fs::write(&pem, idp.certificate_pem()).unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, format!("{PASSWORD}\n")).unwrap();
    let out = super::run(
        scimd(db_url)
            .args([
                "admin",
                "create",
                "--username",
                "alice@example.com",
                "--password-file",
            ])
            .arg(&pw),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = super::run(
        scimd(db_url)
            .args(["saml", "set", "--entity-id", "https://idp.test/entity"])
            .args(["--sso-url", "https://idp.test/saml2"])
            .arg("--certificate")
            .arg(&pem),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The test IdP listens on plain HTTP on loopback, which scimd rightly
    // refuses as an SSO URL: it is put in the database directly.
    let certificate = idp.certificate_pem();
    let user = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let idp_port = serve_test_idp(idp, base.clone(), user.clone());
    let idp_base = format!("http://127.0.0.1:{idp_port}");
    let store = scim_store::Store::connect(&scim_store::StoreConfig {
        url: db_url.to_owned(),
        pool_size: 1,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    store
        .write(|c| {
            scim_store::admin::saml::save_saml_settings(
                c,
                scim_store::OrgId::DEFAULT,
                "https://idp.test/entity",
                &format!("{idp_base}/sso"),
                &certificate,
                "test",
            )
        })
        .unwrap();
    drop(store);

    // The sign-in page offers SAML; its button sends an AuthnRequest to
    // the configured SSO URL.
    c.goto(&format!("{base}/admin/login")).await.unwrap();
    assert!(text_of(c, "#saml-sign-in")
        .await
        .contains("Sign in with SAML"));
    shots.take(c, "login-with-saml").await;
    let (status, headers, _) = raw(server, "GET /admin/saml/sign-in HTTP/1.1\r\n", "");
    assert_eq!(status, 303);
    assert!(
        headers.contains(&format!("location: {idp_base}/sso?SAMLRequest=")),
        "{headers}"
    );

    // Someone the identity provider knows but scimd has no administrator
    // for: refused, with what to do, on the sign-in page.
    *user.lock().unwrap() = "mallory@example.com".into();
    goto_and_wait(c, &format!("{base}/admin/saml/sign-in"), "/admin/saml/acs").await;
    let err = text_of(c, "#login-error").await;
    assert!(err.contains("is not a scimd administrator"), "{err}");
    shots.take(c, "saml-refused-unknown-user").await;

    // The administrator: signed in (the browser that started the sign-in
    // brings the response back), on the console.
    *user.lock().unwrap() = "alice@example.com".into();
    goto_and_wait(c, &format!("{base}/admin/saml/sign-in"), "/admin/sync").await;
    assert!(text_of(c, "header").await.contains("alice@example.com"));
    shots.take(c, "signed-in-with-saml").await;

    // The SAML page shows what to enter in the identity provider.
    follow(c, "nav a[href='/admin/saml']").await;
    assert_eq!(
        text_of(c, "#saml-sp-acs-url").await,
        format!("{base}/admin/saml/acs")
    );
    assert_eq!(
        text_of(c, "#saml-sp-entity-id").await,
        format!("{base}/admin/saml/metadata")
    );
    shots.take(c, "saml-sp-values").await;
}

#[test]
fn an_administrator_signs_in_with_saml_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    for (url, db) in databases(dir.path()) {
        let backend = if db.is_some() { "postgres" } else { "sqlite" };
        let (server, _code, _log) = start_scimd(&url);
        let profile = tempfile::tempdir().unwrap();
        let mut shots = Shots::new(&format!("{backend}-saml"));
        rt.block_on(async {
            let c = browser(&driver, profile.path()).await;
            saml_journey(&c, &server, &url, &mut shots).await;
            c.close().await.unwrap();
        });
        drop(server);
        drop(db);
    }
}

/// Selects `slug` in the organization switcher and waits for the page it
/// comes back to.
async fn switch_to(c: &Client, slug: &str) {
    c.find(Locator::Css("#org-select"))
        .await
        .unwrap()
        .select_by_value(slug)
        .await
        .unwrap();
    follow(c, "#org-switch").await;
}

/// Organizations: the instance administrator adds a second organization,
/// switches to it, gives it SAML, enables its synchronization and creates
/// its SCIM token (which works at its own URL only), finds the default
/// organization untouched, and adds an organization administrator of it.
/// That administrator signs in and sees only its organization: no
/// switcher, no instance pages (403), and 403 when it asks for another
/// organization.
async fn organizations_journey(c: &Client, server: &Server, code: &str, shots: &mut Shots) {
    let base = format!("http://127.0.0.1:{}", server.port);
    c.goto(&format!("{base}/admin/setup")).await.unwrap();
    fill(c, "#code", code).await;
    fill(c, "#username", "alice").await;
    fill(c, "#password", PASSWORD).await;
    fill(c, "#password_confirm", PASSWORD).await;
    follow(c, "#setup-submit").await;
    wait_path(c, "/admin/sync").await;
    // One organization: no switcher.
    assert!(c.find(Locator::Css("#org-select")).await.is_err());

    follow(c, "nav a[href='/admin/organizations']").await;
    fill(c, "#org-slug", "acme").await;
    fill(c, "#org-name", "Acme Corp").await;
    follow(c, "#create-organization-submit").await;
    assert!(text_of(c, "#notice").await.contains("Organization added"));
    assert!(text_of(c, "#organizations")
        .await
        .contains("/scim/v2/o/acme"));
    shots.take(c, "organizations").await;

    // The switcher now offers both; acme's pages are its own.
    switch_to(c, "acme").await;
    wait_path(c, "/admin/organizations").await;
    assert!(text_of(c, "#org-banner").await.contains("Acme Corp"));
    follow(c, "nav a[href='/admin/saml']").await;
    assert!(text_of(c, "#org-banner").await.contains("Acme Corp"));
    fill(c, "#entity_id", "https://sts.windows.net/acme-tenant/").await;
    fill(
        c,
        "#sso_url",
        "https://login.microsoftonline.com/acme-tenant/saml2",
    )
    .await;
    paste(c, "#certificate_pem", IDP_PEM).await;
    follow(c, "#saml-save").await;
    assert!(text_of(c, "#notice").await.contains("SAML"));
    follow(c, "nav a[href='/admin/sync']").await;
    for b in c
        .find_all(Locator::Css("input[name=caution]"))
        .await
        .unwrap()
    {
        b.click().await.unwrap();
    }
    follow(c, "#enable-sync").await;
    assert!(text_of(c, "#sync-banner").await.contains("enabled"));
    shots.take(c, "acme-sync-enabled").await;
    follow(c, "nav a[href='/admin/tokens']").await;
    fill(c, "#scim-name", "Acme Entra").await;
    follow(c, "#create-scim-token-submit").await;
    let secret = value_of(c, "#token-secret").await;
    assert!(text_of(c, "#tenant-url").await.ends_with("/scim/v2/o/acme"));
    shots.take(c, "acme-token-created").await;
    let (status, body) = server.http("GET", "/scim/v2/o/acme/Users", Some(&secret), None);
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.http("GET", "/scim/v2/Users", Some(&secret), None);
    assert_eq!(status, 401);

    // The default organization is untouched: its switch is still off.
    switch_to(c, "default").await;
    wait_path(c, "/admin/tokens").await;
    assert!(text_of(c, "#sync-banner").await.contains("disabled"));
    assert!(!text_of(c, "main").await.contains("Acme Entra"));
    shots.take(c, "default-organization").await;

    // An organization administrator of acme.
    follow(c, "nav a[href='/admin/admins']").await;
    fill(c, "#new-username", "olga").await;
    fill(c, "#new-password", "olga's long passphrase").await;
    fill(c, "#new-password-confirm", "olga's long passphrase").await;
    c.find(Locator::Css("#new-role"))
        .await
        .unwrap()
        .select_by_value("organization")
        .await
        .unwrap();
    fill(c, "#new-organizations", "acme").await;
    follow(c, "#create-admin-submit").await;
    assert!(text_of(c, "tr[data-username='olga'] .role")
        .await
        .contains("acme"));
    shots.take(c, "organization-administrator-added").await;
    follow(c, ".signout button").await;
    wait_path(c, "/admin/login").await;

    // Olga sees acme only.
    fill(c, "#username", "olga").await;
    fill(c, "#password", "olga's long passphrase").await;
    follow(c, "#login-submit").await;
    wait_path(c, "/admin/sync").await;
    assert!(text_of(c, "#sync-banner").await.contains("enabled"));
    assert!(c.find(Locator::Css("#org-select")).await.is_err());
    let nav = text_of(c, "nav[aria-label='Main']").await;
    assert!(
        nav.contains("Tokens") && !nav.contains("Organizations") && !nav.contains("Administrators"),
        "{nav}"
    );
    follow(c, "nav a[href='/admin/tokens']").await;
    assert!(text_of(c, "#scim-tokens").await.contains("Acme Entra"));
    shots.take(c, "organization-administrator-tokens").await;
    // The instance pages are 403.
    for page in ["/admin/organizations", "/admin/admins"] {
        c.goto(&format!("{base}{page}")).await.unwrap();
        let err = text_of(c, "#error-message").await;
        assert!(err.contains("instance administrators"), "{page}: {err}");
    }
    shots
        .take(c, "organization-administrator-instance-page")
        .await;
    // Asking for the default organization's pages (the switcher's form,
    // which she is not offered, sent anyway) is 403.
    c.execute(
        "const f = document.createElement('form'); f.method = 'post'; \
         f.action = '/admin/switch-organization'; \
         for (const [k, v] of [['csrf', document.querySelector('.signout input[name=csrf]').value], ['org', 'default'], ['next', '/admin/tokens']]) { \
           const i = document.createElement('input'); i.type = 'hidden'; i.name = k; i.value = v; f.appendChild(i); } \
         document.body.appendChild(f); window.__scimdOldPage = true; f.submit();",
        vec![],
    )
    .await
    .unwrap();
    wait_new_page(c, "the switch").await;
    let err = text_of(c, "#error-message").await;
    assert!(err.contains("no grant") && err.contains("default"), "{err}");
    shots
        .take(c, "organization-administrator-other-organization")
        .await;
    // And her pages still show acme.
    follow(c, "nav a[href='/admin/tokens']").await;
    assert!(text_of(c, "#scim-tokens").await.contains("Acme Entra"));
}

#[test]
fn organizations_are_switched_and_restricted_in_a_real_browser() {
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    for (url, db) in databases(dir.path()) {
        let backend = if db.is_some() { "postgres" } else { "sqlite" };
        let (server, code, _log) = start_scimd(&url);
        let profile = tempfile::tempdir().unwrap();
        let mut shots = Shots::new(&format!("{backend}-organizations"));
        rt.block_on(async {
            let c = browser(&driver, profile.path()).await;
            organizations_journey(&c, &server, &code, &mut shots).await;
            c.close().await.unwrap();
        });
        drop(server);
        drop(db);
    }
}
