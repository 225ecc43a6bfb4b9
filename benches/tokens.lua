-- wrk script: every request carries the next token of a file (one per line), cycling, so
-- with more tokens than a worker's JWT cache holds each one is verified anew.
--   wrk -t2 -c50 -d10s -s benches/tokens.lua URL -- FILE
local tokens = {}
local i = 0

init = function(args)
  for line in io.lines(args[1]) do
    tokens[#tokens + 1] = line
  end
  -- Threads start at different offsets, so they do not send the same tokens in step.
  i = math.random(#tokens)
end

request = function()
  i = i % #tokens + 1
  return wrk.format(nil, wrk.path, { Authorization = "Bearer " .. tokens[i] })
end
