-- grading_spec.lua - graders end to end: fluxloop run experiment with evaluation.graders and
-- an input's assert:, scores.jsonl and summary.json's scores, thresholds, bad graders, Lua
-- graders, fluxloop evaluate experiment, and grades across --parallel, --isolate, --resume
-- and merge.
local P = require("support.project")

local CONFIG = [[
name: graded
runner:
  target: "agents.agent:run"
  iterations: 3
evaluation:
  graders:
    - {name: mentions_refund, type: contains, value: refund}
    - {type: regex, value: '\d+ days'}
]]

local INPUTS = [[
inputs:
  - input: "refund?"
    expected: "A refund takes 5 days."
    assert:
      - {type: equals}
  - input: "hello"
]]

-- The agent: the refund answer always; "hello" fails its third run.
local AGENT = [[
local M = {}
function M.run(input, ctx)
  if input == "refund?" then return "A refund takes 5 days." end
  if ctx.iteration == 2 then error("boom") end
  return "Hi there"
end
return M
]]

local function graded_project(opts)
  opts = opts or {}
  return P.project({ config = opts.config or CONFIG, inputs = opts.inputs or INPUTS, agent = opts.agent or AGENT })
end

-- Lines of scores.jsonl without their timing, to compare two folders.
local function scores_text(dir)
  return (assert(P.read(dir .. "/scores.jsonl"), "no scores.jsonl in " .. dir):gsub('"duration_ms":[%d.e%-]+', ""))
end

