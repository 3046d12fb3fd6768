-- wrk script of scripts/bench: POST /v1/group with a new id on every
-- request, spread over node01..node03, so that each request is a real create.
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("tid", threads)
end

local n = 0

function request()
  n = n + 1
  local body = string.format('{"groupId":"w%d-%d"}', tid, n)
  local headers = {
    ["Content-Type"] = "application/json",
    ["Node"] = string.format("node0%d", n % 3 + 1),
  }
  return wrk.format("POST", "/v1/group", headers, body)
end
