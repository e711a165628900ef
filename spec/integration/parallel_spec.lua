-- --parallel, --timeout and Ctrl-C, through the real binary.
local P = require("support.project")
local json = require("fluxloop.json")

local function inputs(n)
  local lines = { "generated_inputs:" }
  for i = 1, n do lines[#lines + 1] = ("  - input: \"q%d\""):format(i) end
  return table.concat(lines, "\n") .. "\n"
end

local function strip_timing(text)
  return (text:gsub('"duration_ms":[%d.e+-]+', ""):gsub('"%w+_at":"[^"]*"', ""))
end

local function ids(exp, file)
  local list = {}
  for _, row in ipairs(P.read_jsonl(exp .. "/" .. (file or "trace_summary.jsonl"))) do list[#list + 1] = row.trace_id end
  return list
end

local SLEEPY = [[
local clock = require("fluxloop.clock")
return { run = function(input, ctx)
  ctx:observe{ name = "step", input = input }
  clock.sleep(tonumber(input:match("%d+")) % 3)
  return { echo = input, n = ctx.iteration }
end }
]]

describe("--parallel", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("gives the same files with 1 and 16 workers, apart from timing", function()
    dir = P.project({ iterations = 4, inputs = inputs(25), agent = SLEEPY })
    local c1, _, e1 = P.run(dir, "run experiment --quiet --parallel 1 --output-dir one")
    local c16, _, e16 = P.run(dir, "run experiment --quiet --parallel 16 --output-dir many")
    assert.are.equal(0, c1, e1)
    assert.are.equal(0, c16, e16)
    local a, b = P.experiments(dir, "one")[1], P.experiments(dir, "many")[1]
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
      assert.are.equal(strip_timing(P.read(a .. "/" .. f)), strip_timing(P.read(b .. "/" .. f)), f)
    end
    local s = P.read_json(b .. "/summary.json")
    assert.are.equal(100, s.total_traces)
    assert.are.equal(16, s.parallel)
  end)

  it("an agent that fails in every worker at once: every run is a failed trace, in order", function()
    dir = P.project({ iterations = 5, inputs = inputs(20),
      agent = "return { run = function(input) error('down: ' .. input) end }" })
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 8")
    assert.are.equal(1, code, err)
    local exp = P.experiments(dir)[1]
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(100, #rows)
    for k, row in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(k), row.trace_id)
      assert.are.equal(false, row.success)
    end
    assert.are.equal(100, P.read_json(exp .. "/summary.json").failed)
  end)

  it("runs hooks in every worker", function()
    dir = P.project({ iterations = 3, inputs = inputs(10) })
    P.write(dir, "hooks/h.lua", "return { after_run = function(run, trace) trace.metadata.k = run.k end }")
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 4 --hooks hooks/h.lua")
    assert.are.equal(0, code, err)
    for k, t in ipairs(P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")) do
      assert.are.equal(k, t.metadata.k)
    end
  end)

  it("refuses --parallel 0, negative and non-numeric values", function()
    dir = P.project()
    for _, v in ipairs({ "0", "-2", "four" }) do
      local code, _, err = P.run(dir, "run experiment --parallel " .. v)
      assert.are.equal(2, code, v)
      assert.truthy(err:find("--parallel", 1, true), err)
    end
    P.write(dir, "configs/simulation.yaml", "runner: {target: agents.agent:run, parallel: 0}\n")
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code)
    assert.truthy(err:find("runner.parallel", 1, true), err)
  end)
end)

describe("--timeout", function()
  local dir
  after_each(function() P.remove(dir) end)

  local STUCK = [[
local clock = require("fluxloop.clock")
return { run = function(input)
  if input == "q1" then while true do end end
  if input == "q2" then while true do pcall(function() while true do end end) end end
  if input == "q3" then clock.sleep(60000) end
  if input == "q4" then while true do pcall(clock.sleep, 1000) end end
  return "fine"
end }
]]

  for _, workers in ipairs({ 1, 3 }) do
    it(("stops runs over the limit, even through pcall, with %d worker(s)"):format(workers), function()
      dir = P.project({ iterations = 1, inputs = inputs(5), agent = STUCK })
      local code, _, err = P.run(dir, ("run experiment --quiet --timeout 150 --parallel %d"):format(workers))
      assert.are.equal(1, code, err)
      local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
      for i = 1, 4 do
        assert.are.equal("timeout", rows[i].error.type, rows[i].trace_id)
        assert.truthy(rows[i].error.message:find("150 ms", 1, true))
        assert.is_true(rows[i].duration_ms >= 150)
      end
      assert.are.equal("fine", rows[5].output)
    end)
  end

  it("runner.timeout_ms must be an integer >= 0", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  timeout_ms: -5\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code)
    assert.truthy(err:find("runner.timeout_ms", 1, true), err)
    P.write(dir, "configs/simulation.yaml", "runner:\n  target: agents.agent:run\n  timeout_ms: soon\n")
    code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code)
    assert.truthy(err:find("runner.timeout_ms", 1, true), err)
  end)
end)

