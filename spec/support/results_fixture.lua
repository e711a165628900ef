-- results_fixture.lua - spec support: experiments with known figures for parse, report and compare,
-- and those figures computed again from the JSONL (independently of fluxloop.analysis).
local P = require("support.project")
local json = require("fluxloop.json")

local F = {}

F.INPUTS = [[
generated_inputs:
  - input: "alpha question"
    persona: novice_user
  - input: "beta <b>question</b> & more"
    persona: expert_user
  - input: "gamma question"
    persona: novice_user
]]

-- The base agent: gamma fails on even iterations; alpha answers two ways; spans nest.
F.BASE_AGENT = [[
local M = {}
function M.run(input, ctx)
  ctx:span({ name = "plan", type = "chain" }, function()
    ctx:observe{ type = "generation", name = "draft", input = input, output = "d" }
    ctx:span({ name = "search", type = "tool" }, function() return 1 end)
  end)
  if input:find("gamma") and ctx.iteration % 2 == 0 then error("gamma broke") end
  if input:find("alpha") then return "alpha answer " .. (ctx.iteration % 2) end
  return "answer to " .. input
end
return M
]]

-- The changed agent: beta now always fails; the rest is the same.
F.CHANGED_AGENT = F.BASE_AGENT:gsub('if input:find%("gamma"%)', 'if input:find("beta") then error({ type = "rate_limit", message = "429 from the model" }) end\n  if input:find("gamma")')

-- The base agent taking some time, as a model call would (for the browser spec's screenshot).
F.TIMED_AGENT = F.BASE_AGENT:gsub("local M = {}", [[local M = {}
local clock = require("fluxloop.clock")]]):gsub('  if input:find%("gamma"%) and', [[  ctx:span({ name = "model call", type = "generation" }, clock.sleep, (input:find("gamma") and 12 or input:find("alpha") and 4 or 2) + ctx.iteration %% 3)
  if input:find("gamma") and]])

-- The timed agent with beta failing (what a regression looks like in the browser spec).
F.TIMED_CHANGED_AGENT = F.TIMED_AGENT:gsub('  ctx:span%({ name = "model call"',
  '  if input:find("beta") then error({ type = "rate_limit", message = "429 from the model" }) end\n%0')

-- experiment(agent [, iterations]) -> project dir, experiment folder
function F.experiment(agent, iterations)
  local dir = P.project({ agent = agent or F.BASE_AGENT, inputs = F.INPUTS, iterations = iterations or 6 })
  local code, _, err = P.run(dir, "run experiment --quiet")
  assert(code == 0 or code == 1, err)
  return dir, P.experiments(dir)[1]
end

-- Graders for the fixture's agents: says_answer passes every run that answered, even_alpha
-- fails alpha's odd iterations ("alpha answer 1"), short fails beta and gamma (over 20
-- characters), and picky (a Lua grader) fails beta with a reason that has markup in it.
F.GRADERS = [[
evaluation:
  graders:
    - {name: says_answer, type: contains, value: answer}
    - {name: even_alpha, type: not_contains, value: "1"}
    - {name: short, type: max_length, value: 20, threshold: 0.9}
    - {name: picky, type: lua, target: "graders.picky:check"}
]]

F.PICKY = [[
return { check = function(output)
  if type(output) == "string" and output:find("beta") then return { pass = false, reason = "no <b>beta</b> & co" } end
  return true
end }
]]

-- graded_experiment(agent [, iterations [, graders]]) -> project dir, experiment folder: the
-- fixture's experiment with F.GRADERS (or graders: a config's evaluation section).
function F.graded_experiment(agent, iterations, graders)
  local dir = P.project({ agent = agent or F.BASE_AGENT, inputs = F.INPUTS, config = ([[
name: spec
runner:
  target: "agents.agent:run"
  iterations: %d
]]):format(iterations or 6) .. (graders or F.GRADERS) })
  P.write(dir, "graders/picky.lua", F.PICKY)
  local code, _, err = P.run(dir, "run experiment --quiet")
  assert(code == 0 or code == 1, err)
  return dir, P.experiments(dir)[1]
end

-- grade_figures(exp_dir) -> { [grader] = { passed, failed, errors, inputs = { [input] = {passed, failed} } } }
-- from scores.jsonl and trace_summary.jsonl, read line by line here.
function F.grade_figures(exp)
  local input_of = {}
  for _, r in ipairs(P.read_jsonl(exp .. "/trace_summary.jsonl")) do input_of[r.trace_id] = r.input end
  local out = {}
  for _, s in ipairs(P.read_jsonl(exp .. "/scores.jsonl")) do
    local g = out[s.grader] or { passed = 0, failed = 0, errors = 0, inputs = {} }
    out[s.grader] = g
    local i = g.inputs[input_of[s.trace_id]] or { passed = 0, failed = 0 }
    g.inputs[input_of[s.trace_id]] = i
    if s.pass == true then g.passed, i.passed = g.passed + 1, i.passed + 1
    elseif s.pass == false then g.failed, i.failed = g.failed + 1, i.failed + 1
    else g.errors = g.errors + 1 end
  end
  return out
end

local function percentile(sorted, p)
  local rank = p / 100 * (#sorted - 1)
  local lo = math.floor(rank)
  if lo >= #sorted - 1 then return sorted[#sorted] end
  return sorted[lo + 1] + (sorted[lo + 2] - sorted[lo + 1]) * (rank - lo)
end

-- figures(exp_dir) -> { total, ok, failed, inputs = { [input] = { n, ok, p50, distinct } } } from
-- trace_summary.jsonl, read line by line here.
function F.figures(exp)
  local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
  local f = { total = #rows, ok = 0, failed = 0, inputs = {} }
  for _, r in ipairs(rows) do
    local g = f.inputs[r.input] or { n = 0, ok = 0, d = {}, outs = {}, distinct = 0 }
    f.inputs[r.input] = g
    g.n = g.n + 1
    g.d[#g.d + 1] = r.duration_ms
    if r.success then
      f.ok, g.ok = f.ok + 1, g.ok + 1
      local key = json.encode(r.output)
      if not g.outs[key] then g.outs[key] = true; g.distinct = g.distinct + 1 end
    else
      f.failed = f.failed + 1
    end
  end
  for _, g in pairs(f.inputs) do
    table.sort(g.d)
    g.p50 = percentile(g.d, 50)
  end
  return f
end

return F
