-- search.lua - wrk script: POST .../search with random queries (k 10).
--   wrk -t1 -c16 -d20s -s bench/server/search.lua URL -- KEY DIM COLLECTION
-- Bodies are made once in init (256 random queries, uniform in [-1, 1],
-- like bench/server_load.c), so the Lua side costs little per request.
local key, coll
local bodies = {}
local i = 0

function init(args)
  key = args[1]
  local dim = tonumber(args[2])
  coll = args[3]
  math.randomseed(4242)
  for n = 1, 256 do
    local v = {}
    for j = 1, dim do v[j] = string.format("%.4f", math.random() * 2 - 1) end
    bodies[n] = '{"k":10,"vector":[' .. table.concat(v, ",") .. ']}'
  end
end

function request()
  i = i % 256 + 1
  return wrk.format("POST", "/v1/collections/" .. coll .. "/search",
    {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}, bodies[i])
end
