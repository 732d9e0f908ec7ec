//! What the load tools in `examples/` share: a minimal HTTP/1.1
//! keep-alive client over `std::net::TcpStream` (one connection per worker
//! thread, so every request's latency is measured exactly, from the write
//! of the request to the last byte of the response, and every request
//! count is exact, which wrk's duration-based runs are not), latency
//! series, phases of work spread over connections, and scimd's memory.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde_json::{json, Value};

/// The PatchOp message schema (RFC 7644 §3.5.2).
pub const PATCH_OP: &str = "urn:ietf:params:scim:api:messages:2.0:PatchOp";
/// How many failed responses are printed in full before going quiet.
const ERRORS_SHOWN: usize = 5;
/// The tool's name, for its messages.
const PROGRAM: &str = env!("CARGO_CRATE_NAME");

/// The `--name value` flags of a load tool's command line.
pub struct Flags(HashMap<String, String>);

/// The flags every load tool takes: where the server is, the token, the
/// server's pid (for its memory), a backend label and a tag that keeps
/// the names of one run apart from another's.
pub struct Common {
    pub base: String,
    pub token: String,
    pub pid: Option<u32>,
    pub backend: String,
    pub tag: String,
}

impl Flags {
    /// Reads `--name value` pairs from the command line.
    pub fn parse() -> Result<Flags> {
        let mut map = HashMap::new();
        let mut it = std::env::args().skip(1);
        while let Some(key) = it.next() {
            let Some(name) = key.strip_prefix("--") else {
                bail!("unexpected argument {key:?}; flags are --name value");
            };
            let value = it
                .next()
                .ok_or_else(|| anyhow!("flag --{name} needs a value"))?;
            map.insert(name.to_string(), value);
        }
        Ok(Flags(map))
    }

    /// Flag `name` as text, if given.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// Flag `name` as a number, `default` when not given.
    pub fn num(&self, name: &str, default: usize) -> Result<usize> {
        match self.get(name) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .with_context(|| format!("--{name} must be a number, got {v:?}")),
        }
    }

    /// `--base`, `--token` (or `BENCH_TOKEN`), `--pid`, `--backend`, `--tag`.
    pub fn common(&self) -> Result<Common> {
        let token = match self.get("token") {
            Some(t) => t.to_string(),
            None => std::env::var("BENCH_TOKEN")
                .map_err(|_| anyhow!("--token (or BENCH_TOKEN) is required"))?,
        };
        Ok(Common {
            base: self
                .get("base")
                .ok_or_else(|| anyhow!("--base http://host:port is required"))?
                .to_string(),
            token,
            pid: match self.get("pid") {
                None => None,
                Some(p) => Some(p.parse().with_context(|| format!("--pid: {p:?}"))?),
            },
            backend: self.get("backend").unwrap_or("-").to_string(),
            tag: self
                .get("tag")
                .map_or_else(|| std::process::id().to_string(), str::to_string),
        })
    }
}

/// Where the server is: `host:port` and the SCIM base path.
#[derive(Debug, Clone)]
pub struct Target {
    pub addr: String,
    pub prefix: String,
    pub token: String,
}

impl Target {
    pub fn new(base: &str, token: &str) -> Result<Target> {
        let rest = base
            .strip_prefix("http://")
            .ok_or_else(|| anyhow!("--base must start with http:// (got {base:?})"))?;
        let (addr, path) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        Ok(Target {
            addr: addr.to_string(),
            prefix: format!("{path}/scim/v2"),
            token: token.to_string(),
        })
    }
}

/// One HTTP/1.1 keep-alive connection.
pub struct Conn<'a> {
    pub target: &'a Target,
    pub stream: Option<(TcpStream, BufReader<TcpStream>)>,
}

/// A response: status and body.
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

