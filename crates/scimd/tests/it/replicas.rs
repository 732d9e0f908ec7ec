//! Two `scimd serve` processes on one PostgreSQL database, as a scaled-out
//! deployment runs them behind a load balancer.
//!
//! PostgreSQL is how scimd scales out, so this test is PostgreSQL-only by
//! nature, and fails without `TEST_DATABASE_URL` (unless
//! `SCIMD_TEST_SQLITE_ONLY=1` opts out of PostgreSQL on purpose). It
//! proves what holds across replicas:
//! - an Entra-style initial cycle split across both, with concurrent group
//!   member PATCHes, and PATCHes of the same users, from both, loses no
//!   write and no member;
//! - the background purge runs on both at once without errors or double
//!   work (and so do two `scimd purge`);
//! - a token revoked through one is refused by the other on its next
//!   request when the other runs with `auth.token_cache_ttl_secs = 0` (the
//!   cache defeated; a positive TTL bounds it, `scim_server::auth`);
//! - disabling synchronization through one is obeyed by the other on its
//!   very next request, reads and writes alike (the gate is read from the
//!   database on every request, in the statement or transaction that
//!   serves it: there is no cache to expire).

use std::collections::{BTreeMap, BTreeSet};
use std::process::Stdio;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use scim_store::testing::{TableLock, TestDb};
use serde_json::{json, Value};

use super::{
    create_token, enable_sync, log_lines, raw, run, scimd, set_retention, soft_delete_new_users,
    soft_deleted_users, Server,
};

/// Users of the Entra cycle; user `i` is created through replica `i % 2`.
const USERS: usize = 200;
/// Groups of the Entra cycle.
const GROUPS: usize = 10;
/// Members added to each group, in batches of [`BATCH`] (Entra's size).
const MEMBERS: usize = 60;
const BATCH: usize = 10;
/// Of each batch, the members the same client removes again afterwards.
const REMOVED: usize = 2;
/// Client threads of the cycle; thread `w` talks to replica `w % 2`.
const CLIENTS: usize = 4;
/// Users soft-deleted before the replicas start (purged at their start),
/// and before the two `scimd purge` runs: more than one batch of
/// `scimd::PURGE_BATCH`, so that each of two concurrent purges finds work.
const EXPIRED_AT_START: usize = 1000;
const EXPIRED_FOR_CLI: usize = 800;
/// How long to wait for a replica's log line: generous, for a busy machine.
const LOG_DEADLINE: Duration = Duration::from_secs(60);
const ADMIN_PASSWORD: &str = "a long enough passphrase";

/// A replica's stderr, one JSON log line at a time
/// (`SCIMD__LOG__FORMAT=json`), read on a thread of its own so that the
/// pipe never fills, and kept for the checks at the end.
struct Log {
    name: &'static str,
    lines: mpsc::Receiver<String>,
    seen: Vec<Value>,
}

impl Log {
    fn of(name: &'static str, server: &mut Server) -> Log {
        let lines = log_lines(server);
        Log {
            name,
            lines,
            seen: Vec::new(),
        }
    }

    fn keep(&mut self, line: String) -> Value {
        // A line that is not JSON (a panic message) is kept as a string,
        // which the final check refuses.
        let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
        self.seen.push(value.clone());
        value
    }

    /// Reads lines until one has the `message`, and returns it.
    fn wait_for(&mut self, message: &str) -> Value {
        let deadline = Instant::now() + LOG_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let value = self.keep(line);
                    if value["message"] == message {
                        return value;
                    }
                }
                Err(e) => panic!(
                    "replica {}: no {message:?} logged ({e}); its log so far: {:#?}",
                    self.name, self.seen
                ),
            }
        }
    }

    /// Reads the rest, until the process has exited and closed stderr.
    fn finish(&mut self) -> &[Value] {
        let deadline = Instant::now() + LOG_DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.keep(line);
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => return &self.seen,
                Err(e) => panic!("replica {}: stderr still open ({e})", self.name),
            }
        }
    }
}

/// A SCIM request; any 5xx fails the test at once.
fn scim(
    server: &Server,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let body = body.map(|b| b.to_string());
    let (status, text) = server.http(method, path, Some(token), body.as_deref());
    assert!(status < 500, "{method} {path} answered {status}: {text}");
    let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, value)
}

