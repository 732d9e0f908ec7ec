-- GET /scim/v2/Users/{id} on random existing ids.
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local paths, headers

function init(args)
  common.seed()
  headers = common.auth_headers()
  paths = {}
  for i, id in ipairs(common.read_lines(os.getenv("BENCH_IDS"))) do
    paths[i] = common.base .. "/Users/" .. id
  end
end

function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

done = common.done
