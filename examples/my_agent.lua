-- my_agent.lua - the example agent: a tiny "support bot" that looks up an answer and
-- records what it did, so the traces show observations nested in a span.
local M = {}

-- A list, not a map: lookups go in this order on every run.
local answers = {
  { "start", "Run `fluxloop run experiment` in your project folder." },
  { "advanced", "See runner.iterations, output.directory and inputs.file in configs/simulation.yaml." },
  { "export", "Every run is a line in trace_summary.jsonl; convert it with any JSON tool." },
}

local function lookup(question)
  local q = question:lower()
  for _, pair in ipairs(answers) do
    if q:find(pair[1], 1, true) then return pair[1], pair[2] end
  end
  return nil, nil
end

-- run(input, ctx) -> the answer text
function M.run(input, ctx)
  local topic, answer = ctx:span({ name = "lookup", type = "tool" }, lookup, input)
  ctx:observe{ type = "event", name = "topic", output = topic or "unknown",
    metadata = { persona = ctx.persona } }
  ctx.metadata.answered = answer ~= nil
  if not answer then
    return ("I don't know yet, %s. Could you rephrase: %q?"):format(ctx.persona or "friend", input)
  end
  return answer
end

return M
