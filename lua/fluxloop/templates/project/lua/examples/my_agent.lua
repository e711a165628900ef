-- my_agent.lua - the project's agent: run(input, ctx) returns the answer. Replace the
-- lookup with your own logic (or a model call: require("fluxloop.http")).
local M = {}

local answers = {
  { "start", "Run `fluxloop run experiment` in the project folder." },
  { "retry", "Set runner.timeout_ms and your client's retries in configs/simulation.yaml." },
  { "export", "Every run is a line of trace_summary.jsonl in the results folder." },
}

local function lookup(question)
  local q = question:lower()
  for _, pair in ipairs(answers) do
    if q:find(pair[1], 1, true) then return pair[2] end
  end
  return nil
end

function M.run(input, ctx)
  -- A span is an observation of the run, timed, in traces.jsonl and observations.jsonl.
  local answer = ctx:span({ name = "lookup", type = "tool" }, lookup, input)
  ctx.metadata.answered = answer ~= nil
  return answer or ("Could you say more about: " .. input)
end

return M
