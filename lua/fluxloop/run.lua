-- run.lua - the default orchestration of `fluxloop run experiment`.
-- Its parts are separate so that a --script or a worker state can reuse them: run_one
-- needs only an agent, a recorder and a job; work() loops over trace numbers.
local clock = require("fluxloop.clock")
local context = require("fluxloop.context")
local guard = require("fluxloop.guard")
local hooks_mod = require("fluxloop.hooks")
local inputs = require("fluxloop.inputs")
local json = require("fluxloop.json")
local output = require("fluxloop.output")
local progress_mod = require("fluxloop.progress")
local recorder = require("fluxloop.recorder")

local M = {}

-- fluxloop.replay is loaded only by experiments that replay recorded arguments.
local function replay_mod() return require("fluxloop.replay") end

-- The exit status after Ctrl-C or SIGTERM.
M.EXIT_INTERRUPTED = 130

-- trace_id(k) -> "trace_001": trace number k's id (zero-padded to three digits).
M.trace_id = recorder.trace_id

-- What every run of an input needs.
local function job_of(entry, personas)
  local persona = inputs.persona_of(entry)
  return {
    entry = entry,
    input = entry.input,
    persona = persona,
    persona_info = persona and personas and personas[persona] or nil,
    metadata = inputs.metadata_of(entry),
  }
end

-- prepare(entries, personas) -> jobs: jobs[i] is what every run of input i needs.
-- entries is a fluxloop.plan (main's) or a list (a --script's own). For a plan, a job is
-- made when its runs come (runs go input by input, so one is kept) and never all at once.
function M.prepare(entries, personas)
  if type(entries) == "table" then
    local jobs = {}
    for i, entry in ipairs(entries) do jobs[i] = job_of(entry, personas) end
    return jobs
  end
  -- The current input's job sits in the table itself, so its runs find it without a call.
  local last_i
  return setmetatable({}, {
    __len = function() return #entries end,
    __index = function(jobs, i)
      local entry = math.type(i) == "integer" and entries[i]
      if not entry then return nil end
      if last_i then rawset(jobs, last_i, nil) end
      last_i = i
      local job = job_of(entry, personas)
      rawset(jobs, i, job)
      return job
    end,
  })
end

local copy = require("fluxloop.util").shallow_copy
local VALUE_OUTPUT = { string = true, table = true, number = true, boolean = true }

-- The path of the first value inside a table output that JSON cannot hold (a function, a
-- file handle, a coroutine), or nil. Written as a string it would pass for an output.
local function unstorable(v, path, depth)
  for k, x in pairs(v) do
    local t = type(x)
    local at = path .. (math.type(k) == "integer" and ("[" .. k .. "]") or ("." .. tostring(k)))
    if t == "function" or t == "thread" or (t == "userdata" and x ~= json.null) then return at, t end
    if t == "table" and depth < 64 then
      local bad, what = unstorable(x, at, depth + 1)
      if bad then return bad, what end
    end
  end
end

-- Turns what guard.call returned into the trace's output or error.
local function settle(trace, ok, out)
  if not ok then
    trace.success = false
    trace.error = type(out) == "table" and out or { type = "error", message = tostring(out) }
  elseif out == nil then
    trace.success = false
    trace.error = { type = "no_output", message = "agent returned nothing (nil, or None from Python); return a string or a table" }
  elseif not VALUE_OUTPUT[type(out)] then
    trace.success = false
    trace.error = { type = "invalid_output",
      message = ("agent returned a %s; return a string or a table"):format(type(out)) }
  elseif out ~= out or out == math.huge or out == -math.huge then
    trace.success = false
    trace.error = { type = "invalid_output",
      message = ("agent returned %s, which JSON cannot hold; return a string or a table"):format(tostring(out)) }
  else
    local bad, what
    if type(out) == "table" then bad, what = unstorable(out, "output", 1) end
    if bad then
      trace.success = false
      trace.error = { type = "invalid_output",
        message = ("agent returned a %s at %s, which JSON cannot hold; return strings, numbers, booleans "
          .. "and tables of them"):format(what == "userdata" and "handle (userdata)" or what, bad) }
      return
    end
    trace.output = out
  end
