-- POST /scim/v2/Users with a unique userName per request.
-- Names are bench-<tag>-<thread>-<n>; the tag (first script argument) keeps
-- successive runs (the measured run, then top-ups) from colliding.
local common = dofile((os.getenv("BENCH_DIR") or "bench") .. "/common.lua")

setup = common.setup

local tag, n, headers, path

function init(args)
  common.seed()
  tag = args[1] or tostring(os.time())
  n = 0
  headers = common.auth_headers({ ["Content-Type"] = "application/scim+json" })
  path = common.base .. "/Users"
end

function request()
  n = n + 1
  local user = string.format("bench-%s-%d-%d", tag, thread_id, n)
  local body = string.format(
    '{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],' ..
    '"userName":"%s","externalId":"ext-%s","active":true,' ..
    '"name":{"givenName":"Bench","familyName":"User %d"},' ..
    '"displayName":"Bench User %d",' ..
    '"emails":[{"value":"%s@example.com","type":"work","primary":true}]}',
    user, user, n, n, user)
  return wrk.format("POST", path, headers, body)
end

done = common.done