impl<'a> Conn<'a> {
    pub fn new(target: &'a Target) -> Conn<'a> {
        Conn {
            target,
            stream: None,
        }
    }

    pub fn connect(&mut self) -> Result<()> {
        let s = TcpStream::connect(&self.target.addr)
            .with_context(|| format!("connecting to {}", self.target.addr))?;
        s.set_nodelay(true)?;
        s.set_read_timeout(Some(Duration::from_secs(120)))?;
        let reader = BufReader::with_capacity(64 * 1024, s.try_clone()?);
        self.stream = Some((s, reader));
        Ok(())
    }

    /// Sends one request (path relative to /scim/v2) and reads the whole
    /// response. A connection the server closed while idle is reopened
    /// once, before any byte of the response arrived.
    pub fn send(&mut self, method: &str, path: &str, body: Option<&[u8]>) -> Result<Response> {
        let mut req = Vec::with_capacity(256 + body.map_or(0, <[u8]>::len));
        write!(
            req,
            "{method} {}{path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {}\r\nAccept: application/scim+json\r\n",
            self.target.prefix, self.target.addr, self.target.token
        )?;
        if let Some(b) = body {
            write!(
                req,
                "Content-Type: application/scim+json\r\nContent-Length: {}\r\n",
                b.len()
            )?;
        }
        req.extend_from_slice(b"\r\n");
        if let Some(b) = body {
            req.extend_from_slice(b);
        }
        let reused = self.stream.is_some();
        match self.exchange(&req) {
            Ok(Some(r)) => Ok(r),
            Ok(None) if reused => {
                self.stream = None;
                self.exchange(&req)?
                    .ok_or_else(|| anyhow!("the server closed the connection"))
            }
            Ok(None) => bail!("the server closed the connection"),
            Err(e) => {
                self.stream = None;
                Err(e)
            }
        }
    }

    /// `Ok(None)`: the connection was closed before a response began.
    pub fn exchange(&mut self, req: &[u8]) -> Result<Option<Response>> {
        if self.stream.is_none() {
            self.connect()?;
        }
        let Some((writer, reader)) = self.stream.as_mut() else {
            bail!("no connection");
        };
        if writer.write_all(req).is_err() {
            self.stream = None;
            return Ok(None);
        }
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            self.stream = None;
            return Ok(None);
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| anyhow!("bad status line {line:?}"))?;
        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = false;
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                bail!("connection closed inside the response headers");
            }
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let v = v.trim();
                if k.eq_ignore_ascii_case("content-length") {
                    length = Some(v.parse().context("bad Content-Length")?);
                } else if k.eq_ignore_ascii_case("transfer-encoding") {
                    chunked = v.eq_ignore_ascii_case("chunked");
                } else if k.eq_ignore_ascii_case("connection") {
                    close = v.eq_ignore_ascii_case("close");
                }
            }
        }
        let mut body = Vec::new();
        if status == 204 || status == 304 {
            // No body (RFC 9112 §6.3).
        } else if chunked {
            loop {
                line.clear();
                reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim().split(';').next().unwrap_or(""), 16)
                    .with_context(|| format!("bad chunk size {line:?}"))?;
                if size == 0 {
                    // Trailers, then the blank line.
                    loop {
                        line.clear();
                        if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                            break;
                        }
                    }
                    break;
                }
                let start = body.len();
                body.resize(start + size, 0);
                reader.read_exact(&mut body[start..])?;
                line.clear();
                reader.read_line(&mut line)?;
            }
        } else if let Some(n) = length {
            body.resize(n, 0);
            reader.read_exact(&mut body)?;
        } else {
            reader.read_to_end(&mut body)?;
            close = true;
        }
        if close {
            self.stream = None;
        }
        Ok(Some(Response { status, body }))
    }
}

/// Latencies (µs) and failures of one kind of request.
#[derive(Debug, Default, Clone)]
pub struct Series {
    pub lat_us: Vec<u64>,
    pub errors: usize,
    /// Failed requests by status ("io" for socket errors).
    pub statuses: HashMap<String, usize>,
}

impl Series {
    pub fn merge(&mut self, other: Series) {
        self.lat_us.extend(other.lat_us);
        self.errors += other.errors;
        for (k, v) in other.statuses {
            *self.statuses.entry(k).or_default() += v;
        }
    }

    pub fn fail(&mut self, what: String) {
        self.errors += 1;
        *self.statuses.entry(what).or_default() += 1;
    }

    pub fn percentile(&self, p: f64) -> f64 {
        let mut v = self.lat_us.clone();
        v.sort_unstable();
        if v.is_empty() {
            return 0.0;
        }
        // Nearest rank.
        let rank = ((p / 100.0) * v.len() as f64).ceil().max(1.0) as usize;
        v[rank.min(v.len()) - 1] as f64 / 1000.0
    }
}

/// Counts failures and prints the first few.
static ERRORS_PRINTED: AtomicUsize = AtomicUsize::new(0);

