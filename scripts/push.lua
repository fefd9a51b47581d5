-- wrk script: POST /api/push/{token}?status=up&msg=x, rotating through a tokens file
-- (one token a line) so consecutive requests hit different monitors.
--
--   wrk -t2 -c64 -d15s -s scripts/push.lua http://127.0.0.1:PORT -- tokens.txt 2
--
-- An optional second argument is the number of wrk threads (default 2): each thread
-- starts at its own offset in the list. done() prints one line
--   RESULT rps=... p50_ms=... p90_ms=... p99_ms=... p999_ms=... max_ms=... requests=...
--          non2xx=... connect_err=... read_err=... write_err=... timeouts=...
-- for the bench scripts to parse. non2xx counts answers with status >= 400 (wrk's
-- "status" errors, which include 429 and 503).

local counter = 0

function setup(thread)
   thread:set("id", counter)
   counter = counter + 1
end

local requests = {}
local index = 1

function init(args)
   local path = args[1] or os.getenv("TOKENS_FILE")
   if path == nil then
      error("push.lua: pass the tokens file after --, or set TOKENS_FILE")
   end
   local file = assert(io.open(path, "r"))
   for token in file:lines() do
      if token ~= "" then
         requests[#requests + 1] =
            wrk.format("POST", "/api/push/" .. token .. "?status=up&msg=x", nil, "")
      end
   end
   file:close()
   if #requests == 0 then
      error("push.lua: no tokens in " .. path)
   end
   -- Spread the threads over the list so they do not walk it in lockstep.
   local thread_count = math.max(tonumber(args[2]) or 2, id + 1)
   index = (math.floor(#requests * id / thread_count) % #requests) + 1
end

function request()
   local r = requests[index]
   index = index + 1
   if index > #requests then
      index = 1
   end
   return r
end

function done(summary, latency, requests_stats)
   local seconds = summary.duration / 1e6
   local function ms(p)
      return string.format("%.3f", latency:percentile(p) / 1000)
   end
   local e = summary.errors
   io.write(string.format(
      "RESULT rps=%.0f p50_ms=%s p90_ms=%s p99_ms=%s p999_ms=%s max_ms=%.3f requests=%d "
         .. "non2xx=%d connect_err=%d read_err=%d write_err=%d timeouts=%d\n",
      summary.requests / seconds, ms(50), ms(90), ms(99), ms(99.9), latency.max / 1000,
      summary.requests, e.status, e.connect, e.read, e.write, e.timeout))
end
