-- wrk script: HTTP/1.1 pipelining, 16 requests per write (depth = first script argument).
--   wrk -t2 -c50 -d10s -s benches/pipeline.lua http://127.0.0.1:3000/bench_items?id=eq.1 -- 16
-- wrk counts every response, so Requests/sec is responses per second.
local batch

init = function(args)
  local depth = tonumber(args[1]) or 16
  local reqs = {}
  for i = 1, depth do
    reqs[i] = wrk.format(nil, wrk.path)
  end
  batch = table.concat(reqs)
end

request = function()
  return batch
end
