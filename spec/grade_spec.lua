-- grade_spec.lua - fluxloop.grade: checking grader specs, and each rule grader on runs.
local grade = require("fluxloop.grade")
local json = require("fluxloop.json")

-- check(spec) -> normalized spec, problems ({key, text} list)
local function check(spec)
  local problems = {}
  local out = grade.check(spec, function(key, text) problems[#problems + 1] = { key = key, text = text } end)
  return out, problems
end

-- entries(scores) -> every grade of a set:grade result as a plain table, in the order the
-- recorder writes them: the C rules' lines (scores.text), then the entries.
local function entries(scores, output, ms)
  local list = {}
  local text = (scores.rules and scores.rules:grade("trace_001", output, ms) or "") .. (scores.text or "")
  for line in text:gmatch("[^\n]+") do
    local e = assert(json.decode(line))
    for k, v in pairs(e) do if v == json.null then e[k] = nil end end
    list[#list + 1] = e
  end
  for _, e in ipairs(scores) do list[#list + 1] = e end
  return list
end

-- grade_one(spec, trace_fields [, entry]) -> the score entry of that grader on a run.
local function grade_one(spec, fields, entry, observations)
  local s = assert(check(spec))
  local set = grade.set({ s }, { entry_asserts = false })
  set.observations_of = function() return observations or {} end
  local trace = { trace_id = "trace_001", input = "q", iteration = 0, success = true }
  for k, v in pairs(fields) do trace[k] = v end
  local o = trace.output
  return entries(set:grade(trace, { entry = entry or { input = "q" } }, fields.duration_ms or 5),
    type(o) == "string" and o or json.encode(o), fields.duration_ms or 5)[1]
end

describe("grade.check", function()
  it("names the grader after its type unless it has a name", function()
    assert.equal("contains", (check({ type = "contains", value = "x" })).name)
    assert.equal("mine", (check({ name = "mine", type = "contains", value = "x" })).name)
  end)

  it("refuses an unknown type and names the closest one", function()
    local out, problems = check({ type = "contians", value = "x" })
    assert.is_nil(out)
    assert.equal("type", problems[1].key)
    assert.matches("did you mean 'contains'", problems[1].text, 1, true)
  end)

  it("refuses a grader without a type, listing the types", function()
    local _, problems = check({ value = "x" })
    assert.matches("missing 'type'.*llm_judge", problems[1].text)
  end)

  it("refuses a missing value", function()
    for _, t in ipairs({ "contains", "icontains", "not_contains", "starts_with", "regex", "tool_called",
      "max_length", "max_latency_ms", "max_tokens", "one_of" }) do
      local out, problems = check({ type = t })
      assert.is_nil(out, t)
      assert.matches("missing", problems[1].text, 1, true)
    end
  end)

  it("refuses an invalid regex with PCRE2's reason and the offset", function()
    local out, problems = check({ type = "regex", value = "(\\d+" })
    assert.is_nil(out)
    assert.equal("value", problems[1].key)
    assert.matches("invalid regex .*missing closing parenthesis at offset", problems[1].text)
  end)

  it("refuses an llm_judge without a rubric, and without a model", function()
    local _, problems = check({ type = "llm_judge", model = "m" })
    assert.matches("missing 'rubric'", problems[1].text, 1, true)
    _, problems = check({ type = "llm_judge", rubric = "Says how long." })
    assert.matches("missing 'model'", problems[1].text, 1, true)
  end)

  it("refuses a threshold that is not a rate", function()
    local _, problems = check({ type = "contains", value = "x", threshold = 90 })
    assert.equal("threshold", problems[1].key)
  end)

  it("refuses a lua or python grader without a target", function()
    local _, problems = check({ type = "lua" })
    assert.matches("missing 'target'", problems[1].text, 1, true)
  end)
end)

describe("rule graders", function()
  it("contains / icontains / not_contains / starts_with on text", function()
    assert.is_true(grade_one({ type = "contains", value = "refund" }, { output = "a refund in 5 days" }).pass)
    local e = grade_one({ type = "contains", value = "refund" }, { output = "A Refund" })
    assert.is_false(e.pass)
    assert.equal(0, e.score)
    assert.equal('output does not contain "refund"', e.reason)
    assert.is_true(grade_one({ type = "icontains", value = "REFUND" }, { output = "a Refund" }).pass)
    e = grade_one({ type = "not_contains", value = "sorry" }, { output = "ok, sorry" })
    assert.is_false(e.pass)
    assert.matches("at character 5", e.reason, 1, true)
    assert.is_true(grade_one({ type = "starts_with", value = "Yes" }, { output = "Yes, it is" }).pass)
    assert.is_false(grade_one({ type = "starts_with", value = "Yes" }, { output = "No" }).pass)
  end)

  it("equals compares with the value, else with the input's expected", function()
    assert.is_true(grade_one({ type = "equals", value = "42" }, { output = "42" }).pass)
    assert.is_true(grade_one({ type = "equals", value = 42 }, { output = "42" }).pass)
    assert.is_true(grade_one({ type = "equals" }, { output = "Paris" }, { input = "q", expected = "Paris" }).pass)
    assert.is_false(grade_one({ type = "equals" }, { output = "Lyon" }, { input = "q", expected = "Paris" }).pass)
    local e = grade_one({ type = "equals" }, { output = "Lyon" })
    assert.is_nil(e.pass)
    assert.matches("no 'expected'", e.error, 1, true)
    -- a table output against a mapping value: the same structure passes
    assert.is_true(grade_one({ type = "equals", value = { a = 1, b = { "x" } } }, { output = { b = { "x" }, a = 1 } }).pass)
  end)

  it("regex is PCRE2: \\d, case flags, lookarounds", function()
    assert.is_true(grade_one({ type = "regex", value = "\\d+ days" }, { output = "in 5 days" }).pass)
    assert.is_false(grade_one({ type = "regex", value = "\\d+ days" }, { output = "in five days" }).pass)
    assert.is_true(grade_one({ type = "regex", value = "refund", flags = "i" }, { output = "REFUND" }).pass)
    assert.is_true(grade_one({ type = "regex", value = "(?<=\\$)\\d+" }, { output = "costs $40" }).pass)
  end)

  it("a pattern that explodes on the text is a grader error, not a hang", function()
    local e = grade_one({ type = "regex", value = "(a+)+$" }, { output = ("a"):rep(5000) .. "b" })
    assert.is_nil(e.pass)
    assert.matches("backtracked past its limit", e.error, 1, true)
  end)

  it("one_of, is_json, max_length in characters", function()
    assert.is_true(grade_one({ type = "one_of", values = { "yes", "no" } }, { output = "no" }).pass)
    assert.is_false(grade_one({ type = "one_of", values = { "yes", "no" } }, { output = "maybe" }).pass)
    assert.is_true(grade_one({ type = "is_json" }, { output = '{"a": 1}' }).pass)
    assert.is_true(grade_one({ type = "is_json" }, { output = { a = 1 } }).pass)
    assert.is_false(grade_one({ type = "is_json" }, { output = "{a: 1}" }).pass)
    assert.is_true(grade_one({ type = "max_length", value = 5 }, { output = "héllo" }).pass) -- 5 characters, 6 bytes
    assert.is_false(grade_one({ type = "max_length", value = 4 }, { output = "héllo" }).pass)
  end)

  it("max_latency_ms reads the run's duration", function()
    assert.is_true(grade_one({ type = "max_latency_ms", value = 100 }, { output = "x", duration_ms = 99 }).pass)
    local e = grade_one({ type = "max_latency_ms", value = 100 }, { output = "x", duration_ms = 250 })
    assert.is_false(e.pass)
    assert.matches("250.0 ms", e.reason, 1, true)
  end)

  it("max_tokens and tool_called read the run's observations", function()
    local obs = { { type = "generation", name = "llm", total_tokens = 120 }, { type = "tool", name = "search" },
      { type = "generation", name = "llm", prompt_tokens = 30, completion_tokens = 20 } }
    assert.is_true(grade_one({ type = "max_tokens", value = 170 }, { output = "x" }, nil, obs).pass)
    assert.is_false(grade_one({ type = "max_tokens", value = 169 }, { output = "x" }, nil, obs).pass)
    assert.is_true(grade_one({ type = "tool_called", value = "search" }, { output = "x" }, nil, obs).pass)
    local e = grade_one({ type = "tool_called", value = "lookup" }, { output = "x" }, nil, obs)
    assert.is_false(e.pass)
    assert.equal('tool "lookup" was not called (called: search)', e.reason)
    e = grade_one({ type = "max_tokens", value = 10 }, { output = "x" }, nil, {})
    assert.is_nil(e.pass)
    assert.matches("no observation of this run counts tokens", e.error, 1, true)
  end)

  it("a failed run is a failed grade of every grader, none of them called", function()
    local s = assert(check({ type = "lua", target = "no.such:module" }))
    local set = grade.set({ s, (check({ type = "contains", value = "x" })) }, { entry_asserts = false })
    local scores = entries(set:grade({ trace_id = "trace_001", success = false, error = { type = "timeout" } },
      { entry = {} }))
    assert.equal(2, #scores)
    for _, e in ipairs(scores) do
      assert.is_false(e.pass)
      assert.equal("the run failed (timeout)", e.reason)
    end
  end)

  it("adds an input's assert: graders after the config's", function()
    local set = grade.set({ (check({ type = "contains", value = "a" })) }, {})
    local job = { entry = { input = "q", assert = json.array({ { type = "max_length", value = 3 } }) } }
    local scores = entries(set:grade({ trace_id = "trace_001", success = true, output = "abcd", input = "q" }, job, 1),
      "abcd", 1)
    assert.equal("contains", scores[1].grader)
    assert.equal("max_length", scores[2].grader)
    assert.is_false(scores[2].pass)
  end)
end)

describe("fluxloop.regex", function()
  local regex = require("fluxloop.regex")
  it("finds with 1-based byte positions and says why a pattern is invalid", function()
    local re = assert(regex.compile("\\d+"))
    assert.same({ 4, 6 }, { re:find("ab 123 c") })
    local none, why, at = regex.compile("a(")
    assert.is_nil(none)
    assert.matches("missing closing parenthesis", why)
    assert.equal(3, at)
  end)

  it("searches text that is not valid UTF-8", function()
    assert.is_true(assert(regex.compile("ok")):test("\255\254 ok"))
  end)
end)

describe("fluxloop.gradestats", function()
  local gradestats = require("fluxloop.gradestats")
  it("counts and estimates pass^k as C(c,k)/C(n,k) averaged over inputs", function()
    local g = gradestats.new(3)
    for k, p in ipairs({ true, true, true, true, false, true, false, false, false }) do g:add(k, "a", p, p and 1 or 0) end
    g:add(10, "a", nil) -- input 4: only an error, so it counts for no k
    local f = g:figures()[1]
    assert.same({ 10, 5, 4, 1 }, { f.graded, f.passed, f.failed, f.errors })
    assert.near(5 / 9, f.pass_hat_k[1], 1e-12)
    assert.near((1 + 1 / 3) / 3, f.pass_hat_k[2], 1e-12)
    assert.near(1 / 3, f.pass_hat_k[3], 1e-12)
  end)

  it("reads score lines as the recorder writes them", function()
    local g = gradestats.new(1)
    assert.is_true(g:add_line('{"trace_id":"trace_002","grader":"caf\\u00e9","pass":false,"score":0.25}'))
    assert.is_false(g:add_line('{"trace_id":"nope","grader":"x","pass":true}'))
    local f = g:figures()[1]
    assert.equal("café", f.name)
    assert.equal(0.25, f.score_sum)
  end)
end)

describe("grade.judge", function()
  local judge = require("fluxloop.grade.judge")

  it("asks with the rubric, the input, the expected answer and the output; a conversation whole", function()
    local text = judge.messages({ rubric = "Says how long." }, { input = "q?", output = "5 days", expected = "5 days" })[2]
      .content
    assert.truthy(text:find("Rubric:\nSays how long.", 1, true))
    assert.truthy(text:find("Input given to the agent:\nq?", 1, true))
    assert.truthy(text:find("Reference answer (expected):\n5 days", 1, true))
    assert.truthy(text:find("The agent's answer:\n5 days", 1, true))
    text = judge.messages({ rubric = "R" }, { input = "bye?", output = "bye", conversation = {
      { role = "user", content = "hi" }, { role = "assistant", content = "hello" }, { role = "user", content = "bye?" },
      { role = "assistant", content = "bye" } } })[2].content
    assert.truthy(text:find("1. User: hi\n2. Assistant: hello\n3. User: bye?\n4. Assistant: bye", 1, true), text)
  end)

  it("takes the first JSON object of the reply as the verdict", function()
    assert.same({ true, 0.8, "ok" }, { judge.verdict('Sure! ```json\n{"pass": true, "score": 0.8, "reason": "ok"}\n```') })
    assert.same({ false, 0.2 }, { judge.verdict('{"score": 0.2}') }) -- under pass_score 0.5
    assert.has_error(function() judge.verdict("no idea") end)
    assert.has_error(function() judge.verdict('{"pass": "yes"}') end)
  end)
end)