/// The users of group `g`, as indexes: [`MEMBERS`] consecutive users, so
/// that neighbouring groups share members.
fn members_of(g: usize) -> Vec<usize> {
    (0..MEMBERS).map(|k| (g * 20 + k) % USERS).collect()
}

/// The members of group `g` after the cycle: each batch's first
/// [`REMOVED`] are removed again.
fn final_members_of(g: usize) -> BTreeSet<usize> {
    members_of(g)
        .chunks(BATCH)
        .flat_map(|batch| batch.iter().skip(REMOVED).copied())
        .collect()
}

fn user_name(i: usize) -> String {
    format!("entra{i:03}@example.com")
}

/// Entra's initial cycle for users: the `userName eq` lookup, then the
/// create; returns the users' ids by index.
fn create_users(replicas: [&Server; 2], token: &str) -> Vec<String> {
    let mut ids = vec![String::new(); USERS];
    std::thread::scope(|s| {
        let clients: Vec<_> = (0..CLIENTS)
            .map(|w| {
                let server = replicas[w % 2];
                s.spawn(move || {
                    let mut made = Vec::new();
                    for i in (w..USERS).step_by(CLIENTS) {
                        let name = user_name(i);
                        let (status, found) = scim(
                            server,
                            token,
                            "GET",
                            &format!("/scim/v2/Users?filter=userName%20eq%20%22{name}%22"),
                            None,
                        );
                        assert_eq!((status, &found["totalResults"]), (200, &json!(0)));
                        let (status, created) = scim(
                            server,
                            token,
                            "POST",
                            "/scim/v2/Users",
                            Some(json!({
                                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                                "externalId": format!("ext-{i}"),
                                "userName": name,
                                "active": true,
                                "displayName": format!("User {i}"),
                                "title": "Engineer",
                                "emails": [{"primary": true, "type": "work", "value": name}],
                                "name": {"givenName": "User", "familyName": format!("{i}")},
                            })),
                        );
                        assert_eq!(status, 201, "{created}");
                        made.push((i, created["id"].as_str().unwrap().to_owned()));
                    }
                    made
                })
            })
            .collect();
        for client in clients {
            for (i, id) in client.join().unwrap() {
                ids[i] = id;
            }
        }
    });
    ids
}

/// Entra's initial cycle for groups: the `displayName eq` lookup and the
/// create (alternating replicas), then the member PATCHes in batches of
/// [`BATCH`] from every client at once, each group's batches spread over
/// all clients (so both replicas write the same group at the same time),
/// each batch followed by the removal of its first [`REMOVED`] members.
/// Returns the groups' ids by index.
fn create_groups(replicas: [&Server; 2], token: &str, users: &[String]) -> Vec<String> {
    let groups: Vec<String> = (0..GROUPS)
        .map(|g| {
            let server = replicas[g % 2];
            let (status, found) = scim(
                server,
                token,
                "GET",
                &format!("/scim/v2/Groups?excludedAttributes=members&filter=displayName%20eq%20%22Group%20{g}%22"),
                None,
            );
            assert_eq!((status, &found["totalResults"]), (200, &json!(0)));
            let (status, created) = scim(
                server,
                token,
                "POST",
                "/scim/v2/Groups",
                Some(json!({
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "externalId": format!("gext-{g}"),
                    "displayName": format!("Group {g}"),
                    "members": [],
                })),
            );
            assert_eq!(status, 201, "{created}");
            created["id"].as_str().unwrap().to_owned()
        })
        .collect();
    // Task k (group k / batches, batch k % batches) goes to client k % CLIENTS.
    let batches = MEMBERS / BATCH;
    let patch = |op: &str, members: &[usize]| {
        let value: Vec<Value> = members
            .iter()
            .map(|&i| json!({"value": users[i]}))
            .collect();
        json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [{"op": op, "path": "members", "value": value}],
        })
    };
    std::thread::scope(|s| {
        for w in 0..CLIENTS {
            let (server, groups, patch) = (replicas[w % 2], &groups, &patch);
            s.spawn(move || {
                for k in (w..GROUPS * batches).step_by(CLIENTS) {
                    let (g, b) = (k / batches, k % batches);
                    let members = members_of(g);
                    let batch = &members[b * BATCH..(b + 1) * BATCH];
                    let path = format!("/scim/v2/Groups/{}", groups[g]);
                    for body in [patch("Add", batch), patch("Remove", &batch[..REMOVED])] {
                        let (status, answer) = scim(server, token, "PATCH", &path, Some(body));
                        assert!(status == 204 || status == 200, "{status}: {answer}");
                    }
                }
            });
        }
    });
    groups
}

