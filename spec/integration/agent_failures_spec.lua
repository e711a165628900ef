-- Run problems fail that run only: the experiment goes on, the failure is a trace, exit code 1.
local P = require("support.project")
local json = require("fluxloop.json")

local function run_agent(body, inputs)
  local dir = P.project({ iterations = 1, agent = body, inputs = inputs })
  local code, _, err = P.run(dir, "run experiment --quiet")
  local exp = P.experiments(dir)[1]
  return dir, code, err, exp
end

describe("agent failures", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("an agent that raises fails that run only, with message and traceback", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input)
  if input == "hello" then error("model timed out") end
  return "ok " .. input
end }
]])
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(false, rows[1].success)
    assert.are.equal(json.null, rows[1].output)
    assert.truthy(rows[1].error:find("model timed out", 1, true))
    assert.are.equal(true, rows[2].success)
    local traces = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal("error", traces[1].error.type)
    assert.truthy(traces[1].error.traceback:find("stack traceback", 1, true))
    assert.truthy(traces[1].error.message:find("agent.lua:2:", 1, true))
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(1, s.failed)
    assert.are.equal(1, s.successful)
  end)

  it("an agent may raise a typed error table", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[return { run = function() error({ type = "rate_limit", message = "429" }) end }]])
    assert.are.equal(1, code, err)
    local t = P.read_jsonl(exp .. "/traces.jsonl")[1]
    assert.are.equal("rate_limit", t.error.type)
    assert.are.equal("429", t.error.message)
  end)

  it("returning nil is a failed run", function()
    local code, err, exp
    dir, code, err, exp = run_agent("return { run = function() end }")
    assert.are.equal(1, code, err)
    local t = P.read_jsonl(exp .. "/traces.jsonl")[1]
    assert.are.equal("no_output", t.error.type)
    assert.truthy(t.error.message:find("returned nothing", 1, true))
  end)

  it("a number output is stored as a JSON number; a function fails the run", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input) if input == "hello" then return 42 end return print end }]])
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(42, rows[1].output)
    assert.are.equal("invalid_output", rows[2].error.type)
    assert.truthy(rows[2].error.message:find("returned a function", 1, true))
  end)

  it("os.exit in an agent fails that run; the experiment and its other runs go on", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input) if input == "hello" then os.exit(3) end return input end }]])
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(2, #rows)
    assert.are.equal("exit", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("called os.exit(3), which would end the whole experiment", 1, true))
    assert.truthy(rows[1].error.traceback:find("agent.lua:1", 1, true), rows[1].error.traceback)
    assert.are.equal(true, rows[2].success)
  end)

  it("an error table of type 'interrupted' fails that run only: only a signal interrupts", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input)
  if input == "hello" then error({ type = "interrupted", message = "the agent's own word" }) end
  return input
end }]])
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(2, #rows)
    assert.are.equal("interrupted", rows[1].error.type)
    assert.are.equal(true, rows[2].success)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(false, s.interrupted)
    assert.are.equal(2, s.total_traces)
  end)

  it("os.exit kept in a local at module load still fails only the run that calls it", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
local exit = os.exit
local quit = require("os").exit
return { run = function(input)
  if input == "hello" then exit(3) end
  if input == "world" then quit(4) end
  return input
end }]], "- input: hello\n- input: world\n- input: fine\n")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(3, #rows)
    assert.are.equal("exit", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("called os.exit(3)", 1, true), rows[1].error.message)
    assert.are.equal("exit", rows[2].error.type)
    assert.are.equal(true, rows[3].success)
  end)

  for _, flags in ipairs({ "", " --parallel 2" }) do
    it("a coroutine made at module load cannot spin past --timeout" .. flags, function()
      local body = [[
local spin = coroutine.create(function() while true do end end)
local spin_wrapped = coroutine.wrap(function() local n = 0 while true do n = n + 1 end end)
return { run = function(input)
  if input == "hello" then coroutine.resume(spin) end
  if input == "world" then spin_wrapped() end
  return input
end }]]
      dir = P.project({ iterations = 1, agent = body, inputs = "- input: hello\n- input: world\n- input: fine\n" })
      local code, _, err = P.run(dir, "run experiment --quiet --timeout 300" .. flags, "timeout 60")
      local exp = P.experiments(dir)[1]
      assert.are.equal(1, code, err)
      local rows = P.read_jsonl(exp .. "/traces.jsonl")
      assert.are.equal(3, #rows)
      assert.are.equal("timeout", rows[1].error.type)
      assert.are.equal("timeout", rows[2].error.type)
      assert.are.equal(true, rows[3].success)
    end)
  end

  it("a NaN or infinite output fails the run: JSON cannot hold it", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input) if input == "hello" then return 0/0 end return math.huge end }]])
    assert.are.equal(1, code, err)
    for _, t in ipairs(P.read_jsonl(exp .. "/traces.jsonl")) do
      assert.are.equal(false, t.success)
      assert.are.equal("invalid_output", t.error.type)
      assert.truthy(t.error.message:find("which JSON cannot hold", 1, true), t.error.message)
    end
  end)

  it("an output that cannot be JSON (a cycle) fails that run with a reason", function()
    local code, err, exp
    dir, code, err, exp = run_agent("return { run = function() local t = {} t.self = t return t end }")
    assert.are.equal(1, code, err)
    local t = P.read_jsonl(exp .. "/traces.jsonl")[1]
    assert.are.equal("invalid_output", t.error.type)
  end)

  it("invalid UTF-8 in outputs and observations still gives valid JSON lines", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input, ctx)
  ctx:observe{ name = "bad\xff", input = "\xc3\x28", output = "ok\0nul" }
  return "caf\xe9 \xf0\x9f\x98\x80 end"
end }]])
    assert.are.equal(0, code, err)
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
      local rows, text = P.read_jsonl(exp .. "/" .. f)
      assert.is_true(utf8.len(text) ~= nil, f .. " is valid UTF-8")
      assert.are.equal(f == "observations.jsonl" and 2 or 2, #rows)
    end
    local row = P.read_jsonl(exp .. "/trace_summary.jsonl")[1]
    assert.are.equal("caf\u{FFFD} \u{1F600} end", row.output)
    local ob = P.read_jsonl(exp .. "/observations.jsonl")[1]
    assert.are.equal("ok\0nul", ob.output)
  end)

  it("a 10 MB output is stored whole", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[return { run = function() return ("x"):rep(10 * 1024 * 1024) end }]],
      "- input: big\n")
    assert.are.equal(0, code, err)
    local row = P.read_jsonl(exp .. "/traces.jsonl")[1]
    assert.are.equal(10 * 1024 * 1024, #row.output)
  end)

  it("an error inside a span closes the span with the error and fails the run", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input, ctx)
  return ctx:span("call_model", function() error("boom") end)
end }]], "- input: a\n")
    assert.are.equal(1, code, err)
    local ob = P.read_jsonl(exp .. "/observations.jsonl")[1]
    assert.are.equal("call_model", ob.name)
    assert.truthy(ob.error:find("boom", 1, true))
  end)

  it("an unknown observation type fails the run with the list of types", function()
    local code, err, exp
    dir, code, err, exp = run_agent([[
return { run = function(input, ctx) ctx:observe{ type = "llm", name = "x" } return "x" end }]], "- input: a\n")
    assert.are.equal(1, code, err)
    local t = P.read_jsonl(exp .. "/traces.jsonl")[1]
    assert.truthy(t.error.message:find("unknown observation type 'llm'", 1, true), t.error.message)
  end)
end)
