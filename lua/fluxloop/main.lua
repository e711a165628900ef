-- main.lua - the fluxloop command: parses argv, loads config, inputs and target, runs.
-- Exit codes: 0 all runs succeeded, 1 some runs failed, 2 critical error (nothing run), 130 interrupted.
local M = {}

local EXIT_CRITICAL = 2

local function say(...)
  io.stderr:write(require("fluxloop.secrets").scrub(table.concat({ ... })))
  io.stderr:write("\n")
end

-- Each error of a list (config problems, one a line) gets the prefix; indented lines and
-- tracebacks continue the error above them.
local function critical(msg)
  local lines = {}
  for line in (msg .. "\n"):gmatch("(.-)\n") do
    if line:find("^%s") or line:find("^stack traceback") then
      lines[#lines + 1] = line
    elseif line:find("^[^%s]*:%d+:%d+: warning: ") then -- a config warning that explains an error
      lines[#lines + 1] = "fluxloop: " .. line
    else
      lines[#lines + 1] = "fluxloop: error: " .. line
    end
  end
  say(table.concat(lines, "\n"))
  return EXIT_CRITICAL
end

-- Puts the project's own folders on package.path after the --lua-path/FLUXLOOP_LUA_PATH
-- prefix: <project>/lua overrides embedded modules, <project> holds agent modules.
local function add_project_path(project_dir)
  local prefix = package.fluxloop_user_path or ""
  local rest = package.path:sub(#prefix + 1)
  local p = project_dir
  package.path = table.concat({ prefix, p, "/lua/?.lua;", p, "/lua/?/init.lua;", p, "/?.lua;", p, "/?/init.lua;", rest })
end

-- The experiment's name, which names its results folder: nil and why when it cannot.
local function experiment_name(flags, cfg, info)
  local name = flags.name or cfg.name or (info and info.name) or "experiment"
  if name:find("%c") then
    local util = require("fluxloop.util")
    return nil, ("%s '%s': an experiment name becomes a folder name and a line in messages, so it cannot hold "
      .. "control characters (a newline, a tab, an escape); choose a name of printable characters")
      :format(flags.name and "--name" or "name (in the config)", util.escape_controls(name))
  end
  if name == "" or name == "." or name == ".." or name:find("[/%z]") then
    local from = flags.name and "--name" or "name (in the config)"
    return nil, ("%s '%s': an experiment name becomes a folder name, so it cannot be empty, '.', "
      .. "'..' or contain '/'"):format(from, name)
  end
  return name
end

local function print_warnings(warnings, quiet)
  for _, w in ipairs(warnings or {}) do
    local notice = w:match("^notice:")
    if not (notice and quiet) then say(notice and "fluxloop: " .. w or w) end
  end
end

-- The inputs as a compact plan (fluxloop.plan): read one entry at a time through the hooks'
-- filter_input and transform_input, so a million inputs are never a million tables. Hooks
-- with filter_inputs see the whole list first, as before. -> plan, dropped | nil, message
local function load_plan(file, name, hooks)
  local plan_mod, inputs, hooks_mod = require("fluxloop.plan"), require("fluxloop.inputs"), require("fluxloop.hooks")
  local plan = plan_mod.new()
  local has_asserts = false -- an entry has graders of its own (assert:)
  local function add(entry, i)
    if entry.assert ~= nil then has_asserts = true end
    local ok, err = pcall(plan.add, plan, entry)
    if not ok then return nil, ("%s: entry %d cannot be stored as JSON: %s"):format(name, i, tostring(err)) end
    return true
  end
  local per_entry = hooks and hooks_mod.per_entry(hooks) or (not hooks and function(e) return e end)
  if not per_entry then
    local entries, err = inputs.load(file, name)
    if not entries then return nil, err end
    local kept, dropped = hooks_mod.filter(hooks, entries)
    if not kept then return nil, dropped end
    for i, entry in ipairs(kept) do
      local ok, aerr = add(entry, i)
      if not ok then return nil, aerr end
    end
    return plan, dropped, has_asserts
  end
  local seen = 0
  local n, err = inputs.stream(file, name, function(entry, i)
    if entry == nil then plan, seen = plan_mod.new(), 0 return end -- read again, whole
    seen = i
    local kept, herr = per_entry(entry, i)
    if kept == nil then return false, herr end
    if kept then
      local ok, aerr = add(kept, i)
      if not ok then return false, aerr end
    end
  end)
  if not n then return nil, err end
  if #plan == 0 then return nil, hooks_mod.all_dropped(hooks, seen) end
  return plan, seen - #plan, has_asserts
end

-- Trace numbers must stay exact in every file (JSON numbers are doubles): 2^53 runs at most.
local MAX_RUNS = 1 << 53

-- A message when inputs x iterations runs cannot be counted, else nil.
local function plan_too_large(inputs, iterations)
  if inputs > 0 and iterations > MAX_RUNS // inputs then
    return ("the plan is too large to run: %d inputs x %d iterations is more than %d runs (2^53); lower "
      .. "--iterations (runner.iterations) or split the inputs"):format(inputs, iterations, MAX_RUNS)
  end
end

-- --resume DIR / --retry-failed DIR continue the folder's own plan: its iterations and
-- inputs file come from DIR/plan.json (else summary.json) unless a flag gives them, and a
-- flag that says otherwise is the error. Changes flags in place; returns nil, message.
local function take_plan_of_folder(flags, cwd)
  local util = require("fluxloop.util")
  local again = flags.resume or flags.retry_failed
  local flag = flags.resume and "--resume" or "--retry-failed"
  local dir = util.abspath(again, cwd)
  local plan, summary = util.read_json(dir .. "/plan.json"), util.read_json(dir .. "/summary.json") or {}
  if not plan then return true end -- resume's own check says what the folder is
  local iterations = math.tointeger(plan.iterations or summary.iterations)
  if iterations then
    if flags.iterations and flags.iterations ~= iterations then
      return nil, ("%s %s: --iterations %d contradicts the folder, which was started with %d iterations; "
        .. "leave --iterations out to continue it"):format(flag, again, flags.iterations, iterations)
    end
    flags.iterations = iterations
  end
  local inputs_file = plan.inputs_file or summary.inputs_file
  if inputs_file then
    if flags.inputs and util.abspath(flags.inputs, cwd) ~= inputs_file then
      return nil, ("%s %s: --inputs %s contradicts the folder, which was started with %s; leave --inputs out "
        .. "to continue it"):format(flag, again, flags.inputs, inputs_file)
    end
    flags.inputs = flags.inputs or inputs_file
  end
  return true
end

-- prepare(flags) -> exp | nil, message
-- Everything that can fail before a run: config, overrides, inputs, hooks, target.
-- exp is what fluxloop.run.experiment takes; a --script may change it before running.
function M.prepare(flags)
  local fs = require("fluxloop.fs")
  local util = require("fluxloop.util")
  local config = require("fluxloop.config")
  local progress = require("fluxloop.progress")
  local p = progress.new({ quiet = flags.quiet, bar = not flags.no_progress })
  print_warnings(flags.warnings, flags.quiet)

  local cwd = assert(fs.getcwd())
  if flags.resume or flags.retry_failed then
    local ok, perr = take_plan_of_folder(flags, cwd)
    if not ok then return nil, perr end
  end
  local function arg_path(v) return v and util.abspath(v, cwd) or nil end
  local shard, serr
  if flags.shard then
    shard, serr = require("fluxloop.shard").resolve(flags.shard, os.getenv)
    if not shard then return nil, serr end
  end

  local config_path, project_dir, display = config.locate(flags.config, cwd)
  if not config_path then return nil, project_dir end
  add_project_path(project_dir)
  -- .env files first, as the Python tool does: the config's ${NAME} and the agent see them.
  local dotenv, derr = require("fluxloop.dotenv").apply(project_dir)
  if not dotenv then return nil, derr end
  print_warnings(dotenv.warnings, flags.quiet)

  local cfg, warnings = config.load(config_path, project_dir, display)
  if not cfg then return nil, warnings end
  print_warnings(warnings, flags.quiet)
  local applied, aerr = config.apply_overrides(cfg, {
    iterations = flags.iterations, inputs = arg_path(flags.inputs), output_dir = arg_path(flags.output_dir),
    name = flags.name, parallel = flags.parallel, timeout_ms = flags.timeout_ms, hooks = arg_path(flags.hooks),
    isolate = flags.isolate, rate_limit = flags.rate_limit, multi_turn = flags.multi_turn, max_turns = flags.max_turns,
  })
  if not applied then return nil, aerr end
  for name, value in pairs(cfg.runner.env or {}) do
    local ok, eerr = fs.setenv(name, tostring(value))
    if not ok then return nil, ("runner.env.%s: %s"):format(name, eerr) end
  end
  -- Secret values the recorders mask wherever a trace echoes them, and stderr too
  -- (fluxloop.secrets: the config's, the environment's, an http: target's ${NAME}s).
  cfg.secret_values = require("fluxloop.secrets").of_run(cfg, fs.environ(), { cfg.doc, dotenv.values })
  require("fluxloop.secrets").remember(cfg.secret_values)

  local inputs_file = arg_path(flags.inputs) or cfg.inputs_file or (project_dir .. "/inputs/generated.yaml")
  local inputs_name = flags.inputs or inputs_file
  if not fs.exists(inputs_file) then
    return nil, "inputs file not found: " .. inputs_name .. " (create it, or pass --inputs FILE)"
  end

  local hooks
  local hooks_file = arg_path(flags.hooks) or cfg.hooks
  if hooks_file then
    local hwarnings
    hooks, hwarnings = require("fluxloop.hooks").load(hooks_file, flags.hooks or hooks_file)
    if not hooks then return nil, hwarnings end
    print_warnings(hwarnings, flags.quiet)
  end
  local entries, dropped, has_asserts = load_plan(inputs_file, inputs_name, hooks)
  if not entries then return nil, dropped end
  cfg.grading = (cfg.evaluation or has_asserts) and require("fluxloop.grade").plan(cfg, has_asserts) or nil
  if cfg.grading then
    for _, key in ipairs(require("fluxloop.grade.config").secret_values(cfg.grading.specs)) do
      cfg.secret_values[#cfg.secret_values + 1] = key
    end
  end
  local too_many = plan_too_large(#entries, cfg.runner.iterations)
  if too_many then return nil, too_many end

  local agent, info = require("fluxloop.target").resolve(cfg.runner.target,
    { project_dir = project_dir, runner = cfg.runner })
  if not agent then return nil, info end

  local replay
  if cfg.replay_args and cfg.replay_args.enabled then
    local rerr
    replay, rerr = require("fluxloop.replay").load(cfg.replay_args)
    if not replay then
      -- A problem with a config value (not inside the recording) points at the config line.
      local key = rerr:match("^replay_args%.([%w_]+)")
      if key and cfg.doc and cfg.doc.replay_args then rerr = config.where(cfg, "replay_args." .. key) .. ": " .. rerr end
      return nil, rerr
    end
    local last = replay.entries[#replay.entries]
    if last.target and last.target ~= cfg.runner.target then
      p:warn(("fluxloop: warning: %s was recorded for target '%s', not '%s'"):format(replay.file, last.target,
        cfg.runner.target))
    end
  end

  local name, nerr = experiment_name(flags, cfg, info)
  if not name then return nil, nerr end

  return {
    cfg = cfg, entries = entries, agent = agent, target = info, progress = p, hooks = hooks, replay = replay,
    inputs_dropped = dropped, name = name, inputs_file = inputs_file,
    config_snapshot = config.snapshot(cfg), flags = flags, cwd = cwd, shard = shard,
  }
end

-- failure_lines(dir) -> lines saying how the runs failed: a count per error type and the
-- first message of each (at most 5 types), read from traces.jsonl. Only failed lines are
-- decoded, so a large experiment with few failures costs one fast pass.
local MAX_TYPES, MAX_MESSAGE = 5, 110
local function failure_lines(dir)
  local reader = require("fluxloop.jsonlread").open(dir .. "/traces.jsonl", { "trace_id", "success", "=error" })
  if not reader then return {} end
  local json, util = require("fluxloop.json"), require("fluxloop.util")
  local by_type, order = {}, {}
  while true do
    local n, id, success, raw = reader:next()
    if not n then break end
    if success == false then
      local e = json.decode(raw) or {}
      -- Escaped: a message (or the worker stderr in it) must not drive the terminal.
      local t = util.escape_controls(type(e) == "table" and util.text_of(e.type or "error") or "error")
      local g = by_type[t]
      if not g then
        local msg = util.escape_controls((type(e) == "table" and util.text_of(e.message or "") or ""):gsub("%s+", " "))
        if #msg > MAX_MESSAGE then msg = msg:sub(1, MAX_MESSAGE - 3) .. "..." end
        g = { count = 0, first = ("%s: %s"):format(util.escape_controls(util.text_of(id)), msg) }
        by_type[t], order[#order + 1] = g, t
      end
      g.count = g.count + 1
    end
  end
  reader:close()
  table.sort(order, function(a, b) return by_type[a].count > by_type[b].count end)
  local lines = { "[INFO] Failed runs by error type (every traceback is in traces.jsonl):" }
  for i = 1, math.min(MAX_TYPES, #order) do
    local t = order[i]
    lines[#lines + 1] = ("  %-14s %6d  e.g. %s"):format(t, by_type[t].count, by_type[t].first)
  end
  if #order > MAX_TYPES then lines[#lines + 1] = ("  ... and %d more types"):format(#order - MAX_TYPES) end
  return lines
end

-- finish(code, summary, dir, err, flags) -> exit status: prints the closing line, and when
-- runs failed, how (so the first look is not into a JSONL file).
function M.finish(code, summary, dir, err, flags)
  if err then return critical(err) end
  if not flags.quiet then
    local what, util = summary.interrupted and "Interrupted" or "Done", require("fluxloop.util")
    local go_on = summary.interrupted and dir and "; go on with: " .. require("fluxloop.resume").go_on(flags, dir) or ""
    say(("[INFO] %s: %s, %d succeeded, %d failed. Results: %s%s")
      :format(what, util.n_of(summary.total_traces, "run"), summary.successful, summary.failed, dir, go_on))
    if summary.failed > 0 and dir then
      for _, line in ipairs(failure_lines(dir)) do say(line) end
    end
  end
  if summary.scores then
    local lines, missed = require("fluxloop.grade.summary").lines(summary.scores, summary.iterations)
    for _, line in ipairs(flags.quiet and {} or lines) do say(line) end
    for _, line in ipairs(missed) do say(line) end
  end
  return code
end

function M.run_experiment(flags)
  local exp, err = M.prepare(flags)
  if not exp then return critical(err) end
  local code, summary, dir, rerr
  local again = flags.resume or flags.retry_failed
  if again then
    local dir_abs = require("fluxloop.util").abspath(again, exp.cwd)
    if exp.shard then
      dir_abs, rerr = require("fluxloop.shard").check_resume(dir_abs, exp.shard)
      if not dir_abs then return critical(rerr) end
    end
    code, summary, dir, rerr = require("fluxloop.resume").resume(exp, dir_abs, flags.resume and "resume" or "retry")
  else
    code, summary, dir, rerr = require("fluxloop.run").experiment(exp)
  end
  return M.finish(code, summary, dir, rerr, flags)
end

-- run_script(flags) -> exit status. The script is called with the parsed flags (its own
-- arguments, after `--`, in flags.script_args); its returned integer is the exit status.
function M.run_script(flags)
  local path = flags.script
  local chunk, err = loadfile(path, "t")
  if not chunk then
    local f = io.open(path, "rb")
    if not f then return critical(("script not found: %s (check --script)"):format(path)) end
    f:close()
    return critical(("script %s does not compile: %s"):format(path, err))
  end
  local ok, result = xpcall(chunk, debug.traceback, flags)
  if not ok then
    say("fluxloop: script ", path, " failed: ", result)
    return 1
  end
  if type(result) ~= "number" then return 0 end
  local code = math.tointeger(result)
  if code == nil or code < 0 or code > 255 then
    say("fluxloop: script ", path, " returned ", tostring(result),
      "; an exit status is an integer from 0 to 255, so fluxloop exits 1")
    return 1
  end
  return code
end

local function version_text(verbose)
  local host = require("fluxloop.host")
  local lines = { ("fluxloop %s (%s)"):format(host.version, _VERSION) }
  if verbose then
    -- The same order as a run from this folder: --lua-path, FLUXLOOP_LUA_PATH, ./lua, embedded.
    -- Modules loaded before the project is known never come from its lua/ folder.
    local early = { ["fluxloop.main"] = true, ["fluxloop.cli"] = true, ["fluxloop.config"] = true,
      ["fluxloop.util"] = true, ["fluxloop.progress"] = true }
    local prefix = package.fluxloop_user_path or ""
    local search = prefix .. "lua/?.lua;lua/?/init.lua;" .. package.path:sub(#prefix + 1)
    for _, name in ipairs(host.embedded_modules()) do
      local path = package.searchpath(name, early[name] and package.path or search)
      lines[#lines + 1] = ("  %-26s %s"):format(name, path or "(embedded)")
    end
  end
  return table.concat(lines, "\n") .. "\n"
end

-- main(argv) -> exit status
function M.main(argv)
  local cli = require("fluxloop.cli")
  local cmd, err = cli.parse(argv)
  if not cmd then return critical(err) end
  if cmd.command == "help" then
    io.stdout:write(cli.help(cmd.topic))
    return 0
  elseif cmd.command == "version" then
    io.stdout:write(version_text(cmd.verbose))
    return 0
  end
  -- Commands that parse their own arguments: each is one module with main(args).
  local own = ({ merge = "fluxloop.merge", init = "fluxloop.init_project", generate = "fluxloop.generate" })[cmd.command]
  if own then return require(own).main(cmd.args) end
  if cmd.command == "python-path" then return require("fluxloop.target").python_path_main() end
  -- Commands that read results folders: each is one module with main(flags).
  local reader = ({ parse = "fluxloop.parse", report = "fluxloop.report", compare = "fluxloop.compare",
    evaluate = "fluxloop.evaluate" })[cmd.command]
  if reader then return require(reader).main(cmd.flags) end
  if cmd.flags.script then return M.run_script(cmd.flags) end
  return M.run_experiment(cmd.flags)
end

return M