/// Entra's updates of the users: replica A replaces every user's `title`
/// while replica B replaces every user's `displayName`, both in the same
/// order, so that the two replicas edit the same user at the same time;
/// neither edit may be lost.
fn update_users(replicas: [&Server; 2], token: &str, users: &[String]) {
    std::thread::scope(|s| {
        for (server, attr, value) in [
            (replicas[0], "title", "Title"),
            (replicas[1], "displayName", "Display"),
        ] {
            s.spawn(move || {
                for (i, id) in users.iter().enumerate() {
                    let body = json!({
                        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                        "Operations": [{"op": "Replace", "path": attr, "value": format!("{value} {i}")}],
                    });
                    let path = format!("/scim/v2/Users/{id}");
                    let (status, answer) = scim(server, token, "PATCH", &path, Some(body));
                    assert!(status == 200 || status == 204, "{status}: {answer}");
                }
            });
        }
    });
}

/// Reads every user and group back through `server`: each one is there,
/// with both replicas' updates, and exactly the members (and, on the
/// users, the groups) expected.
fn check_cycle(server: &Server, token: &str, users: &[String], groups: &[String]) {
    let (_, list) = scim(server, token, "GET", "/scim/v2/Users?count=1", None);
    // The users of the cycle and the one live user of the purge's set-up.
    assert_eq!(list["totalResults"], json!(USERS + 1));
    let (_, list) = scim(server, token, "GET", "/scim/v2/Groups?count=1", None);
    assert_eq!(list["totalResults"], json!(GROUPS));
    let index: BTreeMap<&str, usize> = users
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut groups_of: Vec<BTreeSet<usize>> = vec![BTreeSet::new(); USERS];
    for (g, id) in groups.iter().enumerate() {
        let (status, group) = scim(server, token, "GET", &format!("/scim/v2/Groups/{id}"), None);
        assert_eq!(status, 200, "{group}");
        let members: BTreeSet<usize> = group["members"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|m| index[m["value"].as_str().unwrap()])
            .collect();
        assert_eq!(members, final_members_of(g), "members of Group {g}");
        for i in members {
            groups_of[i].insert(g);
        }
    }
    let group_index: BTreeMap<&str, usize> = groups
        .iter()
        .enumerate()
        .map(|(g, id)| (id.as_str(), g))
        .collect();
    for (i, id) in users.iter().enumerate() {
        let (status, user) = scim(server, token, "GET", &format!("/scim/v2/Users/{id}"), None);
        assert_eq!(status, 200, "{user}");
        assert_eq!(user["userName"], json!(user_name(i)));
        assert_eq!(user["title"], json!(format!("Title {i}")), "{user}");
        assert_eq!(user["displayName"], json!(format!("Display {i}")), "{user}");
        let found: BTreeSet<usize> = user["groups"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|g| group_index[g["value"].as_str().unwrap()])
            .collect();
        assert_eq!(found, groups_of[i], "groups of user {i}");
    }
}

