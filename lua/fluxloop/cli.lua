-- cli.lua - parses the fluxloop command line and holds its help texts.
local config = require("fluxloop.config")
local util = require("fluxloop.util")

local M = {}

-- Flags of `run experiment`: field in cmd.flags, and what the value is.
local FLAGS = {
  ["--iterations"] = { field = "iterations", kind = "int", min = 1 },
  ["--inputs"] = { field = "inputs", kind = "string" },
  ["--output-dir"] = { field = "output_dir", kind = "string" },
  ["--name"] = { field = "name", kind = "string" },
  ["--config"] = { field = "config", kind = "string" },
  ["--parallel"] = { field = "parallel", kind = "int", min = 1, max = config.MAX_PARALLEL },
  ["--timeout"] = { field = "timeout_ms", kind = "duration", max = config.MAX_TIMEOUT_MS },
  ["--isolate"] = { field = "isolate", kind = "bool" },
  ["--rate-limit"] = { field = "rate_limit", kind = "rate" },
  ["--hooks"] = { field = "hooks", kind = "string" },
  ["--script"] = { field = "script", kind = "string" },
  ["--lua-path"] = { field = "lua_path", kind = "list" },
  ["--resume"] = { field = "resume", kind = "string" },
  ["--retry-failed"] = { field = "retry_failed", kind = "string" },
  ["--quiet"] = { field = "quiet", kind = "bool" },
  ["--no-progress"] = { field = "no_progress", kind = "bool" },
  ["--shard"] = { field = "shard", kind = "string" },
  ["--multi-turn"] = { field = "multi_turn", kind = "bool" },
  ["--no-multi-turn"] = { field = "multi_turn", kind = "bool", value = false },
  ["--max-turns"] = { field = "max_turns", kind = "int", min = 1, max = 100 },
}

local FLAG_NAMES = {
  "--iterations", "--inputs", "--output-dir", "--name", "--config", "--parallel",
  "--timeout", "--isolate", "--rate-limit", "--hooks", "--script", "--lua-path", "--resume",
  "--retry-failed", "--quiet", "--no-progress", "--shard", "--multi-turn", "--no-multi-turn", "--max-turns",
  "--help",
}

local HELP_WORDS = { ["--help"] = true, ["-h"] = true, help = true }

local HELP = {}

HELP.top = [[
fluxloop - run an agent over a set of inputs, N times each, and record every run.

Usage:
  fluxloop run experiment [OPTIONS]   run the experiment of the project in this folder
  fluxloop parse experiment DIR       markdown and per_trace.jsonl of a results folder
  fluxloop report DIR                 one HTML report of a results folder
  fluxloop compare BASE NEW           what changed between two results folders
  fluxloop merge EXPERIMENT_DIR       merge the shards of a sharded experiment (--shard)
  fluxloop evaluate experiment DIR    grade a finished experiment (evaluation.graders)
  fluxloop init project [DIR]         write a project that runs at once (--python: a
                                      Python agent)
  fluxloop generate inputs            write the inputs file from configs/input.yaml
                                      (--mode llm: a model varies them; deterministic:
                                      templates, no model)
  fluxloop python-path                where the Python SDK lives, for PYTHONPATH outside
                                      a run: PYTHONPATH="$(fluxloop python-path)"
  fluxloop --version                  print the version (-v with it: the Lua modules and
                                      the file each is loaded from)
  fluxloop --help                     this text

Commands:
  run experiment   Load configs/simulation.yaml and the inputs, call runner.target for
                   every input `iterations` times, and write the traces to
                   experiments/<name>_<YYYYMMDD_HHMMSS>/.

Run 'fluxloop run experiment --help' for its options (and 'fluxloop init project --help',
'fluxloop generate inputs --help' for theirs).

Exit codes:
  0    the experiment completed and no run failed
  1    it completed and some runs failed
  2    critical error: found before the runs (usage, invalid config, missing file,
       unresolvable target), nothing was run; found while writing (a full disk), the
       runs stopped, and --resume DIR continues once there is room
  70   an internal error in fluxloop itself (please report it with the traceback)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); what finished is on disk
]]

HELP.run = [[
Usage: fluxloop run experiment [OPTIONS]

Commands:
  experiment   Execute a simulation experiment with your agent.

Run 'fluxloop run experiment --help' for its options.
]]

