//! `scimd copy`: a directory moved from SQLite to PostgreSQL and back is
//! the same directory, as SCIM returns it, and the identity provider's
//! tokens still open it. These tests need PostgreSQL and fail without
//! `TEST_DATABASE_URL` (unless `SCIMD_TEST_SQLITE_ONLY=1` opts out).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use scim_store::testing::{create_user, create_user_with_password, TestDb};
use scim_store::{MemberRef, Store, StoreConfig};
use serde_json::{json, Value};

use super::{create_token, enable_sync, raw, run, scimd, Server};

/// Users in the big group.
const USERS: usize = 10_000;

fn copy(from: &str, to: &str, force: bool) -> std::process::Output {
    let mut cmd = scimd(from);
    cmd.args(["copy", "--from", from, "--to", to]);
    if force {
        cmd.arg("--force");
    }
    run(&mut cmd)
}

fn open(url: &str) -> Store {
    let store = Store::connect(&StoreConfig {
        url: url.to_owned(),
        pool_size: 2,
        connect_timeout: Duration::from_secs(15),
    })
    .unwrap();
    store.migrate().unwrap();
    store
}

/// Everything an installation holds, through the CLI where an operator
/// would use it and through the store for the bulk; returns the SCIM
/// token's secret and an OAuth access token.
fn fill(url: &str, dir: &std::path::Path) -> (String, String) {
    let (_, secret) = create_token(url, "Entra ID");
    enable_sync(url);
    let pw = dir.join("pw");
    std::fs::write(&pw, "a long enough passphrase\n").unwrap();
    let out = run(scimd(url)
        .args(["admin", "create", "--username", "root", "--password-file"])
        .arg(&pw));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let store = open(url);
    use scim_store::admin::{create_admin_token, create_session, create_setup_code, list_admins};
    use scim_store::settings::{get_runtime_settings, update_runtime_settings, Deprovisioning};
    let now = time::OffsetDateTime::now_utc();
    let later = scim_core::datetime::format(now + time::Duration::days(1));
    let current = store
        .read(|c| get_runtime_settings(c, scim_store::OrgId::DEFAULT))
        .unwrap();
    let mut values = current.values.clone();
    values.deprovisioning = Deprovisioning::Soft;
    values.default_page_size = 50;
    store
        .write(|c| {
            update_runtime_settings(
                c,
                scim_store::OrgId::DEFAULT,
                &values,
                current.version,
                "admin:root",
            )
        })
        .unwrap();
    // An assertion that signed in over SAML, remembered until it expires.
    let now_text = scim_core::datetime::format(now);
    store
        .write(|c| {
            scim_store::admin::saml::remember_saml_assertion(c, "_assertion-1", &later, &now_text)
        })
        .unwrap();
    // A SAML sign-in in progress: its request, bound to a browser.
    store
        .write(|c| {
            scim_store::admin::saml::remember_saml_request(
                c,
                "_request-1",
                "browser-secret",
                &later,
                &now_text,
            )
            .map(|_| ())
        })
        .unwrap();
    // A replica's record of a credential's SCIM traffic (provisioning
    // health), with a failure kept.
    store
        .write(|c| {
            use scim_store::admin::health::{save_traffic, Credential, Request, Traffic};
            let mut traffic = Traffic {
                name: Some("Entra ID".into()),
                ..Traffic::default()
            };
            traffic.record(&Request {
                at: now,
                method: "POST",
                route: "/Users",
                operation: "create",
                status: 400,
                scim_type: Some("invalidValue"),
                detail: Some("userName is required"),
                refusal: None,
            });
            save_traffic(
                c,
                "replica-1",
                now,
                &[(Credential::scim_token("t1"), traffic)],
            )
        })
        .unwrap();
    // The change log, with a row whose every column is set.
    store
        .write(|c| {
            use scim_store::changes::{record, Actor, ActorKind, Event, NewChange};
            let actor = Actor::new(
                ActorKind::Cli,
                Some("0".to_owned()),
                Some("root".to_owned()),
            )
            .with_request(Some("req-1".to_owned()), Some("192.0.2.1".to_owned()));
            record(
                c,
                &actor,
                &scim_core::datetime::format(now),
                &[
                    NewChange::new(Event::SettingsChanged, "Settings", Some("1"))
                        .version(current.version + 1)
                        .detail(json!({"paths": ["deprovisioning", "default_page_size"]}))
                        .data("{}".to_owned()),
                ],
            )
        })
        .unwrap();
    // A second organization (created by the CLI), with its own user and
    // an administrator given it.
    let out = run(scimd(url).args(["org", "create", "acme", "--name", "Acme"]));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let acme = store
        .read(|c| scim_store::organizations::find_organization(c, "acme"))
        .unwrap()
        .unwrap()
        .id;
    scim_store::testing::enable_sync(&store, acme);
    create_user(
        &store,
        acme,
        serde_json::from_value(json!({"userName": "acme-user"})).unwrap(),
    )
    .wait()
    .unwrap();
    let root = store.read(list_admins).unwrap().remove(0).id;
    store
        .write(|c| scim_store::organizations::grant_organization(c, &root, acme))
        .unwrap();
    // A custom schema extension.
    let def = scim_core::extensions::ExtensionDef::from_json(&json!({
        "id": "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User",
        "attributes": [{"name": "CustomAttribute", "type": "string"}]
    }))
    .unwrap();
    store
        .write(|c| scim_store::scim::extensions::create_extension(c, &def, "cli:root"))
        .unwrap();
    // An event stream with its key, and an acknowledgement past a change
    // still outstanding.
    store
        .write(|c| {
            use scim_store::changes::{record, Actor, Event, NewChange};
            use scim_store::events::{streams, Alg, Delivery, Mode, NewStream};
            let created = streams::create_stream(
                c,
                scim_store::OrgId::DEFAULT,
                &NewStream {
                    name: "CRM".to_owned(),
                    delivery: Delivery::Poll,
                    endpoint_url: None,
                    authorization: None,
                    audience: "https://crm.example.com".to_owned(),
                    issuer: None,
                    event_types: Vec::new(),
                    resource_types: Vec::new(),
                    mode: Mode::Full,
                    alg: Alg::Es256,
                },
                &scim_core::datetime::format(now),
            )?;
            let at = scim_core::datetime::format(now);
            for id in ["g1", "g2"] {
                record(
                    c,
                    &Actor::cli("root"),
                    &at,
                    &[NewChange::new(Event::GroupCreated, "Group", Some(id))],
                )?;
            }
            let last = scim_store::changes::last_position(c)?;
            streams::acknowledge(c, &created.stream, last, &[last])?;
            Ok(())
        })
        .unwrap();
    let access_token = store
        .write(|c| {
            let admin = list_admins(c)?.remove(0);
            create_session(c, &admin, &later)?;
            create_admin_token(c, "ci", None, "admin:root")?;
            create_setup_code(c, &later)?;
            let (client, _) = scim_store::oauth::create_client(
                c,
                scim_store::OrgId::DEFAULT,
                "Entra ID",
                &["https://portal.azure.com/TokenAuthorize".to_owned()],
                &["scim".to_owned()],
                "admin:root",
            )?;
            let (_, code) = scim_store::oauth::create_authorization(
                c,
                &scim_store::oauth::NewAuthorization {
                    client_id: &client.id,
                    redirect_uri: "https://portal.azure.com/TokenAuthorize",
                    scope: "scim",
                    code_challenge: None,
                    admin_id: &admin.id,
                    admin_username: &admin.username,
                },
                now,
                time::Duration::minutes(5),
            )?;
            // A second code stays unexchanged.
            scim_store::oauth::create_authorization(
                c,
                &scim_store::oauth::NewAuthorization {
                    client_id: &client.id,
                    redirect_uri: "https://portal.azure.com/TokenAuthorize",
                    scope: "scim",
                    code_challenge: None,
                    admin_id: &admin.id,
                    admin_username: &admin.username,
                },
                now,
                time::Duration::minutes(5),
            )?;
            let issued = scim_store::oauth::exchange_code(
                c,
                &client.id,
                &code,
                Some("https://portal.azure.com/TokenAuthorize"),
                None,
                now,
                scim_store::oauth::TokenLifetimes {
                    access: time::Duration::hours(1),
                    refresh: time::Duration::days(30),
                },
            )?
            .unwrap();
            Ok(issued.access_token)
        })
        .unwrap();

    // The directory: 10k plain users in batches, a few full ones, a
    // soft-deleted one, a 10k-member group and a nested one.
    let mut ids = Vec::with_capacity(USERS);
    for batch in 0..USERS / 1000 {
        // Each batch queued in full before the first is awaited.
        let created: Vec<_> = (batch * 1000..(batch + 1) * 1000)
            .map(|i| {
                let attrs = json!({
                    "userName": format!("user{i}@example.com"),
                    "externalId": format!("ext-{i}"),
                    "displayName": format!("User {i}"),
                    "active": i % 7 != 0,
                });
                let attrs = attrs.as_object().unwrap().clone();
                create_user(&store, scim_store::OrgId::DEFAULT, attrs)
            })
            .collect();
        ids.extend(created.into_iter().map(|u| u.wait().unwrap().id));
    }
    let full: Vec<String> = (0..3)
        .map(|i| {
            let attrs = json!({
                "schemas": [
                    "urn:ietf:params:scim:schemas:core:2.0:User",
                    "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
                ],
                "userName": format!("Full.Person{i}@Example.com"),
                "name": {"givenName": "Full", "familyName": format!("Person {i}"), "formatted": "Full Person"},
                "emails": [
                    {"value": format!("full{i}@example.com"), "type": "work", "primary": true},
                    {"value": format!("full{i}@home.example"), "type": "home"}
                ],
                "phoneNumbers": [{"value": "+1 555 0100", "type": "work"}],
                "addresses": [{"type": "work", "streetAddress": "1 Main St", "locality": "Zürich", "country": "CH"}],
                "title": "Engineer ☃",
                "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
                    "employeeNumber": format!("{i}"),
                    "department": "R&D"
                }
            });
            let attrs = attrs.as_object().unwrap().clone();
            let hash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA";
            create_user_with_password(&store, scim_store::OrgId::DEFAULT, attrs, hash)
                .wait()
                .unwrap()
                .id
        })
        .collect();
    let gone = json!({"userName": "gone@example.com"});
    let gone = create_user(
        &store,
        scim_store::OrgId::DEFAULT,
        gone.as_object().unwrap().clone(),
    )
    .wait()
    .unwrap();
    store
        .write(|c| {
            scim_store::soft_delete_user(c, scim_store::OrgId::DEFAULT, &gone.id, None)?;
            let refs: Vec<MemberRef> = ids
                .iter()
                .map(|id| MemberRef {
                    value: id.clone(),
                    member_type: None,
                })
                .collect();
            let everyone = scim_store::insert_group(
                c,
                scim_store::OrgId::DEFAULT,
                json!({"displayName": "Everyone", "externalId": "all"})
                    .as_object()
                    .unwrap(),
                &refs,
            )?;
            let nested = vec![
                MemberRef {
                    value: everyone.id.clone(),
                    member_type: None,
                },
                MemberRef {
                    value: full[0].clone(),
                    member_type: None,
                },
            ];
            scim_store::insert_group(
                c,
                scim_store::OrgId::DEFAULT,
                json!({"displayName": "Admins"}).as_object().unwrap(),
                &nested,
            )?;
            scim_store::insert_group(
                c,
                scim_store::OrgId::DEFAULT,
                json!({"displayName": "Empty"}).as_object().unwrap(),
                &[],
            )?;
            Ok(())
        })
        .unwrap();
    assert_eq!(full.len(), 3);
    (secret, access_token)
}

