-- grades_spec.lua - fluxloop.grades: scores.jsonl read back in step with the traces (the
-- accumulator report and compare share), on hand-written folders.
local analysis = require("fluxloop.analysis")
local grades = require("fluxloop.grades")
local gradestats = require("fluxloop.gradestats")
local json = require("fluxloop.json")
local results = require("fluxloop.results")
local P = require("support.project")

local function trace(k, input)
  return json.encode({ trace_id = ("trace_%03d"):format(k), input = input, output = "o", duration_ms = 1,
    iteration = 0, persona = json.null, success = true, error = json.null })
end

local function score(k, grader, pass, reason, err)
  return json.encode({ trace_id = ("trace_%03d"):format(k), grader = grader, pass = pass == nil and json.null or pass,
    score = pass == nil and json.null or (pass and 1 or 0), reason = reason or json.null, error = err or json.null,
    duration_ms = 0.1 })
end

describe("fluxloop.grades", function()
  local dir
  after_each(function() if dir then P.remove(dir) end dir = nil end)

  -- analyse(inputs, scores) -> analysis; inputs: list of { text, runs }; scores: lines
  local function analyse(inputs, scores)
    dir = P.new()
    local lines, k = {}, 0
    for _, s in ipairs(inputs) do
      for _ = 1, s[2] do
        k = k + 1
        lines[#lines + 1] = trace(k, s[1])
      end
    end
    P.write(dir, "traces.jsonl", table.concat(lines, "\n") .. "\n")
    if scores then P.write(dir, "scores.jsonl", table.concat(scores, "\n") .. "\n") end
    return assert(analysis.run(assert(results.open(dir))))
  end

  it("counts each grader per input and overall, errors apart, with the reasons of failed grades", function()
    local an = analyse({ { "a", 3 }, { "b", 3 } }, {
      score(1, "g1", true), score(1, "g2", false, "too long"),
      score(2, "g1", true), score(2, "g2", true),
      score(3, "g1", false, "no refund <b>"), score(3, "g2", nil, nil, "judge down: HTTP 500"),
      score(4, "g1", true), score(4, "g2", true),
      score(5, "g1", true), score(5, "g2", true),
      score(6, "g1", true), score(6, "g2", true),
    })
    local a, b = an.by_input.a, an.by_input.b
    assert.are.same({ passed = 2, failed = 1, errors = 0 }, a.grades.g1)
    assert.are.same({ passed = 1, failed = 1, errors = 1 }, a.grades.g2)
    assert.are.same({ "g1", "g2" }, a.grade_names)
    assert.are.same({ passed = 3, failed = 0, errors = 0 }, b.grades.g2)
    local g = an.grades.graders
    assert.are.same({ "g1", 6, 5, 1, 0 }, { g[1].name, g[1].graded, g[1].passed, g[1].failed, g[1].errors })
    assert.are.same({ "g2", 6, 4, 1, 1 }, { g[2].name, g[2].graded, g[2].passed, g[2].failed, g[2].errors })
    assert.are.equal(5 / 6, g[1].pass_rate)
    assert.are.equal(4 / 5, g[2].pass_rate) -- errors left out
    assert.are.same({ "trace_003", "a", "no refund <b>" }, { g[1].fails[1].trace_id, g[1].fails[1].input, g[1].fails[1].reason })
    assert.are.equal("judge down: HTTP 500", g[2].error_examples[1].reason)
    -- the worst input by grades first
    assert.are.same({ "a", "b" }, { an.grades.worst[1].key, an.grades.worst[2].key })
    assert.are.equal(2, an.grades.inputs)
    assert.are.same({ 0, 0 }, { an.grades.ungraded, an.grades.unmatched })
  end)

  it("gives the pass^k of summary.json (gradestats) from the inputs it walks", function()
    local lines, inputs = {}, {}
    local k = 0
    for i = 1, 7 do
      inputs[i] = { "in" .. i, 4 }
      for it = 1, 4 do
        k = k + 1
        lines[#lines + 1] = score(k, "g", (i + it) % 3 ~= 0)
      end
    end
    local an = analyse(inputs, lines)
    local want = assert(gradestats.read(dir .. "/scores.jsonl", 4))[1].pass_hat_k
    local got = an.grades.graders[1].pass_hat_k
    assert.are.equal(4, #got)
    for i = 1, 4 do assert.is_true(math.abs(want[i] - got[i]) < 1e-12, i) end
  end)

  it("passes over lines of traces it does not read, and counts runs without a grade", function()
    local an = analyse({ { "a", 2 }, { "b", 2 } }, {
      score(1, "g", true), score(1, "g", true), -- twice: both counted
      score(3, "g", false), -- trace 2 has none
      "not json", score(4, "g", true), score(9, "g", true), -- a damaged line; a trace never written
    })
    assert.are.same({ passed = 2, failed = 0, errors = 0 }, an.by_input.a.grades.g)
    assert.are.same({ passed = 1, failed = 1, errors = 0 }, an.by_input.b.grades.g)
    assert.are.same({ 1, 1, 1 }, { an.grades.ungraded, an.grades.unmatched, an.grades.damaged })
    assert.matches("scores.jsonl:4: damaged line skipped", an.grades.damage_lines[1])
  end)

  it("keeps only MAX_ROWS inputs and MAX_GRADERS graders, counting the rest", function()
    local saved_rows, saved_graders = grades.MAX_ROWS, grades.MAX_GRADERS
    grades.MAX_ROWS, grades.MAX_GRADERS = 2, 2
    local inputs, lines = {}, {}
    for i = 1, 6 do
      inputs[i] = { "in" .. i, 1 }
      lines[#lines + 1] = score(i, "g" .. i, i ~= 4 and i ~= 5)
    end
    local ok, an = pcall(analyse, inputs, lines)
    grades.MAX_ROWS, grades.MAX_GRADERS = saved_rows, saved_graders
    assert(ok, an)
    assert.are.same({ "in4", "in5" }, { an.grades.worst[1].key, an.grades.worst[2].key })
    assert.are.equal(2, #an.grades.worst)
    local names = {}
    for i, g in ipairs(an.grades.graders) do names[i] = g.name .. "=" .. g.graded end
    assert.are.same({ "g1=1", "g2=1", "(other graders)=4" }, names)
  end)

  it("is not there without scores.jsonl", function()
    local an = analyse({ { "a", 2 } })
    assert.is_nil(an.grades)
    assert.is_nil(an.by_input.a.grades)
  end)
end)
