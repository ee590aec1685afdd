-- wrk: random 64 KiB ranges of a 100 MiB file (same workload as benches/load.rs).
local len, size = 104857600, 65536
math.randomseed(os.time())
request = function()
  local start = math.random(0, len - size - 1)
  return wrk.format("GET", nil, { ["Range"] = "bytes=" .. start .. "-" .. (start + size - 1) })
end
