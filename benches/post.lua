-- wrk script: POST the JSON body in FILE to the URL, with Prefer: return=minimal.
--   wrk -t2 -c50 -d10s -s benches/post.lua URL -- FILE
local body = ""

init = function(args)
  local f = assert(io.open(args[1], "rb"))
  body = f:read("*a")
  f:close()
end

request = function()
  return wrk.format("POST", wrk.path, {
    ["Content-Type"] = "application/json",
    ["Prefer"] = "return=minimal",
  }, body)
end
