-- Shared helpers for the wrk scripts of scripts/bench.sh (wrk 4, LuaJIT).
-- Each wrk thread runs its own Lua state, so every script loads this file
-- with dofile() and keeps its data per thread.
local M = {}

M.base = os.getenv("BENCH_BASE_PATH") or "/scim/v2"

-- Every scimd request carries the bearer token minted by bench.sh.
function M.auth_headers(extra)
  local token = os.getenv("BENCH_TOKEN")
  if token == nil or token == "" then
    error("BENCH_TOKEN is not set")
  end
  local h = { ["Authorization"] = "Bearer " .. token, ["Accept"] = "application/scim+json" }
  for k, v in pairs(extra or {}) do h[k] = v end
  return h
end

-- Non-empty lines of a file (the id and userName dumps).
function M.read_lines(path)
  local t = {}
  for line in io.lines(path) do
    if #line > 0 then t[#t + 1] = line end
  end
  if #t == 0 then error("no lines in " .. path) end
  return t
end

-- RFC 3986 percent-encoding of everything but the unreserved characters.
function M.urlencode(s)
  return (string.gsub(s, "[^%w%-%._~]", function(c)
    return string.format("%%%02X", string.byte(c))
  end))
end

-- Numbers the threads so each can seed its RNG and name things uniquely.
local counter = 0
function M.setup(thread)
  counter = counter + 1
  thread:set("thread_id", counter)
end

function M.seed()
  local id = thread_id or 0
  math.randomseed(os.time() * 1000 + id * 7919)
end

-- One machine-readable line, parsed by bench.sh. Latencies in microseconds;
-- "status" counts responses outside 2xx/3xx.
function M.done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "BENCH requests=%d duration_us=%d rps=%.1f p50_us=%d p99_us=%d status=%d connect=%d read=%d write=%d timeout=%d\n",
    summary.requests, summary.duration, summary.requests / (summary.duration / 1e6),
    latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end

return M
