local output = require("fluxloop.output")
local P = require("support.project")

describe("fluxloop.output", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("never reuses an experiment folder", function()
    local wall = 1795626000 * 1000000000
    local a = assert(output.create_dir(dir .. "/exp", "x", wall))
    local b = assert(output.create_dir(dir .. "/exp", "x", wall))
    assert.are_not.equal(a, b)
    assert.are.equal(a .. "_2", b)
  end)

  it("writes summary.json with the documented keys first, in order, then the rest sorted", function()
    local summary = { zeta = { b = 1, a = "x\ny" }, failed = 1, total_traces = 3, successful = 2,
      avg_duration_ms = 1.5, started_at = "s", completed_at = "c", name = "n", alpha = true,
      duration_ms = { stddev = 0.5, max = 2, min = 1, mean = 1.5, p50 = 1, p90 = 2, p95 = 2, p99 = 2 } }
    assert(output.write_summary(dir .. "/summary.json", summary))
    local text = P.read(dir .. "/summary.json")
    local keys = {}
    for k in text:gmatch('\n%s*"([%w_]+)":') do keys[#keys + 1] = k end
    assert.are.same({ "name", "total_traces", "successful", "failed", "avg_duration_ms", "started_at",
      "completed_at", "duration_ms", "min", "mean", "p50", "p90", "p95", "p99", "max", "stddev",
      "alpha", "zeta", "a", "b" }, keys)
    assert.are.same(summary, require("fluxloop.json").decode(text))
    assert.truthy(text:find('\n  "zeta": {\n    "a": "x\\ny",\n    "b": 1\n  }\n}\n$'), text)
  end)

  it("writes files whole", function()
    assert.is_true(output.write_json(dir .. "/s.json", { a = 1 }))
    assert.are.equal("{\n  \"a\": 1\n}\n", P.read(dir .. "/s.json"))
  end)
end)
