-- generate_bench.lua BIN - `make bench` figures of `fluxloop generate inputs --mode llm`
-- against the local mock (spec/support/mock_llm.py on 127.0.0.1, 100 ms a reply). Printed,
-- never asserted. Targets: 48 prompts at --parallel 16 >= 10x --parallel 1; --rate-limit 20
-- holds 20 +- 2 requests/s at the server.
package.path = "spec/?.lua;" .. package.path
local clock = require("fluxloop.clock")
local mock = require("support.mock_server")
local P = require("support.project")

local bin = assert(arg[1], "usage: generate_bench.lua path/to/fluxloop")
FLUXLOOP_BIN = bin -- what P.run starts
local ROUNDS = tonumber(os.getenv("BENCH_ROUNDS")) or 3

-- 8 base inputs x 2 personas x 3 strategies = 48 prompts.
local function project()
  local lines = { "personas: [{name: a, description: A}, {name: b, description: B}]", "base_inputs:" }
  for i = 1, 8 do lines[#lines + 1] = ('  - input: "question %d"'):format(i) end
  lines[#lines + 1] = "input_generation: {llm: {model: m}}"
  local dir = P.new()
  P.write(dir, "configs/input.yaml", table.concat(lines, "\n") .. "\n")
  return dir
end

local function seconds(dir, server, args)
  local t0 = clock.now_ns()
  local code, _, err = P.run(dir, "generate inputs --quiet --overwrite " .. args,
    ("OPENAI_BASE_URL=%s/v1 OPENAI_API_KEY=bench"):format(server.base))
  assert(code == 0, err)
  return (clock.now_ns() - t0) / 1e9
end

print(("generate inputs --mode llm (48 prompts, the local mock at 100 ms; best of %d)"):format(ROUNDS))
local server = mock.start()
local dir = project()
local ok, err = pcall(function()
  server:control({ latency_ms = 100 })
  local best = {}
  for _, n in ipairs({ 1, 4, 16, 48 }) do
    best[n] = math.huge
    for _ = 1, ROUNDS do best[n] = math.min(best[n], seconds(dir, server, "--parallel " .. n)) end
    print(("  --parallel %-3d %6.2f s  %5.1fx  (target at 16: >= 10x)"):format(n, best[n], best[1] / best[n]))
  end
  server:reset()
  seconds(dir, server, "--parallel 16 --rate-limit 20")
  print(("  --parallel 16 --rate-limit 20: %.1f requests/s at the server (target 20 +- 2)"):format(server:stats().rate))
end)
server:stop()
P.remove(dir)
assert(ok, err)
