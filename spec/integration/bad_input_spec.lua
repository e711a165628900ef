-- Critical problems: exit 2 before any folder is created, with a message that says what to fix.
local P = require("support.project")
local fs = require("fluxloop.fs")

describe("critical errors", function()
  local dir
  after_each(function() P.remove(dir) end)

  local function expect_critical(args, pattern, plain)
    local code, out, err = P.run(dir, args or "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find(pattern, 1, plain), "stderr was:\n" .. err)
    assert.are.equal(0, #P.experiments(dir), "no experiment folder")
    return err, out
  end

  it("a misspelt section: the error, and the warning that explains it", function()
    dir = P.project({ config = "runer:\n  target: agents.agent:run\n" })
    local err = expect_critical(nil, "fluxloop: error: configs/simulation.yaml:1:1: runner.target: missing", true)
    assert.truthy(err:find("\nfluxloop: configs/simulation.yaml:1:1: warning: unknown key 'runer' (did you mean 'runner'?)", 1, true), err)
  end)

  it("a module that is not found lists every place tried, one a line", function()
    dir = P.project({ config = "runner:\n  target: agents.nope:run\n" })
    local err = expect_critical(nil, "Lua module 'agents.nope' not found. Tried:\n  no file '", true)
    assert.truthy(err:find("/agents/nope.lua'\n  no file '", 1, true), err)
  end)

  it("missing config", function()
    dir = P.new()
    expect_critical(nil, "config file not found: configs/simulation.yaml", true)
  end)

  it("--config naming a missing file", function()
    dir = P.new()
    local err = expect_critical("run experiment --config nope.yaml", "config file not found: nope.yaml (check the path given to --config", true)
    assert.is_nil(err:find("pass --config", 1, true), err)
  end)

  it("YAML syntax error names line and column", function()
    dir = P.project({ config = "runner:\n  target: \"agents.agent:run\n  iterations: 2\n" })
    expect_critical(nil, "simulation.yaml:%d+:%d+:")
  end)

  it("iterations: ten", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  iterations: ten\n" })
    expect_critical(nil, "simulation.yaml:3:15: runner.iterations: expected an integer >= 1, got 'ten'", true)
  end)

  it("iterations: 0", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  iterations: 0\n" })
    expect_critical(nil, "simulation.yaml:3:15: runner.iterations: expected an integer >= 1", true)
  end)

  it("--iterations 0 on the command line", function()
    dir = P.project()
    expect_critical("run experiment --iterations 0", "--iterations: expected an integer >= 1, got '0'", true)
  end)

  it("missing runner.target", function()
    dir = P.project({ config = "runner:\n  iterations: 2\n" })
    expect_critical(nil, "runner.target: missing", true)
  end)

  it("target module not found lists what was tried", function()
    dir = P.project({ config = "runner:\n  target: agents.nothere:run\n" })
    local err = expect_critical(nil, "Lua module 'agents.nothere' not found", true)
    assert.truthy(err:find(dir .. "/agents/nothere.lua", 1, true), err)
  end)

  it("target function not found names what the module has", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:runn\n" })
    expect_critical(nil, "has no field 'runn'; it has: run()", true)
  end)

  it("target module with a syntax error", function()
    dir = P.project({ agent = "local M = {\nreturn M\n" })
    expect_critical(nil, "error while loading " .. dir .. "/agents/agent.lua", true)
  end)

  it("inputs file missing", function()
    dir = P.project()
    os.remove(dir .. "/inputs/generated.yaml")
    expect_critical(nil, "inputs file not found", true)
  end)

  it("inputs file empty", function()
    dir = P.project({ inputs = "" })
    expect_critical(nil, "no inputs found", true)
  end)

  it("an entry without input names its line", function()
    dir = P.project({ inputs = "generated_inputs:\n  - input: a\n  - persona: x\n" })
    expect_critical(nil, "generated.yaml:3:%d+: entry 2: missing 'input'")
  end)

  it("unknown option suggests the right one", function()
    dir = P.project()
    expect_critical("run experiment --iteratons 3", "fluxloop: error: unknown option '--iteratons' (did you mean '--iterations'", true)
  end)

  it("a name that cannot be a folder name, before anything is made", function()
    dir = P.project()
    expect_critical("run experiment --name a/b", "--name 'a/b': an experiment name becomes a folder name", true)
    assert.is_false(fs.exists(dir .. "/experiments/a"))
    expect_critical("run experiment --name ..", "cannot be empty, '.', '..' or contain '/'", true)
  end)
end)

describe("fluxloop --help and --version", function()
  it("prints usage for each level", function()
    local dir = P.new()
    for _, args in ipairs({ "--help", "run --help", "run experiment --help" }) do
      local code, out = P.run(dir, args)
      assert.are.equal(0, code, args)
      assert.truthy(out:find("run experiment", 1, true), args)
    end
    local code, out = P.run(dir, "--version")
    assert.are.equal(0, code)
    assert.truthy(out:match("^fluxloop %d+%.%d+%.%d+"))
    P.remove(dir)
  end)
end)