end

-- Writes the trace; a value that cannot be stored as JSON fails the run instead.
local function write_trace(rec, trace)
  local ok, res, msg = pcall(rec.write, rec, trace)
  if ok then
    if res then return true end
    return nil, msg -- the disk refused: the experiment cannot go on
  end
  trace.success, trace.output = false, nil
  trace.error = { type = "invalid_output", message = "the run's output or metadata cannot be stored as JSON: " .. tostring(res) }
  trace.metadata = nil
  return rec:write(trace)
end

-- The table before_run and after_run receive; run.metadata is the trace's metadata.
local function run_info(trace_id, k, job, iteration, metadata)
  return { trace_id = trace_id, k = k, iteration = iteration, input = job.input, entry = job.entry,
    persona = job.persona, metadata = metadata }
end

-- after_run(run, trace) may add metadata, or return false, "reason" to fail a run that
-- succeeded (error type "check", output kept). A hook that raises fails the run.
local function check_after_run(S, run, trace)
  local ok, verdict, reason = hooks_mod.call(S.hooks, "after_run", run, trace)
  if not ok then
    trace.success, trace.output = false, nil
    trace.error = { type = "hook", message = verdict, traceback = reason }
  elseif verdict == false and trace.success then
    trace.success = false
    trace.error = { type = "check", message = reason ~= nil and tostring(reason) or "after_run check failed" }
  end
end

-- Replay: the recorded arguments for trace k with the input put in place, rewritten by
-- the replay_args hook if there is one. Returns args, callbacks, line, args_template
-- | nil, error table.
local function replay_args(S, k, job, run)
  local args, callbacks, line, template = S.replay:prepare(k, job.input)
  if not args then return nil, { type = "replay", message = callbacks } end
  if S.hooks and S.hooks.replay_args then
    local ok, changed, tb = hooks_mod.call(S.hooks, "replay_args", args, job.input, run)
    if not ok then return nil, { type = "hook", message = changed, traceback = tb } end
    if changed ~= nil then args = changed end
    template = nil -- the hook may have changed args, in place or not: encode them
  end
  return args, callbacks, line, template
end

-- run_one(S, k, job, iteration [, seq]) -> trace | nil, reason
-- S = { agent, rec, Ctx = context.class(rec), hooks, per_run_hooks, timeout_ms, replay, call }.
-- Runs the agent once and writes the trace (seq orders it in the files; default k).
-- A run stopped by Ctrl-C is not written: it returns nil, "interrupted". Any other nil
-- is a write failure.
function M.run_one(S, k, job, iteration, seq)
  local rec = S.rec
  local trace_id = M.trace_id(k)
  local ctx = setmetatable({
    persona = job.persona, persona_info = job.persona_info, iteration = iteration,
    metadata = copy(job.metadata), trace_id = trace_id, entry = job.entry,
  }, S.Ctx)
  local run, ok, out, why, args, callbacks, line, template
  if S.per_run_hooks then
    run = run_info(trace_id, k, job, iteration, ctx.metadata)
    if S.hooks.before_run then
      local hok, herr, htb = hooks_mod.call(S.hooks, "before_run", run)
      if not hok then ok, out = false, { type = "hook", message = herr, traceback = htb } end
      ctx.metadata = run.metadata
    end
  end
  if S.replay and ok == nil then
    args, callbacks, line, template = replay_args(S, k, job, run)
    if not args then ok, out, callbacks = false, callbacks, nil end
    ctx.args = args
  end
  rec:begin(trace_id)
  if ok == nil then ok, out, why = (S.call or guard.call)(S.timeout_ms or 0, S.agent, args or job.input, ctx) end
  local ms = rec:stop()
  -- Only the guard interrupts (after a signal): an agent raising {type = "interrupted"}
  -- fails its own run and nothing more.
  if why == "interrupted" then return nil, "interrupted" end
  if callbacks and ok and out == nil then out = replay_mod().output_from_callbacks(callbacks) end
  -- Every field in one constructor: adding fields later would grow the table, per run.
  -- Replay: the args the agent was called with, as the recording's JSON text around the
  -- input, or encoded (capture functions as their recorded placeholders) after a
  -- replay_args hook.
  local trace = {
    k = k, seq = seq, trace_id = trace_id, input = job.input, iteration = iteration, persona = job.persona,
    metadata = ctx.metadata, success = true, output = nil, error = nil,
    args = args, args_template = template, callback_messages = callbacks,
    replay_line = line or S.replay and S.replay:select_line(k), -- also for a run replay could not set up
    extra = ctx.extra or ctx.logs and { logs = ctx.logs }, shared = ctx.shared, -- conversation's fields, procagent's logs
  }
  settle(trace, ok, out)
  if run and S.hooks.after_run then check_after_run(S, run, trace) end
  if S.grade then trace.scores = S.grade:grade(trace, job, ms) end -- graders (fluxloop.grade)
  local written, err = write_trace(rec, trace)
  if not written then return nil, err end
  return trace
