//! Plays Microsoft Entra ID's initial provisioning cycle against any SCIM
//! 2.0 URL (scimd or another server), for `scripts/bench-entra.sh` and
//! docs/BENCHMARKS.md.
//!
//! Entra's first cycle, as its provisioning service drives it:
//! 1. Users: for each user in scope, the matching lookup
//!    `GET /Users?filter=userName eq "…"` (200, empty), then `POST /Users`
//!    with Entra's create body (201).
//! 2. Groups, after the users: for each group, the lookup
//!    `GET /Groups?filter=displayName eq "…"&excludedAttributes=members`,
//!    then `POST /Groups` without members, then the members as Entra adds
//!    them, `PATCH /Groups/{id}` with one `Add` of `batch` members per
//!    request, one after another.
//!
//! Each connection (`--conns`, Entra-like concurrency) takes the next user
//! (or group) and plays its requests in order on one keep-alive
//! connection. Every status other than the expected one counts as an
//! error. With `--pid`, scimd's resident memory is sampled every 50 ms.
//!
//! Output: one JSON object per measurement on stdout (the script turns
//! them into a table), progress and a summary on stderr.
//!
//! ```text
//! entra_cycle --base http://127.0.0.1:8080 --token scimd_… --pid 1234 \
//!   --backend sqlite --users 100000 --groups 1000 --group-size 100 \
//!   --batch 10 --conns 16
//! ```
//! `--base` may carry a path (`http://host/tenant`); requests go to
//! `{base}/scim/v2/…`. The token may come from `BENCH_TOKEN` instead.

mod load;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde_json::{json, Value};

use load::{add_body, id_of, memory, run_phase, stats, timed, Flags, Series, Target};

/// Command-line settings.
#[derive(Debug, Clone)]
struct Args {
    base: String,
    token: String,
    pid: Option<u32>,
    backend: String,
    users: usize,
    groups: usize,
    group_size: usize,
    batch: usize,
    conns: usize,
    tag: String,
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
            groups: num("groups", 1_000)?,
            group_size: num("group-size", 100)?,
            batch: num("batch", 10)?,
            conns: num("conns", 16)?,
            tag: common.tag,
        };
        if args.users == 0 || args.conns == 0 || args.batch == 0 {
            bail!("--users, --conns and --batch must be at least 1");
        }
        if args.group_size > args.users {
            bail!("--group-size must not exceed --users");
        }
        Ok(args)
    }
}

/// Entra's create body for user `i` (the attributes of its default
/// mapping).
fn user_body(name: &str, i: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "externalId": format!("ext-{name}"),
        "userName": name,
        "active": true,
        "displayName": format!("Cycle User {i}"),
        "title": "Engineer",
        "emails": [{"primary": true, "type": "work", "value": format!("{name}@example.com")}],
        "name": {"formatted": format!("Cycle User {i}"), "familyName": format!("User {i}"), "givenName": "Cycle"},
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {"department": format!("Dept {}", i % 50)},
    }))
    .unwrap_or_default()
}

/// The lookup an Entra cycle sends before it creates `attr eq value`.
fn lookup_path(resource: &str, attr: &str, value: &str, extra: &str) -> String {
    let filter = format!("{attr} eq \"{value}\"");
    let encoded: String = form_encode(&filter);
    format!("/{resource}?filter={encoded}{extra}")
}

/// Percent-encodes a query value (RFC 3986 unreserved characters kept).
fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `totalResults` of a ListResponse.
fn total_results(body: &[u8]) -> Option<u64> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("totalResults")?
        .as_u64()
}

/// Samples scimd's VmRSS (kB) every 50 ms until `stop`, keeping the peak.
struct RssSampler {
    peak_kb: AtomicU64,
    stop: AtomicBool,
}

