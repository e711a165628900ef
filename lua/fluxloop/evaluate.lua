-- evaluate.lua - `fluxloop evaluate experiment DIR`: grades a finished experiment without
-- running its agent. Every trace of traces.jsonl goes to the graders (the config's
-- evaluation.graders, the Python tool's evaluation.yaml metrics, each input's assert:);
-- scores.jsonl and summary.json's scores are replaced. --parallel N grades N traces at a
-- time (threads of fluxloop.pool running fluxloop.grade.worker).
local fs = require("fluxloop.fs")
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

local EXIT_CRITICAL, EXIT_INTERRUPTED = 2, 130
local SCRATCH = ".evaluate"

local function say(line) io.stderr:write(line, "\n") end

-- Reads one config file's graders: ours (evaluation.graders) or the Python tool's
-- evaluation.yaml (metrics). Returns specs, warnings | nil, errors (one a line).
local function graders_of(path, display, project_dir)
  local config = require("fluxloop.config")
  local doc, marks = config.load_sections(path, display)
  if not doc then return nil, marks end
  local python_eval = require("fluxloop.grade.python_eval")
  local grade_config = require("fluxloop.grade.config")
  local is_py = python_eval.is_python_eval(doc)
  local c = require("fluxloop.config.checker").new(doc, marks, display, { known = is_py and python_eval.known
    or grade_config.known })
  local cfg = { project_dir = project_dir }
  local specs
  if is_py then
    c:scan_keys("", doc)
    specs = python_eval.graders(c)
  else
    grade_config.check(c, cfg)
    specs = cfg.evaluation and cfg.evaluation.graders or {}
  end
  local texts = {}
  for _, e in ipairs(c.errors) do texts[#texts + 1] = e.text end
  if #texts > 0 then return nil, table.concat(texts, "\n") end
  local warnings = {}
  for _, w in ipairs(c.warnings) do warnings[#warnings + 1] = w.text end
  return specs, warnings
end

-- The graders: --config FILE, else the config the experiment ran with; and the
-- evaluation.yaml beside it. -> specs, project_dir, warnings | nil, message
local function load_graders(flags, summary, cwd)
  local config = require("fluxloop.config")
  local files = {}
  if flags.config then
    local path, project_dir, display = config.locate(flags.config, cwd)
    if not path then return nil, project_dir end
    files[1] = { path = path, display = display, project_dir = project_dir }
  elseif type(summary.config_file) == "string" and fs.exists(summary.config_file) then
    local path = summary.config_file
    local dir = util.dirname(path)
    files[1] = { path = path, display = path, project_dir = util.basename(dir) == "configs" and util.dirname(dir) or dir }
  end
  local first = files[1]
  local beside = first and util.join_path(util.dirname(first.path), "evaluation.yaml")
  if beside and beside ~= first.path and fs.exists(beside) then
    files[#files + 1] = { path = beside, display = util.join_path(util.dirname(first.display), "evaluation.yaml"),
      project_dir = first.project_dir }
  end
  if #files == 0 then
    return nil, ("no config to grade with: the experiment's config (%s) is gone; pass --config FILE holding "
      .. "evaluation.graders"):format(tostring(summary.config_file))
  end
  -- A lua grader's module is found as an agent's is: the project's lua/ folder, then the project.
  local pd = first.project_dir
  package.path = table.concat({ pd, "/lua/?.lua;", pd, "/lua/?/init.lua;", pd, "/?.lua;", pd, "/?/init.lua;", package.path })
  local specs, warnings, seen = {}, {}, {}
  for _, f in ipairs(files) do
    local list, w = graders_of(f.path, f.display, f.project_dir)
    if not list then return nil, w end
    for _, line in ipairs(w) do warnings[#warnings + 1] = line end
    for _, s in ipairs(list) do
      if seen[s.name] then
        return nil, ("%s: grader name '%s' is used in %s too; give each grader a unique name"):format(f.display,
          s.name, seen[s.name])
      end
      seen[s.name] = f.display
      specs[#specs + 1] = s
    end
  end
  return specs, files[1].project_dir, warnings
end

-- The inputs' own graders (assert:) and expected values, by input index, with a hash of
-- each input so a trace takes them only from the input it ran. Read only when the inputs
-- file has an assert:, and only for the inputs that have one. -> entries | nil, warning
local function entry_graders(summary)
  local file = summary.inputs_file
  if type(file) ~= "string" or not fs.exists(file) then return nil end
  local hash = require("fluxloop.stats").hash
  local entries, count, any = {}, 0, false
  local n, err = require("fluxloop.inputs").stream(file, file, function(entry, i)
    if entry == nil then entries, any = {}, false return end
    count = i
    if entry.assert ~= nil then
      any = true
      entries[tostring(i)] = { assert = entry.assert, expected = entry.expected, input_hash = hash(json.encode(entry.input)) }
    end
  end)
  if not n then return nil, ("the inputs' assert: lists are not used: %s"):format(err) end
  if not any then return nil end
  if (summary.inputs_dropped or 0) > 0 or (summary.inputs and summary.inputs ~= count) then
    return nil, ("the inputs' assert: lists are not used: %s has %d inputs, but the experiment ran %s (hooks "
      .. "or an edit changed them)"):format(file, count, tostring(summary.inputs))
  end
  return entries
end

-- Grades every trace into DIR/.evaluate/scores.jsonl, then moves it over DIR/scores.jsonl.
local function grade_all(dir, setup, total, workers, p)
  local scratch = dir .. "/" .. SCRATCH
  fs.remove_files_dir(scratch)
  local ok, err = fs.mkdir(scratch)
  if not ok then return nil, err end
  local rec, rerr = require("fluxloop.recorder").open(scratch, { only_scores = true, iterations = setup.iterations })
  if not rec then return nil, rerr end
  require("fluxloop.guard").install()
  p:start(total, workers)
  local result, perr = require("fluxloop.pool").run({
    workers = workers, total = total, sink = rec:sink(), setup = json.encode(setup), path = package.path,
    cpath = package.cpath, module = "fluxloop.grade.worker",
    on_progress = function(done, in_flight) p:update(done, in_flight) end,
  })
  p:update(rec:done(), 0)
  p:finish()
  local grades, graded = rec:grades(), rec:stats().count -- traces written (damaged lines are not)
  local closed, cerr = rec:close()
  if not result or not closed then
    fs.remove_files_dir(scratch)
    return nil, perr or cerr
  end
  if require("fluxloop.guard").interrupted() then
    fs.remove_files_dir(scratch)
    return nil, "interrupted", true
  end
  local moved, merr = os.rename(scratch .. "/scores.jsonl", dir .. "/scores.jsonl")
  fs.remove_files_dir(scratch)
  if not moved then return nil, merr end
  return grades, graded
end

local function critical(msg)
  for line in (msg .. "\n"):gmatch("(.-)\n") do
    say(line:find("^%s") and line or ("fluxloop: error: " .. line))
  end
  return EXIT_CRITICAL
end

-- main(flags) -> exit status. flags: dir, config, no_cache, parallel, rate_limit, quiet.
function M.main(flags)
  local cwd = assert(fs.getcwd())
  local dir = util.abspath(flags.dir, cwd)
  local summary_path = dir .. "/summary.json"
  if not fs.isdir(dir) then return critical(("%s: no such folder"):format(flags.dir)) end
  if not fs.exists(dir .. "/traces.jsonl") then
    local hint = fs.isdir(dir .. "/shards") and " (a sharded experiment: run 'fluxloop merge' first, or evaluate one shard)"
      or " (is it an experiment folder?)"
    return critical(("%s has no traces.jsonl%s"):format(flags.dir, hint))
  end
  local summary, serr = util.read_json(summary_path)
  if type(summary) ~= "table" then
    return critical(("%s/summary.json cannot be read: %s"):format(flags.dir, tostring(serr or "not a JSON object")))
  end
  local specs, project_dir, warnings = load_graders(flags, summary, cwd)
  if not specs then return critical(project_dir) end
  for _, w in ipairs(warnings) do say(w) end
  local entries, ewarn = entry_graders(summary)
  if ewarn then say("fluxloop: warning: " .. ewarn) end
  if #specs == 0 and not entries then
    return critical(("no graders: add evaluation.graders to the config (%s), or assert: lists to the inputs")
      :format(tostring(summary.config_file)))
  end
  -- The lines to grade, counted without reading them (damaged ones are found, and skipped, as
  -- the graders read).
  local total, cerr = require("fluxloop.jsonlread").count_lines(dir .. "/traces.jsonl")
  if not total then return critical(cerr) end
  if total == 0 then return critical(("%s/traces.jsonl holds no traces"):format(flags.dir)) end

  local grade = require("fluxloop.grade")
  local iterations = math.tointeger(summary.iterations) or 1
  local grading = grade.plan({ evaluation = { graders = specs }, project_dir = project_dir }, entries ~= nil)
  grading.results_dir, grading.no_cache = dir, flags.no_cache or false
  if flags.rate_limit then
    require("fluxloop.ratelimit").configure({ requests_per_second = flags.rate_limit, burst = 1 })
  end
  local p = require("fluxloop.progress").new({ quiet = flags.quiet })
  p:info(("Grading %d traces of %s with %d grader%s%s"):format(total, flags.dir, #specs, #specs == 1 and "" or "s",
    entries and " and the inputs' assert: lists" or ""))
  local setup = { traces = dir .. "/traces.jsonl", iterations = iterations, grading = grading, entries = entries,
    secret_values = require("fluxloop.grade.config").secret_values(specs) }
  local grades, graded, interrupted = grade_all(dir, setup, total, flags.parallel or 1, p)
  if not grades then
    if interrupted then say("[INFO] Interrupted: scores.jsonl is unchanged") return EXIT_INTERRUPTED end
    return critical(("grading failed: %s"):format(tostring(graded)))
  end
  if graded < total then
    say(("fluxloop: warning: %s/traces.jsonl: %d damaged line(s) skipped (not JSON)"):format(flags.dir, total - graded))
  end
  local grade_summary = require("fluxloop.grade.summary")
  summary.scores = grade_summary.scores(grades, specs)
  summary.evaluated_at = require("fluxloop.clock").utc_iso()
  local ok, werr = require("fluxloop.output").write_summary(summary_path, summary)
  if not ok then return critical(("writing %s failed: %s"):format(summary_path, werr)) end
  local lines, missed = grade_summary.lines(summary.scores, iterations)
  if not flags.quiet then
    say(("[INFO] Done: %d traces graded. Scores: %s/scores.jsonl"):format(graded, dir))
    for _, line in ipairs(lines) do say(line) end
  end
  for _, line in ipairs(missed) do say(line) end
  return #missed > 0 and 1 or 0
end

return M
