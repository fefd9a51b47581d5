-- wrk script: POST /api/push with a JSON array of ITEMS heartbeats (default 100), each
-- for a different monitor, rotating through a tokens file (one token a line).
--
--   wrk -t2 -c16 -d15s -s scripts/bulk.lua http://127.0.0.1:PORT -- tokens.txt 2 100
--
-- Arguments after --: the tokens file, the number of wrk threads (default 2), the
-- items per request (default 100). done() prints the same RESULT line as push.lua
-- (requests, not heartbeats: the bench script counts heartbeats from the server's
-- pushmon_heartbeats_total).

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
      error("bulk.lua: pass the tokens file after --, or set TOKENS_FILE")
   end
   local items = tonumber(args[3]) or 100
   local tokens = {}
   local file = assert(io.open(path, "r"))
   for token in file:lines() do
      if token ~= "" then
         tokens[#tokens + 1] = token
      end
   end
   file:close()
   if #tokens == 0 then
      error("bulk.lua: no tokens in " .. path)
   end
   -- Enough bodies to go round every token once.
   local bodies = math.max(1, math.floor(#tokens / items))
   local headers = { ["Content-Type"] = "application/json" }
   for b = 0, bodies - 1 do
      local parts = {}
      for i = 0, items - 1 do
         local token = tokens[((b * items + i) % #tokens) + 1]
         parts[#parts + 1] = '{"token":"' .. token .. '","status":"up","msg":"x"}'
      end
      requests[#requests + 1] =
         wrk.format("POST", "/api/push", headers, "[" .. table.concat(parts, ",") .. "]")
   end
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
