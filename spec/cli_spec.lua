-- cli_spec.lua - specs for fluxloop.cli: commands, flags, usage errors and help.
local cli = require("fluxloop.cli")

local function run(...)
  return cli.parse({ "run", "experiment", ... })
end

describe("cli.parse commands", function()
  it("parses run experiment with no flags and defaults", function()
    local cmd = assert(run())
    assert.equal("run_experiment", cmd.command)
    assert.same({ lua_path = {}, script_args = {}, isolate = false, quiet = false, no_progress = false,
      warnings = {} }, cmd.flags)
  end)

  it("parses --version, -V and -v", function()
    assert.same({ "version", false }, { cli.parse({ "--version" }).command,
      cli.parse({ "--version" }).verbose })
    assert.equal("version", cli.parse({ "-V" }).command)
    assert.equal("version", cli.parse({ "-v" }).command)
    assert.is_false(cli.parse({ "-v" }).verbose)
    assert.is_true(cli.parse({ "-v", "--version" }).verbose)
    assert.is_true(cli.parse({ "--version", "-v" }).verbose)
  end)

  it("gives help at each level", function()
    for _, argv in ipairs({ { "--help" }, { "-h" }, { "help" } }) do
      local cmd = cli.parse(argv)
      assert.equal("help", cmd.command)
      assert.is_nil(cmd.topic)
    end
    for _, argv in ipairs({ { "run", "--help" }, { "run", "-h" }, { "run", "help" },
      { "help", "run" } }) do
      local cmd = cli.parse(argv)
      assert.equal("help", cmd.command)
      assert.equal("run", cmd.topic)
    end
    for _, argv in ipairs({ { "run", "experiment", "--help" }, { "run", "experiment", "-h" },
      { "help", "run", "experiment" }, { "run", "experiment", "--iterations", "5", "--help" } }) do
      local cmd = cli.parse(argv)
      assert.equal("help", cmd.command)
      assert.equal("run experiment", cmd.topic)
    end
  end)

  it("the help of each level names what is below it, and run experiment's every flag", function()
    assert.truthy(cli.help(nil):find("run experiment", 1, true))
    assert.truthy(cli.help("run"):find("experiment", 1, true))
    local text = cli.help("run experiment")
    for _, flag in ipairs({ "--iterations", "--inputs", "--output-dir", "--name", "--config", "--parallel",
      "--timeout", "--isolate", "--hooks", "--script", "--lua-path", "--resume", "--retry-failed", "--quiet",
      "--no-progress", "--help" }) do
      assert.truthy(text:find(flag, 1, true), flag .. " missing from the help")
    end
    for _, code in ipairs({ "0 ", "1 ", "2 ", "130" }) do
      assert.truthy(text:find("\n  " .. code, 1, true), "exit status " .. code .. " missing from the help")
    end
  end)

  it("names an unknown command and suggests the closest", function()
    local cmd, err = cli.parse({ "rn", "experiment" })
    assert.is_nil(cmd)
    assert.equal("unknown command 'rn' (did you mean 'run'?); see 'fluxloop --help'", err)
    cmd, err = cli.parse({ "run", "experimnt" })
    assert.is_nil(cmd)
    assert.equal("unknown command 'run experimnt' (did you mean 'experiment'?); "
      .. "see 'fluxloop run --help'", err)
    cmd, err = cli.parse({ "deploy", "experiment" })
    assert.is_nil(cmd)
    assert.equal("unknown command 'deploy'; see 'fluxloop --help'", err)
    cmd, err = cli.parse({ "evaluate", "experiment" })
    assert.is_nil(cmd)
    assert.equal("evaluate experiment needs DIR (got 0 arguments); see 'fluxloop evaluate experiment --help'", err)
    cmd, err = cli.parse({ "generat", "inputs" })
    assert.is_nil(cmd)
    assert.equal("unknown command 'generat' (did you mean 'generate'?); see 'fluxloop --help'", err)
  end)

  it("hands init and generate their own arguments", function()
    assert.are.same({ "inputs", "--limit", "3" }, cli.parse({ "generate", "inputs", "--limit", "3" }).args)
    assert.are.equal("init", cli.parse({ "init", "project", "x" }).command)
    assert.are.same({ command = "generate", args = { "--help" } },
      (function(c) return { command = c.command, args = c.args } end)(cli.parse({ "help", "generate" })))
    local text = cli.help()
    assert.truthy(text:find("fluxloop init project [DIR]", 1, true), text)
    assert.truthy(text:find("fluxloop generate inputs", 1, true), text)
  end)

  it("rejects a missing command and unknown top-level options", function()
    local cmd, err = cli.parse({})
    assert.is_nil(cmd)
    assert.matches("missing command", err)
    cmd, err = cli.parse({ "run" })
    assert.is_nil(cmd)
    assert.matches("missing command after 'run'", err)
    cmd, err = cli.parse({ "--verison" })
    assert.is_nil(cmd)
    assert.equal("unknown option '--verison' (did you mean '--version'?); see 'fluxloop --help'",
      err)
  end)
end)

