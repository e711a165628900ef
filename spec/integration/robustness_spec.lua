-- The runner under attack: a slow run among thousands under --isolate, SIGHUP, a closed
-- output pipe, an agent that closes the result files' descriptors, an in-process crash.
local P = require("support.project")
local json = require("fluxloop.json")

local LIB = FLUXLOOP_BUILD .. "/spec/crash_agent.so"

local function inputs_of(list)
  local lines = { "generated_inputs:" }
  for _, v in ipairs(list) do lines[#lines + 1] = ("  - input: %q"):format(v) end
  return table.concat(lines, "\n") .. "\n"
end

local function native_project(list)
  return P.project({ inputs = inputs_of(list),
    config = ("runner:\n  target: %q\n  iterations: 1\n"):format(LIB .. ":crash_agent") })
end

describe("robustness", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("--isolate: one slow run while the other worker finishes thousands neither hangs nor loses a trace", function()
    -- Before: the parent blocked in the sink for room while the slow run's frame waited unread.
    local list = { "slow" }
    for i = 2, 3000 do list[i] = "q" .. i end
    dir = P.project({ iterations = 1, inputs = inputs_of(list), agent = [[
local clock = require("fluxloop.clock")
return { run = function(input) if input == "slow" then clock.sleep(2500) end return input end }]] })
    local code, _, err = P.run(dir, "run experiment --quiet --isolate --parallel 2", "timeout -s KILL 90")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(3000, #rows)
    for k, t in ipairs(rows) do assert.are.equal(("trace_%03d"):format(k), t.trace_id) end
    assert.are.equal(3000, P.read_json(exp .. "/summary.json").successful)
  end)

  it("SIGHUP (a dropped SSH session) ends like SIGTERM: exit 130, finished traces and the summary on disk", function()
    dir = P.project({ iterations = 100000, agent = [[
local clock = require("fluxloop.clock")
return { run = function(input) clock.sleep(1) return input end }]] })
    local code, _, err = P.run_signalled(dir, "run experiment --quiet", { 0.5 }, "HUP")
    assert.are.equal(130, code, err)
    local exp = P.experiments(dir)[1]
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(true, s.interrupted)
    assert.is_true(s.total_traces > 0)
    assert.are.equal(s.total_traces, #P.read_jsonl(exp .. "/trace_summary.jsonl"))
  end)

  for _, mode in ipairs({ "", " --isolate --parallel 2" }) do
    it("an output pipe that closes (| head -n 1) does not kill the experiment, nor the agent that prints" .. mode, function()
      dir = P.project({ iterations = 1000, agent = [[
return { run = function(input) print(("agent says %s, and goes on saying it"):format(input)) io.stdout:flush() return input end }]] })
      local script = ("cd %s && { %s run experiment --no-progress%s 2>&1; echo $? > status; } | head -n 1 > first")
        :format(P.quote(dir), P.quote(P.bin()), mode)
      os.execute("sh -c " .. P.quote(script))
      assert.are.equal("0", (P.read(dir .. "/status") or ""):match("%d+"), "exit status of fluxloop (141: SIGPIPE)")
      assert.truthy(P.read(dir .. "/first"):find("[INFO] Starting experiment", 1, true))
      local exp = P.experiments(dir)[1]
      local s = P.read_json(exp .. "/summary.json")
      assert.are.equal(2000, s.total_traces)
      assert.are.equal(2000, s.successful) -- under --isolate, a worker printing into the pipe died of SIGPIPE
      assert.are.equal(2000, #P.read_jsonl(exp .. "/traces.jsonl"))
    end)
  end

  it("programs an agent starts get SIGPIPE's default back (`yes | head` ends)", function()
    -- SIG_IGN would pass through exec: the runner catches SIGPIPE with a handler instead.
    dir = P.project({ iterations = 1, inputs = "- input: a\n", agent = [[
return { run = function()
  local h = io.popen("grep SigIgn /proc/self/status")
  local line = h:read("l")
  h:close()
  return line
end }]] })
    for i, mode in ipairs({ "", "--isolate" }) do
      local code, _, err = P.run(dir, ("run experiment --quiet --output-dir out%d %s"):format(i, mode))
      assert.are.equal(0, code, err)
      local mask = P.read_jsonl(P.experiments(dir, "out" .. i)[1] .. "/traces.jsonl")[1].output:match("SigIgn:%s*(%x+)")
      assert.are.equal(0, tonumber(mask, 16) & (1 << 12), "SIGPIPE (13) ignored in a child: " .. mask)
    end
  end)

  it("an in-process agent that closes every descriptor from 3 up loses no trace line", function()
    local list = {}
    for i = 1, 200 do list[i] = i == 50 and "closefds" or ("ok" .. i) end
    dir = native_project(list)
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl" }) do
      local rows = P.read_jsonl(exp .. "/" .. f)
      assert.are.equal(200, #rows, f)
      for k, t in ipairs(rows) do assert.are.equal(("trace_%03d"):format(k), t.trace_id) end
    end
    assert.are.equal(200, P.read_json(exp .. "/summary.json").total_traces)
  end)

  it("--isolate: a worker that closes its pipe to fluxloop, then hangs, is killed; the rest go on", function()
    -- Before: the parent waited for that worker to exit, without end.
    dir = native_project({ "ok1", "closefds-hang", "ok3", "ok4" })
    local code, _, err = P.run(dir, "run experiment --quiet --isolate", "timeout -s KILL 60")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(4, #rows)
    assert.are.equal("crash", rows[2].error.type, rows[2].error.message)
    assert.truthy(rows[2].error.message:find("SIGKILL", 1, true), rows[2].error.message)
    assert.is_true(rows[3].success and rows[4].success)
  end)

  it("--isolate --parallel 256 starts its workers a few at a time and finishes every run", function()
    local list = {}
    for i = 1, 600 do list[i] = "q" .. i end
    dir = native_project(list)
    local code, _, err = P.run(dir, "run experiment --quiet --isolate --parallel 256", "timeout -s KILL 120")
    assert.are.equal(0, code, err)
    assert.are.equal(600, P.read_json(P.experiments(dir)[1] .. "/summary.json").successful)
  end)

  it("an in-process crash writes the finished traces first and says to use --isolate", function()
    local list = {}
    for i = 1, 300 do list[i] = i == 300 and "segv" or ("ok" .. i) end
    dir = native_project(list)
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are_not.equal(0, code)
    assert.truthy(err:find("SIGSEGV", 1, true), err)
    assert.truthy(err:find("--isolate", 1, true), err)
    assert.truthy(err:find("--resume", 1, true), err)
    local exp = P.experiments(dir)[1]
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(299, #rows)
    assert.are.equal(299, #P.read_jsonl(exp .. "/traces.jsonl"))
    assert.truthy(err:find("299 finished traces are on disk", 1, true), err)
    assert.are.equal(json.null, rows[1].error)
  end)
end)
