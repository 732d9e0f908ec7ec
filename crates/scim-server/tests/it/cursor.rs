//! Cursor pagination (RFC 9865) on `/Users`, `/Groups` and `.search`.

use std::collections::HashSet;
use std::time::Duration;

use actix_web::http::StatusCode;
use scim_server::ScimConfig;
use scim_store::testing::backends;
use serde_json::{json, Value};

use crate::{assert_scim_error, Res, TestApp};

const SEARCH: &str = "urn:ietf:params:scim:api:messages:2.0:SearchRequest";

fn enc(q: &str) -> String {
    form_urlencoded::byte_serialize(q.as_bytes()).collect()
}

/// `GET path` with `cursor` (and the rest of `query`).
async fn get_page(app: &TestApp, path: &str, query: &str, cursor: &str) -> Res {
    let res = app
        .get(&format!("{path}?{query}&cursor={}", enc(cursor)))
        .await;
    assert_eq!(res.status, StatusCode::OK, "{path}?{query}: {}", res.body);
    res
}

fn names(res: &Res, attr: &str) -> Vec<String> {
    res.body["Resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[attr].as_str().unwrap().to_owned())
        .collect()
}

fn cursor_of<'a>(res: &'a Res, which: &str) -> Option<&'a str> {
    res.body.get(which).map(|c| c.as_str().unwrap())
}

/// Walks forward from the first page, then back from the last, and
/// returns the pages seen forward.
async fn walk(app: &TestApp, path: &str, query: &str, attr: &str) -> Vec<Vec<String>> {
    let mut pages = Vec::new();
    let mut res = get_page(app, path, query, "").await;
    assert!(cursor_of(&res, "previousCursor").is_none(), "{}", res.body);
    assert!(res.body.get("startIndex").is_none(), "{}", res.body);
    loop {
        let page = names(&res, attr);
        assert_eq!(res.body["itemsPerPage"], page.len());
        pages.push(page);
        match cursor_of(&res, "nextCursor") {
            Some(next) => res = get_page(app, path, query, next).await,
            None => break,
        }
    }
    // And back: the same pages in reverse.
    let mut back = vec![names(&res, attr)];
    while let Some(prev) = cursor_of(&res, "previousCursor").map(str::to_owned) {
        res = get_page(app, path, query, &prev).await;
        back.push(names(&res, attr));
    }
    back.reverse();
    assert_eq!(back, pages, "{path}?{query} backward");
    pages
}

async fn create_users(app: &TestApp, names: &[&str]) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, name) in names.iter().enumerate() {
        ids.push(
            app.create_user(json!({"userName": name, "active": i % 2 == 0, "title": if i % 3 == 0 { Value::Null } else { json!(format!("t{}", i % 2)) }}))
                .await,
        );
    }
    ids
}

const NAMES: [&str; 7] = [
    "delta", "alpha", "golf", "bravo", "echo", "foxtrot", "charlie",
];

#[actix_web::test]
async fn cursors_page_through_everything_both_ways() {
    for app in TestApp::all() {
        let backend = app.backend();
        create_users(&app, &NAMES).await;
        // Creation order, in pages of three.
        let pages = walk(&app, "/scim/v2/Users", "count=3", "userName").await;
        assert_eq!(
            pages,
            vec![
                vec!["delta", "alpha", "golf"],
                vec!["bravo", "echo", "foxtrot"],
                vec!["charlie"]
            ],
            "{backend}"
        );
        let res = get_page(&app, "/scim/v2/Users", "count=3", "").await;
        assert_eq!(res.body["totalResults"], 7, "{backend}");
        // A page size that divides the total: the last page has no next.
        let pages = walk(&app, "/scim/v2/Users", "count=7", "userName").await;
        assert_eq!(pages.len(), 1, "{backend}");
        // With a filter and sortBy, descending.
        let query = format!(
            "filter={}&sortBy=userName&sortOrder=descending&count=2",
            enc("userName ne \"echo\"")
        );
        let pages = walk(&app, "/scim/v2/Users", &query, "userName").await;
        assert_eq!(
            pages.concat(),
            vec!["golf", "foxtrot", "delta", "charlie", "bravo", "alpha"],
            "{backend}"
        );
        // Sort keys with missing values (title) and booleans (active):
        // every user once, in the order index paging gives.
        for sort in ["title", "active", "emails.primary", "meta.created"] {
            for order in ["ascending", "descending"] {
                let query = format!("sortBy={sort}&sortOrder={order}");
                let by_index = app.get(&format!("/scim/v2/Users?{query}&count=100")).await;
                let want = names(&by_index, "userName");
                let pages = walk(
                    &app,
                    "/scim/v2/Users",
                    &format!("{query}&count=2"),
                    "userName",
                )
                .await;
                assert_eq!(pages.concat(), want, "{backend} {query}");
            }
        }
        // The count is capped like index paging's, and defaults alike.
        let res = get_page(&app, "/scim/v2/Users", "count=100000", "").await;
        assert_eq!(res.body["itemsPerPage"], 7, "{backend}");
        let res = app.get("/scim/v2/Users?cursor").await;
        assert_eq!(res.body["itemsPerPage"], 7, "{backend}: {}", res.body);
        assert!(res.body.get("nextCursor").is_none(), "{backend}");
        // Index paging is unchanged.
        let res = app.get("/scim/v2/Users?startIndex=3&count=2").await;
        assert_eq!(names(&res, "userName"), vec!["golf", "bravo"], "{backend}");
        assert_eq!(res.body["startIndex"], 3);
        assert!(res.body.get("nextCursor").is_none(), "{backend}");
    }
}

