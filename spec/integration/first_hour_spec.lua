-- What a new user trips over in the first hour (issue 18): lost agent output under
-- --isolate, outputs JSON cannot hold, --resume without the original flags, and messages.
local P = require("support.project")

describe("the first hour", function()
  local dir
  after_each(function() P.remove(dir) end)

  for _, flags in ipairs({ " --isolate", " --isolate --parallel 2" }) do
    it("an agent's io.write output (no newline flush) all reaches stdout" .. flags, function()
      dir = P.project({ iterations = 3, inputs = "- input: a\n- input: b\n- input: c\n", agent = [[
return { run = function(input, ctx) io.write("said:", input, ctx.iteration, ";") return input end }]] })
      local code, out, err = P.run(dir, "run experiment --quiet" .. flags)
      assert.are.equal(0, code, err)
      local n = 0
      for _ in out:gmatch("said:%a%d;") do n = n + 1 end
      assert.are.equal(9, n, out)
    end)
  end

  it("a function or a file handle nested in an output fails the run, naming its path", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n- input: b\n- input: c\n", agent = [[
return { run = function(input)
  if input == "a" then return { reply = "hi", cb = function() end } end
  if input == "b" then return { list = { 1, { fh = io.stdout } } } end
  return { reply = "fine", nested = { ok = true } }
end }]] })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal("invalid_output", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("function at output.cb", 1, true), rows[1].error.message)
    assert.are.equal("invalid_output", rows[2].error.type)
    assert.truthy(rows[2].error.message:find("output.list[2].fh", 1, true), rows[2].error.message)
    assert.are.equal(true, rows[3].success)
  end)

  it("--resume DIR takes iterations and inputs from the folder; a contradicting flag is the error", function()
    dir = P.project({ iterations = 1 })
    P.write(dir, "other.yaml", "- input: elsewhere\n")
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --iterations 5 --inputs other.yaml")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    assert.are.equal(5, P.read_json(exp .. "/summary.json").total_traces)
    code, _, err = P.run(dir, "run experiment --quiet --iterations 3 --resume " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("--iterations 3 contradicts the folder, which was started with 5 iterations", 1, true), err)
  end)

  it("--resume of the folder that holds experiments lists the newest", function()
    dir = P.project({ iterations = 1 })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local code, _, err = P.run(dir, "run experiment --resume experiments")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("holds experiment folders", 1, true), err)
    assert.truthy(err:find(P.experiments(dir)[1]:match("[^/]+$"), 1, true), err)
  end)

  it("a target written as a file path says how a target is written", function()
    dir = P.project({ config = "runner:\n  target: agents/agent.lua:run\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find('write it "agents.agent:run"', 1, true), err)
    assert.is_nil(err:find("cc ", 1, true), err)
  end)

  it("config keys shaped like flags stop before any run and name the key meant", function()
    -- (runner.timeout is a key of its own since issue 26: 500, 30s, 2m.)
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  isolate: true\n  output_dir: out\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("runner.isolate: not a config key", 1, true), err)
    assert.truthy(err:find("runner.isolation: process", 1, true), err)
    assert.truthy(err:find("runner.output_dir: not a config key", 1, true), err)
    assert.are.same({}, P.experiments(dir))
  end)

  it("a quoted number says it is a string; a tab in the config says tab", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  iterations: \"3\"\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find('got the string "3"', 1, true), err)
    P.write(dir, "configs/simulation.yaml", "runner:\n\ttarget: agents.agent:run\n")
    code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("simulation.yaml:2:1: a tab character", 1, true), err)
  end)

  it("when runs failed, the closing lines count them by error type with a first message", function()
    dir = P.project({ iterations = 2, agent = [[
return { run = function(input, ctx)
  if input == "hello" then error("model timed out") end
  if ctx.iteration == 1 then error({ type = "rate_limit", message = "429 Too Many Requests" }) end
  return input
end }]] })
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(1, code, err)
    assert.truthy(err:find("Failed runs by error type", 1, true), err)
    assert.truthy(err:find("error%s+2%s+e%.g%. trace_001: .-model timed out"), err)
    assert.truthy(err:find("rate_limit%s+1%s+e%.g%. trace_004: 429 Too Many Requests"), err)
    local _, _, quiet = P.run(dir, "run experiment --quiet")
    assert.is_nil(quiet:find("Failed runs", 1, true), quiet)
  end)
end)