/// Signs in as the administrator and mints an admin API token.
fn admin_token(server: &Server) -> String {
    let (status, headers, body) = raw(
        server,
        "POST /admin/api/v1/session HTTP/1.1\r\nContent-Type: application/json\r\n",
        &json!({"username": "root", "password": ADMIN_PASSWORD}).to_string(),
    );
    assert_eq!(status, 200, "{body}");
    let cookie = headers
        .lines()
        .find_map(|l| l.strip_prefix("set-cookie: "))
        .and_then(|c| c.split(';').next())
        .unwrap()
        .to_owned();
    let csrf = serde_json::from_str::<Value>(&body).unwrap()["csrf_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = raw(
        server,
        &format!("POST /admin/api/v1/admin-tokens HTTP/1.1\r\nCookie: {cookie}\r\nX-CSRF-Token: {csrf}\r\nContent-Type: application/json\r\n"),
        r#"{"name":"replicas"}"#,
    );
    assert_eq!(status, 201, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Releases `lock` once `n` connections wait for it: the processes
/// started behind it have all reached their write, and now write at the
/// same moment. PostgreSQL gives no event when a lock wait starts, so this
/// asks `pg_locks`; each question is a round trip, which paces the loop.
fn release_when_waiting(lock: TableLock, n: i64) {
    let deadline = Instant::now() + LOG_DEADLINE;
    while lock.waiting() < n {
        assert!(Instant::now() < deadline, "{n} writers never queued");
        std::thread::yield_now();
    }
    lock.release();
}

/// Two `scimd purge` at once (lined up behind a lock on `users`); returns
/// what each printed it purged.
fn purge_twice_at_once(db: &TestDb) -> [usize; 2] {
    let lock = db.lock_table("users");
    let children = [0, 1].map(|_| {
        scimd(db.url())
            .arg("purge")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap()
    });
    release_when_waiting(lock, 2);
    children.map(|child| {
        let out = child.wait_with_output().unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success() && out.stderr.is_empty(),
            "scimd purge: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
            .strip_prefix("purged ")
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("scimd purge printed {stdout:?}"))
    })
}

#[test]
fn two_replicas_on_one_postgresql_database() {
    let started = Instant::now();
    // PostgreSQL-only; skipped on purpose under SCIMD_TEST_SQLITE_ONLY=1.
    let Some(db) = TestDb::postgres() else {
        return;
    };
    let url = db.url();
    let (_, token) = create_token(url, "Entra ID");
    let (revocable_id, revocable) = create_token(url, "to revoke");
    let dir = tempfile::tempdir().unwrap();
    let pw = dir.path().join("pw");
    std::fs::write(&pw, ADMIN_PASSWORD).unwrap();
    let out = run(scimd(url)
        .args(["admin", "create", "--username", "root", "--password-file"])
        .arg(&pw));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    enable_sync(url);
    // Deletion policy soft, retention 0 days: every soft-deleted user is
    // expired, and the replicas purge them at their start.
    let store = soft_deleted_users(url, EXPIRED_AT_START);
    set_retention(&store, 0);

    // Both replicas, their startup purges lined up behind a lock on
    // `users` so that they purge at the same moment. A keeps verified
    // tokens for 5 s (the default); B asks the database on every request.
    let lock = db.lock_table("users");
    let env = |ttl| {
        [
            ("SCIMD__LOG__FORMAT", "json"),
            ("SCIMD__LOG__LEVEL", "warn,scimd=info"),
            ("SCIMD__MAINTENANCE__PURGE_INTERVAL_SECS", "3600"),
            ("SCIMD__AUTH__TOKEN_CACHE_TTL_SECS", ttl),
        ]
    };
    let mut a = Server::spawn(url, &env("5"));
    let mut b = Server::spawn(url, &env("0"));
    let mut logs = [Log::of("A", &mut a), Log::of("B", &mut b)];
    for log in &mut logs {
        log.wait_for("scimd listening");
    }
    release_when_waiting(lock, 2);

    // The background purge: each replica's first round, at its start.
    let purged: Vec<u64> = logs
        .iter_mut()
        .map(|log| {
            log.wait_for("purged soft-deleted users")["purged"]
                .as_u64()
                .unwrap()
        })
        .collect();
    eprintln!(
        "startup purge: A purged {}, B purged {}",
        purged[0], purged[1]
    );
    // Each user purged once, by one of them; and both took a share: a
    // batch skips the users the other's batch holds (SKIP LOCKED) rather
    // than waiting for them and then finding them gone.
    assert_eq!(purged.iter().sum::<u64>(), EXPIRED_AT_START as u64);
    assert!(purged.iter().all(|&n| n > 0), "{purged:?}");
    assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 0);
    assert_eq!(store.read(scim_store::count_users).unwrap(), 1);

    // The Entra cycle, split across both replicas.
    eprintln!("set-up and startup purge: {:?}", started.elapsed());
    let cycle = Instant::now();
    let users = create_users([&a, &b], &token);
    let groups = create_groups([&a, &b], &token, &users);
    update_users([&a, &b], &token, &users);
    eprintln!("Entra cycle: {:?}", cycle.elapsed());
    check_cycle(&a, &token, &users, &groups);
    check_cycle(&b, &token, &users, &groups);
    eprintln!("Entra cycle and read-back: {:?}", cycle.elapsed());

    // Two `scimd purge` at once.
    soft_delete_new_users(&store, "expired", EXPIRED_FOR_CLI);
    let purged = purge_twice_at_once(&db);
    eprintln!("scimd purge ×2: {purged:?}");
    assert_eq!(purged.iter().sum::<usize>(), EXPIRED_FOR_CLI);
    assert!(purged.iter().all(|&n| n > 0), "{purged:?}");
    assert_eq!(store.read(scim_store::count_deleted_users).unwrap(), 0);

    // A token revoked through A is refused by B on its next request.
    let admin = admin_token(&a);
    for server in [&a, &b] {
        let (status, _) = scim(server, &revocable, "GET", "/scim/v2/Users?count=1", None);
        assert_eq!(status, 200);
    }
    let (status, _, body) = raw(
        &a,
        &format!("DELETE /admin/api/v1/scim-tokens/{revocable_id} HTTP/1.1\r\nAuthorization: Bearer {admin}\r\n"),
        "",
    );
    assert_eq!(status, 204, "{body}");
    let (status, _) = scim(&b, &revocable, "GET", "/scim/v2/Users?count=1", None);
    assert_eq!(status, 401);
    let new_user = json!({"userName": "after-revocation@example.com"});
    let (status, _) = scim(
        &b,
        &revocable,
        "POST",
        "/scim/v2/Users",
        Some(new_user.clone()),
    );
    assert_eq!(status, 401);
    let (status, _) = scim(&b, &token, "GET", "/scim/v2/Users?count=1", None);
    assert_eq!(status, 200, "the other token still works");

    // Synchronization disabled through A is obeyed by B on its very next
    // request, reads and writes alike, and by A.
    let (status, _, body) = raw(
        &a,
        &format!("POST /admin/api/v1/sync/disable HTTP/1.1\r\nAuthorization: Bearer {admin}\r\n"),
        "",
    );
    assert_eq!(status, 200, "{body}");
    let member = json!({
        "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
        "Operations": [{"op": "Add", "path": "members", "value": [{"value": users[0]}]}],
    });
    let requests = [
        ("POST", "/scim/v2/Users".to_owned(), Some(new_user)),
        (
            "PATCH",
            format!("/scim/v2/Groups/{}", groups[GROUPS - 1]),
            Some(member),
        ),
        (
            "PATCH",
            format!("/scim/v2/Users/{}", users[0]),
            Some(json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                "Operations": [{"op": "Replace", "path": "title", "value": "Disabled"}],
            })),
        ),
        ("GET", format!("/scim/v2/Users/{}", users[0]), None),
        (
            "GET",
            format!(
                "/scim/v2/Users?filter=userName%20eq%20%22{}%22",
                user_name(0)
            ),
            None,
        ),
        ("GET", format!("/scim/v2/Groups/{}", groups[0]), None),
        ("GET", "/scim/v2/ServiceProviderConfig".to_owned(), None),
    ];
    for server in [&b, &a] {
        for (method, path, body) in &requests {
            let (status, answer) = scim(server, &token, method, path, body.clone());
            assert_eq!(status, 403, "{method} {path}: {answer}");
        }
    }
    // Nothing was written.
    assert_eq!(
        store.read(scim_store::count_users).unwrap(),
        USERS as i64 + 1
    );
    let user = store
        .read(|c| scim_store::find_user(c, scim_store::OrgId::DEFAULT, &users[0]))
        .unwrap()
        .unwrap();
    assert_eq!(user.attrs["title"], "Title 0");
    let members = store
        .read(|c| scim_store::list_group_members(c, &groups[GROUPS - 1]))
        .unwrap();
    assert_eq!(members.len(), final_members_of(GROUPS - 1).len());

    // Both stop cleanly, and neither logged a warning, an error or a 5xx.
    assert!(a.terminate().success());
    assert!(b.terminate().success());
    for log in &mut logs {
        let name = log.name;
        for line in log.finish() {
            let level = line["level"].as_str().unwrap_or("not JSON");
            assert!(
                level == "INFO" || level == "DEBUG",
                "replica {name} logged {line}"
            );
            assert!(
                line["status"].as_u64().is_none_or(|s| s < 500),
                "replica {name} answered {line}"
            );
        }
    }
    eprintln!("two replicas: {:?} in all", started.elapsed());
}
