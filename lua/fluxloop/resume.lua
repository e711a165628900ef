-- resume.lua - --resume DIR and --retry-failed DIR: finish or repair an experiment folder
-- in place. Runs only the missing (or failed) traces into a scratch folder, then merges
-- them into the trace files in trace order and recounts summary.json over every trace.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local jsonlread = require("fluxloop.jsonlread")
local output = require("fluxloop.output")
local recorder = require("fluxloop.recorder")
local run = require("fluxloop.run")
local stats_mod = require("fluxloop.stats")

local M = {}

local FILES = { "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }
local SCRATCH = ".rerun"

-- The files of a folder: scores.jsonl too when the experiment grades (or graded).
local function files_of(dir, grading)
  if not grading and not fs.exists(dir .. "/scores.jsonl") then return FILES end
  return { FILES[1], FILES[2], FILES[3], "scores.jsonl" }
end

-- The trace number a line belongs to: every line of the three files starts with it.
local function line_k(line)
  return tonumber(line:match('^{"trace_id":"trace_(%d+)"'))
end

-- Cuts a torn last line (no newline: the process died while writing it).
local function repair(path)
  local f = io.open(path, "rb")
  if not f then return true end
  local size = f:seek("end")
  if size == 0 then f:close() return true end
  local back = math.min(size, 1 << 16)
  local keep
  while true do
    f:seek("set", size - back)
    local tail = f:read(back)
    local last = tail:find("\n[^\n]*$")
    if last then keep = size - back + last break end
    if back == size then keep = 0 break end
    back = math.min(size, back * 2)
  end
  f:close()
  if keep == size then return true end
  return fs.truncate(path, keep)
end

-- The lines of trace_summary.jsonl with their trace number, success and duration: the top-level
-- fields only count (an input or output may hold "success" or "duration_ms" keys of its own). A
-- line that is not whole JSON (a damaged disk block) is passed over: its trace runs again.
local function summary_rows(path)
  local r = jsonlread.open(path, { "trace_id", "success", "duration_ms" })
  if not r then return function() return nil end end
  return function()
    while true do
      local n, id, success, ms = r:next()
      if not n then r:close() return nil end
      local k = type(id) == "string" and math.tointeger(tonumber(id:match("^trace_(%d+)$")))
      if k then return k, success, ms end
    end
  end
end

-- Reads trace_summary.jsonl: which trace numbers are on disk, and whether each succeeded.
local function read_done(dir)
  local done = {}
  for k, success in summary_rows(dir .. "/trace_summary.jsonl") do done[k] = success == true end
  return done
end

-- whole_lines(path) -> an iterator of k, line over the lines of path that are whole JSON with a
-- trace id (k: its trace number). A damaged line is never placed: a prefix that names a trace
-- says nothing of the rest of the line.
local function whole_lines(path)
  local r = path and jsonlread.open(path, { "trace_id" })
  if not r then return function() return nil end end
  return function()
    while true do
      local n, id = r:next()
      if not n then r:close() return nil end
      local k = type(id) == "string" and math.tointeger(tonumber(id:match("^trace_(%d+)$")))
      if k then return k, (r:line()) end
    end
  end
end

-- Merges the lines of `new` into `old` by trace number (new wins for a trace it has;
-- old lines of traces outside `keep` are dropped, damaged ones too), writing a temporary file
-- then renaming.
local function merge_file(old_path, new_path, keep)
  local out_path = old_path .. ".merge"
  local out = assert(io.open(out_path, "wb"))
  out:setvbuf("full", 1 << 16)
  local next_old = whole_lines(fs.exists(old_path) and old_path or nil)
  local next_new = whole_lines(fs.exists(new_path) and new_path or nil)
  local ko, o = next_old()
  local kn, n = next_new()
  local replaced = {}
  while o or n do
    if n and (not o or kn <= ko) then
      replaced[kn] = true
      out:write(n, "\n")
      kn, n = next_new()
    else
      if keep[ko] ~= nil and not replaced[ko] then out:write(o, "\n") end
      ko, o = next_old()
    end
  end
  local ok, err = out:close()
  if not ok then return nil, err end
  return os.rename(out_path, old_path)
end

-- A graded trace with fewer whole lines in scores.jsonl than the config has graders (a
-- damaged line) leaves keep: it runs, and is graded, again. -> the number of such traces
local function verify_scores(dir, keep, graders)
  if graders == 0 then return 0 end
  local lines = {}
  for k in whole_lines(fs.exists(dir .. "/scores.jsonl") and dir .. "/scores.jsonl" or nil) do
    lines[k] = (lines[k] or 0) + 1
  end
  local short = 0
  for k in pairs(keep) do
    if (lines[k] or 0) < graders then short, keep[k] = short + 1, nil end
  end
  return short
end

-- verify(dir, keep) -> warnings: a trace stays done only when its lines in all three files are
-- whole: a trace_summary.jsonl line (keep), a traces.jsonl line, and as many observations.jsonl
-- lines as its traces.jsonl line has observations. The others leave keep, so they run again.
local function verify(dir, keep)
  local expect = {} -- k -> observations still expected in observations.jsonl
  local r = jsonlread.open(dir .. "/traces.jsonl", { "trace_id", "*observations" })
  local warnings = {}
  local function note(file, reader)
    if not reader then return end
    local count, list = reader:damaged()
    for _, d in ipairs(list) do
      warnings[#warnings + 1] = ("%s/%s:%d: damaged line (%s); its trace runs again"):format(dir, file, d.line, d.reason)
    end
    if count > #list then warnings[#warnings + 1] = ("%s/%s: ... and %d more damaged lines"):format(dir, file, count - #list) end
  end
  while r do
    local n, id, count = r:next()
    if not n then break end
    local k = type(id) == "string" and math.tointeger(tonumber(id:match("^trace_(%d+)$")))
    if k then expect[k] = count or 0 end
  end
  note("traces.jsonl", r)
  if r then r:close() end
  local o = jsonlread.open(dir .. "/observations.jsonl", { "trace_id" })
  while o do
    local n, id = o:next()
    if not n then break end
    local k = type(id) == "string" and math.tointeger(tonumber(id:match("^trace_(%d+)$")))
    if k and expect[k] then expect[k] = expect[k] - 1 end
  end
  note("observations.jsonl", o)
  if o then o:close() end
  local missing, short = 0, 0
  for k in pairs(keep) do
    if expect[k] == nil then missing = missing + 1 keep[k] = nil
    elseif expect[k] ~= 0 then short = short + 1 keep[k] = nil end
  end
  if missing > 0 then
    warnings[#warnings + 1] = ("%d trace%s of trace_summary.jsonl ha%s no whole line in traces.jsonl: run again")
      :format(missing, missing == 1 and "" or "s", missing == 1 and "s" or "ve")
  end
  if short > 0 then
    warnings[#warnings + 1] = ("%d trace%s lack observation lines in observations.jsonl (or have extra ones): run again")
      :format(short, short == 1 and "" or "s")
  end
  return warnings
end

-- Merges a scratch folder into dir and removes it. Returns the number of traces merged.
local function merge_scratch(dir, keep, files)
  local scratch = dir .. "/" .. SCRATCH
  for _, name in ipairs(files) do
    repair(scratch .. "/" .. name)
  end
  -- Traces the scratch holds count as done too.
  local merged = 0
  for k, ok in pairs(read_done(scratch)) do
    keep[k] = ok
    merged = merged + 1
  end
  for _, name in ipairs(files) do
    local ok, err = merge_file(dir .. "/" .. name, scratch .. "/" .. name, keep)
    if not ok then return nil, err end
  end
  local removed, rerr = fs.remove_files_dir(scratch)
  if not removed then return nil, rerr end
  return merged
end

-- Recounts every trace of the merged trace_summary.jsonl.
local function recount(dir)
  local acc = stats_mod.new()
  for _, success, ms in summary_rows(dir .. "/trace_summary.jsonl") do
    acc:add(type(ms) == "number" and ms or 0, success == true)
  end
  return acc:summary()
end

local read_json = require("fluxloop.util").read_json

-- The experiment folders directly inside dir, newest first (by their plan's start time).
local function experiments_in(dir)
  local found = {}
  for _, name in ipairs(fs.list(dir) or {}) do
    local plan = read_json(dir .. "/" .. name .. "/plan.json")
    if type(plan) == "table" then found[#found + 1] = { name = name, at = tostring(plan.started_at or "") } end
  end
  table.sort(found, function(a, b) if a.at ~= b.at then return a.at > b.at end return a.name > b.name end)
  local names = {}
  for i, f in ipairs(found) do names[i] = f.name end
  return names
end

-- check(exp, dir, mode) -> plan | nil, message: the folder is one this experiment can continue.
local function check(exp, dir, mode)
  local flag = mode == "retry" and "--retry-failed" or "--resume"
  if not fs.isdir(dir) then return nil, ("%s %s: no such experiment folder"):format(flag, dir) end
  local plan, damage = read_json(dir .. "/plan.json")
  if damage then
    return nil, ("%s %s: %s, so the traces to run cannot be known; run a new experiment"):format(flag, dir, damage)
  end
  if not plan then
    local inside = experiments_in(dir)
    if #inside > 0 then
      local shown = {}
      for i = 1, math.min(3, #inside) do shown[i] = "  " .. flag .. " " .. dir .. "/" .. inside[i] end
      return nil, ("%s %s: this folder holds experiment folders, not an experiment; name one of them, "
        .. "the newest first:\n%s"):format(flag, dir, table.concat(shown, "\n"))
    end
    return nil, ("%s %s: the folder has no plan.json, so it was not started by this fluxloop; run a new experiment")
      :format(flag, dir)
  end
  local hash = run.plan_hash(exp)
  if plan.plan_hash ~= hash then
    -- Name what differs when plan.json says it; the inputs' contents only the hash knows.
    local cfg, changed = exp.cfg, {}
    if plan.target ~= nil and plan.target ~= cfg.runner.target then
      changed[#changed + 1] = ("runner.target was %s, is %s"):format(plan.target, cfg.runner.target)
    end
    if plan.iterations ~= nil and plan.iterations ~= cfg.runner.iterations then
      changed[#changed + 1] = ("iterations were %d, are %d"):format(plan.iterations, cfg.runner.iterations)
    end
    if plan.inputs ~= nil and plan.inputs ~= #exp.entries then
      changed[#changed + 1] = ("there were %d inputs, there are %d"):format(plan.inputs, #exp.entries)
    end
    if #changed == 0 then changed[1] = "the inputs (or their personas or metadata) differ" end
    return nil, ("%s %s: the plan changed since this experiment started (%s), so its trace ids would mean " ..
      "other runs; restore the config and inputs, or run a new experiment"):format(flag, dir, table.concat(changed, "; "))
  end
  return plan
end

-- resume(exp, dir, mode) -> exit_code, summary, dir, error_message
-- mode "resume": run the traces that are missing; "retry": also the failed ones (their
-- lines are replaced in place).
function M.resume(exp, dir, mode)
  local p = exp.progress
  local plan, err = check(exp, dir, mode)
  if not plan then return 2, nil, nil, err end
  local cfg = exp.cfg
  local jobs = run.prepare(exp.entries, cfg.personas)
  local planned = #jobs * cfg.runner.iterations
  -- A shard's folder (--shard) holds only its share of the plan: its traces are the ones to run.
  local shard = plan.shard and require("fluxloop.shard")
  local mine = shard and shard.count(planned, plan.shard) or planned

  -- Mend torn lines, then finish what an earlier resume left behind.
  local files = files_of(dir, cfg.grading)
  for _, name in ipairs(files) do repair(dir .. "/" .. name) end
  local keep = read_done(dir)
  if fs.isdir(dir .. "/" .. SCRATCH) then
    local ok, merr = merge_scratch(dir, keep, files)
    if not ok then return 2, nil, dir, merr end
  end
  -- A trace with a line damaged or missing in any of the files runs again; its lines,
  -- damaged lines, and lines of traces that never reached trace_summary.jsonl are dropped.
  for _, w in ipairs(verify(dir, keep)) do p:warn(w) end
  local ungraded = verify_scores(dir, keep, cfg.grading and #cfg.grading.specs or 0)
  if ungraded > 0 then p:warn(("%d trace%s lack lines in scores.jsonl: run and graded again"):format(ungraded,
    ungraded == 1 and "" or "s")) end
  for _, name in ipairs(files) do
    local ok, merr = merge_file(dir .. "/" .. name, "/dev/null", keep)
    if not ok then return 2, nil, dir, merr end
  end

  local ks = {}
  for k = 1, planned do
    local state = keep[k]
    if (state == nil or (mode == "retry" and state == false)) and (not shard or shard.owns(plan.shard, k)) then
      ks[#ks + 1] = k
    end
  end
  local failed = 0
  for _, ok in pairs(keep) do if ok == false then failed = failed + 1 end end
  p:info(("%s %s: %d of %d traces to run%s"):format(mode == "retry" and "Retrying failed traces in" or "Resuming",
    dir, #ks, mine, mode == "resume" and failed > 0
      and (" (%d failed before; --retry-failed runs them again)"):format(failed) or ""))

  local io_err, ran = nil, 0
  if #ks > 0 then
    local scratch = dir .. "/" .. SCRATCH
    local ok, merr = fs.mkdir(scratch)
    if not ok then return 2, nil, dir, merr end
    local rec, rerr = recorder.open(scratch, { scores = cfg.grading ~= nil, iterations = cfg.runner.iterations })
    if not rec then return 2, nil, dir, rerr end
    exp.results_dir = dir
    local _, e = run.execute(exp, rec, jobs, ks, p)
    local closed, cerr = rec:close()
    io_err = e or (not closed and cerr) or nil
    local merged, merr2 = merge_scratch(dir, keep, files)
    io_err = io_err or (not merged and merr2) or nil
    ran = merged or 0
  end

  local stats = recount(dir)
  local old = read_json(dir .. "/summary.json") or {}
  exp.name = old.name or exp.name -- the folder keeps the name it was started with
  local code, summary = run.finish_summary(exp, stats, {
    started_at = old.started_at or plan.started_at, inputs = #jobs, planned = mine,
    interrupted = stats.count < mine,
    extra = { resumed_runs = ran, resumed_at = clock.utc_iso(), shard = plan.shard,
      scores = require("fluxloop.grade.summary").read(dir, cfg.runner.iterations, cfg.grading) },
  }, p)
  -- Nothing was missing: the experiment is as finished as it was, which is no failure of
  -- this command, whatever its runs did (--retry-failed is the way to run those again).
  if #ks == 0 and code == 1 then code = 0 end
  local ok, serr = output.write_summary(dir .. "/summary.json", summary)
  io_err = io_err or (not ok and serr) or nil
  if io_err then return 2, summary, dir, ("writing results failed: %s"):format(io_err) end
  return code, summary, dir
end

-- A word as a shell would need it: quoted only when it holds something special.
local function shell_word(w)
  if w:find("^[%w%./_%-=:,@+]+$") then return w end
  return "'" .. w:gsub("'", "'\\''") .. "'"
end

-- go_on(flags, dir [, cwd]) -> the command that continues an interrupted experiment: the
-- flags its plan depends on (--config, --hooks, --shard), then --resume DIR (--retry-failed
-- DIR again for an interrupted retry), DIR relative to cwd when it is inside it.
function M.go_on(flags, dir, cwd)
  cwd = cwd or fs.getcwd()
  if cwd and dir:sub(1, #cwd + 1) == cwd .. "/" then dir = dir:sub(#cwd + 2) end
  local words = { "fluxloop", "run", "experiment" }
  for _, f in ipairs({ { "--config", flags.config }, { "--hooks", flags.hooks }, { "--shard", flags.shard } }) do
    if f[2] then words[#words + 1], words[#words + 2] = f[1], shell_word(f[2]) end
  end
  words[#words + 1] = flags.retry_failed and "--retry-failed" or "--resume"
  words[#words + 1] = shell_word(dir)
  return table.concat(words, " ")
end

return M