impl RssSampler {
    fn run(&self, pid: u32) {
        while !self.stop.load(Ordering::Relaxed) {
            if let (_, Some(rss)) = memory(Some(pid)) {
                self.peak_kb.fetch_max(rss, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// One measurement, printed as a JSON line.
fn emit(args: &Args, name: &str, fields: Value) {
    let mut obj = json!({"backend": args.backend, "name": name});
    if let (Some(o), Value::Object(f)) = (obj.as_object_mut(), fields) {
        o.extend(f);
    }
    println!("{obj}");
}

/// Total time spent waiting on the requests of `series`, in seconds.
fn busy_seconds(series: &Series) -> f64 {
    series.lat_us.iter().sum::<u64>() as f64 / 1e6
}

fn main() -> Result<()> {
    let args = Args::parse()?;
    let target = Target::new(&args.base, &args.token)?;
    let sampler = RssSampler {
        peak_kb: AtomicU64::new(0),
        stop: AtomicBool::new(false),
    };
    let rss_start = memory(args.pid).1;
    let tag = &args.tag;

    let (users, groups, elapsed) = std::thread::scope(|s| -> Result<_> {
        if let Some(pid) = args.pid {
            let sampler = &sampler;
            s.spawn(move || sampler.run(pid));
        }
        let start = Instant::now();
        eprintln!(
            "==> [{}] users: {} lookups + creates ({} connections)",
            args.backend, args.users, args.conns
        );
        let users = run_phase(&target, args.conns, args.users, |c, i, rec| {
            let name = format!("cycle-{tag}-{i}");
            let found = timed(
                c,
                &mut rec.a,
                "GET",
                &lookup_path("Users", "userName", &name, ""),
                None,
                200,
            );
            if found.as_deref().and_then(total_results) != Some(0) {
                // Entra would update, not create: a cycle over a fresh
                // directory must find nobody.
                if found.is_some() {
                    rec.a.fail("found".into());
                }
                return;
            }
            if let Some(body) = timed(
                c,
                &mut rec.b,
                "POST",
                "/Users",
                Some(&user_body(&name, i)),
                201,
            ) {
                match id_of(&body) {
                    Some(id) => rec.ids.push((i, id)),
                    None => rec.b.fail("no id".into()),
                }
            }
        });
        let ids: Vec<String> = users.ids.iter().flatten().cloned().collect();
        eprintln!(
            "==> [{}] {} users in {:.1} s; groups: {} × {} members in PATCHes of {}",
            args.backend,
            ids.len(),
            users.elapsed.as_secs_f64(),
            args.groups,
            args.group_size,
            args.batch
        );
        let groups = run_phase(&target, args.conns, args.groups, |c, g, rec| {
            let name = format!("cycle-{tag}-group-{g}");
            let found = timed(
                c,
                &mut rec.a,
                "GET",
                &lookup_path(
                    "Groups",
                    "displayName",
                    &name,
                    "&excludedAttributes=members",
                ),
                None,
                200,
            );
            if found.as_deref().and_then(total_results) != Some(0) {
                if found.is_some() {
                    rec.a.fail("found".into());
                }
                return;
            }
            let body = serde_json::to_vec(&json!({
                "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                "externalId": format!("ext-{name}"),
                "displayName": name,
            }))
            .unwrap_or_default();
            let Some(created) = timed(c, &mut rec.b, "POST", "/Groups", Some(&body), 201) else {
                return;
            };
            let Some(id) = id_of(&created) else {
                rec.b.fail("no id".into());
                return;
            };
            if ids.is_empty() {
                return;
            }
            let first = g * args.group_size;
            let members: Vec<&str> = (first..first + args.group_size)
                .map(|k| ids[k % ids.len()].as_str())
                .collect();
            for chunk in members.chunks(args.batch) {
                timed(
                    c,
                    &mut rec.c,
                    "PATCH",
                    &format!("/Groups/{id}"),
                    Some(&add_body(chunk)),
                    204,
                );
            }
            rec.ids.push((g, id));
        });
        let elapsed = start.elapsed();
        sampler.stop.store(true, Ordering::Relaxed);
        Ok((users, groups, elapsed))
    })?;

    let series = [
        ("GET /Users?filter=userName eq", &users.a, users.elapsed),
        ("POST /Users", &users.b, users.elapsed),
        (
            "GET /Groups?filter=displayName eq",
            &groups.a,
            groups.elapsed,
        ),
        ("POST /Groups", &groups.b, groups.elapsed),
        ("PATCH /Groups members", &groups.c, groups.elapsed),
    ];
    let busy: f64 = series.iter().map(|(_, s, _)| busy_seconds(s)).sum();
    let mut requests = 0;
    let mut errors = 0;
    let mut all = Series::default();
    for (name, s, phase) in &series {
        requests += s.lat_us.len() + s.errors;
        errors += s.errors;
        all.merge((*s).clone());
        let mut fields = stats(s, *phase);
        if let Some(o) = fields.as_object_mut() {
            // Where the time goes: this kind's share of all request time.
            o.insert(
                "share_of_request_time".into(),
                json!(busy_seconds(s) / busy.max(1e-9)),
            );
        }
        emit(&args, name, fields);
    }
    let seconds = elapsed.as_secs_f64();
    let peak_mib = sampler.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0;
    let target_seconds = if args.backend == "postgres" {
        120.0
    } else {
        60.0
    };
    emit(
        &args,
        "cycle",
        json!({
            "users": args.users,
            "groups": args.groups,
            "group_size": args.group_size,
            "conns": args.conns,
            "seconds": seconds,
            "users_seconds": users.elapsed.as_secs_f64(),
            "groups_seconds": groups.elapsed.as_secs_f64(),
            "requests": requests,
            "errors": errors,
            "rps": requests as f64 / seconds.max(1e-9),
            "p99_ms": all.percentile(99.0),
            "rss_start_mib": rss_start.map(|kb| kb as f64 / 1024.0),
            "rss_peak_mib": args.pid.map(|_| peak_mib),
            "target_seconds": target_seconds,
        }),
    );
    eprintln!(
        "==> [{}] cycle: {} users, {} groups × {} in {seconds:.1} s (users {:.1} s, groups {:.1} s); \
         {requests} requests ({:.0}/s), p99 {:.1} ms, {errors} errors, peak RSS {}",
        args.backend,
        args.users,
        args.groups,
        args.group_size,
        users.elapsed.as_secs_f64(),
        groups.elapsed.as_secs_f64(),
        requests as f64 / seconds.max(1e-9),
        all.percentile(99.0),
        args.pid
            .map_or_else(|| "not sampled".to_string(), |_| format!("{peak_mib:.0} MiB")),
    );
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}
