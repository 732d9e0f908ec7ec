//! Times the store's write path without HTTP, on one thread, each call
//! awaited before the next: `N` creates through `Store::queue_insert_user`
//! (the one way in for User creates: on SQLite the create is built on this
//! thread and the writer thread runs it), then `N` title-only updates (the
//! Entra ID PATCH) through `Store::write`, then `N` `userName eq` list
//! queries through `Store::read`. A write's figure is its latency alone,
//! the writer's critical section included (its inverse bounds the
//! single-writer rate). Not a test; see docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo run --release -p scim-store --features testing --example write_path [N]
//! TEST_DATABASE_URL=postgres://… cargo run … # on a throwaway database of that server, for PostgreSQL
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use serde_json::json;

use scim_store::testing::{create_user, enable_sync, TestDb};
use scim_store::{find_user, list_users, update_user, ListQuery, PasswordChange};

fn rate(label: &str, n: usize, elapsed: Duration) {
    println!(
        "{label:<28} {:>9.0}/s  ({:.1} µs each)",
        n as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64() * 1e6 / n as f64
    );
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(5000);
    let db = if std::env::var("TEST_DATABASE_URL").is_ok() {
        TestDb::postgres().expect("TEST_DATABASE_URL")
    } else {
        TestDb::sqlite()
    };
    let store = db.store();
    println!("{} users on {}", n, db.backend());
    enable_sync(store, scim_store::OrgId::DEFAULT);

    let start = Instant::now();
    let mut ids = Vec::with_capacity(n);
    for i in 0..n {
        let attrs = json!({
            "userName": format!("bench-{i}@example.com"),
            "externalId": format!("ext-{i}"),
            "displayName": format!("Bench User {i}"),
            "name": {"givenName": "Bench", "familyName": format!("User{i}")},
            "emails": [{"value": format!("bench-{i}@example.com"), "type": "work", "primary": true}],
            "active": true
        });
        let attrs = attrs.as_object().unwrap().clone();
        let rec = create_user(store, scim_store::OrgId::DEFAULT, attrs)
            .wait()
            .unwrap();
        ids.push(rec.id);
    }
    rate("queue_insert_user", n, start.elapsed());

    let start = Instant::now();
    for (i, id) in ids.iter().enumerate() {
        store
            .write(|c| {
                let current = find_user(c, scim_store::OrgId::DEFAULT, id)?.unwrap();
                let mut attrs = current.attrs.clone();
                attrs.insert("title".into(), json!(format!("title {i}")));
                update_user(
                    c,
                    scim_store::OrgId::DEFAULT,
                    id,
                    current.version,
                    &attrs,
                    PasswordChange::Keep,
                )
            })
            .unwrap();
    }
    rate("find_user + update_user", n, start.elapsed());

    let start = Instant::now();
    for i in 0..n {
        let f = scim_core::filter::parse_filter(&format!("userName eq \"bench-{i}@example.com\""))
            .unwrap();
        let page = store
            .read(|c| {
                list_users(
                    c,
                    scim_store::OrgId::DEFAULT,
                    &ListQuery {
                        filter: Some(&f),
                        sort_by: None,
                        descending: false,
                        start_index: 1,
                        count: 100,
                    },
                )
            })
            .unwrap();
        assert_eq!(page.total, 1);
    }
    rate("list_users userName eq", n, start.elapsed());
}
