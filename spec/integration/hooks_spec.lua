-- Hooks, --script and module overrides, through the real binary.
local P = require("support.project")
local fs = require("fluxloop.fs")

local ROOT = assert(fs.realpath("."))

local FOUR_INPUTS = [[
generated_inputs:
  - {input: "alpha", persona: novice_user}
  - {input: "beta", persona: expert_user}
  - {input: "  Alpha ", persona: expert_user}
  - {input: "gamma", persona: novice_user}
]]

local function inputs_of(exp)
  local list = {}
  for _, row in ipairs(P.read_jsonl(exp .. "/trace_summary.jsonl")) do
    if row.iteration == 0 then list[#list + 1] = row.input end
  end
  return list
end

describe("hooks", function()
  local dir
  after_each(function() P.remove(dir) end)

  local function project(hooks, opts)
    opts = opts or {}
    dir = P.project({ iterations = opts.iterations or 1, inputs = opts.inputs or FOUR_INPUTS, agent = opts.agent })
    if hooks then P.write(dir, "hooks/h.lua", hooks) end
    return dir
  end

  it("filter_input drops entries and the summary and [INFO] say how many", function()
    project("return { filter_input = function(e, i) return i ~= 2 end }")
    local code, _, err = P.run(dir, "run experiment --no-progress --hooks hooks/h.lua")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("[INFO] Loaded 3 inputs (1 dropped by hooks)", 1, true), err)
    local exp = P.experiments(dir)[1]
    assert.are.same({ "alpha", "  Alpha ", "gamma" }, inputs_of(exp))
    assert.are.equal(1, P.read_json(exp .. "/summary.json").inputs_dropped)
  end)

  it("hooks: in the config works like --hooks, relative to the project", function()
    project("return { transform_input = function(e) e.input = e.input:upper() return e end }")
    P.write(dir, "configs/simulation.yaml", "runner: {target: agents.agent:run, iterations: 1}\nhooks: hooks/h.lua\n")
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    assert.are.same({ "ALPHA", "BETA", "  ALPHA ", "GAMMA" }, inputs_of(P.experiments(dir)[1]))
  end)

  it("before_run and after_run add metadata; after_run can fail a run as a check", function()
    project([[
return {
  before_run = function(run) run.metadata.before = run.trace_id end,
  after_run = function(run, trace)
    trace.metadata.after = true
    if run.input == "beta" then return false, "no beta allowed" end
  end,
}]])
    local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks/h.lua")
    assert.are.equal(1, code, err)
    local traces = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal("trace_001", traces[1].metadata.before)
    assert.are.equal(true, traces[1].metadata.after)
    assert.are.equal(false, traces[2].success)
    assert.are.same({ type = "check", message = "no beta allowed", traceback = require("fluxloop.json").null },
      traces[2].error)
    assert.are.equal("echo: beta", traces[2].output, "a check keeps the output")
    assert.are.equal(true, traces[3].success)
  end)

  it("after_experiment adds fields to summary.json; before_experiment sees the plan", function()
    project([[
local planned
return {
  before_experiment = function(exp) planned = exp.planned_traces end,
  after_experiment = function(summary) summary.team = "search"; summary.seen_plan = planned end,
}]])
    local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks/h.lua")
    assert.are.equal(0, code, err)
    local s = P.read_json(P.experiments(dir)[1] .. "/summary.json")
    assert.are.equal("search", s.team)
    assert.are.equal(4, s.seen_plan)
  end)

  it("an after_run hook that raises fails that run only, with the hook's message", function()
    project([[
return { after_run = function(run) if run.k == 2 then error("checker crashed") end end }]])
    local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks/h.lua")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")
    assert.are.equal(4, #rows)
    assert.are.equal(false, rows[2].success)
    assert.truthy(rows[2].error:find("hook 'after_run'", 1, true))
    assert.truthy(rows[2].error:find("h.lua:1: checker crashed", 1, true), rows[2].error)
    assert.is_nil(rows[2].error:find("traceback", 1, true), rows[2].error)
    local full = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[2].error
    assert.are.equal("hook", full.type)
    assert.truthy(full.traceback:find("h.lua:1", 1, true), full.traceback)
    assert.are.equal(true, rows[3].success)
  end)

  local function expect_critical(args, needle)
    local code, _, err = P.run(dir, args)
    assert.are.equal(2, code, err)
    assert.truthy(err:find(needle, 1, true), err)
    assert.are.equal(0, #P.experiments(dir))
  end

  it("bad hooks files are critical errors that name the file and line", function()
    project(nil)
    expect_critical("run experiment --hooks hooks/none.lua", "hooks file not found: hooks/none.lua")
    P.write(dir, "hooks/h.lua", "return { filter_input = function( }")
    expect_critical("run experiment --hooks hooks/h.lua", "hooks/h.lua:1:")
    P.write(dir, "hooks/h.lua", "return { filter_input = 5 }")
    expect_critical("run experiment --hooks hooks/h.lua", "hook 'filter_input' must be a function, not a number")
    P.write(dir, "hooks/h.lua", "return 7")
    expect_critical("run experiment --hooks hooks/h.lua", "must return a table of functions")
  end)

  it("a filter that raises stops the experiment naming hook, file and line", function()
    project("return {\n  filter_input = function(e)\n    error('bad filter')\n  end,\n}")
    expect_critical("run experiment --hooks hooks/h.lua", "hook 'filter_input' (hooks/h.lua) failed: hooks/h.lua:3: bad filter")
  end)

  it("a filter that returns a non-boolean is an error", function()
    project("return { filter_input = function(e) return 'yes' end }")
    expect_critical("run experiment --hooks hooks/h.lua", "returned a string for entry 1")
  end)

  it("filter_inputs must return a list of inputs", function()
    project("return { filter_inputs = function(list) return { 'alpha' } end }")
    expect_critical("run experiment --hooks hooks/h.lua", "item 1 is not an input entry")
    P.write(dir, "hooks/h.lua", "return { filter_inputs = function(list) return 3 end }")
    expect_critical("run experiment --hooks hooks/h.lua", "returned a number; return a list of input entries")
    P.write(dir, "hooks/h.lua", "return { filter_inputs = function(list) return list[1] end }")
    expect_critical("run experiment --hooks hooks/h.lua", "returned one entry, not a list")
    P.write(dir, "hooks/h.lua", "return { filter_inputs = function(list) return { a = list[1] } end }")
    expect_critical("run experiment --hooks hooks/h.lua", "returned a table that is not a list")
    P.write(dir, "hooks/h.lua", "return { filter_inputs = function(list) return { list[1], nil, list[2] } end }")
    expect_critical("run experiment --hooks hooks/h.lua", "returned a table that is not a list")
  end)

  it("hooks that drop every input stop the experiment", function()
    project("return { filter_input = function(e) return false end }")
    expect_critical("run experiment --hooks hooks/h.lua", "dropped every input (4 of 4)")
    P.write(dir, "hooks/h.lua", "return { filter_inputs = function(list) return {} end }")
    expect_critical("run experiment --hooks hooks/h.lua", "dropped every input (4 of 4)")
  end)

  it("an unknown hook name is a warning with a suggestion", function()
    project("return { after_runn = function() end }")
    local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks/h.lua")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("unknown hook 'after_runn' (did you mean 'after_run'?)", 1, true), err)
  end)
end)

describe("the example hooks", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function run_example(hook, env)
    local code, _, err = P.run(ROOT, ("run experiment --iterations 1 --quiet --output-dir %s --hooks examples/hooks/%s")
      :format(P.quote(dir), hook), env)
    return code, err, P.experiments(dir, ".")[1]
  end

  it("personas.lua keeps one persona", function()
    local code, err, exp = run_example("personas.lua")
    assert.are.equal(0, code, err)
    for _, row in ipairs(P.read_jsonl(exp .. "/trace_summary.jsonl")) do
      assert.are.equal("novice_user", row.persona)
    end
  end)

  it("sample.lua takes the same seeded sample every time", function()
    local _, _, a = run_example("sample.lua", "SAMPLE_N=2 SAMPLE_SEED=7")
    local _, _, b = run_example("sample.lua", "SAMPLE_N=2 SAMPLE_SEED=7")
    assert.are.equal(2, #inputs_of(a))
    assert.are.same(inputs_of(a), inputs_of(b))
  end)

  it("dedupe.lua drops repeated inputs", function()
    local project_dir = P.project({ iterations = 1, inputs = FOUR_INPUTS })
    local code, _, err = P.run(project_dir, "run experiment --quiet --hooks " .. P.quote(ROOT .. "/examples/hooks/dedupe.lua"))
    assert.are.equal(0, code, err)
    assert.are.same({ "alpha", "beta", "gamma" }, inputs_of(P.experiments(project_dir)[1]))
    P.remove(project_dir)
  end)

  it("check_keyword.lua fails the answers that miss the keyword", function()
    local code, err, exp = run_example("check_keyword.lua", "KEYWORD=fluxloop")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    local checks = 0
    for _, t in ipairs(rows) do
      if not t.success then
        checks = checks + 1
        assert.are.equal("check", t.error.type)
        assert.is_string(t.output)
      end
    end
    assert.is_true(checks > 0 and checks < #rows)
  end)
end)

describe("--script", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("rerun_failed.lua runs again only the inputs that failed before", function()
    dir = P.project({ iterations = 2, inputs = FOUR_INPUTS, agent = [[
return { run = function(input) if input:find("a$") then error("fails on " .. input) end return input end }]] })
    local code = P.run(dir, "run experiment --quiet --output-dir first")
    assert.are.equal(1, code)
    local first = P.experiments(dir, "first")[1]
    local code2, _, err = P.run(dir, "run experiment --quiet --output-dir second --script "
      .. P.quote(ROOT .. "/examples/scripts/rerun_failed.lua") .. " -- " .. P.quote(first))
    assert.are.equal(1, code2, err)
    assert.are.same({ "alpha", "beta", "gamma" }, inputs_of(P.experiments(dir, "second")[1]))
  end)

  it("a script's integer result is the exit status; an error exits 1 with a traceback", function()
    dir = P.new()
    P.write(dir, "ok.lua", "local flags = ...\nreturn #flags.script_args")
    P.write(dir, "bad.lua", "local function f() error('script broke') end\nf()")
    assert.are.equal(3, (P.run(dir, "run experiment --script ok.lua -- a b c")))
    local code, _, err = P.run(dir, "run experiment --script bad.lua")
    assert.are.equal(1, code)
    assert.truthy(err:find("bad.lua:1: script broke", 1, true), err)
    assert.truthy(err:find("stack traceback", 1, true), err)
    P.write(dir, "float.lua", "return 3.0")
    assert.are.equal(3, (P.run(dir, "run experiment --script float.lua")))
    P.write(dir, "big.lua", "return 300")
    code, _, err = P.run(dir, "run experiment --script big.lua")
    assert.are.equal(1, code)
    assert.truthy(err:find("returned 300; an exit status is an integer from 0 to 255", 1, true), err)
  end)

  it("a missing script is a critical error", function()
    dir = P.new()
    local code, _, err = P.run(dir, "run experiment --script nope.lua")
    assert.are.equal(2, code)
    assert.truthy(err:find("script not found: nope.lua", 1, true), err)
  end)
end)

describe("module overrides", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a project's lua/fluxloop/target.lua replaces target resolution", function()
    dir = P.project({ iterations = 1 })
    P.write(dir, "lua/fluxloop/target.lua", [[
return { resolve = function(spec) return function(input) return "custom " .. input end, { name = "custom" } end }]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")
    assert.are.equal("custom hello", rows[1].output)
  end)

  it("--lua-path wins over the embedded modules, and --version -v shows the file", function()
    dir = P.project({ iterations = 1 })
    P.write(dir, "over/fluxloop/progress.lua", [[
local M = {}
local P = {}
P.__index = P
function M.new() return setmetatable({}, P) end
function P:info(msg) io.stderr:write("custom: ", msg, "\n") end
function P:warn(msg) io.stderr:write(msg, "\n") end
function P:start() end
function P:update() end
function P:finish() end
return M]])
    local code, _, err = P.run(dir, "run experiment --lua-path over")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("custom: Starting experiment...", 1, true), err)
    local _, out = P.run(dir, "--version -v --lua-path over")
    assert.truthy(out:find("fluxloop.progress%s+over/fluxloop/progress.lua"), out)
    assert.truthy(out:find("fluxloop.run%s+%(embedded%)"), out)
    -- From the project's lua/ folder, only modules read after the project is known count.
    P.write(dir, "lua/fluxloop/progress.lua", "error('never loaded')")
    P.write(dir, "lua/fluxloop/target.lua", [[
return { resolve = function() return function(input) return "custom " .. input end, { name = "custom" } end }]])
    _, out = P.run(dir, "--version -v")
    assert.truthy(out:find("fluxloop.progress%s+%(embedded%)"), out)
    assert.truthy(out:find("fluxloop.target%s+lua/fluxloop/target.lua"), out)
    code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
  end)
end)
