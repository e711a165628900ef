-- judge_spec.lua - the llm_judge grader against a local OpenAI-style judge
-- (spec/support/mock_judge.py on 127.0.0.1): verdicts, a verdict in prose, 429 with
-- Retry-After, 500, garbage and slow answers, the cache, --parallel, and the key masked.
local P = require("support.project")
local json = require("fluxloop.json")
local mock = require("support.mock_server")

local KEY = "sk-judge-0123456789abcdefXYZ"

local function config(server, extra)
  return ([[
name: judged
runner:
  target: "agents.agent:run"
  iterations: 2
evaluation:
  graders:
    - name: helpful
      type: llm_judge
      rubric: "The answer says how long a refund takes."
      model: judge-model
      base_url: %s/v1
      api_key: ${JUDGE_SPEC_KEY}
%s    - {name: short, type: max_length, value: 100}
]]):format(server:url(), extra or "")
end

local INPUTS = "inputs:\n  - input: refund?\n  - input: hello\n"
local AGENT = "return { run = function(i) return i == 'refund?' and 'A refund takes 5 days.' or 'Hi' end }"
local ENV = "JUDGE_SPEC_KEY=" .. KEY

-- Every file of a folder, as one text (to look for the key).
local function all_text(dir)
  local h = io.popen("cat " .. P.quote(dir) .. "/* 2>/dev/null")
  local text = h:read("a")
  h:close()
  return text
end

