-- config_spec.lua - specs for fluxloop.config: locating, loading, validating, overriding, snapshots.
local config = require("fluxloop.config")
local yaml = require("fluxloop.yaml")

local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local function abs(p)
  if p:sub(1, 1) == "/" then return p end
  return require("fluxloop.util").abspath(p)
end
local FIXTURES = abs(here .. "/fixtures/config")
local CFG = "configs/simulation.yaml"
local TARGET_HINT = '"module.path:function" (for example examples.my_agent:run)'

local made = {}

-- Creates a temporary project folder holding files (relative path -> text).
local function project(files)
  local dir = os.tmpname()
  os.remove(dir)
  made[#made + 1] = dir
  assert(os.execute("mkdir -p '" .. dir .. "'"))
  for rel, text in pairs(files) do
    local p = dir .. "/" .. rel
    assert(os.execute("mkdir -p '" .. p:match("^(.*)/") .. "'"))
    local f = assert(io.open(p, "w"))
    f:write(text)
    f:close()
  end
  return dir
end

-- Loads text as <tmp>/configs/simulation.yaml; returns cfg, warnings | nil, errors, dir.
local function load_text(text)
  local dir = project({ [CFG] = text })
  local cfg, extra = config.load(dir .. "/" .. CFG, dir, CFG)
  return cfg, extra, dir
end

local function load_error(text)
  local cfg, err = load_text(text)
  assert.is_nil(cfg)
  assert.is_string(err)
  return err
end

teardown(function()
  for _, dir in ipairs(made) do os.execute("rm -rf '" .. dir .. "'") end
end)

describe("config.locate", function()
  it("defaults to configs/simulation.yaml under cwd, with cwd as the project", function()
    local root = FIXTURES .. "/basic"
    local path, project_dir, display = config.locate(nil, root)
    assert.equal(root .. "/configs/simulation.yaml", path)
    assert.equal(root, project_dir)
    assert.equal("configs/simulation.yaml", display)
  end)

  it("takes --config relative to cwd; the project is the parent of configs/", function()
    local path, project_dir, display = config.locate("basic/configs/simulation.yaml", FIXTURES)
    assert.equal(FIXTURES .. "/basic/configs/simulation.yaml", path)
    assert.equal(FIXTURES .. "/basic", project_dir)
    assert.equal("basic/configs/simulation.yaml", display)
  end)

  it("uses the config's own folder when it is not in configs/", function()
    local path, project_dir = config.locate("flat/setting.yaml", FIXTURES)
    assert.equal(FIXTURES .. "/flat/setting.yaml", path)
    assert.equal(FIXTURES .. "/flat", project_dir)
    path, project_dir = config.locate(FIXTURES .. "/flat/../flat/setting.yaml", "/")
    assert.equal(FIXTURES .. "/flat/setting.yaml", path)
    assert.equal(FIXTURES .. "/flat", project_dir)
  end)

  it("accepts a project folder as --config", function()
    local path, project_dir, display = config.locate("basic", FIXTURES)
    assert.equal(FIXTURES .. "/basic/configs/simulation.yaml", path)
    assert.equal(FIXTURES .. "/basic", project_dir)
    assert.equal("basic/configs/simulation.yaml", display)
  end)

  it("accepts a configs/ folder as --config", function()
    local path, project_dir, display = config.locate("configs/", FIXTURES .. "/basic")
    assert.equal(FIXTURES .. "/basic/configs/simulation.yaml", path)
    assert.equal(FIXTURES .. "/basic", project_dir)
    assert.equal("configs/simulation.yaml", display)
  end)

  it("says what to do when the config is missing", function()
    local path, err = config.locate(nil, FIXTURES)
    assert.is_nil(path)
    assert.equal("config file not found: configs/simulation.yaml (run fluxloop from your "
      .. "project folder, which holds configs/simulation.yaml, or pass --config FILE)", err)
    path, err = config.locate("nope.yaml", FIXTURES)
    assert.is_nil(path)
    assert.matches("^config file not found: nope%.yaml %(", err)
  end)
end)

describe("config.load", function()
  it("reads a full config, resolving paths against the project", function()
    local root = FIXTURES .. "/basic"
    local cfg, warnings = config.load(config.locate(nil, root))
    assert.is_table(cfg, warnings)
    assert.same({}, warnings)
    assert.equal(root .. "/configs/simulation.yaml", cfg.config_file)
    assert.equal(root, cfg.project_dir)
    assert.equal("my_agent", cfg.name)
    assert.same({ target = "examples.my_agent:run", iterations = 3, parallel = 2,
      timeout_ms = 5000, isolation = "process",
      env = { OPENAI_API_KEY = "sk-test-123", MODE = "fast", RETRIES = "3" } }, cfg.runner)
    assert.same({ directory = root .. "/results", format = "jsonl" }, cfg.output)
    assert.equal(root .. "/inputs/generated.yaml", cfg.inputs_file)
    assert.equal(root .. "/hooks/filter.lua", cfg.hooks)
    assert.same({ enabled = true, recording_file = root .. "/recordings/args.jsonl",
      override_param_path = "data.content", select = "cycle" }, cfg.replay_args)
    assert.same({}, cfg.personas)
    assert.equal(0, cfg.run_delay_seconds)
    assert.equal("my_agent", cfg.doc.name)
    assert.is_table(cfg.marks)
  end)

  it("fills in the defaults", function()
    local cfg, warnings, dir = load_text('runner:\n  target: "examples.my_agent:run"\n')
    assert.is_table(cfg, warnings)
    assert.is_nil(cfg.name)
    assert.same({ target = "examples.my_agent:run", iterations = 10, parallel = 1,
      timeout_ms = 0, isolation = "thread", env = {} }, cfg.runner)
    assert.same({ directory = dir .. "/experiments", format = "jsonl" }, cfg.output)
    assert.is_nil(cfg.inputs_file)
    assert.is_nil(cfg.hooks)
    assert.same({ enabled = false, override_param_path = "data.content", select = "last" },
      cfg.replay_args)
    assert.equal(0, cfg.run_delay_seconds)
  end)

  it("accepts a whole float where an integer is expected", function()
    local cfg = load_text("runner:\n  target: a.b:run\n  iterations: 3.0\n")
    assert.equal(3, cfg.runner.iterations)
    assert.equal("integer", math.type(cfg.runner.iterations))
    local err = load_error("runner:\n  target: a.b:run\n  iterations: 2.5\n")
    assert.equal("configs/simulation.yaml:3:15: runner.iterations: expected an integer >= 1, "
      .. "got 2.5", err)
  end)

  it("treats null values as not set", function()
    local cfg = load_text("name:\nrunner:\n  target: a.b:run\n  iterations: ~\noutput:\n")
    assert.is_table(cfg)
    assert.is_nil(cfg.name)
    assert.equal(10, cfg.runner.iterations)
  end)

  it("passes a YAML syntax error through with its line and column", function()
    local err = load_error("runner:\n  target: a.b:run\n  iterations: [1, 2\nname: x\n")
    assert.matches("^configs/simulation%.yaml:%d+:%d+: ", err)
    local line = tonumber(err:match("^[^:]+:(%d+):"))
    assert.is_true(line >= 3 and line <= 4, err)
  end)

  it("rejects iterations: ten", function()
    local err = load_error('name: demo\nrunner:\n  target: "examples.my_agent:run"\n'
      .. "  iterations: ten\n")
    assert.equal("configs/simulation.yaml:4:15: runner.iterations: expected an integer >= 1, "
      .. "got 'ten'", err)
  end)

  it("rejects iterations: 0", function()
    local err = load_error('name: demo\nrunner:\n  target: "examples.my_agent:run"\n'
      .. "  iterations: 0\n")
    assert.equal("configs/simulation.yaml:4:15: runner.iterations: expected an integer >= 1, "
      .. "got 0", err)
  end)

  it("reports a missing runner.target at the runner: key", function()
    local err = load_error("name: demo\nrunner:\n  iterations: 3\n")
    assert.equal("configs/simulation.yaml:2:1: runner.target: missing; set it to "
      .. TARGET_HINT, err)
  end)

  it("reports a missing runner.target at 1:1 when there is no runner", function()
    local err = load_error("name: demo\n")
    assert.equal("configs/simulation.yaml:1:1: runner.target: missing; set it to "
      .. TARGET_HINT, err)
  end)

  it("rejects a target without a function", function()
    local err = load_error("runner:\n  target: examples.my_agent\n")
    assert.equal("configs/simulation.yaml:2:11: runner.target: expected " .. TARGET_HINT
      .. ", got 'examples.my_agent'", err)
  end)

  it("bounds the workers and the time limit", function()
    assert.equal("configs/simulation.yaml:3:13: runner.parallel: expected an integer from 1 to 1024, got 5000",
      load_error("runner:\n  target: a.b:run\n  parallel: 5000\n"))
    assert.equal("configs/simulation.yaml:3:15: runner.timeout_ms: expected an integer from 0 to 2147483647 "
      .. "(milliseconds; 0 = no limit), got 9223372036854",
      load_error("runner:\n  target: a.b:run\n  timeout_ms: 9223372036854\n"))
  end)

  it("collects every error, in file order", function()
    local err = load_error(table.concat({
      "runner:",
      "  target: a.b:run",
      "  isolation: fork",
      "  iterations: 0",
      "  parallel: many",
      "  timeout_ms: -5",
      "output:",
      "  format: csv",
      "replay_args:",
      "  enabled: maybe",
      "  select: latest",
      "run_delay_seconds: -1",
      "hooks: [a, b]",
      "",
    }, "\n"))
    assert.same({
      "configs/simulation.yaml:3:14: runner.isolation: expected thread or process, got 'fork'",
      "configs/simulation.yaml:4:15: runner.iterations: expected an integer >= 1, got 0",
      "configs/simulation.yaml:5:13: runner.parallel: expected an integer from 1 to 1024, got 'many'",
      "configs/simulation.yaml:6:15: runner.timeout_ms: expected an integer from 0 to 2147483647 "
        .. "(milliseconds; 0 = no limit), got -5",
      "configs/simulation.yaml:8:11: output.format: expected jsonl, got 'csv'",
      "configs/simulation.yaml:10:12: replay_args.enabled: expected true or false, got 'maybe'",
      "configs/simulation.yaml:11:11: replay_args.select: expected last or first or cycle, "
        .. "got 'latest' (did you mean 'last'?)",
      "configs/simulation.yaml:12:20: run_delay_seconds: expected a number >= 0, got -1",
      "configs/simulation.yaml:13:8: hooks: expected a Lua file path, got a list",
    }, (function()
      local lines = {}
      for l in err:gmatch("[^\n]+") do lines[#lines + 1] = l end
      return lines
    end)())
  end)

  it("rejects a section that is not a mapping", function()
    local err = load_error("runner: examples.my_agent:run\n")
    assert.equal("configs/simulation.yaml:1:9: runner: expected a mapping (target:, "
      .. "iterations:, ...), got 'examples.my_agent:run'", err)
  end)

  it("rejects env values that are not scalars", function()
    local err = load_error("runner:\n  target: a.b:run\n  env:\n    A: [1]\n")
    assert.equal("configs/simulation.yaml:4:8: runner.env.A: expected a string, number or "
      .. "boolean, got a list", err)
  end)

  it("needs recording_file when replay is enabled", function()
    local err = load_error("runner:\n  target: a.b:run\nreplay_args:\n  enabled: true\n")
    assert.equal("configs/simulation.yaml:3:1: replay_args.recording_file: missing; "
      .. "replay_args.enabled is true, so set it to the JSONL recording (for example "
      .. "recordings/args.jsonl)", err)
  end)

  it("says an empty config is empty", function()
    assert.equal("configs/simulation.yaml: the config is empty; it needs at least "
      .. "runner.target", load_error("# nothing yet\n"))
    assert.equal("configs/simulation.yaml: the config is empty; it needs at least "
      .. "runner.target", load_error(""))
  end)

  it("needs the document to be a mapping", function()
    local err = load_error("- runner\n- target\n")
    assert.equal("configs/simulation.yaml:1:1: the config must be a mapping of keys "
      .. "(runner:, output:, ...), got a list", err)
  end)

  it("gives the unknown-key warnings with the errors, since a typo is often their cause", function()
    local err = load_error("runer:\n  target: a.b:run\n")
    assert.equal("configs/simulation.yaml:1:1: runner.target: missing; set it to \"module.path:function\" "
      .. "(for example examples.my_agent:run)\n"
      .. "configs/simulation.yaml:1:1: warning: unknown key 'runer' (did you mean 'runner'?)", err)
  end)

  it("warns about an unknown key, naming the closest known key", function()
    local cfg, warnings = load_text("runner:\n  target: a.b:run\n  iteratons: 3\n"
      .. "outptu:\n  directory: x\nzzz_custom: 1\n")
    assert.is_table(cfg, warnings)
    assert.same({
      "configs/simulation.yaml:3:3: warning: unknown key 'runner.iteratons' "
        .. "(did you mean 'runner.iterations'?)",
      "configs/simulation.yaml:4:1: warning: unknown key 'outptu' (did you mean 'output'?)",
      "configs/simulation.yaml:6:1: warning: unknown key 'zzz_custom'",
    }, warnings)
    assert.equal(10, cfg.runner.iterations)
    -- unknown keys stay in the snapshot
    local snap = yaml.decode(config.snapshot(cfg))
    assert.equal(3, snap.runner.iteratons)
    assert.equal(1, snap.zzz_custom)
  end)

  it("warns when an alias and its runner key disagree, and uses the runner key", function()
    local cfg, warnings = load_text("iterations: 2\nrunner:\n  target: a.b:run\n"
      .. "  iterations: 5\n")
    assert.equal(5, cfg.runner.iterations)
    assert.same({ "configs/simulation.yaml:1:1: warning: both 'iterations' and "
      .. "'runner.iterations' are set; using runner.iterations" }, warnings)
  end)
end)

describe("config.load with Python fluxloop configs", function()
  it("accepts the flat aliases and module_path without function_name", function()
    local dir = FIXTURES .. "/flat"
    local cfg, warnings = config.load(dir .. "/setting.yaml", nil, "setting.yaml")
    assert.is_table(cfg, warnings)
    assert.same({}, warnings)
    assert.equal(dir, cfg.project_dir)
    assert.equal("flat_project", cfg.name)
    assert.equal("agents.echo:run", cfg.runner.target)
    assert.equal(4, cfg.runner.iterations)
    assert.equal(2, cfg.runner.parallel)
    assert.equal(dir .. "/out", cfg.output.directory)
    assert.equal(dir .. "/data/inputs.yaml", cfg.inputs_file)
  end)

  it("joins module_path and function_name; target wins over them", function()
    local cfg = load_text("runner:\n  module_path: pkg.agent\n  function_name: handle\n")
    assert.equal("pkg.agent:handle", cfg.runner.target)
    cfg = load_text("runner:\n  module_path: pkg.agent\n  target: other.mod:go\n")
    assert.equal("other.mod:go", cfg.runner.target)
  end)

  it("merges project.yaml, input.yaml and simulation.yaml from configs/", function()
    local root = FIXTURES .. "/python"
    local cfg, warnings = config.load(config.locate(nil, root))
    assert.is_table(cfg, warnings)
    assert.equal("my_project_experiment", cfg.name)
    assert.equal("examples.simple_agent:run", cfg.runner.target)
    assert.equal(2, cfg.runner.iterations)
    assert.equal(1, cfg.runner.parallel)
    assert.same({ FLUXLOOP_API_KEY = "secret-value" }, cfg.runner.env)
    assert.equal(0.5, cfg.run_delay_seconds)
    assert.equal(root .. "/inputs/generated.yaml", cfg.inputs_file)
    assert.equal(root .. "/experiments", cfg.output.directory)
    assert.is_false(cfg.replay_args.enabled)
    assert.equal("A user new to the system", cfg.personas.novice_user.description)
    assert.equal("expert_user", cfg.personas.expert_user.name)
    -- merged document: project keys are kept, simulation's name won
    assert.equal("development", cfg.doc.metadata.team)
    assert.equal("my_project_experiment", cfg.doc.name)
  end)

  it("names the ignored Python keys once, in one notice line", function()
    local cfg, warnings = config.load(config.locate(nil, FIXTURES .. "/python"))
    assert.is_table(cfg, warnings)
    assert.equal(2, #warnings)
    assert.equal("notice: these Python fluxloop keys have no effect here: description, "
      .. "version, source_root, collector_url, collector_api_key, tags, metadata, "
      .. "base_inputs, variation_strategies, variation_count, variation_temperature, "
      .. "input_generation, seed, multi_turn, save_traces, save_aggregated_metrics", warnings[2])
  end)

  it("honours runner.timeout_seconds (x 1000 ms)", function()
    local cfg = assert(config.load(config.locate(nil, FIXTURES .. "/python")))
    assert.equal(120000, cfg.runner.timeout_ms)
    assert.equal(1500, assert(load_text("runner:\n  target: a.b:run\n  timeout_seconds: 1.5\n")).runner.timeout_ms)
    assert.equal("configs/simulation.yaml:3:20: runner.timeout_seconds: expected a number of seconds >= 0 "
      .. "(0 = no limit), got 'soon'", load_error("runner:\n  target: a.b:run\n  timeout_seconds: soon\n"))
  end)

  it("warns that runner.max_retries and retry_delay do nothing, and names --retry-failed", function()
    local _, warnings = config.load(config.locate(nil, FIXTURES .. "/python"))
    assert.equal("configs/simulation.yaml:13:3: warning: runner.max_retries has no effect: fluxloop does not "
      .. "retry a failed run on its own; after the experiment, `fluxloop run experiment --retry-failed DIR` runs its "
      .. "failed runs again (an http: target retries its requests with runner.http.retries)", warnings[1])
    local _, w2 = assert(load_text("runner:\n  target: a.b:run\n  retry_delay: 5\n  max_retries: 2\n"))
    assert.truthy(w2[1]:find("^configs/simulation.yaml:4:3: warning: runner.max_retries and runner.retry_delay have "
      .. "no effect"), w2[1])
  end)

  it("runner.timeout takes units; a bare number is ms, under 100 with a warning", function()
    for text, ms in pairs({ ["30s"] = 30000, ["2m"] = 120000, ["500ms"] = 500, ["250"] = 250, ["0"] = 0 }) do
      local cfg, w = load_text("runner:\n  target: a.b:run\n  timeout: " .. text .. "\n")
      assert.is_table(cfg, w)
      assert.equal(ms, cfg.runner.timeout_ms, text)
      assert.same({}, w, text)
    end
    local cfg, w = load_text("runner:\n  target: a.b:run\n  timeout: 30\n")
    assert.equal(30, cfg.runner.timeout_ms)
    assert.same({ "configs/simulation.yaml:3:12: warning: runner.timeout: 30 is 30 milliseconds; did you mean 30s? "
      .. "(write 30s for seconds, or 30ms to keep milliseconds and silence this)" }, w)
    assert.equal("configs/simulation.yaml:3:12: runner.timeout: expected a time such as 500ms, 30s, 2m or 1h; a bare "
      .. "number is milliseconds; 0 = no limit, got '30 sec'", load_error("runner:\n  target: a.b:run\n  timeout: 30 sec\n"))
  end)

  it("two time limits that disagree are an error; agreeing ones are fine", function()
    assert.equal("configs/simulation.yaml:4:12: runner.timeout: 30s (30000 ms) contradicts runner.timeout_ms: "
      .. "5000 (5000 ms); keep one of them",
      load_error("runner:\n  target: a.b:run\n  timeout_ms: 5000\n  timeout: 30s\n"))
    local cfg = assert(load_text("runner:\n  target: a.b:run\n  timeout_seconds: 30\n  timeout: 30s\n"))
    assert.equal(30000, cfg.runner.timeout_ms)
  end)

  it("merges project.yaml and input.yaml under another configs/ file given to --config, with a notice", function()
    local dir = project({
      ["configs/project.yaml"] = "name: from_project\nrun_delay_seconds: 0.25\n",
      ["configs/input.yaml"] = "personas:\n  - name: novice_user\n    description: new here\n",
      ["configs/other.yaml"] = "name: other\nrunner:\n  target: a.b:run\n",
    })
    local cfg, warnings = config.load(config.locate("configs/other.yaml", dir))
    assert.is_table(cfg, warnings)
    assert.equal(0.25, cfg.run_delay_seconds)
    assert.equal("other", cfg.name) -- the named file's own keys win
    assert.equal("new here", cfg.personas.novice_user.description)
    assert.same({ "notice: configs/other.yaml is merged over configs/project.yaml and configs/input.yaml, the "
      .. "Python section files beside it (its own keys win)" }, warnings)
    -- simulation.yaml merges silently, as it always has; a section file named itself merges nothing.
    local _, w2 = config.load(config.locate(nil, FIXTURES .. "/python"))
    assert.falsy(w2[1]:find("merged over", 1, true))
    local cfg3 = config.load(config.locate("configs/project.yaml", dir))
    assert.is_nil(cfg3) -- no runner.target: input.yaml was not merged in either
  end)

  it("names the section file a bad key came from", function()
    local dir = project({
      ["configs/project.yaml"] = "name: p\niterations: zero\n",
      ["configs/input.yaml"] = "personas:\n  - description: no name\n",
      [CFG] = "runner:\n  target: a.b:run\n",
    })
    local cfg, err = config.load(config.locate(nil, dir))
    assert.is_nil(cfg)
    assert.equal("configs/project.yaml:2:13: iterations: expected an integer >= 1, got 'zero'\n"
      .. "configs/input.yaml:2:5: personas.1: missing 'name'", err)
  end)

  it("passes a syntax error in a section file through with that file's name", function()
    local dir = project({
      ["configs/project.yaml"] = "name: p\ntags: [a\n",
      [CFG] = "runner:\n  target: a.b:run\n",
    })
    local cfg, err = config.load(config.locate(nil, dir))
    assert.is_nil(cfg)
    assert.matches("^configs/project%.yaml:%d+:%d+: ", err)
  end)

  it("lets simulation.yaml replace lists and scalars of earlier sections", function()
    local dir = project({
      ["configs/project.yaml"] = "name: p\ntags: [a, b]\nrunner:\n  target: x.y:run\n"
        .. "  iterations: 3\n",
      [CFG] = "tags: [c]\nrunner:\n  iterations: 4\n",
    })
    local cfg = assert(config.load(config.locate(nil, dir)))
    assert.equal("x.y:run", cfg.runner.target)
    assert.equal(4, cfg.runner.iterations)
    assert.same({ "c" }, { table.unpack(cfg.doc.tags) })
    assert.equal("p", cfg.name)
  end)

  it("reads personas given as a mapping of name to persona", function()
    local cfg = load_text("runner:\n  target: a.b:run\npersonas:\n  novice:\n"
      .. "    description: new\n  expert:\n")
    assert.same({ novice = { name = "novice", description = "new" },
      expert = { name = "expert" } }, cfg.personas)
  end)

  it("rejects personas that are not mappings", function()
    local err = load_error("runner:\n  target: a.b:run\npersonas:\n  - novice\n")
    assert.equal("configs/simulation.yaml:4:5: personas.1: expected a mapping with a "
      .. "'name' key, got 'novice'", err)
    err = load_error("runner:\n  target: a.b:run\npersonas: novice\n")
    assert.matches("^configs/simulation%.yaml:3:11: personas: expected a list", err)
  end)

  it("treats runner.environment_vars as runner.env (env wins)", function()
    local cfg = load_text("runner:\n  target: a.b:run\n  environment_vars: {A: '1', B: '2'}\n"
      .. "  env: {B: three}\n")
    assert.same({ A = "1", B = "three" }, cfg.runner.env)
  end)
end)

describe("config.apply_overrides", function()
  it("overrides the config and writes the runner keys into the snapshot", function()
    local cfg = assert(config.load(config.locate(nil, FIXTURES .. "/basic")))
    config.apply_overrides(cfg, { iterations = 20, parallel = 8, timeout_ms = 100,
      isolate = true, name = "baseline-test", inputs = "/data/in.yaml",
      output_dir = "/data/out", hooks = "/data/hooks.lua" })
    assert.equal(20, cfg.runner.iterations)
    assert.equal(8, cfg.runner.parallel)
    assert.equal(100, cfg.runner.timeout_ms)
    assert.equal("process", cfg.runner.isolation)
    assert.equal("baseline-test", cfg.name)
    assert.equal("/data/in.yaml", cfg.inputs_file)
    assert.equal("/data/out", cfg.output.directory)
    assert.equal("/data/hooks.lua", cfg.hooks)
    local snap = yaml.decode(config.snapshot(cfg))
    assert.equal(20, snap.runner.iterations)
    assert.equal(8, snap.runner.parallel)
    assert.equal(100, snap.runner.timeout_ms)
    assert.equal("baseline-test", snap.name)
    assert.equal("/data/in.yaml", snap.inputs.file)
    assert.equal("/data/out", snap.output.directory)
    assert.equal("/data/hooks.lua", snap.hooks)
    assert.is_nil(snap.iterations)
  end)

  it("writes to the Python alias the user used", function()
    local cfg = assert(config.load(FIXTURES .. "/flat/setting.yaml"))
    config.apply_overrides(cfg, { iterations = 9, parallel = 3, inputs = "/i.yaml",
      output_dir = "/o" })
    local snap = yaml.decode(config.snapshot(cfg))
    assert.equal(9, snap.iterations)
    assert.equal(3, snap.parallel_runs)
    assert.equal("/i.yaml", snap.inputs_file)
    assert.equal("/o", snap.output_directory)
    assert.is_nil(snap.runner.iterations)
    assert.is_nil(snap.inputs)
    assert.is_nil(snap.output)
  end)

  it("adds runner keys the config did not have", function()
    local cfg = assert(load_text("runner:\n  target: a.b:run\n"))
    config.apply_overrides(cfg, { iterations = 2 })
    assert.equal(2, cfg.runner.iterations)
    assert.equal(2, yaml.decode(config.snapshot(cfg)).runner.iterations)
  end)

  it("--timeout replaces runner.timeout and timeout_seconds in the snapshot", function()
    local cfg = assert(load_text("runner:\n  target: a.b:run\n  timeout: 30s\n  timeout_seconds: 30\n"))
    config.apply_overrides(cfg, { timeout_ms = 5000 })
    local snap = yaml.decode(config.snapshot(cfg))
    assert.same({ 5000, nil, nil }, { snap.runner.timeout_ms, snap.runner.timeout, snap.runner.timeout_seconds })
  end)

  it("leaves the config alone when no flag is given", function()
    local cfg = assert(load_text("runner:\n  target: a.b:run\n  iterations: 4\n"))
    config.apply_overrides(cfg, { isolate = false, lua_path = {} })
    assert.equal(4, cfg.runner.iterations)
    assert.equal("thread", cfg.runner.isolation)
  end)
end)

describe("config secrets", function()
  it("detects secret key names by the rule", function()
    local cases = {
      OPENAI_API_KEY = true, APIKEY = true, ["api-key"] = true, auth = true,
      ["x.token"] = true, access_token = true, AUTHORIZATION = true, db_password = true,
      passwd = true, client_secret = true, credentials = true, credential = true,
      sessionkey = true, monkey = true, github_pat_token = true, mytoken = true,
      author = false, keyword = false, name = false, keys = false, tokens = false,
      max_tokens = false, MODE = false, authors = false, secrets = false,
    }
    for name, want in pairs(cases) do
      assert.equal(want, config.is_secret_key(name), name)
    end
  end)

  it("masks secrets in the snapshot at any depth and keeps the rest", function()
    local cfg, warnings = load_text(table.concat({
      "runner:",
      "  target: a.b:run",
      "  env:",
      "    OPENAI_API_KEY: sk-live",
      "    MODE: fast",
      "providers:",
      "  - name: openai",
      "    credentials:",
      "      user: bob",
      "      list: [a, 2]",
      "    settings: {api-key: k1, keyword: visible, nested: {auth_token: t}}",
      "",
    }, "\n"))
    assert.is_table(cfg, warnings)
    local text = config.snapshot(cfg)
    assert.is_nil(text:find("sk-live", 1, true))
    assert.is_nil(text:find("bob", 1, true))
    local snap = yaml.decode(text)
    assert.equal("***", snap.runner.env.OPENAI_API_KEY)
    assert.equal("fast", snap.runner.env.MODE)
    assert.equal("openai", snap.providers[1].name)
    assert.equal("***", snap.providers[1].credentials.user)
    assert.equal("***", snap.providers[1].credentials.list[1])
    assert.equal("***", snap.providers[1].credentials.list[2])
    assert.equal("***", snap.providers[1].settings["api-key"])
    assert.equal("visible", snap.providers[1].settings.keyword)
    assert.equal("***", snap.providers[1].settings.nested.auth_token)
    -- the loaded config itself keeps the real value
    assert.equal("sk-live", cfg.runner.env.OPENAI_API_KEY)
  end)

  it("keeps the user's key order in the snapshot", function()
    local cfg = assert(load_text("runner:\n  target: a.b:run\nname: z\noutput:\n"
      .. "  directory: out\n"))
    local text = config.snapshot(cfg)
    local r, n, o = text:find("runner:", 1, true), text:find("name:", 1, true),
      text:find("output:", 1, true)
    assert.is_true(r < n and n < o, text)
  end)
end)
