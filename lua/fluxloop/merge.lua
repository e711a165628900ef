-- merge.lua - `fluxloop merge`: checks that shard folders (--shard) make one experiment and
-- merges them into the experiment folder's own files, in trace order, as one machine would
-- have written them. The streaming is C (fluxloop.kmerge); the checks and messages are here.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local json = require("fluxloop.json")
local output = require("fluxloop.output")
local shard_mod = require("fluxloop.shard")
local util = require("fluxloop.util")

local M = {}

local TRACE_FILES = { "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }
-- What a merge writes into the experiment folder; summary.json last, so its presence means
-- the rest is there.
local MERGED_FILES = { "trace_summary.jsonl", "traces.jsonl", "observations.jsonl", "scores.jsonl", "config.yaml",
  "plan.json", "summary.json" }
local WORK = ".merge" -- made with one mkdir: two merges into one folder cannot both run

M.USAGE = [[
Usage: fluxloop merge [OPTIONS] EXPERIMENT_DIR
       fluxloop merge [OPTIONS] SHARD_DIR...

Merges the shards of a sharded experiment (fluxloop run experiment --shard K/N) into
the experiment folder's own files: trace_summary.jsonl, traces.jsonl and
observations.jsonl in trace order, config.yaml, plan.json, and summary.json counted
over every run, as one machine would have written them (times and durations aside).
EXPERIMENT_DIR is <name>_<job id>, which holds shards/K-of-N/; or name the shard
folders themselves.

It checks first that the shards share one plan, that each of 0..N-1 is there once,
finished, with every run; otherwise it says what is missing and writes nothing.

Options:
  --partial       Merge what is there anyway; summary.json says "partial": true and
                  which shards and how many runs are missing. --resume DIR on the
                  merged folder then runs the missing traces on this machine.
  --output DIR    Where to write (default: the experiment folder the shards are in).
  --quiet         Print only errors.
  -h, --help      This text.

Exit codes: 0 merged, no run failed; 1 merged, some runs failed; 2 nothing written
(the message says why).
]]

local OPTIONS = { "--partial", "--output", "--quiet", "--help" }

-- parse(args) -> opts = { partial, output, quiet, dirs, help } | nil, message
function M.parse(args)
  local opts = { dirs = {} }
  local i = 1
  while i <= #args do
    local a = args[i]
    if a == "--help" or a == "-h" then
      opts.help = true
    elseif a == "--partial" then
      opts.partial = true
    elseif a == "--quiet" then
      opts.quiet = true
    elseif a == "--output" or a:match("^%-%-output=") then
      opts.output = a:match("^%-%-output=(.*)$")
      if not opts.output then
        i = i + 1
        opts.output = args[i]
      end
      if not opts.output or opts.output == "" then return nil, "--output needs a folder" end
    elseif a:sub(1, 1) == "-" and a ~= "-" then
      local guess = util.closest(a, OPTIONS)
      return nil, ("merge: unknown option '%s'%s; see 'fluxloop merge --help'"):format(a,
        guess and (" (did you mean '" .. guess .. "'?)") or "")
    else
      opts.dirs[#opts.dirs + 1] = a
    end
    i = i + 1
  end
  if not opts.help and #opts.dirs == 0 then
    return nil, "merge: name the experiment folder (or its shard folders); see 'fluxloop merge --help'"
  end
  return opts
end

local read_json = util.read_json

-- A shard folder as merge sees it: { dir, label, plan, summary, index, count }.
local function load_shard(dir)
  local plan, damage = read_json(dir .. "/plan.json")
  if damage then
    return nil, ("%s, so this shard cannot be placed; run the shard again (fluxloop run experiment --shard K/N)")
      :format(damage)
  end
  if type(plan) ~= "table" or type(plan.shard) ~= "table" then
    return nil, ("%s is not a shard folder (its plan.json %s); shard folders are made by "
      .. "fluxloop run experiment --shard K/N"):format(dir, plan and "names no shard" or "is missing")
  end
  local s = { dir = dir, plan = plan, index = math.tointeger(plan.shard.index), count = math.tointeger(plan.shard.count) }
  if not s.index or not s.count then return nil, ("%s/plan.json: shard index/count are not integers"):format(dir) end
  s.label = shard_mod.name(s)
  local k, n = shard_mod.parse_name(util.basename(dir))
  if k and (k ~= s.index or n ~= s.count) then
    return nil, ("%s is named %d-of-%d but its plan.json says shard %s; rename it back"):format(dir, k, n, s.label)
  end
  s.summary, s.summary_damage = read_json(dir .. "/summary.json")
  s.resuming = fs.isdir(dir .. "/.rerun")
  return s
end

-- find(opts, cwd) -> target folder, list of shards | nil, message
local function find(opts, cwd)
  local dirs = {}
  for i, d in ipairs(opts.dirs) do
    dirs[i] = util.abspath(d, cwd)
    if not fs.isdir(dirs[i]) then return nil, ("merge: %s: no such folder"):format(d) end
  end
  local target, shard_dirs = nil, {}
  if #dirs == 1 and fs.isdir(dirs[1] .. "/shards") then
    target = dirs[1]
    local names, err = fs.list(target .. "/shards")
    if not names then return nil, err end
    for _, name in ipairs(names) do
      if shard_mod.parse_name(name) and fs.isdir(target .. "/shards/" .. name) then
        shard_dirs[#shard_dirs + 1] = target .. "/shards/" .. name
      end
    end
    if #shard_dirs == 0 then return nil, ("merge: %s/shards holds no shard folder (K-of-N)"):format(target) end
  else
    shard_dirs = dirs
    -- Shard folders of one experiment folder merge into it.
    for _, d in ipairs(dirs) do
      local parent = util.dirname(d)
      local exp = util.basename(parent) == "shards" and util.dirname(parent) or nil
      if target == nil then target = exp or false elseif target ~= exp then target = false end
    end
  end
  local shards = {}
  for i, d in ipairs(shard_dirs) do
    local s, err = load_shard(d)
    if not s then
      if #dirs == 1 and not target then err = err:gsub(" is not a shard folder", " is neither an experiment folder "
        .. "(it has no shards/) nor a shard folder", 1) end
      return nil, "merge: " .. err
    end
    shards[i] = s
  end
  if opts.output then target = util.abspath(opts.output, cwd) end
  if not target then
    return nil, "merge: the shard folders are not all in one experiment folder's shards/; say where "
      .. "the merged files go with --output DIR"
  end
  return target, shards
end

-- One plan, one N, each K once. Returns the list of problems (missing shards are listed
-- separately, since --partial accepts them).
local function check_plan(shards)
  local first, by_index = shards[1], {}
  for _, s in ipairs(shards) do
    if s.plan.plan_hash ~= first.plan.plan_hash or s.count ~= first.count then
      local function what(x)
        return ("plan %s: %s inputs x %s iterations of %s, %d shards"):format(tostring(x.plan.plan_hash),
          tostring(x.plan.inputs), tostring(x.plan.iterations), tostring(x.plan.target), x.count)
      end
      return nil, ("merge: the shards are not of one experiment: %s has %s, but %s has %s; merge only shards "
        .. "made from the same config and inputs with the same N"):format(first.dir, what(first), s.dir, what(s))
    end
    if by_index[s.index] then
      return nil, ("merge: shard %s appears twice: %s and %s (a shard ran twice?); keep one of them")
        :format(s.label, by_index[s.index].dir, s.dir)
    end
    by_index[s.index] = s
  end
  local missing = {}
  for k = 0, first.count - 1 do
    if not by_index[k] then missing[#missing + 1] = ("%d-of-%d"):format(k, first.count) end
  end
  table.sort(shards, function(a, b) return a.index < b.index end)
  return missing
end

local function trace_ids(ks)
  local ids = {}
  for i, k in ipairs(ks) do ids[i] = ("trace_%03d"):format(k) end
  return table.concat(ids, ", ")
end

-- check_whole(m, shard, problems) -> true | nil, message: each trace the shard's summary lists
-- must have a whole traces.jsonl line and all its observations.jsonl lines; the traces that do
-- not are left out of the merge (m:check) and named in problems, file by file.
local function check_whole(m, s, problems)
  local c, err = m:check(s.index, s.dir .. "/traces.jsonl", s.sizes["traces.jsonl"], s.dir .. "/observations.jsonl",
    s.sizes["observations.jsonl"])
  if not c then return nil, ("merge: shard %s: %s"):format(s.label, err) end
  local resume = ("fluxloop run experiment --resume %s runs them again"):format(s.dir)
  local function damaged(count, line)
    return count > 0 and ("; %d damaged line%s, the first at line %d"):format(count, count == 1 and "" or "s", line) or ""
  end
  if c.no_trace > 0 then
    problems[#problems + 1] = ("shard %s: %s/traces.jsonl has no whole line for %d of its traces (%s%s)%s; %s")
      :format(s.label, s.dir, c.no_trace, trace_ids(c.first_no_trace), c.no_trace > #c.first_no_trace and ", ..." or "",
        damaged(c.damaged_traces, c.first_damaged_trace), resume)
  end
  if c.short_obs > 0 then
    problems[#problems + 1] = ("shard %s: %s/observations.jsonl lacks observation lines of %d traces (%s%s)%s; %s")
      :format(s.label, s.dir, c.short_obs, trace_ids(c.first_short_obs), c.short_obs > #c.first_short_obs and ", ..." or "",
        damaged(c.damaged_obs, c.first_damaged_obs), resume)
  end
  return true
end

-- Scans every shard's trace_summary.jsonl (sizes fixed first, so a file that still grows is
-- noticed afterwards). Returns the merger and a list of problems | nil, message.
local function scan(shards, planned, count)
  local m = assert(require("fluxloop.kmerge").new(planned, count))
  local problems = {}
  for _, s in ipairs(shards) do
    s.sizes = {}
    for _, name in ipairs(TRACE_FILES) do
      s.sizes[name] = fs.size(s.dir .. "/" .. name)
      if not s.sizes[name] then
        m:close()
        return nil, ("merge: shard %s: %s/%s is missing"):format(s.label, s.dir, name)
      end
    end
    local r, err = m:scan(s.dir .. "/trace_summary.jsonl", s.index, s.sizes["trace_summary.jsonl"])
    if not r then
      m:close()
      return nil, ("merge: shard %s: %s; fluxloop run experiment --resume %s repairs a damaged line"):format(s.label,
        err, s.dir)
    end
    s.scan = r
    local resume = ("fluxloop run experiment --resume %s"):format(s.dir)
    if r.damaged then
      problems[#problems + 1] = ("shard %s: %s/trace_summary.jsonl has %d damaged line%s (the first at line %d), "
        .. "so their traces are missing; %s runs them again"):format(s.label, s.dir, r.damaged, r.damaged == 1 and "" or "s",
        r.first_damaged, resume)
    elseif s.resuming then
      problems[#problems + 1] = ("shard %s is being resumed (%s/.rerun exists), or a resume died: wait for it, "
        .. "or run %s"):format(s.label, s.dir, resume)
    elseif s.summary_damage then
      problems[#problems + 1] = ("shard %s: %s; %s writes it again"):format(s.label, s.summary_damage, resume)
    elseif not s.summary then
      problems[#problems + 1] = ("shard %s has no summary.json: it is still running, or it died (then %s "
        .. "finishes it)"):format(s.label, resume)
    elseif r.missing > 0 then
      problems[#problems + 1] = ("shard %s lacks %d of its %d runs (%s%s): it was interrupted; %s runs them")
        :format(s.label, r.missing, shard_mod.count(planned, s), trace_ids(r.first_missing),
          r.missing > #r.first_missing and ", ..." or "", resume)
    elseif r.torn then
      problems[#problems + 1] = ("shard %s: trace_summary.jsonl ends in a torn line; %s repairs it")
        :format(s.label, resume)
    end
  end
  -- The sizes after the scan: the traces and observations files must hold at least the
  -- scanned traces' lines, which a shard writes before their summary lines.
  for _, s in ipairs(shards) do
    for _, name in ipairs({ "traces.jsonl", "observations.jsonl", "scores.jsonl" }) do
      s.sizes[name] = fs.exists(s.dir .. "/" .. name) and fs.size(s.dir .. "/" .. name) or nil
    end
    local ok, err = check_whole(m, s, problems)
    if not ok then
      m:close()
      return nil, err
    end
  end
  return m, problems
end

-- The target must not hold a merged result already, and no other merge may be writing it.
local function claim(target)
  local ok, err = fs.mkdirs(target)
  if not ok then return nil, ("merge: cannot create %s: %s"):format(target, err) end
  local held = {}
  for _, name in ipairs(MERGED_FILES) do
    if fs.exists(target .. "/" .. name) then held[#held + 1] = name end
  end
  if #held > 0 then
    return nil, ("merge: %s already holds merged results (%s); nothing was changed. Remove those files "
      .. "to merge again, or merge into another folder with --output DIR"):format(target, table.concat(held, ", "))
  end
  local made, merr, code = fs.mkdir(target .. "/" .. WORK)
  if not made then
    if code == "EEXIST" then
      return nil, ("merge: another merge is writing %s (it made %s/%s); wait for it, or remove that folder "
        .. "if it died"):format(target, target, WORK)
    end
    return nil, "merge: " .. merr
  end
  return target .. "/" .. WORK
end

-- The merged summary.json: counted over every run, times spanning the shards.
local function merged_summary(work, shards, m, plan, missing_shards, planned)
  local stats = m:summary()
  local first_summary, started, completed, parallel = nil, nil, nil, 0
  for _, s in ipairs(shards) do
    local sum = s.summary or {}
    first_summary = first_summary or s.summary
    if sum.started_at and (not started or sum.started_at < started) then started = sum.started_at end
    if sum.completed_at and (not completed or sum.completed_at > completed) then completed = sum.completed_at end
    parallel = parallel + (tonumber(sum.parallel) or 1)
  end
  first_summary = first_summary or {}
  local summary = output.summary({
    stats = stats, name = first_summary.name, started_at = started or plan.started_at,
    completed_at = completed or clock.utc_iso(), iterations = plan.iterations, inputs = plan.inputs,
    inputs_file = first_summary.inputs_file, planned_traces = planned, interrupted = stats.count < planned,
    config_file = first_summary.config_file, target = plan.target,
  })
  summary.inputs_dropped = first_summary.inputs_dropped or 0
  summary.parallel = parallel
  summary.merged_at = clock.utc_iso()
  summary.shards = { count = shards[1].count, job_id = shards[1].plan.shard.job_id, merged = #shards }
  -- Grades over every merged score line; each grader's threshold as the shards had it.
  local specs = {}
  for name, g in pairs(type(first_summary.scores) == "table" and first_summary.scores or {}) do
    specs[#specs + 1] = { name = name, threshold = type(g) == "table" and g.threshold or nil }
  end
  summary.scores = require("fluxloop.grade.summary").read(work, plan.iterations, { specs = specs })
  if stats.count < planned or #missing_shards > 0 then
    summary.partial = true
    summary.missing_traces = planned - stats.count
    summary.missing_shards = json.array(missing_shards)
  end
  return summary
end

local function copy_file(from, to)
  return output.write_file(to, util.read_file(from) or "")
end

-- Shards that graded their runs have scores.jsonl: it is merged as observations.jsonl is.
local function files_to_merge(shards)
  for _, s in ipairs(shards) do
    if s.sizes["scores.jsonl"] then return { TRACE_FILES[1], TRACE_FILES[2], TRACE_FILES[3], "scores.jsonl" } end
  end
  return TRACE_FILES
end

-- Writes the files into the work folder; nil, message when a shard changed meanwhile.
local function write_all(work, shards, m, plan, missing_shards, planned)
  for _, name in ipairs(files_to_merge(shards)) do
    local inputs = {}
    for i, s in ipairs(shards) do
      inputs[i] = { path = s.dir .. "/" .. name, index = s.index, limit = s.sizes[name] or 0 }
    end
    local one_line_each = name == "trace_summary.jsonl" or name == "traces.jsonl"
    local ok, err = m:merge(work .. "/" .. name, inputs, one_line_each, name == "trace_summary.jsonl")
    if not ok then return nil, "merge: " .. err end
  end
  for _, s in ipairs(shards) do
    if s.summary and fs.size(s.dir .. "/trace_summary.jsonl") ~= s.sizes["trace_summary.jsonl"] then
      return nil, ("merge: shard %s changed while it was merged (%s/trace_summary.jsonl grew): it is still "
        .. "running; merge when it has finished"):format(s.label, s.dir)
    end
  end
  local ok, err = copy_file(shards[1].dir .. "/config.yaml", work .. "/config.yaml")
  if ok then
    ok, err = output.write_json(work .. "/plan.json", { plan_hash = plan.plan_hash, planned_traces = planned,
      iterations = plan.iterations, inputs = plan.inputs, target = plan.target, started_at = plan.started_at })
  end
  if ok then ok, err = output.write_summary(work .. "/summary.json", merged_summary(work, shards, m, plan, missing_shards,
    planned)) end
  if not ok then return nil, "merge: " .. tostring(err) end
  return true
end

-- Moves the finished files into the target, summary.json last.
local function publish(work, target)
  for _, name in ipairs(MERGED_FILES) do
    local ok, err = true, nil
    if fs.exists(work .. "/" .. name) then ok, err = os.rename(work .. "/" .. name, target .. "/" .. name) end
    if not ok then return nil, "merge: " .. err end
  end
  return fs.remove_files_dir(work)
end

-- The earliest start of any shard: when the experiment started.
local function earliest_start(shards)
  local started
  for _, s in ipairs(shards) do
    local at = s.plan.started_at
    if type(at) == "string" and (not started or at < started) then started = at end
  end
  return started
end

-- merge(opts, cwd) -> exit_code, summary, target | nil, message
function M.merge(opts, cwd)
  local target, shards = find(opts, cwd)
  if not target then return nil, shards end
  local missing_shards, perr = check_plan(shards)
  if not missing_shards then return nil, perr end
  local plan = util.shallow_copy(shards[1].plan)
  plan.started_at = earliest_start(shards)
  local planned = math.tointeger(plan.planned_traces)
  if not planned then return nil, ("merge: %s/plan.json has no planned_traces"):format(shards[1].dir) end
  local m, problems = scan(shards, planned, shards[1].count)
  if not m then return nil, problems end
  if #missing_shards > 0 then
    table.insert(problems, 1, ("missing shard%s %s: run %s (same config and inputs, %s) with "
      .. "fluxloop run experiment --shard K/%d"):format(#missing_shards > 1 and "s" or "",
      table.concat(missing_shards, ", "), #missing_shards > 1 and "them" or "it",
      shards[1].plan.shard.job_id and ("FLUXLOOP_RUN_ID=" .. shards[1].plan.shard.job_id) or "the same job id",
      shards[1].count))
  end
  if #problems > 0 and not opts.partial then
    m:close()
    return nil, ("merge: %s is not complete, so nothing was written:\n  %s\nFinish what is missing, or merge "
      .. "what is there with --partial"):format(target, table.concat(problems, "\n  "))
  end
  local work, cerr = claim(target)
  if not work then m:close() return nil, cerr end
  local ok, werr = write_all(work, shards, m, plan, missing_shards, planned)
  if ok then ok, werr = publish(work, target) end
  m:close()
  if not ok then
    fs.remove_files_dir(work)
    return nil, werr
  end
  local summary = read_json(target .. "/summary.json")
  return summary.failed > 0 and 1 or 0, summary, target, problems
end

-- main(args) -> exit status: `fluxloop merge ARGS...`.
function M.main(args)
  local opts, err = M.parse(args)
  if not opts then
    io.stderr:write("fluxloop: error: ", err, "\n")
    return 2
  end
  if opts.help then
    io.stdout:write(M.USAGE)
    return 0
  end
  local code, summary, target, problems = M.merge(opts, fs.getcwd())
  if not code then
    io.stderr:write("fluxloop: error: ", (summary:gsub("^merge: ", "")), "\n")
    return 2
  end
  if not opts.quiet then
    for _, p in ipairs(problems) do io.stderr:write("fluxloop: warning: merged anyway (--partial): ", p, "\n") end
    io.stderr:write(("[INFO] Merged %d shard(s): %d runs, %d succeeded, %d failed%s. Results: %s\n"):format(
      summary.shards.merged, summary.total_traces, summary.successful, summary.failed,
      summary.partial and (", %d missing (partial)"):format(summary.missing_traces) or "", target))
  end
  return code
end

return M