end

-- The loop of work(), below.
local function work_loop(S, jobs, iterations, next_k, after_each)
  local delay_ms, first = S.delay_ms or 0, true
  while true do
    local k, seq = next_k()
    if not k then return true end
    if delay_ms > 0 and not first then clock.sleep(delay_ms) end
    first = false
    if S.between_runs then S.between_runs() end -- a process agent's replacement worker: no run's time
    local trace, err = M.run_one(S, k, jobs[(k - 1) // iterations + 1], (k - 1) % iterations, seq)
    if not trace then
      if err ~= "interrupted" then return nil, err end
      S.rec:skip(seq or k) -- written nowhere; --resume runs it again
      return true
    end
    if after_each then after_each(k) end
  end
end

-- work(S, jobs, iterations, next_k [, after_each]) -> true | nil, message
-- Runs what next_k() hands out, `k, seq` (trace number, place in the files; seq defaults
-- to k), until it returns nil. Trace k is input (k-1)//iterations+1, iteration
-- (k-1)%iterations. Used by the main state and by workers.
function M.work(S, jobs, iterations, next_k, after_each)
  -- os.exit while runs go on would end the whole experiment, finished runs unsaved: the
  -- guard makes it fail the run that calls it (fluxloop.guard's protect()).
  guard.hold_exit(true)
  local ok, result, err = pcall(work_loop, S, jobs, iterations, next_k, after_each)
  guard.hold_exit(false)
  if not ok then error(result, 0) end
  return result, err
end

-- The run state of one Lua state (main or worker); replay is a loaded replayer or nil.
function M.state(agent, rec, hooks, cfg, replay)
  if cfg.secret_values and cfg.secret_values[1] then rec:redact(cfg.secret_values) end
  return {
    agent = agent, rec = rec, Ctx = context.class(rec), hooks = hooks, replay = replay,
    grade = cfg.grading and require("fluxloop.grade").for_state(cfg.grading, rec),
    between_runs = require("fluxloop.procagent").between_runs(agent),
    per_run_hooks = hooks ~= nil and (hooks.before_run or hooks.after_run or replay and hooks.replay_args) ~= nil,
    timeout_ms = cfg.runner.timeout_ms or 0, delay_ms = (cfg.run_delay_seconds or 0) * 1000,
    call = cfg.multi_turn and require("fluxloop.conversation").call_of(cfg, rec) or guard.call, -- one run
  }
end

-- What a worker state needs to rebuild the run on its own: plain data only.
local function worker_setup(exp, cfg)
  return json.encode({
    project_dir = cfg.project_dir, target = cfg.runner.target, runner = cfg.runner,
    hooks_file = exp.hooks and exp.hooks.path or nil, hooks_display = exp.hooks and exp.hooks.file or nil,
    entries = type(exp.entries) == "table" and json.array(exp.entries) or nil,
    plan = type(exp.entries) ~= "table" and exp.entries:share() or nil,
    personas = cfg.personas, iterations = cfg.runner.iterations, multi_turn = cfg.multi_turn,
    timeout_ms = cfg.runner.timeout_ms or 0, run_delay_seconds = cfg.run_delay_seconds or 0,
    replay_args = exp.replay and cfg.replay_args or nil, secret_values = cfg.secret_values, grading = cfg.grading,
  })
end

-- Runs the trace numbers ks (nil: 1..total) with N worker threads (N > 1).
local function run_parallel(exp, rec, total, ks, workers, p)
  local result, err, why = require("fluxloop.pool").run({
    workers = workers, total = total, ks = ks, sink = rec:sink(), setup = worker_setup(exp, exp.cfg),
    path = package.path, cpath = package.cpath,
    on_progress = function(done, in_flight) p:update(done, in_flight) end,
  })
  if not result then return nil, why and "no worker started, so no run ran: " .. err or err, why end
  for _, msg in ipairs(result.not_started) do
    p:warn("fluxloop: warning: " .. msg:gsub(" did not start: ", " did not start (the others do its runs): ", 1))
  end
  if result.left_behind > 0 then
    p:warn(("fluxloop: warning: %d run(s) still inside the agent after the grace period were left unfinished")
      :format(result.left_behind))
    rec:shutdown()
  end
  return true
end

-- Runs the trace numbers ks (nil: 1..total) in this state (N = 1).
local function run_serial(exp, rec, jobs, total, ks, p)
  local S = M.state(exp.agent, rec, exp.hooks, exp.cfg, exp.replay)
  local seq = 0
  local function next_k()
    if seq >= total or guard.interrupted() then return nil end
    seq = seq + 1
    return ks and ks[seq] or seq, seq
  end
  return M.work(S, jobs, exp.cfg.runner.iterations, next_k, function() p:update(seq, 1) end)
end

-- Runs the trace numbers ks (nil: 1..total) in forked worker processes (isolation: process):
-- a worker that crashes or hangs fails that run only, and is replaced.
local function run_isolated(exp, rec, jobs, total, ks, workers, p)
  local iterations = exp.cfg.runner.iterations
  return require("fluxloop.isolate").run({
    workers = workers, total = total, ks = ks, sink = rec:sink(), timeout_ms = exp.cfg.runner.timeout_ms or 0,
    child = function(in_fd, out_fd)
      local S = M.state(exp.agent, recorder.to_pipe(out_fd), exp.hooks, exp.cfg, exp.replay)
      local isolate = require("fluxloop.isolate")
      return M.work(S, jobs, iterations, function() return isolate.child_next(in_fd) end)
    end,
    on_lost = function(k, seq, kind, message, ms)
      local job = jobs[(k - 1) // iterations + 1]
      rec:begin(M.trace_id(k))
      rec:stop()
      return rec:write({ k = k, seq = seq, trace_id = M.trace_id(k), input = job.input,
        iteration = (k - 1) % iterations, persona = job.persona, metadata = job.metadata, success = false,
        error = { type = kind, message = message }, duration_ms = ms,
        scores = exp.cfg.grading and require("fluxloop.grade").lost_scores(exp.cfg.grading, kind, job) })
    end,
    on_progress = function(done, in_flight) p:update(done, in_flight) end,
  })
end

-- execute(exp, rec, jobs, ks, p) -> true | nil, message [, "not_started"]
-- Runs the trace numbers in ks (a list; nil for all of 1..#jobs*iterations) into rec,
-- with runner.parallel workers (threads, or processes with isolation: process), showing
-- progress on p.
function M.execute(exp, rec, jobs, ks, p)
  local workers = exp.cfg.runner.parallel or 1
  local total = ks and #ks or #jobs * exp.cfg.runner.iterations
  guard.install()
  if exp.cfg.grading then exp.cfg.grading.results_dir = exp.results_dir end -- the judge's cache
  -- One request rate and in-flight cap for every worker of the experiment (fluxloop.http),
  -- set before workers start so that forked workers share it too.
  local rl = exp.cfg.runner.rate_limit
  if rl or exp.cfg.runner.max_concurrent_requests then
    require("fluxloop.ratelimit").configure({ requests_per_second = rl and rl.requests_per_second,
      burst = rl and rl.burst, max_concurrent = exp.cfg.runner.max_concurrent_requests })
  end
  if exp.cfg.runner.isolation ~= "process" then
    recorder.flush_on_crash(("the agent crashed fluxloop, which ran it in its own process. Run it with --isolate "
      .. "(runner.isolation: process) so that a crash fails only its run, then finish the experiment with "
      .. "--resume %s"):format(exp.results_dir or "<results folder>"))
  end
  p:start(total, workers)
  local ok, err, why -- why: "not_started" when no worker started (no write failed)
  if exp.cfg.runner.isolation == "process" then
    ok, err = run_isolated(exp, rec, jobs, total, ks, workers, p)
  elseif workers > 1 then
    ok, err, why = run_parallel(exp, rec, total, ks, workers, p)
  else
    ok, err = run_serial(exp, rec, jobs, total, ks, p)
  end
  p:update(rec:done(), 0)
  p:finish()
  return ok, err, why
end

-- plan_hash(exp) -> what a resume compares: the inputs (after hooks), the iterations and
-- the target, which together decide every trace id's run.
function M.plan_hash(exp)
  local cfg = exp.cfg
  local parts = { entries = json.array({}), iterations = cfg.runner.iterations, target = cfg.runner.target }
  if type(exp.entries) == "table" then
    parts.entries = json.array(exp.entries)
    return require("fluxloop.stats").hash(json.encode(parts))
  end
  -- The same text, with the plan's entries between "[" and "]", hashed without building it.
  local text = json.encode(parts)
  local at = text:find('"entries":[]', 1, true) + #'"entries":['
  return exp.entries:hash(text:sub(1, at - 1), text:sub(at))
end

-- The first lines of an experiment, before anything runs.
function M.announce(exp, jobs, p)
  local iterations, workers = exp.cfg.runner.iterations, exp.cfg.runner.parallel or 1
  local dropped, n_of = exp.inputs_dropped or 0, require("fluxloop.util").n_of
  p:info("Starting experiment...")
  p:info(("Loaded %s%s"):format(n_of(#jobs, "input"), dropped > 0 and (" (%d dropped by hooks)"):format(dropped) or ""))
  p:info(("Running %s per input (%s%s)"):format(n_of(iterations, "iteration"), n_of(#jobs * iterations, "total run"),
    workers > 1 and (", %d at a time"):format(workers) or ""))
end

-- finish_summary(exp, stats, fields, p) -> exit_code, summary: the summary table, after the
-- after_experiment hook; fields holds what differs between a run and a resume.
function M.finish_summary(exp, stats, f, p)
  local cfg, hooks = exp.cfg, exp.hooks
  local summary = output.summary({
    stats = stats, name = exp.name, started_at = f.started_at, completed_at = clock.utc_iso(),
    iterations = cfg.runner.iterations, inputs = f.inputs, inputs_file = exp.inputs_file,
    planned_traces = f.planned, interrupted = f.interrupted, config_file = cfg.config_file,
    target = cfg.runner.target,
  })
  summary.inputs_dropped = exp.inputs_dropped or 0
  summary.parallel = cfg.runner.parallel or 1
  for key, value in pairs(f.extra or {}) do summary[key] = value end
  local missed = summary.scores and require("fluxloop.grade.summary").below(summary.scores)[1] -- a threshold
  local code = guard.interrupted() and M.EXIT_INTERRUPTED or ((summary.failed > 0 or missed) and 1 or 0)
  if hooks and hooks.after_experiment then
    local ok, err = hooks_mod.call(hooks, "after_experiment", summary)
    if not ok then
      p:warn("fluxloop: warning: " .. err)
      summary.after_experiment_error = err
      if code == 0 then code = 1 end
    end
  end
  return code, summary
end

-- experiment(exp) -> exit_code, summary, dir, error_message
-- exp = { cfg, entries, agent, target (info), name, inputs_file, progress, hooks, replay,
--         inputs_dropped, config_snapshot } (what fluxloop.main.prepare returns).
-- The caller has already validated everything; from here on only runs can fail.
function M.experiment(exp)
  local cfg, p, hooks = exp.cfg, exp.progress or progress_mod.new({ quiet = true }), exp.hooks
  local jobs = M.prepare(exp.entries, cfg.personas)
  local planned = #jobs * cfg.runner.iterations
  M.announce(exp, jobs, p)

  if hooks and hooks.before_experiment then
    local ok, err, tb = hooks_mod.call(hooks, "before_experiment",
      { name = exp.name, iterations = cfg.runner.iterations, inputs = #jobs, planned_traces = planned, config = cfg })
    if not ok then return 2, nil, nil, err .. "\n" .. tb end
  end

  local started_wall = clock.wall_ns()
  -- A shard (--shard) runs its share of the trace numbers into shards/K-of-N/ of the job's folder.
  local shard, ks, shard_info = exp.shard, nil, nil
  local dir, derr
  if shard then
    local shard_mod = require("fluxloop.shard")
    ks, shard_info = shard_mod.traces(planned, shard), shard_mod.plan_info(shard, planned)
    dir, derr = shard_mod.create_dir(cfg.output.directory, exp.name, shard)
    if dir then p:info(("Shard %s: %d of the %d runs, into %s"):format(shard_mod.name(shard), #ks, planned, dir)) end
  else
    dir, derr = output.create_dir(cfg.output.directory, exp.name, started_wall)
  end
  if not dir then return 2, nil, nil, derr end
  local started_at = clock.utc_iso(started_wall)
  local ok, err = output.write_file(dir .. "/config.yaml", exp.config_snapshot or "")
  if ok then
    ok, err = output.write_json(dir .. "/plan.json", { plan_hash = M.plan_hash(exp), planned_traces = planned,
      iterations = cfg.runner.iterations, inputs = #jobs, target = cfg.runner.target, started_at = started_at,
      inputs_file = exp.inputs_file, shard = shard_info })
  end
  if not ok then return 2, nil, dir, err end
  local rec, rerr = recorder.open(dir, { scores = cfg.grading ~= nil, iterations = cfg.runner.iterations })
  if not rec then return 2, nil, dir, rerr end
  exp.results_dir = dir
  local _, io_err, not_started = M.execute(exp, rec, jobs, ks, p)
  local stats, grades = rec:stats(), rec:grades()
  local closed, cerr = rec:close()
  io_err = io_err or (not closed and cerr) or nil
  local code, summary = M.finish_summary(exp, stats, { started_at = started_at, inputs = #jobs,
    planned = ks and #ks or planned, interrupted = guard.interrupted() or io_err ~= nil, extra = { shard = shard_info,
    scores = grades and require("fluxloop.grade.summary").scores(grades, cfg.grading.specs) } }, p)
  local sum_ok, sum_err = output.write_summary(dir .. "/summary.json", summary)
  io_err = io_err or (not sum_ok and sum_err) or nil
  if io_err then return 2, summary, dir, not_started and io_err or ("writing results failed: %s"):format(io_err) end
  return code, summary, dir
end

return M
