-- PATCH /scim/v2/Users/{id}: the Entra ID shape (capitalised "Replace"),
-- setting title to a random value on a random existing user.
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local paths, headers

function init(args)
  common.seed()
  headers = common.auth_headers({ ["Content-Type"] = "application/scim+json" })
  paths = {}
  for i, id in ipairs(common.read_lines(os.getenv("BENCH_IDS"))) do
    paths[i] = common.base .. "/Users/" .. id
  end
end

function request()
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:api:messages:2.0:PatchOp"],' ..
    '"Operations":[{"op":"Replace","path":"title","value":"Title %d"}]}',
    math.random(1, 1000000000))
  return wrk.format("PATCH", paths[math.random(#paths)], headers, body)
end

done = common.done
