//! The Groups load tool of `scripts/bench-groups.sh`: drives a running
//! scimd through the SCIM Groups API the way Entra ID provisions groups,
//! and prints one JSON object per measurement on stdout (progress goes to
//! stderr). See docs/BENCHMARKS-GROUPS.md for the method.
//!
//! It talks HTTP/1.1 with keep-alive, one connection per worker thread
//! (`load/mod.rs`, shared with `entra_cycle.rs`).
//!
//! Usage (all flags but `--base` and `--token`/`BENCH_TOKEN` are
//! optional; the defaults are shown):
//!
//! ```text
//! groups_bench --base http://127.0.0.1:8080 --token scimd_… --pid 1234 \
//!   --backend sqlite --users 100000 --pairs 3000 --serial-pairs 500 \
//!   --conns 8 --user-conns 16 --groups 1000 --group-size 100 --batch 10 \
//!   --fill-batch 1000 --get-reps 5 --excluded-reps 200 --user-body minimal
//! ```
//!
//! Scenario, in order:
//! 1. `POST /Users`: `users + pairs` users with `user-conns` connections
//!    (`--user-body minimal`: userName and displayName only, which loads
//!    faster; `entra`: Entra's create body as in bench/post_users.lua).
//! 2. A group of 10 members (one POST with the members inline) and a group
//!    filled to `users` members through Entra PATCH adds of `fill-batch`
//!    members, on one connection.
//! 3. Membership PATCH on each of the two groups, first with `conns`
//!    connections (`pairs` pairs), then with one (`serial-pairs`): every
//!    work item is an Entra `Add` of one user followed, on the same
//!    connection, by an Entra `Remove` of the same user, so each group keeps
//!    its size (10 to 10 + conns, and `users` to `users` + conns) while add
//!    and remove latencies are recorded separately. The runs alternate
//!    small, big, big, small (half the pairs each) so that drift in the
//!    machine's load hits both groups alike.
//! 4. `GET /Groups/{id}` of the big group (latency, size, scimd's VmHWM and
//!    VmRSS before and after), and with `excludedAttributes=members`.
//! 5. Provisioning: `groups` POST /Groups, then `groups × group-size /
//!    batch` PATCH adds of `batch` members each, with `conns` connections.
//!
//! Consistency checks (group sizes after the pairs, a sample of the
//! provisioned groups) are printed as `check` lines; they never abort.

mod load;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

use load::{
    add_body, id_of, memory, run_phase, stats, timed, Conn, Flags, Series, Target, PATCH_OP,
};

/// Command-line settings.
#[derive(Debug, Clone)]
struct Args {
    base: String,
    token: String,
    pid: Option<u32>,
    backend: String,
    users: usize,
    pairs: usize,
    serial_pairs: usize,
    conns: usize,
    user_conns: usize,
    groups: usize,
    group_size: usize,
    batch: usize,
    fill_batch: usize,
    get_reps: usize,
    excluded_reps: usize,
    tag: String,
    entra_users: bool,
}

impl Args {
    fn parse() -> Result<Args> {
        let flags = Flags::parse()?;
        let num = |name: &str, default: usize| flags.num(name, default);
        let common = flags.common()?;
        let args = Args {
            base: common.base,
            token: common.token,
            pid: common.pid,
            backend: common.backend,
            users: num("users", 100_000)?,
            pairs: num("pairs", 3_000)?,
            serial_pairs: num("serial-pairs", 500)?,
            conns: num("conns", 8)?,
            user_conns: num("user-conns", 16)?,
            groups: num("groups", 1_000)?,
            group_size: num("group-size", 100)?,
            batch: num("batch", 10)?,
            fill_batch: num("fill-batch", 1_000)?,
            get_reps: num("get-reps", 5)?,
            excluded_reps: num("excluded-reps", 200)?,
            entra_users: match flags.get("user-body") {
                None | Some("minimal") => false,
                Some("entra") => true,
                Some(other) => bail!("--user-body is minimal or entra, got {other:?}"),
            },
            tag: common.tag,
        };
        if args.users < 10 || args.conns == 0 || args.user_conns == 0 || args.batch == 0 {
            bail!("--users must be at least 10, and --conns, --user-conns, --batch at least 1");
        }
        if !args.group_size.is_multiple_of(args.batch) || args.groups * args.group_size > args.users
        {
            bail!("--group-size must be a multiple of --batch, and groups × group-size ≤ users");
        }
        if args.fill_batch == 0 || args.get_reps == 0 || args.excluded_reps == 0 {
            bail!("--fill-batch, --get-reps and --excluded-reps must be at least 1");
        }
        Ok(args)
    }
}

