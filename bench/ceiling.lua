-- The ceiling: the same request shape as get_id.lua (Lua-built GET with a
-- bearer header and a random id-like path), sent to examples/ceiling.rs,
-- which answers 200 "ok" to anything. Any difference is scimd's own cost.
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local headers

function init(args)
  common.seed()
  headers = common.auth_headers()
end

function request()
  return wrk.format("GET", string.format("%s/Users/%08x-0000-4000-8000-%012x",
    common.base, math.random(0, 0x7fffffff), math.random(0, 0x7fffffff)), headers)
end

done = common.done
