local recorder = require("fluxloop.recorder")
local P = require("support.project")

describe("fluxloop.recorder", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function trace(id, extra)
    local t = { trace_id = id, input = "in", output = "out", success = true, iteration = 0, metadata = {} }
    for k, v in pairs(extra or {}) do t[k] = v end
    return t
  end

  it("writes one line per trace to each file, observations nested in spans", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    local slot = rec:span_open("agent", "outer", { q = 1 })
    assert.are.equal("trace_001.2", rec:observe("tool", "inner", "a", "b", { k = true }, 1.5))
    rec:span_close(slot, "done", nil, nil)
    rec:observe("event", "after")
    local ms = rec:stop()
    assert.is_true(ms >= 0)
    assert.is_true(rec:write(trace("trace_001", { persona = "p" })))
    assert.is_true(rec:close())

    local sum = P.read_jsonl(dir .. "/trace_summary.jsonl")
    assert.are.equal(1, #sum)
    assert.are.same({ "trace_id", "input", "output", "duration_ms", "iteration", "persona", "success", "error" },
      (function()
        local keys = {}
        for k in P.read(dir .. "/trace_summary.jsonl"):gmatch('"([%w_]+)":') do keys[#keys + 1] = k end
        return keys
      end)())
    local obs = P.read_jsonl(dir .. "/observations.jsonl")
    assert.are.equal(3, #obs)
    assert.are.equal("trace_001.1", obs[1].id)
    assert.are.equal(require("fluxloop.json").null, obs[1].parent_id)
    assert.are.same({ q = 1 }, obs[1].input)
    assert.are.equal("done", obs[1].output)
    assert.are.equal("trace_001.1", obs[2].parent_id)
    assert.are.equal(1.5, obs[2].duration_ms)
    assert.are.same({ k = true }, obs[2].metadata)
    assert.are.equal(require("fluxloop.json").null, obs[3].parent_id)
    local tr = P.read_jsonl(dir .. "/traces.jsonl")[1]
    assert.are.same(obs, tr.observations)
  end)

  it("redact() masks the given strings in every line, as the files hold them (escaped)", function()
    local rec = assert(recorder.open(dir))
    rec:redact({ "s3cret-Value", 'quo"te-Secret1', "ab" })
    rec:begin("trace_001")
    rec:observe("event", "e", "s3cret-Values twice s3cret-Value", nil)
    rec:stop()
    assert.is_true(rec:write(trace("trace_001", { output = { said = 'x quo"te-Secret1 y' },
      metadata = { k = "s3cret-Value" }, input = "ab cd" })))
    assert.is_true(rec:close())
    local t = P.read_jsonl(dir .. "/traces.jsonl")[1]
    assert.are.equal("x *** y", t.output.said)
    assert.are.equal("***", t.metadata.k)
    assert.are.equal("ab cd", t.input) -- too short to mask
    assert.are.equal("***s twice ***", t.observations[1].input)
    assert.are.equal("***s twice ***", P.read_jsonl(dir .. "/observations.jsonl")[1].input)
    assert.are.equal("x *** y", P.read_jsonl(dir .. "/trace_summary.jsonl")[1].output.said)
  end)

  it("writes durations as decimal milliseconds, and a non-finite one as null", function()
    local rec = assert(recorder.open(dir))
    local cases = { { 12.5, "12.5" }, { 0, "0.0" }, { 1 / 3, "0.333333" }, { 2.0000004, "2.0" },
                    { 1234567.0000015, "1234567.000002" }, { -1.25, "-1.25" }, { 0 / 0, "null" },
                    { math.huge, "null" } }
    for i, c in ipairs(cases) do
      rec:begin(("trace_%03d"):format(i))
      rec:stop()
      rec:write(trace(("trace_%03d"):format(i), { duration_ms = c[1] }))
    end
    rec:close()
    local i = 0
    for line in P.read(dir .. "/trace_summary.jsonl"):gmatch("[^\n]+") do
      i = i + 1
      assert.are.equal(cases[i][2], line:match('"duration_ms":([^,]+),'))
    end
    assert.are.equal(#cases, i)
  end)

  it("trace_id pads the trace number to three digits", function()
    assert.are.equal("trace_000", recorder.trace_id(0))
    assert.are.equal("trace_007", recorder.trace_id(7))
    assert.are.equal("trace_042", recorder.trace_id(42))
    assert.are.equal("trace_999", recorder.trace_id(999))
    assert.are.equal("trace_1000000", recorder.trace_id(1000000))
    assert.has_error(function() recorder.trace_id(-1) end)
  end)

  it("writes args_template around the input's JSON as the trace's args, and refuses a broken one", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:stop()
    local template = { '{"data":{"content":', '},"n":1}' }
    rec:write(trace("trace_001", { input = { q = "hi" }, args_template = template }))
    rec:begin("trace_002")
    rec:stop()
    -- A template is checked once, then known by its strings: a new one is checked again.
    local ok, err = pcall(rec.write, rec, trace("trace_002", { args_template = { template[1] .. '"a":\n', "}" } }))
    assert.is_false(ok)
    assert.truthy(err:find("args_template", 1, true))
    ok = pcall(rec.write, rec, trace("trace_002", { args_template = { "{" } }))
    assert.is_false(ok)
    ok = pcall(rec.write, rec, trace("trace_002", { args_template = { template[1], 7 } }))
    assert.is_false(ok)
    rec:close()
    local rows = P.read_jsonl(dir .. "/traces.jsonl")
    assert.are.equal(1, #rows)
    assert.are.same({ data = { content = { q = "hi" } }, n = 1 }, rows[1].args)
  end)

  it("writes replay's callback_messages and replay_line after args, and extra's fields after them", function()
    local json = require("fluxloop.json")
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:stop()
    rec:write(trace("trace_001", { args = { a = 1 }, callback_messages = { send = json.array({ "hi" }) },
      replay_line = 3, extra = { zz = true } }))
    rec:begin("trace_002")
    rec:stop()
    rec:write(trace("trace_002", { callback_messages = { send = json.array({}) }, replay_line = 1 }))
    rec:begin("trace_003")
    rec:stop()
    rec:write(trace("trace_003"))
    rec:close()
    local rows, text = P.read_jsonl(dir .. "/traces.jsonl")
    assert.are.same({ send = { "hi" } }, rows[1].callback_messages)
    assert.are.equal(3, rows[1].replay_line)
    assert.truthy(text:find('"args":{"a":1},"callback_messages":{"send":["hi"]},"replay_line":3,"zz":true}', 1, true))
    assert.truthy(text:find('"callback_messages":{"send":[]},"replay_line":1}', 1, true))
    assert.is_nil(rows[3].replay_line)
    assert.is_nil(rows[3].callback_messages)
  end)

  it("writes shared's fields into both files, extra's into traces.jsonl only", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:stop()
    rec:write(trace("trace_001", { shared = { turn_count = 2, termination_reason = "done" }, extra = { logs = { "l" } } }))
    rec:begin("trace_002")
    rec:stop()
    rec:write(trace("trace_002", { shared = {} }))
    rec:close()
    local sum, sum_text = P.read_jsonl(dir .. "/trace_summary.jsonl")
    local rows, text = P.read_jsonl(dir .. "/traces.jsonl")
    assert.are.equal(2, sum[1].turn_count)
    assert.are.equal("done", sum[1].termination_reason)
    assert.is_nil(sum[1].logs)
    assert.truthy(sum_text:find('"error":null,"t[%w_":]+,"t[%w_":]+}\n'))
    assert.truthy(text:find('"observations":%[%],"t[%w_":]+,"t[%w_":]+,"logs":%["l"%]}'))
    assert.are.equal(2, rows[1].turn_count)
    assert.is_nil(rows[2].turn_count)
    assert.truthy(sum_text:find('"error":null}\n', 1, true), "an empty shared adds nothing")
  end)

  it("turn(n) stamps the observations that follow with turn_index; begin() stops it", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:observe("event", "before")
    rec:turn(1)
    local slot = rec:span_open("agent", "reply", "q")
    rec:span_close(slot, "a", nil, nil)
    rec:turn(2)
    rec:observe("tool", "second")
    rec:stop()
    rec:write(trace("trace_001"))
    rec:begin("trace_002")
    rec:observe("event", "next trace")
    rec:stop()
    rec:write(trace("trace_002"))
    rec:close()
    local obs = P.read_jsonl(dir .. "/observations.jsonl")
    assert.are.same({ "nil", "1", "2", "nil" }, (function()
      local t = {}
      for i, o in ipairs(obs) do t[i] = tostring(o.turn_index) end
      return t
    end)())
    assert.has_error(function() rec:turn(-1) end)
  end)

  it("methods refuse a self that is not a recorder", function()
    local rec = assert(recorder.open(dir))
    for _, bad in ipairs({ {}, io.stdout, 1 }) do
      local ok, err = pcall(rec.begin, bad, "trace_001")
      assert.is_false(ok)
      assert.truthy(err:find("fluxloop.Recorder expected", 1, true))
    end
    rec:close()
  end)

  it("closes spans left open when the run stops", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:span_open("span", "never closed")
    rec:stop()
    rec:write(trace("trace_001"))
    rec:close()
    local ob = P.read_jsonl(dir .. "/observations.jsonl")[1]
    assert.truthy(ob.error:find("not closed", 1, true))
  end)

  it("writes the full error object to traces.jsonl and its message to trace_summary.jsonl", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:stop()
    rec:write(trace("trace_001", { success = false, output = nil,
      error = { type = "error", message = "boom", traceback = "tb" } }))
    rec:close()
    assert.are.equal("boom", P.read_jsonl(dir .. "/trace_summary.jsonl")[1].error)
    assert.are.same({ type = "error", message = "boom", traceback = "tb" }, P.read_jsonl(dir .. "/traces.jsonl")[1].error)
  end)

  it("leaves no partial line when a value cannot be encoded", function()
    local rec = assert(recorder.open(dir))
    local cyclic = {}
    cyclic.self = cyclic
    rec:begin("trace_001")
    rec:stop()
    assert.has_error(function() rec:write(trace("trace_001", { output = cyclic })) end)
    rec:write(trace("trace_001"))
    rec:close()
    assert.are.equal(1, #P.read_jsonl(dir .. "/traces.jsonl"))
    assert.are.equal(1, #P.read_jsonl(dir .. "/trace_summary.jsonl"))
  end)

  it("cuts off a half-written line when the encoder raises through a metamethod", function()
    local rec = assert(recorder.open(dir))
    rec:begin("trace_001")
    rec:observe("event", "kept")
    local co = coroutine.create(print) -- threads encode through __tostring
    debug.setmetatable(co, { __tostring = function() error("tostring failed") end })
    local ok_obs = pcall(rec.observe, rec, "event", "bad", { f = co })
    rec:stop()
    local ok_write = pcall(rec.write, rec, trace("trace_001", { output = { a = "x", f = co } }))
    debug.setmetatable(co, nil)
    assert.is_false(ok_obs)
    assert.is_false(ok_write)
    rec:begin("trace_002")
    rec:observe("event", "second")
    rec:stop()
    rec:write(trace("trace_002"))
    rec:close()
    local rows = P.read_jsonl(dir .. "/traces.jsonl")
    assert.are.equal(1, #rows)
    assert.are.equal("trace_002", rows[1].trace_id)
    local obs = P.read_jsonl(dir .. "/observations.jsonl")
    assert.are.equal(1, #obs)
    assert.are.equal("trace_002.1", obs[1].id)
  end)

  it("raises inside the agent when an observation cannot be encoded, keeping earlier ones", function()
    local rec = assert(recorder.open(dir))
    local cyclic = {}
    cyclic[1] = cyclic
    rec:begin("trace_001")
    rec:observe("event", "fine")
    assert.has_error(function() rec:observe("event", "bad", cyclic) end)
    rec:stop()
    rec:write(trace("trace_001"))
    rec:close()
    assert.are.equal(1, #P.read_jsonl(dir .. "/observations.jsonl"))
  end)

  it("computes exact percentiles over every run", function()
    local rec = assert(recorder.open(dir))
    for i = 1, 100 do
      rec:begin("t")
      rec:write(trace(("trace_%03d"):format(i), { duration_ms = i, success = i % 10 ~= 0 }))
    end
    local s = rec:stats()
    rec:close()
    assert.are.equal(100, s.count)
    assert.are.equal(90, s.successful)
    assert.are.equal(10, s.failed)
    assert.are.equal(1, s.min)
    assert.are.equal(100, s.max)
    assert.are.equal(50.5, s.mean)
    assert.are.equal(50.5, s.p50)
    assert.is_true(math.abs(s.p90 - 90.1) < 1e-9)
    assert.is_true(math.abs(s.p99 - 99.01) < 1e-9)
    assert.is_true(math.abs(s.stddev - 28.866070047722) < 1e-6)
  end)

  it("reports a folder it cannot write to as fail, message, code", function()
    local rec, msg, code = recorder.open(dir .. "/missing/sub")
    assert.is_nil(rec)
    assert.truthy(msg:find("trace_summary.jsonl", 1, true))
    assert.are.equal("EIO", code)
  end)

  -- Past 16 MB a file is synced by the flusher thread while writes go on; close must
  -- stop that thread before it closes the files, and no line may be torn or reordered.
  it("keeps every line whole and in order when files grow past their sync points", function()
    local rec = assert(recorder.open(dir))
    local big = ("z"):rep(100000)
    for i = 1, 400 do
      local id = ("trace_%03d"):format(i)
      rec:begin(id)
      rec:stop()
      assert.is_true(rec:write(trace(id, { output = big .. i })))
    end
    assert.is_true(rec:close())
    local rows = P.read_jsonl(dir .. "/traces.jsonl")
    assert.are.equal(400, #rows)
    for i, row in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(i), row.trace_id)
      assert.are.equal(big .. i, row.output)
    end
    assert.are.equal(400, #P.read_jsonl(dir .. "/trace_summary.jsonl"))
  end)

  it("refuses use after close", function()
    local rec = assert(recorder.open(dir))
    rec:close()
    assert.has_error(function() rec:begin("x") end, "attempt to use a closed recorder")
  end)
end)