/// A keep-alive HTTP/1.1 client: 20,000 GETs on one connection each.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn new(server: &Server) -> Client {
        let stream = TcpStream::connect(("127.0.0.1", server.port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        Client {
            reader: BufReader::new(stream),
        }
    }

    /// The status, the ETag and the body of `GET path`.
    fn get(&mut self, path: &str, token: &str) -> (u16, Option<String>, String) {
        // One write per request: split writes would meet Nagle's
        // algorithm and delayed ACKs (40 ms per request).
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
        );
        self.reader.get_mut().write_all(request.as_bytes()).unwrap();
        let mut line = String::new();
        self.reader.read_line(&mut line).unwrap();
        let status: u16 = line.split_whitespace().nth(1).unwrap().parse().unwrap();
        let (mut length, mut etag) = (0usize, None);
        loop {
            line.clear();
            self.reader.read_line(&mut line).unwrap();
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            match name.to_ascii_lowercase().as_str() {
                "content-length" => length = value.trim().parse().unwrap(),
                "etag" => etag = Some(value.trim().to_owned()),
                "transfer-encoding" => panic!("chunked response to {path}"),
                _ => {}
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).unwrap();
        (status, etag, String::from_utf8(body).unwrap())
    }
}

/// Every live user's id, through the SCIM list (pages compared on both
/// servers on the way).
fn user_ids(a: &mut Client, b: &mut Client, token: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut start = 1;
    loop {
        let path = format!("/scim/v2/Users?startIndex={start}&count=1000");
        let (status, _, page) = a.get(&path, token);
        assert_eq!(status, 200, "{page}");
        assert_eq!(b.get(&path, token).2, page, "{path}");
        let page: Value = serde_json::from_str(&page).unwrap();
        let resources = page["Resources"].as_array().unwrap();
        if resources.is_empty() {
            return ids;
        }
        ids.extend(
            resources
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_owned()),
        );
        start += resources.len();
    }
}