HELP.experiment = [[
Usage: fluxloop run experiment [OPTIONS]

Execute a simulation experiment with your agent: every input of the inputs file is
given to runner.target `iterations` times, and each run is recorded.
Options override the config (configs/simulation.yaml); paths are relative to the
current folder.

Options:
  --iterations N      Runs per input (integer >= 1).          Default: from config, else 10
  --inputs FILE       Inputs file (generated_inputs:, inputs: or a top-level list).
                      Default: the config's inputs.file, else inputs/generated.yaml
  --output-dir DIR    Folder that receives the results folder.  Default: experiments/
  --name NAME         Experiment name, the prefix of the results folder.
                      Default: the config's name, else the target's module name
  --config FILE       Config file.                  Default: configs/simulation.yaml
  --parallel N        Runs at the same time (integer >= 1).    Default: from config, else 1
  --timeout TIME      Fail a run that takes longer than TIME: 500ms, 30s, 2m, 1h; a bare
                      number is milliseconds (0 = no limit).
                      Default: runner.timeout (or timeout_ms, timeout_seconds), else 0
  --isolate           Run agents in forked worker processes, so a crash fails only
                      that run (runner.isolation: process).
  --rate-limit R      HTTP requests per second over all workers (fluxloop.http and
                      http: targets; runner.rate_limit).        Default: no limit
  --hooks FILE        Lua hooks file (filter_input, transform_input, before_run, ...).
  --script FILE       Run your own Lua orchestration instead of the default one;
                      arguments after `--` are passed to it.
  --lua-path DIR      Look for Lua modules in DIR first (repeatable; also
                      FLUXLOOP_LUA_PATH=dir:dir).
  --resume DIR        Finish an interrupted experiment in its results folder DIR.
  --retry-failed DIR  Run the failed traces of results folder DIR again, in place.
  --shard K/N|auto    Run only shard K of N (0-based: the runs whose plan index i has
                      i mod N = K) into <name>_<job id>/shards/K-of-N/; the job id is
                      SLURM_ARRAY_JOB_ID or FLUXLOOP_RUN_ID. auto: K and N from a Slurm
                      array task or a Kubernetes Indexed Job (FLUXLOOP_SHARDS = N).
  --multi-turn        Run each input as a conversation (multi_turn.enabled: true);
  --no-multi-turn     or as one turn, whatever the config says.
  --max-turns N       Turns of a conversation at most, 1..100 (multi_turn.max_turns).
  --quiet             Print only warnings and errors.
  --no-progress       No progress bar; [INFO] lines only.
  -h, --help          This text.

Each option takes its value as `--option VALUE` or `--option=VALUE`.

Examples:
  fluxloop run experiment
  fluxloop run experiment --iterations 20
  fluxloop run experiment --name "baseline-test"
  fluxloop run experiment --inputs my-custom-inputs.yaml
  fluxloop run experiment --inputs inputs/batch1.yaml --name batch1
  fluxloop run experiment --parallel 4 --timeout 30s

Results (experiments/<name>_<YYYYMMDD_HHMMSS>/):
  summary.json, trace_summary.jsonl, traces.jsonl, observations.jsonl, config.yaml,
  plan.json (what --resume checks)

Exit codes:
  0    the experiment completed and no run failed
  1    it completed and some runs failed
  2    critical error: found before the runs (usage, invalid config, missing file,
       unresolvable target), nothing was run; found while writing (a full disk), the
       runs stopped, and --resume DIR continues once there is room
  70   an internal error in fluxloop itself (please report it with the traceback)
  130  interrupted (Ctrl-C, SIGTERM, SIGHUP); what finished is on disk, summary.json
       says "interrupted": true, and --resume DIR finishes it
]]