#[actix_web::test]
async fn cursors_on_search_groups_and_the_root() {
    for app in TestApp::all() {
        let backend = app.backend();
        create_users(&app, &NAMES[..3]).await;
        for name in ["Sales", "Ops"] {
            let res = app
                .post("/scim/v2/Groups", json!({"displayName": name}))
                .await;
            assert_eq!(res.status, StatusCode::CREATED);
        }
        // POST /Users/.search with "cursor" in the body.
        let mut body = json!({"schemas": [SEARCH], "cursor": "", "count": 2, "sortBy": "userName"});
        let res = app.post("/scim/v2/Users/.search", body.clone()).await;
        assert_eq!(names(&res, "userName"), vec!["alpha", "delta"], "{backend}");
        body["cursor"] = res.body["nextCursor"].clone();
        let res = app.post("/scim/v2/Users/.search", body.clone()).await;
        assert_eq!(
            names(&res, "userName"),
            vec!["golf"],
            "{backend}: {}",
            res.body
        );
        assert!(res.body.get("nextCursor").is_none());
        // GET /Groups.
        let pages = walk(&app, "/scim/v2/Groups", "count=1", "displayName").await;
        assert_eq!(pages, vec![vec!["Sales"], vec!["Ops"]], "{backend}");
        // POST /Groups/.search.
        let res = app
            .post(
                "/scim/v2/Groups/.search",
                json!({"schemas": [SEARCH], "cursor": "", "count": 5, "filter": "displayName eq Ops"}),
            )
            .await;
        assert_eq!(names(&res, "displayName"), vec!["Ops"], "{backend}");
        assert_eq!(res.body["totalResults"], 1);
        // POST /.search: Users, then Groups, a page spanning both.
        let mut body = json!({"schemas": [SEARCH], "cursor": "", "count": 2, "attributes": ["userName", "displayName"]});
        let mut seen = Vec::new();
        let mut cursors = Vec::new();
        loop {
            let res = app.post("/scim/v2/.search", body.clone()).await;
            assert_eq!(res.status, StatusCode::OK, "{backend}: {}", res.body);
            assert_eq!(res.body["totalResults"], 5);
            for r in res.body["Resources"].as_array().unwrap() {
                let name = r.get("userName").or(r.get("displayName")).unwrap();
                seen.push(name.as_str().unwrap().to_owned());
            }
            cursors.push(res.body.get("previousCursor").cloned());
            match res.body.get("nextCursor") {
                Some(next) => body["cursor"] = next.clone(),
                None => break,
            }
        }
        assert_eq!(
            seen,
            vec!["delta", "alpha", "golf", "Sales", "Ops"],
            "{backend}"
        );
        // Back from the last page (Ops) into the one spanning both types.
        body["cursor"] = cursors.last().unwrap().clone().unwrap();
        let res = app.post("/scim/v2/.search", body.clone()).await;
        assert_eq!(
            res.body["Resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r.get("userName").or(r.get("displayName")).unwrap().clone())
                .collect::<Vec<_>>(),
            vec![json!("golf"), json!("Sales")],
            "{backend}: {}",
            res.body
        );
        // A filter only Users understand: Groups contribute nothing.
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "cursor": "", "filter": "userName sw a"}),
            )
            .await;
        assert_eq!(res.body["totalResults"], 1, "{backend}: {}", res.body);
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "cursor": "", "filter": "shoeSize gt 3"}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidFilter"));
    }
}

