-- --resume and --retry-failed, after Ctrl-C, kill -9 and torn lines; and a full disk.
local P = require("support.project")

local function inputs(n)
  local lines = { "generated_inputs:" }
  for i = 1, n do lines[#lines + 1] = ("  - input: \"q%d\""):format(i) end
  return table.concat(lines, "\n") .. "\n"
end

-- Every file holds each planned trace exactly once, in order, as whole JSON lines.
local function assert_complete(exp, planned)
  for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
    local rows = P.read_jsonl(exp .. "/" .. f)
    assert.are.equal(planned, #rows, f)
    for k, row in ipairs(rows) do assert.are.equal(("trace_%03d"):format(k), row.trace_id, f) end
  end
end

local SLOW = [[
local clock = require("fluxloop.clock")
return { run = function(input, ctx)
  ctx:observe{ name = "step", input = input }
  clock.sleep(3)
  return "ok " .. input
end }
]]

describe("--resume", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("finished traces reach the disk while a long run goes on, so kill -9 keeps them", function()
    dir = P.project({ iterations = 3, inputs = "- input: q\n", agent = [[
local clock = require("fluxloop.clock")
return { run = function(input, ctx) if ctx.iteration == 2 then clock.sleep(5000) end return input end }]] })
    P.run_signalled(dir, "run experiment --quiet", { 1.0 }, "KILL")
    local exp = P.experiments(dir)[1]
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl" }) do
      assert.are.equal(2, #P.read_jsonl(exp .. "/" .. f), f)
    end
  end)

  for _, workers in ipairs({ 1, 4 }) do
    it(("after kill -9 (%d worker(s)) runs only what is missing, and the union is the whole plan"):format(workers), function()
      dir = P.project({ iterations = 100, inputs = inputs(10), agent = SLOW })
      local args = "run experiment --quiet --parallel " .. workers
      P.run_signalled(dir, args, { 0.3 }, "KILL")
      local exp = P.experiments(dir)[1]
      local before = #P.read_jsonl(exp .. "/trace_summary.jsonl")
      assert.is_true(before < 1000, "the kill came before the end")
      local code, _, err = P.run(dir, args .. " --resume " .. P.quote(exp))
      assert.are.equal(0, code, err)
      assert_complete(exp, 1000)
      local s = P.read_json(exp .. "/summary.json")
      assert.are.equal(1000, s.total_traces)
      assert.are.equal(false, s.interrupted)
      assert.are.equal(1000 - before, s.resumed_runs)
    end)
  end

  it("after Ctrl-C: summary says interrupted, then --resume completes it", function()
    dir = P.project({ iterations = 50, inputs = inputs(4), agent = SLOW })
    local code = P.run_signalled(dir, "run experiment --quiet", { 0.3 })
    assert.are.equal(130, code)
    local exp = P.experiments(dir)[1]
    assert.are.equal(true, P.read_json(exp .. "/summary.json").interrupted)
    local code2, _, err = P.run(dir, "run experiment --no-progress --resume " .. P.quote(exp))
    assert.are.equal(0, code2, err)
    assert.truthy(err:find("Resuming " .. exp .. ": ", 1, true), err)
    assert_complete(exp, 200)
  end)

  it("repairs a torn last line and drops lines of traces whose summary line is missing", function()
    dir = P.project({ iterations = 5, inputs = inputs(4), agent = SLOW })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    -- Keep 7 summary lines; traces.jsonl keeps 9 lines and half of the 10th.
    local function cut(name, whole, extra)
      local text = P.read(exp .. "/" .. name)
      local pos = 0
      for _ = 1, whole do pos = text:find("\n", pos + 1, true) end
      P.write(exp, name, text:sub(1, pos + extra))
    end
    cut("trace_summary.jsonl", 7, 0)
    cut("traces.jsonl", 9, 25)
    cut("observations.jsonl", 9, 0)
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_complete(exp, 20)
  end)

  it("runs again a trace whose lines were damaged in the middle of the files", function()
    dir = P.project({ iterations = 5, inputs = inputs(2), agent = SLOW })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    -- Line 5 of the summary becomes garbage; line 6 of traces.jsonl loses its start.
    local function damage(name, n, with)
      local lines = {}
      for line in P.read(exp .. "/" .. name):gmatch("[^\n]*\n") do lines[#lines + 1] = line end
      lines[n] = with(lines[n])
      P.write(exp, name, table.concat(lines))
    end
    damage("trace_summary.jsonl", 5, function() return "\0\0\0 not a line\n" end)
    damage("traces.jsonl", 6, function(l) return l:sub(30) end)
    damage("trace_summary.jsonl", 6, function(l) return l:sub(1, 40) .. "}\n" end)
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_complete(exp, 10)
    assert.are.equal(0, #P.experiments(exp, ".rerun"))
    assert.are.equal(10, P.read_json(exp .. "/summary.json").total_traces)
  end)

  it("of a finished experiment with failed runs has nothing to do either, and says how to retry", function()
    dir = P.project({ iterations = 2, inputs = inputs(3), agent = [[
return { run = function(input) if input == "q2" then error("no") end return input end }]] })
    assert.are.equal(1, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "run experiment --no-progress --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find(": 0 of 6 traces to run (2 failed before; --retry-failed runs them again)", 1, true), err)
    assert.are.equal(0, P.read_json(exp .. "/summary.json").resumed_runs)
  end)

  it("of a finished experiment has nothing to do and exits 0", function()
    dir = P.project({ iterations = 2, inputs = inputs(3) })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local before = P.read(exp .. "/traces.jsonl")
    local code, _, err = P.run(dir, "run experiment --no-progress --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find(": 0 of 6 traces to run", 1, true), err)
    assert.are.equal(before, P.read(exp .. "/traces.jsonl"))
  end)

  it("refuses when the config or inputs changed (exit 2)", function()
    dir = P.project({ iterations = 2, inputs = inputs(3) })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "run experiment --iterations 3 --resume " .. P.quote(exp))
    assert.are.equal(2, code)
    assert.truthy(err:find("--iterations 3 contradicts the folder, which was started with 2 iterations", 1, true), err)
    -- plan.json said nothing of iterations (a folder from an older fluxloop): the hash decides.
    local plan = P.read_json(exp .. "/plan.json")
    local f = assert(io.open(exp .. "/plan.json", "wb"))
    f:write(require("fluxloop.json").encode({ plan_hash = plan.plan_hash,
      planned_traces = plan.planned_traces, target = plan.target, started_at = plan.started_at, inputs = plan.inputs }))
    f:close()
    os.remove(exp .. "/summary.json")
    code, _, err = P.run(dir, "run experiment --iterations 3 --resume " .. P.quote(exp))
    assert.are.equal(2, code)
    assert.truthy(err:find("the plan changed since this experiment started", 1, true), err)
    P.write(dir, "inputs/generated.yaml", inputs(4))
    code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(2, code)
    assert.truthy(err:find("(there were 3 inputs, there are 4)", 1, true), err)
    P.write(dir, "inputs/generated.yaml", inputs(3):gsub("q2", "q2 changed"))
    code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(2, code)
    assert.truthy(err:find("(the inputs (or their personas or metadata) differ)", 1, true), err)
  end)

  it("refuses a folder that is not an experiment", function()
    dir = P.project()
    local code, _, err = P.run(dir, "run experiment --resume inputs")
    assert.are.equal(2, code)
    assert.truthy(err:find("no plan.json", 1, true), err)
  end)
end)

describe("--retry-failed", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("re-runs only the failed traces and replaces their lines in place", function()
    dir = P.project({ iterations = 3, inputs = inputs(6), agent = [[
local f = io.open("fixed", "r")
local fixed = f ~= nil
if f then f:close() end
return { run = function(input, ctx)
  ctx:observe{ name = "try", output = fixed }
  if not fixed and (input == "q2" or input == "q5") then error("flaky backend") end
  return (fixed and "fixed " or "ok ") .. input
end }
]] })
    assert.are.equal(1, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    P.write(dir, "fixed", "")
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 3 --retry-failed " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert_complete(exp, 18)
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal("ok q1", rows[1].output)
    assert.are.equal("fixed q2", rows[4].output)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(0, s.failed)
    assert.are.equal(6, s.resumed_runs)
  end)
end)

describe("a full disk", function()
  local dir, mounted
  after_each(function()
    if mounted then os.execute("umount " .. P.quote(mounted) .. " 2>/dev/null") mounted = nil end
    P.remove(dir)
  end)

  for _, workers in ipairs({ 1, 4 }) do
  it(("is a clear error, exit not 0, and no line already written is damaged (%d worker(s))"):format(workers), function()
    dir = P.project({ iterations = 400, inputs = inputs(10),
      agent = "return { run = function(i) return ('x'):rep(2000) .. i end }" })
    local out = dir .. "/small"
    os.execute("mkdir -p " .. P.quote(out))
    local env
    if os.execute("mount -t tmpfs -o size=1m tmpfs " .. P.quote(out) .. " 2>/dev/null") then
      mounted = out
    else
      env = "trap '' XFSZ; ulimit -f 1024;" -- no tmpfs here: a file size limit instead
    end
    local code, _, err = P.run(dir, "run experiment --quiet --output-dir small --parallel " .. workers, env)
    assert.are_not.equal(0, code)
    assert.truthy(err:find("writing results failed", 1, true) or err:find("cannot", 1, true), err)
    assert.truthy(err:find("No space left on device", 1, true) or err:find("File too large", 1, true), err)
    assert.is_nil(err:find("traceback", 1, true), err)
    local exp = P.experiments(dir, "small")[1]
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl" }) do
      local text = P.read(exp .. "/" .. f) or ""
      local whole = text:match("^(.*\n)") or ""
      for line in whole:gmatch("([^\n]*)\n") do
        assert.is_truthy(require("fluxloop.json").decode(line), f .. " has a damaged line")
      end
    end
  end)
  end
end)

describe("a full disk, then --resume", function()
  local dir, mounted
  after_each(function()
    if mounted then os.execute("umount " .. P.quote(mounted) .. " 2>/dev/null") mounted = nil end
    P.remove(dir)
  end)

  -- Output on a 300 KB tmpfs, 1,500 runs each with a 5,000-byte observation: the disk fills
  -- early. After it grows, --resume must complete the plan with every line whole and in order.
  -- Needs root (mount); elsewhere the case is left out.
  for _, flags in ipairs({ "", " --parallel 2", " --isolate --parallel 2" }) do
    it("loses nothing" .. flags, function()
      dir = P.project({ iterations = 1500, inputs = inputs(1), agent = [[
local big = ("y"):rep(5000)
return { run = function(input, ctx) ctx:observe{ type = "event", name = "big", output = big } return input end }]] })
      local out = dir .. "/small"
      os.execute("mkdir -p " .. P.quote(out))
      if not os.execute("mount -t tmpfs -o size=300k tmpfs " .. P.quote(out) .. " 2>/dev/null") then
        pending("mount -t tmpfs needs root")
        return
      end
      mounted = out
      local code, _, err = P.run(dir, "run experiment --quiet --output-dir small" .. flags, "timeout -s KILL 120")
      assert.are.equal(2, code, err)
      assert.truthy(err:find("No space left on device", 1, true), err)
      local exp = P.experiments(dir, "small")[1]
      assert.truthy(err:find(exp, 1, true), err) -- names the file
      -- Every summary line on disk promises a trace whose other lines are there too.
      local summaries = P.read(exp .. "/trace_summary.jsonl") or ""
      local traces = P.read(exp .. "/traces.jsonl") or ""
      for id in summaries:gmatch('"trace_id":"(trace_%d+)"') do
        assert.truthy(traces:find('{"trace_id":"' .. id .. '"', 1, true), id .. " is in trace_summary.jsonl only")
      end
      assert.is_true(os.execute("mount -o remount,size=64m " .. P.quote(out)))
      code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp) .. flags, "timeout -s KILL 120")
      assert.are.equal(0, code, err)
      assert_complete(exp, 1500)
      local s = P.read_json(exp .. "/summary.json")
      assert.are.equal(1500, s.total_traces)
      assert.are.equal(1500, s.successful)
      assert.are.equal(false, s.interrupted)
    end)
  end
end)

describe("--resume and --retry-failed read each line as JSON", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a failed run whose input holds `success: true` is retried", function()
    dir = P.project({ iterations = 1, inputs = [[
generated_inputs:
  - input: {a: 1, success: true, z: 2}
  - input: plain
]], agent = [[
local f = io.open("fixed", "r")
local fixed = f ~= nil
if f then f:close() end
return { run = function(input)
  if type(input) == "table" and not fixed then error("flaky backend") end
  return "ok"
end }
]] })
    assert.are.equal(1, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    P.write(dir, "fixed", "")
    local code, _, err = P.run(dir, "run experiment --quiet --retry-failed " .. P.quote(exp))
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(true, rows[1].success)
    assert.are.equal(1, P.read_json(exp .. "/summary.json").resumed_runs)
  end)

  it("a duration_ms field inside an output is not the run's duration", function()
    dir = P.project({ iterations = 2, agent = [[
return { run = function() return { a = 1, duration_ms = 999999, z = 2 } end }]] })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(4, s.total_traces)
    assert.is_true(s.duration_ms.max < 1000, tostring(s.duration_ms.max))
  end)
end)

describe("resume.go_on (the command an interrupted run prints)", function()
  local go_on = require("fluxloop.resume").go_on

  it("repeats the flags the plan depends on, and names the folder relative to the current one", function()
    assert.are.equal("fluxloop run experiment --resume experiments/a_1", go_on({}, "/p/experiments/a_1", "/p"))
    assert.are.equal("fluxloop run experiment --config configs/support.yaml --hooks h.lua --resume /else/a_1",
      go_on({ config = "configs/support.yaml", hooks = "h.lua", quiet = true }, "/else/a_1", "/p"))
    assert.are.equal("fluxloop run experiment --retry-failed 'my runs/it'\\''s'",
      go_on({ retry_failed = "x" }, "/p/my runs/it's", "/p"))
  end)
end)
