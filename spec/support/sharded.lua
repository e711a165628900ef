-- sharded.lua - spec support: the experiment the sharding specs (--shard, merge, the Slurm
-- suite) split and merge. Two kinds of observation count, so shards' observation files have
-- uneven lines per trace; q3's iteration 1 fails (unless PASS is set in the environment).
local S = {}

-- agent([ms]) -> the agent's source; each run sleeps AGENT_MS from the environment, else ms.
function S.agent(ms)
  return ([[
local clock = require("fluxloop.clock")
return { run = function(input, ctx)
  ctx:observe{ type = "tool", name = "look", input = input }
  if ctx.iteration %% 3 == 2 then ctx:observe{ type = "event", name = "extra", output = ctx.trace_id } end
  if input == "q3" and ctx.iteration == 1 and not os.getenv("PASS") then error("q3 fails on iteration 1") end
  local ms = tonumber(os.getenv("AGENT_MS") or "%d")
  if ms > 0 then clock.sleep(ms) end
  ctx.metadata.seen = input .. "#" .. ctx.iteration
  return { answer = input, n = ctx.iteration }
end }
]]):format(ms or 0)
end

-- inputs(n) -> an inputs file of q1..qn, personas p1 and p0 in turn.
function S.inputs(n)
  local lines = { "generated_inputs:" }
  for i = 1, n do lines[#lines + 1] = ("  - input: \"q%d\"\n    persona: p%d"):format(i, i % 2) end
  return table.concat(lines, "\n") .. "\n"
end

return S