/// Entra's membership remove body.
fn remove_body(ids: &[&str]) -> Vec<u8> {
    let value: Vec<Value> = ids.iter().map(|id| json!({"value": id})).collect();
    serde_json::to_vec(&json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Remove", "path": "members", "value": value}],
    }))
    .unwrap_or_default()
}

/// One measurement, printed as a JSON line for bench-groups.sh.
fn emit(args: &Args, name: &str, fields: Value) {
    let mut obj = json!({"backend": args.backend, "name": name});
    if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
        o.extend(f);
    }
    println!("{obj}");
}

/// Records a consistency check (printed as a row, never fatal: a server
/// that loses writes is a finding, not a broken benchmark).
fn check(args: &Args, ok: bool, detail: String) {
    if !ok {
        eprintln!("groups_bench: CHECK FAILED: {detail}");
    }
    emit(args, "check", json!({"ok": ok, "detail": detail}));
}

/// Number of `members` in a group document.
fn member_count(body: &[u8]) -> Result<usize> {
    let doc: Value = serde_json::from_slice(body).context("group body is not JSON")?;
    Ok(doc
        .get("members")
        .and_then(Value::as_array)
        .map_or(0, Vec::len))
}

/// Runs `pairs` add+remove pairs with `conns` connections on the small
/// and on the big group, alternating small, big, big, small (half the
/// pairs each) so that drift in the machine's load hits both alike, after
/// a short warm-up on each; emits the add and remove figures per group.
fn measure_pairs(
    args: &Args,
    target: &Target,
    conns: usize,
    pairs: usize,
    small: &str,
    big: &str,
    spare: &[&str],
) {
    let run = |group: &str, range: std::ops::Range<usize>| {
        let offset = range.start;
        run_phase(target, conns, range.len(), |c, i, rec| {
            let user = spare[offset + i];
            let path = format!("/Groups/{group}");
            timed(c, &mut rec.a, "PATCH", &path, Some(&add_body(&[user])), 204);
            timed(
                c,
                &mut rec.b,
                "PATCH",
                &path,
                Some(&remove_body(&[user])),
                204,
            );
        })
    };
    let warm = (conns * 20).min(spare.len());
    run(small, 0..warm);
    run(big, 0..warm);
    let half = pairs / 2;
    let mut measured: HashMap<&str, (Series, Series, Duration)> = HashMap::new();
    for (label, group, range) in [
        ("small", small, 0..half),
        ("big", big, 0..half),
        ("big", big, half..pairs),
        ("small", small, half..pairs),
    ] {
        log(&format!(
            "[{}] PATCH add+remove pairs on the {label} group ({} pairs, {conns} connections)",
            args.backend,
            range.len(),
        ));
        let phase = run(group, range);
        let entry = measured
            .entry(label)
            .or_insert_with(|| (Series::default(), Series::default(), Duration::ZERO));
        entry.0.merge(phase.a);
        entry.1.merge(phase.b);
        entry.2 += phase.elapsed;
    }
    for (label, size) in [("small", 10), ("big", args.users)] {
        let Some((add, remove, elapsed)) = measured.get(label) else {
            continue;
        };
        let pair_rps =
            (add.lat_us.len() + remove.lat_us.len()) as f64 / elapsed.as_secs_f64().max(1e-9);
        for (op, series) in [("add", add), ("remove", remove)] {
            let mut s = stats(series, *elapsed);
            if let Value::Object(o) = &mut s {
                o.insert("group_size".into(), json!(size));
                o.insert("conns".into(), json!(conns));
                o.insert("pair_rps".into(), json!(pair_rps));
            }
            emit(args, &format!("PATCH {op} 1 member"), s);
        }
    }
}

