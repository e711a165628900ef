-- run.lua - the default orchestration of `fluxloop run experiment`.
-- Its parts (prepare, run_one, experiment) are separate so that a custom script or a
-- worker state can reuse them: run_one needs only an agent, a recorder and a job.
local clock = require("fluxloop.clock")
local context = require("fluxloop.context")
local hooks_mod = require("fluxloop.hooks")
local inputs = require("fluxloop.inputs")
local output = require("fluxloop.output")
local progress_mod = require("fluxloop.progress")
local recorder = require("fluxloop.recorder")

local M = {}

function M.trace_id(k)
  return ("trace_%03d"):format(k)
end

-- prepare(entries, personas) -> jobs: what every run of an input needs, computed once per input.
function M.prepare(entries, personas)
  local jobs = {}
  for i, entry in ipairs(entries) do
    local persona = inputs.persona_of(entry)
    jobs[i] = {
      entry = entry,
      input = entry.input,
      persona = persona,
      persona_info = persona and personas and personas[persona] or nil,
      metadata = inputs.metadata_of(entry),
    }
  end
  return jobs
end

local function copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return c
end

-- Message handler for agent errors: keeps the message, the traceback, and a type the
-- agent may choose by raising a table { type = "rate_limit", message = "..." }.
local function agent_error(e)
  local kind, msg = "error", nil
  if type(e) == "table" then
    kind = type(e.type) == "string" and e.type or kind
    msg = e.message ~= nil and tostring(e.message) or tostring(e)
  else
    msg = tostring(e)
  end
  return { type = kind, message = msg, traceback = debug.traceback(msg, 2) }
end

local VALUE_OUTPUT = { string = true, table = true, number = true, boolean = true }

-- Turns what the agent returned into the trace's output or error.
local function settle(trace, ok, out)
  if not ok then
    trace.success, trace.error = false, out
  elseif out == nil then
    trace.success = false
    trace.error = { type = "no_output", message = "agent returned nothing (nil); return a string or a table" }
  elseif not VALUE_OUTPUT[type(out)] then
    trace.success = false
    trace.error = { type = "invalid_output",
      message = ("agent returned a %s; return a string or a table"):format(type(out)) }
  else
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
    trace.error = { type = "hook", message = verdict }
  elseif verdict == false and trace.success then
    trace.success = false
    trace.error = { type = "check", message = reason ~= nil and tostring(reason) or "after_run check failed" }
  end
end

-- run_one(S, k, job, iteration) -> trace | nil, io_error
-- S = { agent = fn, rec = recorder, Ctx = context.class(rec), hooks = table|nil }. Runs the
-- agent once and writes the trace. Hooks are called only when the hooks file has them.
function M.run_one(S, k, job, iteration)
  local rec = S.rec
  local trace_id = M.trace_id(k)
  local ctx = setmetatable({
    persona = job.persona, persona_info = job.persona_info, iteration = iteration,
    metadata = copy(job.metadata), trace_id = trace_id, entry = job.entry,
  }, S.Ctx)
  local run, ok, out
  if S.per_run_hooks then
    run = run_info(trace_id, k, job, iteration, ctx.metadata)
    if S.hooks.before_run then
      local hok, herr = hooks_mod.call(S.hooks, "before_run", run)
      if not hok then ok, out = false, { type = "hook", message = herr } end
      ctx.metadata = run.metadata
    end
  end
  rec:begin(trace_id)
  if ok == nil then ok, out = xpcall(S.agent, agent_error, job.input, ctx) end
  rec:stop()
  local trace = {
    trace_id = trace_id, input = job.input, iteration = iteration, persona = job.persona,
    metadata = ctx.metadata, success = true,
  }
  settle(trace, ok, out)
  if run and S.hooks.after_run then check_after_run(S, run, trace) end
  local written, err = write_trace(rec, trace)
  if not written then return nil, err end
  return trace
end

-- experiment(opts) -> exit_code, summary, dir, error_message
-- opts = { cfg, entries, agent, target (info), name, inputs_file, progress, hooks,
--          inputs_dropped, config_snapshot }
-- The caller has already validated everything; from here on only runs can fail.
function M.experiment(opts)
  local cfg, p, hooks = opts.cfg, opts.progress or progress_mod.new({ quiet = true }), opts.hooks
  local iterations = cfg.runner.iterations
  local jobs = M.prepare(opts.entries, cfg.personas)
  local planned = #jobs * iterations
  local dropped = opts.inputs_dropped or 0

  p:info("Starting experiment...")
  p:info(("Loaded %d inputs%s"):format(#jobs, dropped > 0 and (" (%d dropped by hooks)"):format(dropped) or ""))
  p:info(("Running %d iterations per input (%d total runs)"):format(iterations, planned))

  if hooks and hooks.before_experiment then
    local ok, err = hooks_mod.call(hooks, "before_experiment",
      { name = opts.name, iterations = iterations, inputs = #jobs, planned_traces = planned, config = cfg })
    if not ok then return 2, nil, nil, err end
  end

  local started_wall = clock.wall_ns()
  local dir, derr = output.create_dir(cfg.output.directory, opts.name, started_wall)
  if not dir then return 2, nil, nil, derr end
  local snap_ok, snap_err = output.write_file(dir .. "/config.yaml", opts.config_snapshot or "")
  if not snap_ok then return 2, nil, dir, snap_err end
  local rec, rerr = recorder.open(dir)
  if not rec then return 2, nil, dir, rerr end

  local S = { agent = opts.agent, rec = rec, Ctx = context.class(rec), hooks = hooks,
    per_run_hooks = hooks and (hooks.before_run or hooks.after_run) and true or false }
  local delay_ms = (cfg.run_delay_seconds or 0) * 1000
  local k, io_err = 0, nil
  p:start(planned)
  for _, job in ipairs(jobs) do
    for iteration = 0, iterations - 1 do
      if k > 0 and delay_ms > 0 then clock.sleep(delay_ms) end
      k = k + 1
      local trace, err = M.run_one(S, k, job, iteration)
      if not trace then io_err = err break end
      p:update(k)
    end
    if io_err then break end
  end
  p:finish()

  local stats = rec:stats()
  local closed, cerr = rec:close()
  io_err = io_err or (not closed and cerr) or nil
  local summary = output.summary({
    stats = stats, name = opts.name, started_at = clock.utc_iso(started_wall), completed_at = clock.utc_iso(),
    iterations = iterations, inputs = #jobs, inputs_file = opts.inputs_file, planned_traces = planned,
    interrupted = io_err ~= nil, config_file = cfg.config_file, target = cfg.runner.target,
  })
  summary.inputs_dropped = dropped
  local code = summary.failed > 0 and 1 or 0
  if hooks and hooks.after_experiment then
    local ok, err = hooks_mod.call(hooks, "after_experiment", summary)
    if not ok then
      p:warn("fluxloop: warning: " .. err)
      summary.after_experiment_error = err
      code = 1
    end
  end
  local sum_ok, sum_err = output.write_json(dir .. "/summary.json", summary)
  io_err = io_err or (not sum_ok and sum_err) or nil
  if io_err then
    return 2, summary, dir, ("writing results failed: %s"):format(io_err)
  end
  return code, summary, dir
end

return M
