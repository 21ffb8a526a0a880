-- mixed.lua - wrk script, closed loop: 70% search, 20% insert (one vector),
-- 10% get by id, keep-alive.
--   wrk -t1 -c16 -d20s -s bench/server/mixed.lua URL -- KEY DIM COLLECTION N_IDS
-- The tier part of the issue's "10% get/tier" is not here: the tier routes
-- do not exist yet (issue 12).
local key, coll, n_ids
local queries, inserts = {}, {}
local i = 0

function init(args)
  key = args[1]
  local dim = tonumber(args[2])
  coll = args[3]
  n_ids = tonumber(args[4])
  math.randomseed(777)
  for n = 1, 256 do
    local v = {}
    for j = 1, dim do v[j] = string.format("%.4f", math.random() * 2 - 1) end
    local vec = table.concat(v, ",")
    queries[n] = '{"k":10,"vector":[' .. vec .. ']}'
    inserts[n] = '{"vectors":[{"vector":[' .. vec .. ']}]}'
  end
end

function request()
  i = i % 256 + 1
  local h = {["Authorization"] = "Bearer " .. key, ["Content-Type"] = "application/json"}
  local r = math.random(100)
  if r <= 70 then
    return wrk.format("POST", "/v1/collections/" .. coll .. "/search", h, queries[i])
  elseif r <= 90 then
    return wrk.format("POST", "/v1/collections/" .. coll .. "/vectors", h, inserts[i])
  else
    return wrk.format("GET", "/v1/collections/" .. coll .. "/vectors/" .. math.random(n_ids), h)
  end
end