describe("cli.parse run experiment flags", function()
  it("reads every flag in both --flag value and --flag=value forms", function()
    local cmd = assert(run("--iterations", "20", "--inputs", "my-inputs.yaml",
      "--output-dir=out", "--name", "baseline-test", "--config=configs/other.yaml",
      "--parallel", "4", "--timeout=30000", "--isolate", "--hooks", "hooks.lua",
      "--script", "main.lua", "--lua-path", "lib", "--lua-path=vendor", "--resume", "exp/a",
      "--quiet", "--no-progress"))
    assert.same({
      iterations = 20, inputs = "my-inputs.yaml", output_dir = "out", name = "baseline-test",
      config = "configs/other.yaml", parallel = 4, timeout_ms = 30000, isolate = true,
      hooks = "hooks.lua", script = "main.lua", lua_path = { "lib", "vendor" },
      resume = "exp/a", quiet = true, no_progress = true, script_args = {}, warnings = {},
    }, cmd.flags)
    cmd = assert(run("--retry-failed", "exp/b"))
    assert.equal("exp/b", cmd.flags.retry_failed)
  end)

  it("passes the arguments after -- to a --script, and refuses them without one", function()
    assert.same({ "a", "--b" }, run("--script", "s.lua", "--", "a", "--b").flags.script_args)
    local cmd, err = run("--", "a")
    assert.is_nil(cmd)
    assert.truthy(err:find("arguments after -- are for a --script", 1, true))
  end)

  it("keeps the last value of a repeated flag", function()
    assert.equal(7, run("--iterations", "3", "--iterations=7").flags.iterations)
  end)

  it("accepts a timeout of 0 and values that start with one dash", function()
    assert.equal(0, run("--timeout", "0").flags.timeout_ms)
    assert.equal("-odd-", run("--name", "-odd-").flags.name)
  end)

  it("--timeout takes units (500ms, 30s, 2m, 1h); a bare number stays milliseconds", function()
    for value, ms in pairs({ ["500ms"] = 500, ["30s"] = 30000, ["2m"] = 120000, ["1h"] = 3600000, ["1.5s"] = 1500,
      ["250"] = 250, ["0"] = 0 }) do
      local cmd = assert(run("--timeout", value))
      assert.equal(ms, cmd.flags.timeout_ms, value)
      assert.same({}, cmd.flags.warnings, value)
    end
  end)

  it("--timeout 30 (a bare number under 100) is 30 ms, with a warning that asks: did you mean 30s?", function()
    local cmd = assert(run("--timeout", "30"))
    assert.equal(30, cmd.flags.timeout_ms)
    assert.same({ "fluxloop: warning: --timeout 30 is 30 milliseconds; did you mean 30s? (write 30s for seconds, "
      .. "or 30ms to keep milliseconds and silence this)" }, cmd.flags.warnings)
    assert.same({}, run("--timeout", "30ms").flags.warnings)
  end)

  it("validates numbers at parse time", function()
    local cases = {
      { { "--parallel", "0" }, "--parallel: expected an integer from 1 to 1024, got '0'" },
      { { "--parallel", "2000" }, "--parallel: expected an integer from 1 to 1024, got '2000'" },
      { { "--timeout", "9223372036854" }, "--timeout: expected a whole number of milliseconds up to 2147483647 "
        .. "(about 24 days); 0 = no limit, got '9223372036854'" },
      { { "--timeout", "30x" },
        "--timeout: expected a time such as 500ms, 30s, 2m or 1h; a bare number is milliseconds; 0 = no limit, got '30x'" },
      { { "--iterations=ten" }, "--iterations: expected an integer >= 1, got 'ten'" },
      { { "--iterations", "2.5" }, "--iterations: expected an integer >= 1, got '2.5'" },
      { { "--iterations", "99999999999999999999" },
        "--iterations: expected an integer >= 1, got '99999999999999999999'" },
      { { "--timeout", "-1" },
        "--timeout: expected a time such as 500ms, 30s, 2m or 1h; a bare number is milliseconds; 0 = no limit, got '-1'" },
    }
    for _, case in ipairs(cases) do
      local cmd, err = run(table.unpack(case[1]))
      assert.is_nil(cmd)
      assert.equal(case[2], err)
    end
  end)

  it("names an unknown option with the closest one", function()
    local cmd, err = run("--iteratons", "3")
    assert.is_nil(cmd)
    assert.equal("unknown option '--iteratons' (did you mean '--iterations'?); "
      .. "see 'fluxloop run experiment --help'", err)
    cmd, err = run("--output-directory=x")
    assert.is_nil(cmd)
    assert.equal("unknown option '--output-directory' (did you mean '--output-dir'?); "
      .. "see 'fluxloop run experiment --help'", err)
    cmd, err = run("--frobnicate")
    assert.is_nil(cmd)
    assert.equal("unknown option '--frobnicate'; see 'fluxloop run experiment --help'", err)
  end)

  it("reports a missing value", function()
    local cmd, err = run("--inputs")
    assert.is_nil(cmd)
    assert.equal("--inputs needs a value", err)
    cmd, err = run("--inputs", "--quiet")
    assert.is_nil(cmd)
    assert.equal("--inputs needs a value", err)
    cmd, err = run("--name=")
    assert.is_nil(cmd)
    assert.equal("--name needs a value", err)
  end)

  it("rejects a value on a switch, stray arguments and conflicting flags", function()
    local cmd, err = run("--quiet=yes")
    assert.is_nil(cmd)
    assert.equal("--quiet takes no value", err)
    cmd, err = run("extra")
    assert.is_nil(cmd)
    assert.equal("unexpected argument 'extra'; see 'fluxloop run experiment --help'", err)
    cmd, err = run("--resume", "a", "--retry-failed", "b")
    assert.is_nil(cmd)
    assert.matches("cannot be used together", err)
  end)
end)

