-- http_bench.lua BIN - `make bench` figures of agents that call models (issue 15), against the
-- local mock (spec/support/mock_llm.py on 127.0.0.1). Printed, never asserted. Targets:
-- 20 ms latency: --parallel 32 >= 28x one worker; --parallel 64 --rate-limit 100 holds
-- 100 +- 5 requests/s with no 429 from a server enforcing 100/s (a bucket, and a strict
-- sliding second); per-request overhead over
-- curl fetching the same URL in a loop <= 50 us; memory flat over 100k requests.
package.path = "spec/?.lua;" .. package.path
local json = require("fluxloop.json")
local mock = require("support.mock_server")
local P = require("support.project")

local bin = assert(arg[1], "usage: http_bench.lua path/to/fluxloop")
local interp = arg[-1]
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 3
local QUICK = os.getenv("BENCH_QUICK") == "1"

local function iso_seconds(iso)
  local y, mo, d, h, mi, sec = iso:match("(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d.]+)Z")
  return os.time({ year = y, month = mo, day = d, hour = h, min = mi, sec = 0 }) + tonumber(sec)
end

-- run(dir, args) -> loop seconds (first run to last), peak RSS (KB), summary
local function run(dir, args)
  local cmd = ("cd %s && %s run experiment %s --quiet --output-dir out"):format(P.quote(dir), P.quote(bin), args)
  local h = io.popen(("%s spec/bench/measure.lua %s"):format(P.quote(interp), P.quote(cmd)))
  local out = h:read("a")
  h:close()
  local _, rss, code = out:match("([%d.]+) (%d+) (%d+)")
  local exp = P.experiments(dir, "out")[1]
  local s = exp and json.decode(P.read(exp .. "/summary.json"))
  os.execute("rm -rf " .. P.quote(dir .. "/out"))
  assert(s and (tonumber(code) == 0 or tonumber(code) == 1), "benchmark run failed: " .. args .. " " .. out)
  return iso_seconds(s.completed_at) - iso_seconds(s.started_at), tonumber(rss), s
end

local function project(url, runs, agent_body)
  return P.project({ config = ("name: bench\nrunner:\n  target: agents.agent:run\n  iterations: %d\n"):format(runs),
    inputs = "generated_inputs:\n  - input: \"hello model\"\n",
    agent = ([[
local http = require("fluxloop.http")
local URL = %q
return { run = function(input) %s end }
]]):format(url, agent_body) })
end

local CHAT = [[
  local res = assert(http.post_json(URL, { model = "m", messages = { { role = "user", content = input } } }))
  return res:json().choices[1].message.content]]

