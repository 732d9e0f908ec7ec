-- GET /scim/v2/Users?filter=userName eq "<random existing userName>".
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local paths, headers

function init(args)
  common.seed()
  headers = common.auth_headers()
  paths = {}
  for i, name in ipairs(common.read_lines(os.getenv("BENCH_USERNAMES"))) do
    paths[i] = common.base .. "/Users?filter=" .. common.urlencode('userName eq "' .. name .. '"')
  end
end

function request()
  return wrk.format("GET", paths[math.random(#paths)], headers)
end

done = common.done