describe("cli.help", function()
  it("describes every flag of run experiment with exit codes and examples", function()
    local text = cli.help("run experiment")
    for _, flag in ipairs({ "--iterations", "--inputs", "--output-dir", "--name", "--config",
      "--parallel", "--timeout", "--isolate", "--hooks", "--script", "--lua-path",
      "--resume", "--retry-failed", "--quiet", "--no-progress" }) do
      assert.truthy(text:find(flag, 1, true), flag)
    end
    assert.truthy(text:find("fluxloop run experiment --iterations 20", 1, true))
    assert.truthy(text:find("130", 1, true))
    assert.truthy(text:find("configs/simulation.yaml", 1, true))
  end)

  it("has a top-level and a run text", function()
    assert.truthy(cli.help():find("fluxloop run experiment", 1, true))
    assert.truthy(cli.help():find("--version", 1, true))
    assert.truthy(cli.help("run"):find("experiment", 1, true))
  end)
end)

describe("cli.parse of parse, report and compare", function()
  it("parses their arguments and flags", function()
    local cmd = assert(cli.parse({ "parse", "experiment", "exp/x", "--output", "o", "--format=jsonl", "--overwrite" }))
    assert.equal("parse", cmd.command)
    assert.same({ "exp/x", "o", "jsonl", true }, { cmd.flags.dir, cmd.flags.output, cmd.flags.format, cmd.flags.overwrite })
    cmd = assert(cli.parse({ "report", "d", "--compare", "b", "--alpha", "0.01" }))
    assert.same({ "report", "d", "b", 0.01 }, { cmd.command, cmd.flags.dir, cmd.flags.compare, cmd.flags.alpha })
    cmd = assert(cli.parse({ "compare", "a", "b", "--fail-on", "regression" }))
    assert.same({ "compare", "a", "b", "regression" }, { cmd.command, cmd.flags.base, cmd.flags.new, cmd.flags.fail_on })
  end)

  it("gives each its help", function()
    for _, argv in ipairs({ { "parse", "--help" }, { "parse", "experiment", "-h" }, { "report", "x", "--help" },
      { "compare", "--help" }, { "help", "report" } }) do
      local cmd = assert(cli.parse(argv))
      assert.equal("help", cmd.command)
      local name = argv[1] == "help" and argv[2] or argv[1]
      assert.truthy(cli.help(cmd.topic):find("Usage: fluxloop " .. name, 1, true), table.concat(argv, " "))
    end
    assert.truthy(cli.help():find("fluxloop compare BASE NEW", 1, true))
  end)

  it("says what is wrong with a usage error", function()
    local function err(...) return select(2, cli.parse({ ... })) end
    assert.equal("missing 'experiment' after 'parse': try 'fluxloop parse experiment DIR'", err("parse", "x"))
    assert.equal("report needs DIR (got 0 arguments); see 'fluxloop report --help'", err("report"))
    assert.equal("unknown option '--fail-of' (did you mean '--fail-on'?); see 'fluxloop compare --help'",
      err("compare", "a", "b", "--fail-of", "regression"))
    assert.equal("--fail-on: expected 'regression', got 'x'; see 'fluxloop compare --help'",
      err("compare", "a", "b", "--fail-on", "x"))
    assert.equal("--alpha: expected a number between 0 and 1, got '0'", err("compare", "a", "b", "--alpha", "0"))
    assert.equal("--output needs a value; see 'fluxloop parse experiment --help'", err("parse", "experiment", "d", "--output"))
    assert.matches("did you mean 'report'", err("reprot", "d"))
  end)
end)