/// Inserts and deletes between pages: every user that existed throughout
/// comes exactly once, whatever the sort.
#[actix_web::test]
async fn cursors_are_stable_under_inserts_and_deletes() {
    for app in TestApp::all() {
        let backend = app.backend();
        for query in [
            "count=3",
            "sortBy=userName&count=3",
            "sortBy=title&sortOrder=descending&count=3",
        ] {
            let names: Vec<String> = (0..9).map(|i| format!("{query}-u{i}")).collect();
            let refs: Vec<&str> = names.iter().map(String::as_str).collect();
            let ids = create_users(&app, &refs).await;
            let filter = format!(
                "filter={}&{query}",
                enc(&format!("userName sw \"{query}\""))
            );
            let first = get_page(&app, "/scim/v2/Users", &filter, "").await;
            let mut seen = names_of(&first);
            // Delete one seen and one unseen user, insert before and after
            // the position.
            let seen_id = ids
                .iter()
                .zip(&names)
                .find(|(_, n)| seen.contains(n))
                .unwrap()
                .0;
            let unseen = ids
                .iter()
                .zip(&names)
                .rfind(|(_, n)| !seen.contains(n))
                .unwrap();
            assert_eq!(
                app.delete(&format!("/scim/v2/Users/{seen_id}"))
                    .await
                    .status,
                StatusCode::NO_CONTENT
            );
            assert_eq!(
                app.delete(&format!("/scim/v2/Users/{}", unseen.0))
                    .await
                    .status,
                StatusCode::NO_CONTENT
            );
            let deleted = unseen.1.clone();
            create_users(
                &app,
                &[&format!("{query}-a-new"), &format!("{query}-z-new")],
            )
            .await;
            let mut res = first;
            while let Some(next) = cursor_of(&res, "nextCursor").map(str::to_owned) {
                res = get_page(&app, "/scim/v2/Users", &filter, &next).await;
                seen.extend(names_of(&res));
                // More churn between every page.
                create_users(&app, &[&format!("{query}-m-{}", seen.len())]).await;
            }
            let unique: HashSet<&String> = seen.iter().collect();
            assert_eq!(
                unique.len(),
                seen.len(),
                "{backend} {query}: duplicates in {seen:?}"
            );
            for name in &names {
                if *name != deleted && !seen.contains(name) {
                    panic!("{backend} {query}: {name} was skipped: {seen:?}");
                }
            }
            assert!(
                !seen.contains(&deleted),
                "{backend} {query}: {deleted} was deleted"
            );
        }
    }
}

fn names_of(res: &Res) -> Vec<String> {
    names(res, "userName")
}

