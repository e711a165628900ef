-- analysis_spec.lua - fluxloop.analysis over a hand-written traces.jsonl: counts, consistency,
-- failure groups (bounded), the slowest runs.
local analysis = require("fluxloop.analysis")
local results = require("fluxloop.results")
local json = require("fluxloop.json")
local P = require("support.project")

local function trace(k, input, output, ms, err)
  return json.encode({ trace_id = ("trace_%03d"):format(k), input = input, output = output or json.null, duration_ms = ms,
    iteration = k % 3, persona = input == "a" and "p1" or json.null, success = err == nil,
    error = err and { type = err[1], message = err[2], traceback = "tb " .. err[2] } or json.null })
end

describe("fluxloop.analysis", function()
  local dir
  after_each(function() P.remove(dir) end)

  local function analyse(lines)
    dir = P.new()
    P.write(dir, "traces.jsonl", table.concat(lines, "\n") .. "\n")
    return assert(analysis.run(assert(results.open(dir))))
  end

  it("counts per input and persona, with consistency and exact percentiles", function()
    local an = analyse({
      trace(1, "a", "x", 1), trace(2, "a", "x", 2), trace(3, "a", "y", 3), trace(4, "a", nil, 10, { "error", "boom" }),
      trace(5, "b", { k = 1 }, 5), trace(6, "b", { k = 1 }, 7),
    })
    assert.are.same({ 6, 5, 1 }, { an.total, an.ok, an.failed })
    local a, b = an.by_input.a, an.by_input.b
    assert.are.same({ 4, 3, 2 }, { a.n, a.ok, a.distinct })
    assert.are.equal(2 / 3, a.top_share)
    assert.are.same({ 1, 1 }, { b.distinct, b.top_share })
    assert.are.equal(2.5, a.p50)
    assert.are.equal("p1", an.personas[1].key)
    assert.are.equal("(none)", an.personas[2].key)
    assert.are.equal("trace_004", an.slowest[1].trace_id)
    assert.are.equal("trace_006", an.slowest[2].trace_id)
    local f = an.failures[1]
    assert.are.same({ "error", "boom", 1, "tb boom", "trace_004" }, { f.type, f.message, f.count, f.traceback, f.trace_id })
    assert.are.same({ "a" }, f.input_list)
  end)

  it("stops counting new outputs of an input past MAX_OUTPUTS (memory stays flat when all differ)", function()
    local saved = analysis.MAX_OUTPUTS
    analysis.MAX_OUTPUTS = 2
    local an = analyse({ trace(1, "a", "x", 1), trace(2, "a", "y", 1), trace(3, "a", "z", 1), trace(4, "a", "x", 1) })
    analysis.MAX_OUTPUTS = saved
    local a = an.by_input.a
    assert.are.same({ 2, 1, true, 2 }, { a.distinct, a.untracked, a.saturated, a.top })
    assert.are.equal(0.5, a.top_share)
  end)

  it("groups failures by type and message, most frequent first, and bounds the groups", function()
    local saved = analysis.MAX_GROUPS
    analysis.MAX_GROUPS = 2
    local an = analyse({
      trace(1, "a", nil, 1, { "timeout", "over 5 ms" }), trace(2, "b", nil, 1, { "error", "e1" }),
      trace(3, "c", nil, 1, { "error", "e1" }), trace(4, "a", nil, 1, { "error", "e2 id 4" }),
      trace(5, "a", nil, 1, { "error", "e3 id 5" }),
    })
    analysis.MAX_GROUPS = saved
    assert.are.equal(3, #an.failures)
    assert.are.same({ "error", "e1", 2 }, { an.failures[1].type, an.failures[1].message, an.failures[1].count })
    assert.are.same({ "b", "c" }, an.failures[1].input_list)
    assert.are.same({ "(other messages)", 2 }, { an.failures[2].message, an.failures[2].count })
    assert.are.equal("timeout", an.failures[3].type)
  end)

  it("keeps only the rows a report shows, however many inputs, and counts them all", function()
    local saved_rows, saved_chart = analysis.MAX_ROWS, analysis.CHART_ROWS
    analysis.MAX_ROWS, analysis.CHART_ROWS = 3, 2
    local lines, k = {}, 0
    for i = 1, 50 do
      for _ = 1, 2 do
        k = k + 1
        lines[#lines + 1] = trace(k, "in" .. i, "x", i, (i == 7 or i == 30) and { "error", "e" } or nil)
      end
    end
    local an = analyse(lines)
    analysis.MAX_ROWS, analysis.CHART_ROWS = saved_rows, saved_chart
    assert.are.equal(50, an.input_count)
    assert.are.same({ "in30", "in7", "in50" }, { an.worst[1].key, an.worst[2].key, an.worst[3].key })
    assert.are.same({ "in50", "in49" }, { an.chart[1].key, an.chart[2].key })
    assert.is_nil(an.by_input.in20)
    assert.are.equal(100, an.total)
  end)

  it("feeds every run to the accumulators of analysis.accumulators, input by input", function()
    local seen = {}
    local kind = { new = function()
      local acc = { runs = 0, all = 0 }
      function acc:add(run) self.runs, self.all = self.runs + 1, self.all + 1 seen[#seen + 1] = run.trace_id end
      function acc:finish_input(row) row.counted = self.runs self.runs = 0 end
      function acc:result(an) an.counted_all = self.all end
      return acc
    end }
    analysis.accumulators[#analysis.accumulators + 1] = kind
    local ok, an = pcall(analyse, { trace(1, "a", "x", 1), trace(2, "a", "x", 1), trace(3, "b", "y", 1) })
    table.remove(analysis.accumulators)
    assert(ok, an)
    assert.are.same({ 2, 1, 3 }, { an.by_input.a.counted, an.by_input.b.counted, an.counted_all })
    assert.are.same({ "trace_001", "trace_002", "trace_003" }, seen)
  end)

  it("says why there is nothing to read", function()
    local an, err = (function()
      dir = P.new()
      P.write(dir, "traces.jsonl", "not json\n")
      return analysis.run(assert(results.open(dir)))
    end)()
    assert.is_nil(an)
    assert.matches("has no readable trace: all 1 lines of traces.jsonl are damaged", err)
  end)
end)