describe("Ctrl-C", function()
  local dir
  after_each(function() P.remove(dir) end)

  local SLOW_FIRST = [[
local clock = require("fluxloop.clock")
return { run = function(input) if input == "q1" then clock.sleep(800) end return "done " .. input end }
]]

  it("during the first run: that run finishes, nothing new starts, exit 130", function()
    dir = P.project({ iterations = 1, inputs = inputs(5), agent = SLOW_FIRST })
    local code, _, err = P.run_signalled(dir, "run experiment --no-progress", { 0.3 })
    assert.are.equal(130, code, err)
    local exp = P.experiments(dir)[1]
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(true, s.interrupted)
    assert.are.equal(1, s.total_traces)
    assert.are.equal(5, s.planned_traces)
    assert.are.same({ "trace_001" }, ids(exp))
    assert.truthy(err:find("Interrupted: 1 run, 1 succeeded", 1, true), err)
    -- The closing line ends with the command that goes on, and that command does.
    local line = err:match("[^\n]*Interrupted: [^\n]*")
    local command = line:match("; go on with: (fluxloop run experiment %-%-resume [^\n]+)$")
    assert.are.equal("fluxloop run experiment --resume experiments/" .. exp:match("[^/]+$"), command, line)
    local code2, _, err2 = P.run(dir, command:gsub("^fluxloop ", "") .. " --quiet")
    assert.are.equal(0, code2, err2)
    assert.are.equal(5, P.read_json(exp .. "/summary.json").total_traces)
  end)

  it("during the last run: every trace is written and the summary says interrupted", function()
    dir = P.project({ iterations = 1, inputs = inputs(3),
      agent = "local c = require('fluxloop.clock')\nreturn { run = function(i) if i == 'q3' then c.sleep(800) end return i end }" })
    local code = P.run_signalled(dir, "run experiment --quiet", { 0.3 })
    assert.are.equal(130, code)
    local exp = P.experiments(dir)[1]
    assert.are.same({ "trace_001", "trace_002", "trace_003" }, ids(exp))
    assert.are.equal(true, P.read_json(exp .. "/summary.json").interrupted)
  end)

  it("stops an agent that loops forever after the grace period, even without a timeout", function()
    dir = P.project({ iterations = 1, inputs = inputs(3),
      agent = "return { run = function(i) if i == 'q2' then while true do end end return i end }" })
    for _, workers in ipairs({ 1, 2 }) do
      local code = P.run_signalled(dir, "run experiment --quiet --parallel " .. workers .. " --output-dir w" .. workers, { 0.3 })
      assert.are.equal(130, code)
      local exp = P.experiments(dir, "w" .. workers)[1]
      local s = P.read_json(exp .. "/summary.json")
      assert.are.equal(true, s.interrupted)
      for _, id in ipairs(ids(exp)) do assert.are_not.equal("trace_002", id, "the stopped run is written nowhere") end
    end
  end)

  it("a second Ctrl-C exits at once, leaving only whole lines", function()
    dir = P.project({ iterations = 200, inputs = inputs(5),
      agent = "return { run = function(i) if i == 'q3' then while true do end end return i end }" })
    local clock = require("fluxloop.clock")
    local t0 = clock.now_ns()
    local code = P.run_signalled(dir, "run experiment --quiet --parallel 2", { 0.4, 0.6 })
    local seconds = (clock.now_ns() - t0) / 1e9
    assert.are.equal(130, code)
    -- The first Ctrl-C alone would wait out its 2 s grace (until 2.4 s) for the busy run.
    assert.is_true(seconds < 1.8, ("exited after %.2f s"):format(seconds))
    local exp = P.experiments(dir)[1]
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
      local text = P.read(exp .. "/" .. f) or ""
      assert.is_true(text == "" or text:sub(-1) == "\n", f .. " ends with a whole line")
      P.read_jsonl(exp .. "/" .. f) -- every line decodes
    end
  end)
end)
