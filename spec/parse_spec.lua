-- parse_spec.lua - fluxloop.parse: the markdown of a trace, the per_trace.jsonl record, UTC arithmetic.
local parse = require("fluxloop.parse")
local json = require("fluxloop.json")

describe("fluxloop.parse", function()
  it("adds milliseconds to ISO times across days, months and years", function()
    assert.are.equal("2026-11-25T17:00:00.001512Z", parse.iso_plus("2026-11-25T17:00:00.000012Z", 1.5))
    assert.are.equal("2027-01-01T00:00:00.000500Z", parse.iso_plus("2026-12-31T23:59:59.999500Z", 1))
    assert.are.equal("2024-03-01T00:00:00.000000Z", parse.iso_plus("2024-02-29T23:59:59.000000Z", 1000))
    assert.is_nil(parse.iso_plus("yesterday", 1))
  end)

  it("writes front matter YAML can read, and fences that backticks in the text cannot close", function()
    local trace = { trace_id = "trace_007", iteration = 2, persona = "a: b", duration_ms = 12.345, success = false,
      input = "in ``` put", output = json.null,
      error = { type = "error", message = "boom\nsecond line", traceback = "boom\nstack traceback:\n\t[C]: in ?" } }
    local md = parse.markdown(trace, {})
    local front = md:match("^%-%-%-\n(.-)\n%-%-%-\n")
    local yaml = require("fluxloop.yaml").decode(front)
    assert.are.same({ trace_id = "trace_007", iteration = 2, persona = "a: b", duration_ms = 12.35, success = false }, yaml)
    assert.truthy(md:find('````json\n"in ``` put"\n````', 1, true), md)
    assert.truthy(md:find("- **Message**: boom second line\n", 1, true))
    assert.truthy(md:find("```text\nboom\nstack traceback:\n\t[C]: in ?\n```", 1, true))
    assert.truthy(md:find("_No observations._", 1, true))
  end)

  it("makes the per_trace.jsonl record of a decoded trace", function()
    local rec = parse.record({ trace_id = "trace_001", iteration = 0, input = "q", output = { a = 1 }, duration_ms = 1.5,
      success = true }, json.array({}))
    assert.are.same({ a = 1 }, rec.output)
    assert.are.same(rec.output, rec.final_output)
    assert.are.equal(json.null, rec.persona)
    assert.are.equal("trace_001", rec.summary.trace_id)
    assert.are.equal(0, rec.metrics.observation_count)
  end)
end)

describe("fluxloop.parse timeline", function()
  it("shows a failed observation as level ERROR with its error, in per_trace.jsonl and the markdown", function()
    local trace = { trace_id = "trace_001", observations = {
      { id = "trace_001.1", parent_id = json.null, type = "tool", name = "lookup", started_at = "2026-11-25T17:00:00.000000Z",
        duration_ms = 2, error = "KeyError: 'order_id'" },
      { id = "trace_001.2", parent_id = json.null, type = "event", name = "fine", started_at = "2026-11-25T17:00:00.000100Z",
        duration_ms = 0 },
    } }
    local steps = parse.timeline(trace)
    assert.are.same({ "ERROR", "KeyError: 'order_id'" }, { steps[1].level, steps[1].error })
    assert.are.same({ "DEFAULT" }, { steps[2].level, steps[2].error })
    local md = parse.markdown({ trace_id = "trace_001", iteration = 0, success = true, input = "q", output = "a" }, steps)
    assert.truthy(md:find("- Level: ERROR\n- Error: KeyError: 'order_id'\n", 1, true), md)
    assert.truthy(md:find("- Level: DEFAULT\n\nInput:", 1, true), md)
  end)
end)