print(("agents that call models (fluxloop.http against the local mock; best of %d)"):format(ROUNDS))
local server = mock.start()
local ok, err = pcall(function()
  -- 1. A 20 ms model: --parallel 32 against one worker.
  server:control({ latency_ms = 20 })
  local one = project(server:url("/v1/chat/completions"), 100, CHAT)
  local many = project(server:url("/v1/chat/completions"), 3200, CHAT)
  local r1, r32 = 0, 0
  for _ = 1, ROUNDS do
    local t = run(one, "--parallel 1")
    r1 = math.max(r1, 100 / t)
    t = run(many, "--parallel 32")
    r32 = math.max(r32, 3200 / t)
  end
  print(("  20 ms model, --parallel 1 / 32:     %6.1f / %.0f requests/s: %.1fx (target >= 28x)"):format(r1, r32, r32 / r1))
  P.remove(one)
  P.remove(many)

  -- 2. --parallel 64 --rate-limit 100 against a server that allows 100/s: a token bucket of
  -- 100 a second holding at most 100 (a provider's quota is usually per minute: looser).
  server:control({ latency_ms = 20, quota = 100, quota_burst = 100 })
  local limited = project(server:url("/v1/chat/completions"), QUICK and 300 or 1000, CHAT)
  server:reset()
  local t, _, s = run(limited, "--parallel 64 --rate-limit 100")
  local st = server:stats()
  print(("  --parallel 64 --rate-limit 100:     %6.1f requests/s at the server, %.1f runs/s (%d runs), %d answered 429, %d failed")
    :format(st.rate or 0, s.total_traces / t, s.total_traces, st.statuses["429"] or 0, s.failed))
  -- The same against a strict server: at most 100 requests in any sliding second.
  server:control({ latency_ms = 20, quota = 0, window_quota = 100 })
  server:reset()
  t, _, s = run(limited, "--parallel 64 --rate-limit 100")
  st = server:stats()
  print(("    a strict server (100 in any second): %6.1f requests/s, at most %d in one second, %d answered 429")
    :format(st.rate or 0, st.window_max, st.statuses["429"] or 0))
  server:control({ latency_ms = 20, quota = 100, quota_burst = 100, window_quota = 0 })
  server:reset()
  t, _, s = run(limited, "--parallel 64")
  st = server:stats()
  print(("    the same without --rate-limit:    %6.1f requests/s at the server, %d answered 429 (retried), %d runs failed")
    :format(st.rate or 0, st.statuses["429"] or 0, s.failed))
  P.remove(limited)

  -- 3. Per-request overhead over curl fetching the same URL N times on one connection.
  server:control({ latency_ms = 0, quota = 0 })
  local N = 2000
  local url = server:url("/echo")
  local dir = P.new()
  local cfg = { }
  for i = 1, N do cfg[i] = ('url = "%s"\noutput = "/dev/null"'):format(url) end
  P.write(dir, "curl.cfg", table.concat(cfg, "\n") .. "\n")
  local has_curl = os.execute("command -v curl >/dev/null 2>&1")
  local recorded = project(url, N, "local res = assert(http.get(URL)) return res.status")
  local unrecorded = project(url, N, "local res = assert(http.get(URL, { observe = false })) return res.status")
  local plain = project(url, N, "return input")
  local best = { curl = math.huge, rec = math.huge, norec = math.huge, plain = math.huge }
  local clock = require("fluxloop.clock")
  for _ = 1, ROUNDS do
    if has_curl then
      local t0 = clock.now_ns()
      os.execute(("curl -s -K %s"):format(P.quote(dir .. "/curl.cfg")))
      best.curl = math.min(best.curl, (clock.now_ns() - t0) / 1e9)
    end
    best.rec = math.min(best.rec, (run(recorded, "")))
    best.norec = math.min(best.norec, (run(unrecorded, "")))
    best.plain = math.min(best.plain, (run(plain, "")))
  end
  local per = function(x) return x / N * 1e6 end
  if has_curl then
    print(("  %d GETs, one connection: curl %.1f us a request; fluxloop %.1f us a run (%.1f without recording it)")
      :format(N, per(best.curl), per(best.rec), per(best.norec)))
    print(("    overhead over curl:               %6.1f us a request recorded, %.1f not recorded (target <= 50;"
      .. " a run without HTTP costs %.1f us)"):format(per(best.rec - best.curl), per(best.norec - best.curl), per(best.plain)))
  else
    print("  curl is not installed (make deps installs it): no overhead figure")
  end
  P.remove(dir)
  P.remove(recorded)
  P.remove(unrecorded)
  P.remove(plain)

  -- 4. Memory over 100k requests against 10k (no latency; 4 workers).
  local sizes = QUICK and { 2000, 20000 } or { 10000, 100000 }
  local rss = {}
  for i, n in ipairs(sizes) do
    local d = project(url, n, "local res = assert(http.get(URL)) return res.status")
    local secs, kb, sum = run(d, "--parallel 4")
    rss[i] = kb
    print(("  %6d requests, --parallel 4:       %6.1f MB peak RSS, %.0f requests/s (%d failed)")
      :format(n, kb / 1024, n / secs, sum.failed))
    P.remove(d)
  end
  print(("    memory flat: %d requests use %.2fx the peak RSS of %d"):format(sizes[2], rss[2] / rss[1], sizes[1]))
end)
server:stop()
if not ok then error(err, 0) end
