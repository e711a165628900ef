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

-- Seconds of a UTC ISO timestamp (only differences between two of them are used).
local function iso_seconds(iso)
  local y, mo, d, h, mi, sec = iso:match("(%d+)-(%d+)-(%d+)T(%d+):(%d+):([%d.]+)Z")
  return os.time({ year = y, month = mo, day = d, hour = h, min = mi, sec = 0 }) + tonumber(sec)
end

-- measure(dir, args) -> wall_ms, peak_rss_kb, summary, experiment folder, start_iso
local function measure(dir, args, outdir)
  outdir = outdir or "experiments"
  local cmd = ("cd %s && %s %s --output-dir %s"):format(P.quote(dir), P.quote(bin), args, outdir)
  local h = io.popen(("%s spec/bench/measure.lua %s"):format(P.quote(interp), P.quote(cmd)))
  local out = h:read("a")
  h:close()
  local wall, rss, code, start = out:match("([%d.]+) (%d+) (%d+) (%S+)")
  assert(tonumber(code) == 0, "benchmark run failed: " .. out)
  local exp = P.experiments(dir, outdir)[1]
  local summary = exp and json.decode(P.read(exp .. "/summary.json"))
  return tonumber(wall), tonumber(rss), summary, exp, start
end

local function loop_seconds(s)
  return iso_seconds(s.completed_at) - iso_seconds(s.started_at)
end

print("fluxloop benchmark (Lua echo agent, 100 inputs, all five files written)")

-- 1. Start-up: one run; from the moment the command is started (a shell included) to
-- the first run's started_at, and to the process's exit. Medians of 15.
do
  local dir = P.project({ iterations = 1, inputs = "- input: hi\n" })
  local walls, firsts = {}, {}
  for i = 1, 15 do
    local wall, _, _, exp, start = measure(dir, "run experiment --quiet", "e" .. i)
    local first = json.decode(P.read(exp .. "/traces.jsonl"):match("^[^\n]+")).started_at
    walls[i], firsts[i] = wall, (iso_seconds(first) - iso_seconds(start)) * 1000
  end
  table.sort(walls)
  table.sort(firsts)
  print(("  start to first run:                 %8.2f ms (median of 15; target < 20 ms)"):format(firsts[8]))
  print(("  start to exit, one run:             %8.2f ms (median of 15)"):format(walls[8]))
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
    local fh = assert(io.open(exp .. "/" .. f, "rb"))
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

-- 2b. Hooks: a trivial after_run hook against none, 100 x 1000 each.
do
  local dir = project(1000)
  P.write(dir, "hooks/noop.lua", "return { after_run = function(run, trace) trace.metadata.ok = true end }")
  local _, _, plain = measure(dir, "run experiment --quiet", "plain")
  local _, _, hooked = measure(dir, "run experiment --quiet --hooks hooks/noop.lua", "hooked")
  local a, b = plain.total_traces / loop_seconds(plain), hooked.total_traces / loop_seconds(hooked)
  print(("  no hooks / trivial after_run hook:  %8.0f / %.0f traces/s (hooked keeps %.0f%%; target >= 75%%)")
    :format(a, b, 100 * b / a))
  P.remove(dir)
end

-- 2c. Parallel runs: ratios measured here, in the same run.
do
  local function rate(s) return s.total_traces / loop_seconds(s) end
  -- I/O-bound: each run sleeps 20 ms (a model call); 2,000 runs.
  local io_agent = "local c = require('fluxloop.clock')\nreturn { run = function(i) c.sleep(20) return i end }\n"
  local dir = P.project({ name = "bench", iterations = 20, inputs = (function()
      local l = { "generated_inputs:" }
      for i = 1, 100 do l[#l + 1] = ("  - input: \"q%d\""):format(i) end
      return table.concat(l, "\n") .. "\n"
    end)(), agent = io_agent })
  local w1 = measure(dir, "run experiment --quiet --parallel 1", "io1")
  local w32 = measure(dir, "run experiment --quiet --parallel 32", "io32")
  print(("  I/O-bound (20 ms sleep), 2,000 runs: --parallel 1 %.2f s, --parallel 32 %.2f s: %.1fx (target >= 28x)")
    :format(w1 / 1000, w32 / 1000, w1 / w32))
  P.remove(dir)
  -- CPU-bound Lua agent.
  local cpu_agent = "return { run = function(i) local x = 0 for n = 1, 200000 do x = x + n % 7 end return i .. x end }\n"
  dir = project(4)
  P.write(dir, "agents/agent.lua", cpu_agent)
  local c1 = measure(dir, "run experiment --quiet --parallel 1", "cpu1")
  local c2 = measure(dir, "run experiment --quiet --parallel 2", "cpu2")
  print(("  CPU-bound Lua agent, 400 runs:      --parallel 1 %.2f s, --parallel 2 %.2f s: %.2fx (target >= 1.7x)")
    :format(c1 / 1000, c2 / 1000, c1 / c2))
  P.remove(dir)
  -- Trivial agent: more workers must not cost throughput.
  dir = project(1000)
  local _, _, t1 = measure(dir, "run experiment --quiet --parallel 1", "t1")
  local _, _, t4 = measure(dir, "run experiment --quiet --parallel 4", "t4")
  print(("  trivial agent, 100,000 runs:        --parallel 1 %.0f traces/s, --parallel 4 %.0f traces/s (%.2fx; target >= 1x)")
    :format(rate(t1), rate(t4), rate(t4) / rate(t1)))
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