#[test]
fn a_directory_survives_sqlite_to_postgres_and_back() {
    // PostgreSQL-only; skipped on purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    let back = format!("sqlite://{}", dir.path().join("back.db").display());
    let (secret, access_token) = fill(&source, dir.path());
    {
        // A failed sign-in, so login_attempts holds a row.
        let server = Server::start(&source);
        let (status, _, body) = raw(
            &server,
            "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
            r#"{"username":"root","password":"not the passphrase"}"#,
        );
        assert_eq!(status, 401, "{body}");
    }

    let started = std::time::Instant::now();
    let out = copy(&source, pg.url(), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let to_postgres = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("counts and checksums verified"), "{stdout}");
    let started = std::time::Instant::now();
    let out = copy(pg.url(), &back, false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!(
        "copy of {} users: SQLite -> PostgreSQL {to_postgres:?}, PostgreSQL -> SQLite {:?}",
        USERS + 4,
        started.elapsed()
    );

    // A target holding data is refused, unless forced.
    let out = copy(&source, pg.url(), false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("not empty") && stderr.contains("--force"),
        "{stderr}"
    );
    assert!(
        stderr.contains(&format!("users: {}", USERS + 5)),
        "{stderr}"
    );
    let out = copy(&source, pg.url(), true);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Every table, row for row.
    let sums = scim_store::copy::table_checksums(&source).unwrap();
    assert_eq!(scim_store::copy::table_checksums(pg.url()).unwrap(), sums);
    assert_eq!(scim_store::copy::table_checksums(&back).unwrap(), sums);
    for t in &sums {
        assert!(t.rows > 0, "the test leaves table {} empty", t.table);
    }

    // Every resource as SCIM returns it: ids, meta, version and ETag.
    let a = Server::start(&source);
    let b = Server::start(&back);
    let (mut ca, mut cb) = (Client::new(&a), Client::new(&b));
    let users = user_ids(&mut ca, &mut cb, &secret);
    assert_eq!(users.len(), USERS + 3);
    for id in &users {
        let path = format!("/scim/v2/Users/{id}");
        let (status, etag, body) = ca.get(&path, &secret);
        assert_eq!(status, 200, "{body}");
        let user: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(etag.as_deref(), user["meta"]["version"].as_str());
        assert_eq!(cb.get(&path, &secret), (status, etag, body), "{path}");
    }
    let (_, _, groups) = ca.get("/scim/v2/Groups?count=10", &secret);
    let groups: Value = serde_json::from_str(&groups).unwrap();
    let groups = groups["Resources"].as_array().unwrap();
    assert_eq!(groups.len(), 3);
    for g in groups {
        let path = format!("/scim/v2/Groups/{}", g["id"].as_str().unwrap());
        let (status, etag, body) = ca.get(&path, &secret);
        assert_eq!(status, 200, "{body}");
        assert!(etag.is_some());
        assert_eq!(
            cb.get(&path, &secret),
            (status, etag, body.clone()),
            "{path}"
        );
        if g["displayName"] == "Everyone" {
            let group: Value = serde_json::from_str(&body).unwrap();
            assert_eq!(group["members"].as_array().unwrap().len(), USERS);
        }
    }

    // The identity provider's credentials and the administrator's password
    // work on the copy (and on PostgreSQL).
    let p = Server::start(pg.url());
    for server in [&b, &p] {
        assert_eq!(
            server
                .http("GET", "/scim/v2/Users?count=1", Some(&secret), None)
                .0,
            200
        );
        assert_eq!(
            server
                .http("GET", "/scim/v2/Users?count=1", Some(&access_token), None)
                .0,
            200
        );
        let (status, _, body) = raw(
            server,
            "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
            r#"{"username":"root","password":"a long enough passphrase"}"#,
        );
        assert_eq!(status, 200, "{body}");
    }
}

#[test]
fn a_copy_that_postgres_refuses_leaves_nothing_behind() {
    // PostgreSQL-only; skipped on purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(pg) = TestDb::postgres() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let source = format!("sqlite://{}", dir.path().join("source.db").display());
    let store = open(&source);
    // SQLite stores a NUL in text; PostgreSQL refuses it (STACK.md). The
    // password hash is the one column the store takes as given.
    scim_store::testing::enable_sync(&store, scim_store::OrgId::DEFAULT);
    for (name, hash) in [("a", "$argon2id$a"), ("b", "$argon2id$b\u{0}x")] {
        let attrs = json!({"userName": name});
        let attrs = attrs.as_object().unwrap().clone();
        create_user_with_password(&store, scim_store::OrgId::DEFAULT, attrs, hash)
            .wait()
            .unwrap();
    }
    drop(store);
    let empty = scim_store::copy::table_checksums(pg.url()).unwrap();
    let out = copy(&source, pg.url(), false);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("table users"), "{stderr}");
    assert!(stderr.contains("0x00"), "{stderr}");
    // Nothing half-written: the target is as the migrations left it.
    assert_eq!(scim_store::copy::table_checksums(pg.url()).unwrap(), empty);
}