/// Runs one request, timing it; a status other than `expect` (or an I/O
/// error) counts as a failure in `series`. Returns the body on success.
pub fn timed(
    conn: &mut Conn<'_>,
    series: &mut Series,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    expect: u16,
) -> Option<Vec<u8>> {
    let start = Instant::now();
    let res = conn.send(method, path, body);
    let took = start.elapsed();
    match res {
        Ok(r) if r.status == expect => {
            series.lat_us.push(took.as_micros() as u64);
            Some(r.body)
        }
        Ok(r) => {
            series.fail(r.status.to_string());
            if ERRORS_PRINTED.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                eprintln!(
                    "{}: {method} {path} answered {} (expected {expect}): {}",
                    PROGRAM,
                    r.status,
                    String::from_utf8_lossy(&r.body[..r.body.len().min(400)])
                );
            }
            None
        }
        Err(e) => {
            series.fail("io".into());
            if ERRORS_PRINTED.fetch_add(1, Ordering::Relaxed) < ERRORS_SHOWN {
                eprintln!("{PROGRAM}: {method} {path} failed: {e:#}");
            }
            None
        }
    }
}

/// What a phase's workers record: up to three series (e.g. lookup,
/// create and member add) and the ids of created resources by work-item
/// index.
#[derive(Debug, Default)]
pub struct Recorder {
    pub a: Series,
    pub b: Series,
    pub c: Series,
    pub ids: Vec<(usize, String)>,
}

/// A finished phase.
pub struct Phase {
    pub a: Series,
    pub b: Series,
    pub c: Series,
    pub ids: Vec<Option<String>>,
    pub elapsed: Duration,
}

/// Runs `items` work items over `conns` connections (one thread each);
/// items are handed out in order from a shared counter.
pub fn run_phase<F>(target: &Target, conns: usize, items: usize, work: F) -> Phase
where
    F: Fn(&mut Conn<'_>, usize, &mut Recorder) + Sync,
{
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let start = Instant::now();
    std::thread::scope(|s| {
        for _ in 0..conns.min(items.max(1)) {
            s.spawn(|| {
                let mut conn = Conn::new(target);
                let mut rec = Recorder::default();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= items {
                        break;
                    }
                    work(&mut conn, i, &mut rec);
                }
                if let Ok(mut r) = results.lock() {
                    r.push(rec);
                }
            });
        }
    });
    let elapsed = start.elapsed();
    let mut phase = Phase {
        a: Series::default(),
        b: Series::default(),
        c: Series::default(),
        ids: vec![None; items],
        elapsed,
    };
    for rec in results.into_inner().unwrap_or_default() {
        phase.a.merge(rec.a);
        phase.b.merge(rec.b);
        phase.c.merge(rec.c);
        for (i, id) in rec.ids {
            phase.ids[i] = Some(id);
        }
    }
    phase
}
/// The `id` of a created resource.
pub fn id_of(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<Value>(body)
        .ok()?
        .get("id")?
        .as_str()
        .map(str::to_string)
}

/// Entra's membership add body (`"$ref": null` as Entra sends it).
pub fn add_body(ids: &[&str]) -> Vec<u8> {
    let value: Vec<Value> = ids
        .iter()
        .map(|id| json!({"$ref": null, "value": id}))
        .collect();
    serde_json::to_vec(&json!({
        "schemas": [PATCH_OP],
        "Operations": [{"op": "Add", "path": "members", "value": value}],
    }))
    .unwrap_or_default()
}
/// Summary fields of a series run over `elapsed`.
pub fn stats(series: &Series, elapsed: Duration) -> Value {
    json!({
        "requests": series.lat_us.len() + series.errors,
        "ok": series.lat_us.len(),
        "errors": series.errors,
        "seconds": elapsed.as_secs_f64(),
        "rps": series.lat_us.len() as f64 / elapsed.as_secs_f64().max(1e-9),
        "p50_ms": series.percentile(50.0),
        "p99_ms": series.percentile(99.0),
        "max_ms": series.percentile(100.0),
        "failed_by_status": series.statuses,
    })
}
/// scimd's VmHWM and VmRSS in kB (from /proc/PID/status).
pub fn memory(pid: Option<u32>) -> (Option<u64>, Option<u64>) {
    let Some(pid) = pid else {
        return (None, None);
    };
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return (None, None);
    };
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
    };
    (field("VmHWM:"), field("VmRSS:"))
}