local function by_grader(exp, name)
  local out = {}
  for _, r in ipairs(P.read_jsonl(exp .. "/scores.jsonl")) do
    if r.grader == name then out[#out + 1] = r end
  end
  return out
end

describe("llm_judge", function()
  local server, dir
  setup(function() server = mock.start(nil, "mock_judge.py") end)
  teardown(function() server:stop() end)
  before_each(function()
    server:reset()
    server:control({ mode = "ok", fail_first = 0, latency_ms = 0, pass_word = "refund" })
  end)
  after_each(function() P.remove(dir) end)

  local function project(extra)
    dir = P.project({ config = config(server, extra), inputs = INPUTS, agent = AGENT })
    return dir
  end

  it("grades each trace with the judge's verdict and reason; the key reaches the judge and no file", function()
    project()
    local code, _, err = P.run(dir, "run experiment", ENV)
    assert.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    local rows = by_grader(exp, "helpful")
    assert.equal(4, #rows)
    assert.same({ true, 0.9, "it mentions refund" }, { rows[1].pass, rows[1].score, rows[1].reason })
    assert.same({ false, 0.1, "it never mentions refund" }, { rows[3].pass, rows[3].score, rows[3].reason })
    local stats = server:stats()
    assert.equal("Bearer " .. KEY, stats.auth[1])
    assert.is_nil(all_text(exp):find(KEY, 1, true))
    assert.is_nil(err:find(KEY, 1, true))
    local s = P.read_json(exp .. "/summary.json").scores.helpful
    assert.same({ 4, 2, 2, 0, 0.5 }, { s.graded, s.passed, s.failed, s.errors, s.pass_rate })
  end)

  it("asks each distinct request once: two iterations with the same answer share a verdict, and grading again asks nothing", function()
    project()
    P.run(dir, "run experiment --quiet", ENV)
    assert.equal(2, server:stats().requests) -- two inputs, each answered the same in both iterations
    local exp = P.experiments(dir)[1]
    local before = server:stats().requests
    local code, _, err = P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --quiet", ENV)
    assert.equal(0, code, err)
    assert.equal(before, server:stats().requests)
    P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --quiet --no-cache", ENV)
    assert.equal(before + 2, server:stats().requests)
  end)

  it("finds a verdict inside prose and a code fence", function()
    server:control({ mode = "prose" })
    project()
    assert.equal(0, (P.run(dir, "run experiment --quiet", ENV)))
    assert.is_true(by_grader(P.experiments(dir)[1], "helpful")[1].pass)
  end)

  it("retries a 429 as Retry-After says, and the verdict arrives", function()
    server:control({ fail_first = 2 })
    project()
    assert.equal(0, (P.run(dir, "run experiment --quiet", ENV)))
    assert.is_true(by_grader(P.experiments(dir)[1], "helpful")[1].pass)
    assert.equal(4, server:stats().statuses["429"])
  end)

  it("a judge that answers 500, garbage, no chat completion, or too slowly is a grade error of that trace only",
    function()
    for mode, why in pairs({ ["500"] = "judge answered HTTP 500", garbage = "no verdict in the judge's reply",
      not_chat = "not a chat completion" }) do
      server:control({ mode = mode })
      project()
      local code, _, err = P.run(dir, "run experiment --quiet", ENV)
      assert.equal(0, code, err) -- the runs succeeded; a grade error fails no run
      local exp = P.experiments(dir)[1]
      local rows = by_grader(exp, "helpful")
      assert.equal(json.null, rows[1].pass, mode)
      assert.truthy(rows[1].error:find(why, 1, true), rows[1].error)
      assert.equal(4, #by_grader(exp, "short")) -- the other grader goes on
      local s = P.read_json(exp .. "/summary.json").scores.helpful
      assert.same({ 4, 0, 0, 4 }, { s.graded, s.passed, s.failed, s.errors })
      P.remove(dir)
    end
    server:control({ mode = "ok", latency_ms = 1500 })
    project("      timeout_ms: 200\n")
    P.run(dir, "run experiment --quiet", ENV)
    local rows = by_grader(P.experiments(dir)[1], "helpful")
    assert.equal(json.null, rows[1].pass)
    assert.truthy(rows[1].error:find("judge request failed", 1, true), rows[1].error)
  end)

  it("a key a careless judge echoes in its error is masked in scores.jsonl", function()
    server:control({ mode = "echo_key" })
    project()
    P.run(dir, "run experiment --quiet", ENV)
    local exp = P.experiments(dir)[1]
    local rows = by_grader(exp, "helpful")
    assert.truthy(rows[1].error:find("HTTP 401", 1, true), rows[1].error)
    assert.truthy(rows[1].error:find("***", 1, true), rows[1].error)
    assert.is_nil(all_text(exp):find(KEY, 1, true))
  end)

  it("evaluate reads the Python fluxloop's configs/evaluation.yaml: each enabled metric is a judge", function()
    project()
    P.run(dir, "run experiment --quiet", ENV)
    local exp = P.experiments(dir)[1]
    P.write(dir, "configs/evaluation.yaml", ([[
evaluation_goal:
  text: "Customers learn how refunds work."
metrics:
  task_completion: {enabled: true, thresholds: {good: 0.8, fair: 0.6}}
  relevance: {enabled: true, thresholds: {good: 0.9, fair: 0.4}}
  clarity: {enabled: false}
advanced:
  llm_judge: {model: judge-model-x}
]]))
    server:reset()
    local code, _, err = P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --config configs/evaluation.yaml",
      ENV .. " OPENAI_BASE_URL=" .. server:url() .. "/v1 OPENAI_API_KEY=" .. KEY)
    -- task_completion: half the answers mention a refund, under its fair threshold 0.6
    assert.equal(1, code, err)
    assert.truthy(err:find("grader task_completion: pass rate 50.0% is under its threshold 60.0%", 1, true), err)
    local s = P.read_json(exp .. "/summary.json").scores
    assert.same({ 0.6, 0.4 }, { s.task_completion.threshold, s.relevance.threshold })
    assert.is_nil(s.clarity)
    assert.is_nil(s.helpful) -- --config names the graders: the run's own are not used
    assert.equal(4, server:stats().requests) -- 2 distinct answers x 2 metrics
  end)

  it("evaluate --parallel 4 has requests in flight together; --rate-limit paces them", function()
    server:control({ latency_ms = 100 })
    project()
    P.run(dir, "run experiment --quiet --iterations 4", ENV)
    P.write(dir, "agents/agent.lua", "return { run = function(i, ctx) return 'refund ' .. ctx.iteration end }")
    dir = dir
    local exp = P.experiments(dir)[1]
    server:control({ latency_ms = 150 })
    local clock = require("fluxloop.clock")
    local t0 = clock.now_ns()
    local code, _, err = P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --no-cache --parallel 4 --quiet", ENV)
    assert.equal(0, code, err)
    assert.is_true(server:stats().max_in_flight >= 2)
    local parallel_s = (clock.now_ns() - t0) / 1e9
    t0 = clock.now_ns()
    P.run(dir, "evaluate experiment " .. P.quote(exp) .. " --no-cache --parallel 4 --rate-limit 4 --quiet", ENV)
    -- 2 distinct requests at 4/s with a burst of 1: the second waits its quarter second
    assert.is_true((clock.now_ns() - t0) / 1e9 >= 0.25)
    assert.is_true(parallel_s < 5)
  end)
end)
