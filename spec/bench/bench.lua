-- bench.lua BIN - the performance figures of `make bench` (printed, never asserted).
-- Trivial Lua echo agent, 100 inputs; every file written. Targets from issue 2:
-- >= 100,000 traces/s on one worker, < 32 MB peak RSS at 1M traces, < 20 ms start to first run.
package.path = "spec/?.lua;" .. package.path
local json = require("fluxloop.json")
local P = require("support.project")

local bin = assert(arg[1], "usage: bench.lua path/to/fluxloop")
local interp = arg[-1]

local function project(iterations)
  local lines = { "generated_inputs:" }
  for i = 1, 100 do lines[#lines + 1] = ("  - input: \"test input number %d: what is %d plus %d?\""):format(i, i, i) end
  return P.project({
    name = "bench", iterations = iterations,
    inputs = table.concat(lines, "\n") .. "\n",
    agent = "local M = {}\nfunction M.run(input, ctx) return input end\nreturn M\n",
  })
end

-- measure(dir, args) -> wall_ms, peak_rss_kb, summary
local function measure(dir, args)
  local cmd = ("cd %s && %s %s"):format(P.quote(dir), P.quote(bin), args)
  local h = io.popen(("%s spec/bench/measure.lua %s"):format(P.quote(interp), P.quote(cmd)))
  local out = h:read("a")
  h:close()
  local wall, rss, code = out:match("([%d.]+) (%d+) (%d+)")
  assert(tonumber(code) == 0, "benchmark run failed: " .. out)
  local exp = P.experiments(dir)[#P.experiments(dir)]
  local summary = exp and json.decode(P.read(exp .. "/summary.json"))
  return tonumber(wall), tonumber(rss), summary, exp
end

local function loop_seconds(s)
  local function secs(iso)
    local y, mo, d, h, mi, sec = iso:match("(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d.]+)Z")
    return os.time({ year = y, month = mo, day = d, hour = h, min = mi, sec = 0 }) + tonumber(sec)
  end
  return secs(s.completed_at) - secs(s.started_at)
end

print("fluxloop benchmark (Lua echo agent, 100 inputs, all five files written)")

-- 1. Start-up: one run, whole process, median of 15.
do
  local dir = P.project({ iterations = 1, inputs = "- input: hi\n" })
  local walls = {}
  for i = 1, 15 do walls[i] = measure(dir, "run experiment --quiet --output-dir e" .. i) end
  table.sort(walls)
  print(("  process start to exit, 1 run:      %8.2f ms (median of 15; target < 20 ms to first run)"):format(walls[8]))
  P.remove(dir)
end

-- 2. Throughput: 100 inputs x 1000 iterations.
do
  local dir = project(1000)
  local wall, rss, s, exp = measure(dir, "run experiment --quiet")
  local loop = loop_seconds(s)
  local rate = s.total_traces / loop
  local bytes = 0
  for _, f in ipairs({ "traces.jsonl", "trace_summary.jsonl", "observations.jsonl" }) do
    local fh = io.open(exp .. "/" .. f, "rb")
    bytes = bytes + fh:seek("end")
    fh:close()
  end
  print(("  100 x 1000 = %d traces:          %8.0f traces/s (run loop %.3f s; target >= 100,000)"):format(s.total_traces, rate, loop))
  print(("  per-run overhead:                   %8.2f us"):format(1e6 / rate))
  print(("  whole process:                      %8.3f s (exit after the last run: %.0f ms)"):format(wall / 1000, wall - loop * 1000))
  print(("  peak RSS:                           %8.1f MB"):format(rss / 1024))
  print(("  written:                            %8.1f MB (%d bytes a trace)"):format(bytes / 1e6, bytes // s.total_traces))
  P.remove(dir)
end

-- 3. Memory at a million traces: 100 inputs x 10,000 iterations.
if os.getenv("BENCH_QUICK") ~= "1" then
  local dir = project(10000)
  local wall, rss, s = measure(dir, "run experiment --quiet")
  print(("  1,000,000 traces:                   %8.1f MB peak RSS (target < 32 MB), %.0f traces/s, %.1f s")
    :format(rss / 1024, s.total_traces / loop_seconds(s), wall / 1000))
  P.remove(dir)
end