HELP.parse = [[
Usage: fluxloop parse experiment DIR [--output per_trace_analysis] [--format md|jsonl] [--overwrite]

Turn the traces of experiment folder DIR into files people read: one markdown file per
trace, <iteration:02d>_<trace_id>.md (YAML front matter with trace_id, iteration, persona,
duration_ms, success; input, output, error with traceback, observations timeline), and
per_trace.jsonl with one record per trace (the Python fluxloop's per_trace_analysis layout).

Options:
  --output DIR        Output folder; relative to DIR.        Default: per_trace_analysis
  --format md|jsonl   md: markdown files and per_trace.jsonl; jsonl: per_trace.jsonl only.
                      Default: md
  --overwrite         Write into an existing output folder (its other files stay).
  --quiet             Print only warnings and errors.
  -h, --help          This text.

Exit codes: 0 done; 2 usage error, not an experiment folder, no traces, output exists.
]]

HELP.report = [[
Usage: fluxloop report DIR [--output DIR/report.html] [--compare BASE]

Write one self-contained HTML file (no network: inline CSS and SVG) about experiment
folder DIR: summary, latency charts, success rate with 95% Wilson interval, latency and
consistency per input and per persona, failures grouped, the slowest runs and their
observation timelines. With --compare BASE it adds what changed since experiment BASE.

Options:
  --output FILE       The HTML file to write.               Default: DIR/report.html
  --compare BASE      Add a comparison with the earlier experiment folder BASE.
  --alpha A           Significance level of the comparison.  Default: 0.05
  --quiet             Print only warnings and errors.
  -h, --help          This text.

Exit codes: 0 written; 2 usage error, not an experiment folder, no traces.
]]

HELP.compare = [[
Usage: fluxloop compare BASE NEW [--alpha 0.05] [--fail-on regression]

Compare experiment folders BASE and NEW, per input and overall: success rate (Fisher's
exact test, two-sided), latency (Mann-Whitney U, two-sided) and consistency (share of
the most common output). A change is significant when its p-value, Holm-adjusted across
the inputs, is below --alpha; a latency change must also be at least 10% and 0.5 ms.
Inputs present in one run only are listed apart.

Options:
  --alpha A               Significance level (0 < A < 1).     Default: 0.05
  --fail-on regression    Exit 1 when any change is a significant regression (a CI gate).
  -h, --help              This text.

Exit codes: 0 compared (no gate tripped); 1 --fail-on regression and a significant
regression; 2 usage error, not an experiment folder, no traces, no input in common.
]]

HELP.evaluate = [[
Usage: fluxloop evaluate experiment DIR [--config FILE] [--no-cache] [--parallel N]
                                        [--rate-limit R] [--quiet]

Grade a finished experiment without running the agent again: every trace of DIR is given
to the graders of the config (evaluation.graders), and to its input's own assert: list.
scores.jsonl and summary.json's scores are replaced. The graders come from --config FILE,
else the config the experiment was run with; configs/evaluation.yaml beside it is read
too (the Python fluxloop's metrics become llm_judge graders).

Options:
  --config FILE       The config holding the graders.   Default: the experiment's own
  --no-cache          Ask the judge again (its verdicts are cached in DIR/judge_cache.jsonl).
  --parallel N        Traces graded at the same time (judge requests in flight). Default: 1
  --rate-limit R      Judge requests per second.                  Default: no limit
  --quiet             Print only warnings and errors.
  -h, --help          This text.

Exit codes: 0 graded, every grader at or above its threshold; 1 a grader under its
threshold; 2 usage error, not an experiment folder, an invalid grader.
]]

-- The usage text of a topic: nil (top level), "run", "run experiment", "parse", "report", "compare", "evaluate".
function M.help(topic)
  if HELP[topic] and topic ~= "top" and topic ~= "experiment" then return HELP[topic] end
  if topic == "run experiment" or topic == "experiment" then return HELP.experiment end
  if topic == "run" then return HELP.run end
  return HELP.top
end

local function suggest(word, candidates)
  local guess = util.closest(word, candidates)
  if not guess then
    -- A flag cut short (--output for --output-dir) is too far for a spelling match.
    for _, c in ipairs(candidates) do
      if #word > 3 and c:sub(1, #word) == word then guess = c break end
    end
  end
  if guess then return " (did you mean '" .. guess .. "'?)" end
  return ""
end

local function new_flags()
  return { lua_path = {}, script_args = {}, isolate = false, quiet = false, no_progress = false, warnings = {} }
end


local parse_int = require("fluxloop.args").int
-- --rate-limit R: requests per second, a number > 0 (0.5 is one request every 2 s).
local parse_rate = require("fluxloop.args").rate

local SEE_RUN = "; see 'fluxloop run experiment --help'"

-- --timeout TIME (fluxloop.duration): a bare number under 100 (ms) adds a warning to
-- flags.warnings, which the run prints, since seconds were most likely meant.
local function parse_duration(flags, name, value, max)
  local duration = require("fluxloop.duration")
  local ms, bare = duration.parse(value, max)
  if not ms then return nil, name .. ": " .. bare .. ", got '" .. value .. "'" end
  if duration.suspicious(ms, bare) then
    flags.warnings[#flags.warnings + 1] = "fluxloop: warning: " .. duration.did_you_mean(name, ms)
  end
  return ms
end

-- Parses the arguments after `run experiment`.
local function parse_experiment(argv, i)
  local flags = new_flags()
  -- --help anywhere wins, so a half-typed command line still gets its help.
  for j = i, #argv do
    if argv[j] == "--" then break end
    if argv[j] == "--help" or argv[j] == "-h" then
      return { command = "help", topic = "run experiment", verbose = false, flags = flags }
    end
  end
  local n = #argv
  while i <= n do
    local arg = argv[i]
    i = i + 1
    if arg == "--" then
      -- What follows `--` belongs to a --script: it gets them as flags.script_args.
      if i <= n and not flags.script then
        return nil, "unexpected argument '" .. argv[i] .. "' (arguments after -- are for a --script)" .. SEE_RUN
      end
      for j = i, n do flags.script_args[#flags.script_args + 1] = argv[j] end
      break
    end
    if arg:sub(1, 1) ~= "-" or arg == "-" then
      return nil, "unexpected argument '" .. arg .. "'" .. SEE_RUN
    end
    local name, value = arg:match("^(%-%-[^=]+)=(.*)$")
    name = name or arg
    local spec = FLAGS[name]
    if spec == nil then
      return nil, "unknown option '" .. name .. "'" .. suggest(name, FLAG_NAMES) .. SEE_RUN
    end
    if spec.kind == "bool" then
      if value ~= nil then return nil, name .. " takes no value" end
      flags[spec.field] = spec.value == nil or spec.value
    else
      if value == nil then
        value = argv[i]
        if value == nil or value:sub(1, 2) == "--" then
          return nil, name .. " needs a value"
        end
        i = i + 1
      end
      if value == "" then return nil, name .. " needs a value" end
      if spec.kind == "int" then
        local v, err = parse_int(name, value, spec.min, spec.max)
        if v == nil then return nil, err end
        flags[spec.field] = v
      elseif spec.kind == "duration" then
        local v, err = parse_duration(flags, name, value, spec.max)
        if v == nil then return nil, err end
        flags[spec.field] = v
      elseif spec.kind == "rate" then
        local v, err = parse_rate(name, value)
        if v == nil then return nil, err end
        flags[spec.field] = v
      elseif spec.kind == "list" then
        table.insert(flags[spec.field], value)
      else
        flags[spec.field] = value
      end
    end
  end
  if flags.resume and flags.retry_failed then
    return nil, "--resume and --retry-failed cannot be used together" .. SEE_RUN
  end
  return { command = "run_experiment", verbose = false, flags = flags }
end

-- The commands that read results folders: positional arguments, then their flags.
local READERS = {
  parse = { args = { "dir" }, flags = { ["--output"] = "string", ["--format"] = "string", ["--overwrite"] = "bool",
    ["--quiet"] = "bool" } },
  report = { args = { "dir" }, flags = { ["--output"] = "string", ["--compare"] = "string", ["--alpha"] = "number",
    ["--quiet"] = "bool" } },
  compare = { args = { "base", "new" }, flags = { ["--alpha"] = "number", ["--fail-on"] = "string" } },
  evaluate = { args = { "dir" }, flags = { ["--config"] = "string", ["--no-cache"] = "bool", ["--parallel"] = "int",
    ["--rate-limit"] = "rate", ["--quiet"] = "bool" } },
}

-- A reader command's name as it is typed.
local function reader_name(word)
  return (word == "parse" or word == "evaluate") and (word .. " experiment") or word
end

local function parse_reader(word, argv, i)
  local spec = READERS[word]
  local see = "; see 'fluxloop " .. reader_name(word) .. " --help'"
  local flags = { command = word }
  local positional = {}
  for j = i, #argv do
    if argv[j] == "--help" or argv[j] == "-h" then return { command = "help", topic = word, flags = flags } end
  end
  while i <= #argv do
    local arg = argv[i]
    i = i + 1
    if arg:sub(1, 2) == "--" then
      local name, value = arg:match("^(%-%-[^=]+)=(.*)$")
      name = name or arg
      local kind = spec.flags[name]
      if kind == nil then
        local names = {}
        for k in pairs(spec.flags) do names[#names + 1] = k end
        table.sort(names)
        return nil, "unknown option '" .. name .. "'" .. suggest(name, names) .. see
      end
      local field = name:sub(3):gsub("%-", "_")
      if kind == "bool" then
        if value ~= nil then return nil, name .. " takes no value" end
        flags[field] = true
      else
        if value == nil then value = argv[i]; i = i + 1 end
        if value == nil or value == "" then return nil, name .. " needs a value" .. see end
        local err
        if kind == "number" then
          local n = tonumber(value)
          if not n or n <= 0 or n >= 1 then return nil, name .. ": expected a number between 0 and 1, got '" .. value .. "'" end
          value = n
        elseif kind == "int" then
          value, err = parse_int(name, value, 1, config.MAX_PARALLEL)
        elseif kind == "rate" then
          value, err = parse_rate(name, value)
        end
        if value == nil then return nil, err .. see end
        flags[field] = value
      end
    else
      positional[#positional + 1] = arg
    end
  end
  if #positional ~= #spec.args then
    local want = table.concat(spec.args, " "):upper()
    return nil, ("%s needs %s (got %d argument%s)%s"):format(reader_name(word), want,
      #positional, #positional == 1 and "" or "s", see)
  end
  for k, name in ipairs(spec.args) do flags[name] = positional[k] end
  if flags.format and flags.format ~= "md" and flags.format ~= "jsonl" then
    return nil, "--format: expected md or jsonl, got '" .. flags.format .. "'" .. see
  end
  if flags.fail_on and flags.fail_on ~= "regression" then
    return nil, "--fail-on: expected 'regression', got '" .. flags.fail_on .. "'" .. see
  end
  return { command = word, verbose = false, flags = flags }
end

-- Parses argv (a list of strings without the program name). Returns cmd =
-- { command = "run_experiment" | "version" | "help", topic = ..., verbose = bool,
--   flags = {...} } or nil and a usage message.
function M.parse(argv)
  local n = #argv
  local i = 1
  local long_version, short_v, help = false, false, false
  -- Top-level options come before the command.
  while i <= n and argv[i]:sub(1, 1) == "-" do
    local arg = argv[i]
    if arg == "--version" or arg == "-V" then
      long_version = true
    elseif arg == "-v" then
      -- -v alone is the Python tool's --version; beside --version it asks for details.
      short_v = true
    elseif arg == "--help" or arg == "-h" then
      help = true
    elseif arg == "--lua-path" and argv[i + 1] then
      i = i + 1 -- the host has put it on package.path already (see --version -v)
    elseif arg:sub(1, 11) == "--lua-path=" then
      -- likewise
    else
      return nil, "unknown option '" .. arg .. "'"
        .. suggest(arg, { "--version", "--help" }) .. "; see 'fluxloop --help'"
    end
    i = i + 1
  end
  local flags = new_flags()
  if help then return { command = "help", topic = nil, verbose = false, flags = flags } end
  if long_version or short_v then
    return { command = "version", verbose = long_version and short_v, flags = flags }
  end

  local word = argv[i]
  if word == nil then
    return nil, "missing command; try 'fluxloop run experiment', or see 'fluxloop --help'"
  end
  i = i + 1
  if word == "help" then
    local topic = argv[i]
    if topic == "run" then
      if argv[i + 1] == "experiment" then topic = "run experiment" end
    elseif topic == "experiment" then
      topic = "run experiment"
    elseif topic == "init" or topic == "generate" or topic == "merge" then -- their modules hold their help
      return { command = topic, args = { "--help" }, verbose = false, flags = flags }
    elseif READERS[topic] then -- luacheck: ignore (keeps the topic)
    elseif topic ~= nil then
      return nil, "no help for '" .. table.concat(argv, " ", i) .. "'; see 'fluxloop --help'"
    end
    return { command = "help", topic = topic, verbose = false, flags = flags }
  end
  if word == "python-path" then
    if argv[i] ~= nil then return nil, "python-path takes no arguments; see 'fluxloop --help'" end
    return { command = "python-path", verbose = false, flags = flags }
  end
  if word == "merge" or word == "init" or word == "generate" then -- these parse their own arguments
    return { command = word, args = { table.unpack(argv, i) }, verbose = false, flags = flags }
  end
  if word == "parse" or word == "evaluate" then
    if argv[i] == "experiment" then return parse_reader(word, argv, i + 1) end
    if HELP_WORDS[argv[i]] then return { command = "help", topic = word, flags = flags } end
    return nil, ("missing 'experiment' after '%s': try 'fluxloop %s experiment DIR'"):format(word, word)
  end
  if READERS[word] then return parse_reader(word, argv, i) end
  if word ~= "run" then
    return nil, "unknown command '" .. word .. "'" .. suggest(word, { "run", "help", "parse", "report", "compare", "merge",
      "evaluate", "init", "generate", "python-path" })
      .. "; see 'fluxloop --help'"
  end

  local sub = argv[i]
  if sub == nil then
    return nil, "missing command after 'run'; try 'fluxloop run experiment' "
      .. "(see 'fluxloop run --help')"
  end
  i = i + 1
  if HELP_WORDS[sub] then
    return { command = "help", topic = "run", verbose = false, flags = flags }
  end
  if sub ~= "experiment" then
    return nil, "unknown command 'run " .. sub .. "'" .. suggest(sub, { "experiment" })
      .. "; see 'fluxloop run --help'"
  end
  return parse_experiment(argv, i)
end

return M