fn log(msg: &str) {
    eprintln!("==> {msg}");
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    let target = Target::new(&args.base, &args.token)?;
    let mut conn = Conn::new(&target);

    // 1. Users: `users` for the groups, plus `pairs` that are in neither
    // measured group, for the add/remove pairs.
    let total_users = args.users + args.pairs;
    log(&format!(
        "[{}] creating {total_users} users ({} connections)",
        args.backend, args.user_conns
    ));
    let tag = &args.tag;
    let phase = run_phase(&target, args.user_conns, total_users, |c, i, rec| {
        let name = format!("gb-{tag}-{i}");
        let body = if args.entra_users {
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "externalId": format!("ext-{name}"),
                "active": true,
                "name": {"givenName": "Bench", "familyName": format!("User {i}")},
                "displayName": format!("Bench User {i}"),
                "emails": [{"value": format!("{name}@example.com"), "type": "work", "primary": true}],
            })
        } else {
            // Members only need to exist and have a display name; fewer
            // attributes make the 100,000 creates faster.
            json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                "userName": name,
                "displayName": format!("Bench User {i}"),
            })
        };
        let body = serde_json::to_vec(&body).unwrap_or_default();
        if let Some(resp) = timed(c, &mut rec.a, "POST", "/Users", Some(&body), 201) {
            match id_of(&resp) {
                Some(id) => rec.ids.push((i, id)),
                None => rec.a.fail("no id".into()),
            }
        }
    });
    emit(&args, "POST /Users (load)", stats(&phase.a, phase.elapsed));
    let users: Vec<String> = phase.ids.into_iter().flatten().collect();
    if users.len() != total_users {
        bail!(
            "only {} of {total_users} users were created ({} failed requests)",
            users.len(),
            phase.a.errors
        );
    }
    log(&format!(
        "[{}] {} users in {:.1} s ({:.0}/s)",
        args.backend,
        users.len(),
        phase.elapsed.as_secs_f64(),
        users.len() as f64 / phase.elapsed.as_secs_f64()
    ));
    let (members, spare) = users.split_at(args.users);
    let spare: Vec<&str> = spare.iter().map(String::as_str).collect();

    // 2. The 10-member group and the big group.
    let mut one = Series::default();
    let small_body = serde_json::to_vec(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": format!("gb-{tag}-ten"),
        "members": members[..10].iter().map(|id| json!({"value": id})).collect::<Vec<_>>(),
    }))?;
    let small = timed(
        &mut conn,
        &mut one,
        "POST",
        "/Groups",
        Some(&small_body),
        201,
    )
    .and_then(|b| id_of(&b))
    .ok_or_else(|| anyhow!("could not create the 10-member group"))?;
    let big_body = serde_json::to_vec(&json!({
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
        "displayName": format!("gb-{tag}-big"),
    }))?;
    let big = timed(&mut conn, &mut one, "POST", "/Groups", Some(&big_body), 201)
        .and_then(|b| id_of(&b))
        .ok_or_else(|| anyhow!("could not create the big group"))?;
    log(&format!(
        "[{}] filling group {big} with {} members, {} per PATCH",
        args.backend, args.users, args.fill_batch
    ));
    let mut fill = Series::default();
    let start = Instant::now();
    for chunk in members.chunks(args.fill_batch) {
        let ids: Vec<&str> = chunk.iter().map(String::as_str).collect();
        let body = add_body(&ids);
        timed(
            &mut conn,
            &mut fill,
            "PATCH",
            &format!("/Groups/{big}"),
            Some(&body),
            204,
        );
    }
    let fill_time = start.elapsed();
    emit(
        &args,
        &format!("fill: PATCH add {} members (1 connection)", args.fill_batch),
        stats(&fill, fill_time),
    );
    if fill.errors > 0 {
        check(
            &args,
            false,
            format!("{} of the fill requests failed", fill.errors),
        );
    }

    // 3. Add/remove pairs on each group: first with `conns` connections,
    // then with one connection (no contention on the group row).
    for conns in [args.conns, 1] {
        let pairs = if conns == 1 {
            args.serial_pairs
        } else {
            args.pairs
        };
        if pairs > 0 {
            measure_pairs(&args, &target, conns, pairs, &small, &big, &spare);
        }
    }

    // Both groups must have kept their size (a failed remove leaves its
    // member behind; a failed add followed by a remove does not).
    let mut checks = Series::default();
    let n = timed(
        &mut conn,
        &mut checks,
        "GET",
        &format!("/Groups/{small}?attributes=members.value"),
        None,
        200,
    )
    .map(|b| member_count(&b));
    check(
        &args,
        matches!(n, Some(Ok(10))),
        format!("the 10-member group has {n:?} members after the add/remove pairs (want 10)"),
    );

    // 4. GET of the big group, and scimd's memory around it.
    log(&format!(
        "[{}] GET /Groups/{{id}} of the {}-member group",
        args.backend, args.users
    ));
    let (hwm_before, rss_before) = memory(args.pid);
    let mut get = Series::default();
    let mut size = 0;
    let mut hwm_first = None;
    let start = Instant::now();
    for rep in 0..args.get_reps {
        if let Some(body) = timed(
            &mut conn,
            &mut get,
            "GET",
            &format!("/Groups/{big}"),
            None,
            200,
        ) {
            size = body.len();
            if rep == 0 {
                hwm_first = memory(args.pid).0;
                let n = member_count(&body);
                check(
                    &args,
                    matches!(n, Ok(n) if n == args.users),
                    format!(
                        "GET of the big group returned {n:?} members after the add/remove pairs (want {})",
                        args.users
                    ),
                );
            }
        }
    }
    let get_time = start.elapsed();
    let (hwm_after, rss_after) = memory(args.pid);
    let mut s = stats(&get, get_time);
    if let Value::Object(o) = &mut s {
        o.insert("bytes".into(), json!(size));
        o.insert("members".into(), json!(args.users));
        o.insert("hwm_before_kb".into(), json!(hwm_before));
        o.insert("hwm_first_kb".into(), json!(hwm_first));
        o.insert("hwm_after_kb".into(), json!(hwm_after));
        o.insert("rss_before_kb".into(), json!(rss_before));
        o.insert("rss_after_kb".into(), json!(rss_after));
    }
    emit(&args, "GET /Groups/{id}", s);
    let mut excl = Series::default();
    let mut size = 0;
    let start = Instant::now();
    for _ in 0..args.excluded_reps {
        if let Some(body) = timed(
            &mut conn,
            &mut excl,
            "GET",
            &format!("/Groups/{big}?excludedAttributes=members"),
            None,
            200,
        ) {
            size = body.len();
        }
    }
    let mut s = stats(&excl, start.elapsed());
    if let Value::Object(o) = &mut s {
        o.insert("bytes".into(), json!(size));
    }
    emit(&args, "GET /Groups/{id}?excludedAttributes=members", s);

    // 5. Provisioning as Entra does it: create the groups, then add the
    // members in batches. Item i patches group i % groups, so concurrent
    // requests nearly always touch different groups.
    log(&format!(
        "[{}] provisioning {} groups × {} members, {} per PATCH, {} connections",
        args.backend, args.groups, args.group_size, args.batch, args.conns
    ));
    let create = run_phase(&target, args.conns, args.groups, |c, i, rec| {
        let body = serde_json::to_vec(&json!({
            "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
            "displayName": format!("gb-{tag}-group-{i}"),
            "externalId": format!("ext-gb-{tag}-group-{i}"),
        }))
        .unwrap_or_default();
        if let Some(resp) = timed(c, &mut rec.a, "POST", "/Groups", Some(&body), 201) {
            match id_of(&resp) {
                Some(id) => rec.ids.push((i, id)),
                None => rec.a.fail("no id".into()),
            }
        }
    });
    let groups: Vec<String> = create.ids.into_iter().flatten().collect();
    if groups.len() != args.groups {
        check(
            &args,
            false,
            format!(
                "only {} of {} groups were created",
                groups.len(),
                args.groups
            ),
        );
        return Ok(());
    }
    let per_group = args.group_size / args.batch;
    let patches = args.groups * per_group;
    let add = run_phase(&target, args.conns, patches, |c, i, rec| {
        let g = i % args.groups;
        let b = i / args.groups;
        let first = g * args.group_size + b * args.batch;
        let ids: Vec<&str> = members[first..first + args.batch]
            .iter()
            .map(String::as_str)
            .collect();
        timed(
            c,
            &mut rec.a,
            "PATCH",
            &format!("/Groups/{}", groups[g]),
            Some(&add_body(&ids)),
            204,
        );
    });
    let total = create.elapsed + add.elapsed;
    let mut all = create.a.clone();
    all.merge(add.a.clone());
    let mut s = stats(&all, total);
    if let Value::Object(o) = &mut s {
        o.insert("conns".into(), json!(args.conns));
        o.insert("groups".into(), json!(args.groups));
        o.insert("group_size".into(), json!(args.group_size));
        o.insert("batch".into(), json!(args.batch));
    }
    emit(&args, "provision", s);
    emit(
        &args,
        "provision: POST /Groups",
        stats(&create.a, create.elapsed),
    );
    emit(
        &args,
        &format!("provision: PATCH add {} members", args.batch),
        stats(&add.a, add.elapsed),
    );
    // Spot-check a few of them.
    for g in [0, args.groups / 2, args.groups - 1] {
        let n = timed(
            &mut conn,
            &mut checks,
            "GET",
            &format!("/Groups/{}?attributes=members.value", groups[g]),
            None,
            200,
        )
        .map(|b| member_count(&b));
        check(
            &args,
            matches!(n, Some(Ok(n)) if n == args.group_size),
            format!(
                "provisioned group {g} has {n:?} members (want {})",
                args.group_size
            ),
        );
    }
    log(&format!("[{}] done", args.backend));
    Ok(())
}
