-- W3 for wrk: POST a small JSON body, parse the ~2 KB JSON answer, check two fields.
-- The JSON decoder is the peer rig's (its W2 script, path in $W2_LUA): that file is
-- loaded as a chunk with `return json_decode` appended, so the decoder is shared,
-- not copied; its globals (response, done, ...) are replaced below.
local path = os.getenv("W2_LUA") or error("set W2_LUA to the rig's workloads/wrk-w2.lua")
local f = assert(io.open(path))
local json_decode = assert(loadstring(f:read("*a") .. "\nreturn json_decode"))()
f:close()

wrk.method = "POST"
wrk.body = '{"name":"x","qty":1}'
wrk.headers["Content-Type"] = "application/json"

local threads = {}
function setup(thread) table.insert(threads, thread) end

good, bad = 0, 0
function response(status, headers, body)
  local ok, v = pcall(json_decode, body)
  if status == 200 and ok and type(v) == "table" and v.name == "x"
      and type(v.items) == "table" and #v.items == 20 then
    good = good + 1
  else
    bad = bad + 1
  end
end

function done(summary, latency, requests)
  local g, b = 0, 0
  for _, t in ipairs(threads) do
    g = g + t:get("good"); b = b + t:get("bad")
  end
  io.write(string.format("BENCH requests=%d failures=%d\n", g + b, b))
end