#[actix_web::test]
async fn bad_and_expired_cursors_are_refused() {
    for db in backends() {
        let config = ScimConfig::default();
        let clock = config.clock.clone();
        let app = TestApp::with_config(db, config);
        let backend = app.backend();
        create_users(&app, &NAMES).await;
        let res = get_page(&app, "/scim/v2/Users", "count=2", "").await;
        let next = cursor_of(&res, "nextCursor").unwrap().to_owned();
        let mut altered = next.clone().into_bytes();
        let i = altered.len() / 2;
        altered[i] = if altered[i] == b'x' { b'y' } else { b'x' };
        let altered = String::from_utf8(altered).unwrap();
        for (path, cursor) in [
            ("/scim/v2/Users?count=2", "garbage!".to_owned()),
            ("/scim/v2/Users?count=2", "AAAA".to_owned()),
            ("/scim/v2/Users?count=2", altered),
            ("/scim/v2/Users?count=2", next[..next.len() - 5].to_owned()),
            // Another query, another endpoint.
            ("/scim/v2/Users?count=2&sortBy=userName", next.clone()),
            (
                "/scim/v2/Users?count=2&filter=active%20eq%20true",
                next.clone(),
            ),
            ("/scim/v2/Groups?count=2", next.clone()),
        ] {
            let res = app.get(&format!("{path}&cursor={}", enc(&cursor))).await;
            assert_scim_error(&res, 400, Some("invalidCursor"));
            assert!(
                res.body["detail"]
                    .as_str()
                    .unwrap()
                    .contains("empty cursor"),
                "{backend}: {}",
                res.body
            );
        }
        let res = app
            .post(
                "/scim/v2/.search",
                json!({"schemas": [SEARCH], "cursor": next, "count": 2}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidCursor"));
        let res = app.get("/scim/v2/Users?cursor=&count=0").await;
        assert_scim_error(&res, 400, Some("invalidCount"));
        let res = app.get("/scim/v2/Users?cursor=&startIndex=3").await;
        assert_scim_error(&res, 400, Some("invalidValue"));
        let res = app
            .post(
                "/scim/v2/Users/.search",
                json!({"schemas": [SEARCH], "cursor": 5}),
            )
            .await;
        assert_scim_error(&res, 400, Some("invalidValue"));

        // Within cursorTimeout the cursor works; past it, expiredCursor.
        clock.advance(Duration::from_secs(590));
        let res = get_page(&app, "/scim/v2/Users", "count=2", &next).await;
        assert_eq!(names_of(&res), vec!["golf", "bravo"], "{backend}");
        clock.advance(Duration::from_secs(11));
        let res = app
            .get(&format!("/scim/v2/Users?count=2&cursor={next}"))
            .await;
        assert_scim_error(&res, 400, Some("expiredCursor"));
        assert!(
            res.body["detail"].as_str().unwrap().contains("600 seconds"),
            "{}",
            res.body
        );
    }
}

#[actix_web::test]
async fn the_service_provider_config_advertises_cursors() {
    for app in TestApp::all() {
        let res = app.get("/scim/v2/ServiceProviderConfig").await;
        let p = &res.body["pagination"];
        assert_eq!(p["cursor"], true, "{}", res.body);
        assert_eq!(p["index"], true);
        assert_eq!(p["defaultPaginationMethod"], "index");
        assert_eq!(p["cursorTimeout"], 600);
        assert_eq!(p["defaultPageSize"], 100);
        assert_eq!(p["maxPageSize"], 1000);
    }
}

/// `sortBy` a custom extension's number (integer, decimal), boolean or
/// dateTime with cursors: numbers order as numbers (10 after 9), ties and
/// missing values as index paging orders them, both ways, and the walk
/// stays exact while users come and go between pages.
#[actix_web::test]
async fn cursors_sort_by_custom_numbers_booleans_and_date_times() {
    const URN: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    for app in TestApp::all() {
        let backend = app.backend();
        let def = scim_core::extensions::ExtensionDef::from_json(&json!({
            "id": URN,
            "attributes": [
                {"name": "level", "type": "integer"},
                {"name": "score", "type": "decimal"},
                {"name": "flag", "type": "boolean"},
                {"name": "hired", "type": "dateTime"},
                {"name": "ranks", "type": "integer", "multiValued": true}
            ]
        }))
        .unwrap();
        let store = app.db.store();
        store
            .write(|c| scim_store::scim::extensions::create_extension(c, &def, "tests"))
            .unwrap();
        store.invalidate_user_schemas();
        let values = [
            json!({"level": 9, "score": 2.5, "flag": true, "hired": "2020-01-01T00:00:00Z", "ranks": [3, 1]}),
            json!({"level": 10, "score": -1, "flag": false, "hired": "2019-06-01T12:00:00+02:00", "ranks": [20]}),
            json!({"level": 9, "score": 2.25, "hired": "2021-03-04T05:06:07Z"}),
            json!({}),
            json!({"level": -3, "score": 100, "flag": true, "ranks": [2]}),
            json!({"level": 100, "score": 2.5, "flag": false, "hired": "2019-06-01T09:00:00Z"}),
            json!({"level": 9, "score": 0.001}),
        ];
        for (i, ext) in values.iter().enumerate() {
            app.create_user(json!({"userName": format!("n{i}"), URN: ext}))
                .await;
        }
        for attr in ["level", "score", "flag", "hired", "ranks"] {
            for order in ["ascending", "descending"] {
                let query = format!("sortBy={}&sortOrder={order}", enc(&format!("{URN}:{attr}")));
                let by_index = app.get(&format!("/scim/v2/Users?{query}&count=100")).await;
                assert_eq!(by_index.status, StatusCode::OK, "{}", by_index.body);
                let want = names(&by_index, "userName");
                assert_eq!(want.len(), 7);
                let pages = walk(
                    &app,
                    "/scim/v2/Users",
                    &format!("{query}&count=2"),
                    "userName",
                )
                .await;
                assert_eq!(pages.concat(), want, "{backend} {query}");
            }
        }
        // As numbers: -3, 9 (n0, n2, n6 by creation), 10, 100, then none.
        let res = app
            .get(&format!(
                "/scim/v2/Users?sortBy={}&count=100",
                enc(&format!("{URN}:level"))
            ))
            .await;
        assert_eq!(
            names(&res, "userName"),
            ["n4", "n0", "n2", "n6", "n1", "n5", "n3"],
            "{backend}"
        );

        // Churn between pages, on the sort key's own values: a user that
        // existed throughout comes exactly once.
        let query = format!("sortBy={}&count=2", enc(&format!("{URN}:level")));
        let mut res = get_page(&app, "/scim/v2/Users", &query, "").await;
        let mut seen = names(&res, "userName");
        let mut added = 0;
        while let Some(next) = cursor_of(&res, "nextCursor").map(str::to_owned) {
            added += 1;
            app.create_user(json!({"userName": format!("new{added}"), URN: {"level": 9}}))
                .await;
            res = get_page(&app, "/scim/v2/Users", &query, &next).await;
            seen.extend(names(&res, "userName"));
        }
        let unique: HashSet<&String> = seen.iter().collect();
        assert_eq!(
            unique.len(),
            seen.len(),
            "{backend}: duplicates in {seen:?}"
        );
        for i in 0..7 {
            assert!(
                seen.contains(&format!("n{i}")),
                "{backend}: n{i} skipped in {seen:?}"
            );
        }
    }
}