describe("grading during fluxloop run experiment", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("writes one scores.jsonl line per trace and grader, in trace order, and summary scores", function()
    dir = graded_project()
    local code, _, err = P.run(dir, "run experiment")
    assert.equal(1, code, err) -- a run failed (boom); no threshold is set
    local exp = P.experiments(dir)[1]
    local rows = P.read_jsonl(exp .. "/scores.jsonl")
    -- input 1: 3 runs x (2 config graders + its equals); input 2: 3 runs x 2
    assert.equal(15, #rows)
    assert.same({ "trace_001", "mentions_refund", true, 1 }, { rows[1].trace_id, rows[1].grader, rows[1].pass, rows[1].score })
    assert.same({ "trace_001", "regex", true }, { rows[2].trace_id, rows[2].grader, rows[2].pass })
    assert.same({ "trace_001", "equals", true }, { rows[3].trace_id, rows[3].grader, rows[3].pass })
    assert.same({ "trace_004", "mentions_refund", false }, { rows[10].trace_id, rows[10].grader, rows[10].pass })
    assert.equal('output does not contain "refund"', rows[10].reason)
    -- the failed run (trace_006) is a failed grade, no grader called
    assert.same({ "trace_006", false, "the run failed (error)" }, { rows[14].trace_id, rows[14].pass, rows[14].reason })
    local s = P.read_json(exp .. "/summary.json").scores
    assert.same({ 6, 3, 3, 0, 0.5 }, { s.mentions_refund.graded, s.mentions_refund.passed, s.mentions_refund.failed,
      s.mentions_refund.errors, s.mentions_refund.pass_rate })
    assert.same({ 3, 3, 1 }, { s.equals.graded, s.equals.passed, s.equals.pass_rate })
    -- pass^k: input 1 always passes, input 2 never mentions a refund
    assert.same({ ["1"] = 0.5, ["2"] = 0.5, ["3"] = 0.5 }, s.mentions_refund.pass_hat_k)
    assert.is_true(s.mentions_refund.pass_rate_ci95[1] < 0.5 and s.mentions_refund.pass_rate_ci95[2] > 0.5)
    assert.truthy(err:find("mentions_refund%s+3/6 passed %(50.0%%"), err)
  end)

  it("rules alone are graded by the recorder as it writes, at --parallel and --isolate alike", function()
    dir = graded_project({ inputs = "inputs:\n  - input: \"refund?\"\n  - input: \"hello\"\n" })
    assert.equal(1, (P.run(dir, "run experiment --quiet"))) -- hello's third run fails
    P.run(dir, "run experiment --quiet --parallel 3")
    P.run(dir, "run experiment --quiet --isolate --parallel 2")
    local exps = P.experiments(dir)
    local rows = P.read_jsonl(exps[1] .. "/scores.jsonl")
    assert.equal(12, #rows)
    assert.same({ "trace_001", "mentions_refund", true, 1 }, { rows[1].trace_id, rows[1].grader, rows[1].pass, rows[1].score })
    assert.same({ "trace_004", "mentions_refund", false, 'output does not contain "refund"' },
      { rows[7].trace_id, rows[7].grader, rows[7].pass, rows[7].reason })
    assert.same({ "trace_006", "regex", false, "the run failed (error)" },
      { rows[12].trace_id, rows[12].grader, rows[12].pass, rows[12].reason })
    assert.equal(scores_text(exps[1]), scores_text(exps[2]))
    assert.equal(scores_text(exps[1]), scores_text(exps[3]))
  end)

  it("a grader under its threshold makes the run exit 1 and names it; above, exit 0", function()
    dir = graded_project({ agent = "return { run = function() return 'a refund in 5 days' end }",
      config = CONFIG:gsub("value: refund}", "value: refund, threshold: 0.9}") })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.equal(0, code, err)
    P.write(dir, "agents/agent.lua", "return { run = function(i) return i == 'hello' and 'no' or 'a refund in 5 days' end }")
    code, _, err = P.run(dir, "run experiment --quiet")
    assert.equal(1, code)
    assert.truthy(err:find("grader mentions_refund: pass rate 50.0% is under its threshold 90.0%", 1, true), err)
  end)

  it("gives the same scores at --parallel 3 and --isolate as one worker", function()
    dir = graded_project()
    P.run(dir, "run experiment --quiet")
    P.run(dir, "run experiment --quiet --parallel 3")
    P.run(dir, "run experiment --quiet --isolate --parallel 2")
    local exps = P.experiments(dir)
    assert.equal(3, #exps)
    assert.equal(scores_text(exps[1]), scores_text(exps[2]))
    assert.equal(scores_text(exps[1]), scores_text(exps[3]))
  end)

  it("a crash in an isolated worker is a failed grade of that run", function()
    dir = graded_project({ agent = [[
return { run = function(input, ctx)
  if input == "hello" and ctx.iteration == 1 then os.execute("kill -SEGV $PPID") end -- the worker dies
  return "a refund in 5 days"
end }]] })
    local code = P.run(dir, "run experiment --quiet --isolate")
    assert.equal(1, code)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/scores.jsonl")
    local crashed = {}
    for _, r in ipairs(rows) do if r.trace_id == "trace_005" then crashed[#crashed + 1] = r end end
    assert.equal(2, #crashed)
    assert.is_false(crashed[1].pass)
    assert.matches("the run failed %(crash%)", crashed[1].reason)
  end)

  it("lua graders: a boolean, a score, {pass, score, reason}; one that raises is an error of that trace", function()
    dir = graded_project({ config = [[
runner:
  target: "agents.agent:run"
  iterations: 2
evaluation:
  graders:
    - {name: polite, type: lua, target: "graders.mine:polite"}
    - {name: length, type: lua, target: "graders.mine:length", pass_score: 0.5}
    - {name: verdict, type: lua, target: "graders.mine:verdict"}
    - {name: fragile, type: lua, target: "graders.mine:fragile"}
]], agent = "return { run = function(i) return i == 'hello' and 'Hi, please sit' or 'no' end }" })
    P.write(dir, "graders/mine.lua", [[
local M = {}
function M.polite(output) return output:find("please") ~= nil end
function M.length(output) return math.min(1, #output / 10) end
function M.verdict(output, ctx) return { pass = ctx.iteration == 0, score = 0.3, reason = "iteration " .. ctx.iteration } end
function M.fragile(output, ctx) if ctx.input == "hello" then error("grader bug") end return true end
return M
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    local by = {}
    for _, r in ipairs(P.read_jsonl(exp .. "/scores.jsonl")) do by[r.trace_id .. "/" .. r.grader] = r end
    assert.is_false(by["trace_001/polite"].pass)
    assert.is_true(by["trace_003/polite"].pass)
    assert.same({ false, 0.2 }, { by["trace_001/length"].pass, by["trace_001/length"].score })
    assert.same({ true, 1 }, { by["trace_003/length"].pass, by["trace_003/length"].score })
    assert.same({ true, 0.3, "iteration 0" }, { by["trace_001/verdict"].pass, by["trace_001/verdict"].score,
      by["trace_001/verdict"].reason })
    assert.is_false(by["trace_002/verdict"].pass)
    assert.equal(require("fluxloop.json").null, by["trace_003/fragile"].pass)
    assert.matches("grader bug", by["trace_003/fragile"].error)
    assert.is_true(by["trace_001/fragile"].pass)
    local s = P.read_json(exp .. "/summary.json").scores.fragile
    assert.same({ 4, 2, 0, 2 }, { s.graded, s.passed, s.failed, s.errors })
  end)
end)

describe("python graders", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("get the output and the run's facts by name through the Python bridge, in every mode", function()
    dir = graded_project({ config = [[
runner:
  target: "agents.agent:run"
  iterations: 2
evaluation:
  graders:
    - {name: refund, type: python, target: "graders.checks:mentions_refund"}
    - {name: nonempty, type: python, target: "graders.checks:nonempty"}
]] })
    P.write(dir, "graders/__init__.py", "")
    P.write(dir, "graders/checks.py", [[
def mentions_refund(output, expected, input_text, trace, iteration):
    ok = "refund" in output
    return {"pass": ok, "score": 1.0 if ok else 0.0,
            "reason": "%s|%s|%s|%d" % (input_text, expected, trace["trace_id"], iteration)}

def nonempty(answer):
    return len(answer) > 0
]])
    assert.equal(0, (P.run(dir, "run experiment --quiet")))
    P.run(dir, "run experiment --quiet --parallel 2 --isolate")
    local exps = P.experiments(dir)
    local rows = P.read_jsonl(exps[1] .. "/scores.jsonl")
    assert.same({ "refund", true, "refund?|A refund takes 5 days.|trace_001|0" }, { rows[1].grader, rows[1].pass,
      rows[1].reason })
    assert.same({ "nonempty", true }, { rows[2].grader, rows[2].pass })
    assert.same({ false, "hello|None|trace_003|0" }, { rows[7].pass, rows[7].reason }) -- 6: input 1's own equals
    assert.equal(scores_text(exps[1]), scores_text(exps[2]))
  end)

  it("a Python grader whose module is not there stops the run before it starts", function()
    dir = graded_project({ config = "runner:\n  target: agents.agent:run\nevaluation:\n  graders:\n"
      .. "    - {type: python, target: 'graders.nope:check'}\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.equal(2, code)
    assert.truthy(err:find("evaluation.graders.1.target: target 'graders.nope:check': no Python module graders.nope",
      1, true), err)
  end)
end)

describe("bad graders stop the run before it starts (exit 2, no results folder)", function()
  local dir
  after_each(function() P.remove(dir) end)

  local function refused(config, inputs)
    dir = graded_project({ config = config, inputs = inputs })
    local code, _, err = P.run(dir, "run experiment")
    assert.equal(2, code, err)
    assert.same({}, P.experiments(dir))
    return err
  end

  local function config_with(grader)
    return "runner:\n  target: agents.agent:run\nevaluation:\n  graders:\n    - " .. grader .. "\n"
  end

  it("an unknown type, with its line and the closest type", function()
    local err = refused(config_with("{type: contans, value: x}"))
    assert.truthy(err:find("configs/simulation.yaml:5:%d+: evaluation.graders.1.type: unknown grader type 'contans' "
      .. "%(did you mean 'contains'%?%)"), err)
  end)

  it("a missing value, an invalid regex, a judge without a rubric, a lua target that is not there", function()
    assert.truthy(refused(config_with("{type: contains}")):find("evaluation.graders.1: missing 'value'", 1, true))
    local err = refused(config_with("{type: regex, value: '(\\d+'}"))
    assert.truthy(err:find("evaluation.graders.1.value: invalid regex \"(\\\\d+\": missing closing parenthesis", 1, true), err)
    err = refused(config_with("{type: llm_judge, model: m}"))
    assert.truthy(err:find("evaluation.graders.1: missing 'rubric'", 1, true), err)
    err = refused(config_with("{type: lua, target: 'graders.none:check'}"))
    assert.truthy(err:find("evaluation.graders.1.target: target 'graders.none:check': Lua module 'graders.none' "
      .. "not found", 1, true), err)
  end)

  it("two graders with one name", function()
    local err = refused("runner:\n  target: agents.agent:run\nevaluation:\n  graders:\n    - {type: contains, value: a}\n"
      .. "    - {type: contains, value: b}\n")
    assert.truthy(err:find("evaluation.graders.2: grader name 'contains' is used twice", 1, true), err)
  end)

  it("a bad assert: in an input names the inputs file's line", function()
    local err = refused(CONFIG, "inputs:\n  - input: a\n  - input: b\n    assert:\n      - {type: regex, value: '['}\n")
    assert.truthy(err:find("inputs/generated.yaml:%d+:%d+: entry 2: assert.1.value: invalid regex"), err)
  end)
end)

describe("fluxloop evaluate experiment", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("grades a finished experiment as the run did, and again with other graders", function()
    dir = graded_project()
    P.run(dir, "run experiment --quiet")
    local exp = P.experiments(dir)[1]
    local before = scores_text(exp)
    os.remove(exp .. "/scores.jsonl")
    local code, _, err = P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --quiet")
    assert.equal(0, code, err)
    assert.equal(before, scores_text(exp))
    -- other graders, from --config: scores.jsonl and summary scores are replaced
    P.write(dir, "configs/eval.yaml", "evaluation:\n  graders:\n    - {name: short, type: max_length, value: 9, "
      .. "threshold: 0.9}\n")
    code, _, err = P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --config configs/eval.yaml --parallel 2")
    assert.equal(1, code)
    assert.truthy(err:find("grader short: pass rate", 1, true), err)
    local s = P.read_json(exp .. "/summary.json").scores
    assert.is_nil(s.mentions_refund)
    assert.same({ 6, 2 }, { s.short.graded, s.short.passed }) -- "Hi there" twice; the failed run fails it
    assert.equal(3, s.equals.graded) -- the inputs' own assert: lists still apply
  end)

  it("refuses a folder that is not an experiment, and a config without graders", function()
    dir = graded_project({ config = "runner:\n  target: agents.agent:run\n  iterations: 1\n",
      inputs = "inputs:\n  - input: a\n" })
    local code, _, err = P.run(dir, "evaluate experiment nowhere")
    assert.equal(2, code)
    assert.truthy(err:find("nowhere: no such folder", 1, true), err)
    P.run(dir, "run experiment --quiet")
    code, _, err = P.run(dir, "evaluate experiment " .. P.quote(P.experiments(dir)[1]))
    assert.equal(2, code)
    assert.truthy(err:find("no graders: add evaluation.graders", 1, true), err)
  end)
end)

describe("grades across --resume and merge", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a resumed experiment has every trace's grades once, and summary scores over all of them", function()
    dir = graded_project({ agent = [[
local clock = require("fluxloop.clock")
return { run = function(input) clock.sleep(15) return input == "hello" and "Hi" or "A refund takes 5 days." end }]],
      config = CONFIG:gsub("iterations: 3", "iterations: 20") })
    local code = P.run_signalled(dir, "run experiment --quiet", { 0.35 })
    assert.equal(130, code)
    local exp = P.experiments(dir)[1]
    code = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.equal(0, code)
    local resumed = scores_text(exp)
    P.run(dir, "run experiment --quiet")
    assert.equal(scores_text(P.experiments(dir)[2]), resumed)
    local s = P.read_json(exp .. "/summary.json").scores
    assert.same({ 40, 20 }, { s.mentions_refund.graded, s.mentions_refund.passed })
  end)

  it("merge joins the shards' scores.jsonl in trace order", function()
    dir = graded_project()
    for k = 0, 1 do P.run(dir, "run experiment --quiet --shard " .. k .. "/2", "FLUXLOOP_RUN_ID=j7") end
    local code, _, err = P.run(dir, "merge experiments/graded_j7")
    assert.equal(1, code, err) -- merged; one run failed
    P.run(dir, "run experiment --quiet")
    local whole
    for _, e in ipairs(P.experiments(dir)) do if not e:find("_j7$") then whole = e end end
    assert.equal(scores_text(whole), scores_text(dir .. "/experiments/graded_j7"))
    assert.equal(6, P.read_json(dir .. "/experiments/graded_j7/summary.json").scores.mentions_refund.graded)
  end)
end)