describe("--help and README.md say the same thing", function()
  local readme = assert(io.open("README.md")):read("a")
  local top, exp = cli.help("top"), cli.help("experiment")

  it("names every results file, every exit status and FLUXLOOP_LUA_PATH", function()
    for _, f in ipairs({ "summary.json", "trace_summary.jsonl", "traces.jsonl", "observations.jsonl",
      "config.yaml", "plan.json" }) do
      assert.truthy(exp:find(f, 1, true), f)
      assert.truthy(readme:find(f, 1, true), f)
    end
    for _, code in ipairs({ "0", "1", "2", "70", "130" }) do
      assert.truthy(top:find("\n  " .. code .. " ", 1, true), code)
      assert.truthy(exp:find("\n  " .. code .. " ", 1, true), code)
      assert.truthy(readme:find("| " .. code .. " |", 1, true), code)
    end
    assert.truthy(exp:find("full disk", 1, true))
    assert.truthy(exp:find("FLUXLOOP_LUA_PATH", 1, true))
    assert.truthy(top:find("-v with it: the Lua modules", 1, true))
  end)

  it("suggests --output-dir for --output", function()
    local _, err = cli.parse({ "run", "experiment", "--output", "x" })
    assert.truthy(err:find("did you mean '--output-dir'", 1, true), err)
  end)
end)

describe("cli.parse python-path", function()
  it("is a command of its own, with no arguments", function()
    assert.equal("python-path", cli.parse({ "python-path" }).command)
    local cmd, err = cli.parse({ "python-path", "x" })
    assert.is_nil(cmd)
    assert.equal("python-path takes no arguments; see 'fluxloop --help'", err)
    assert.truthy(cli.help():find("fluxloop python-path", 1, true))
  end)
end)
