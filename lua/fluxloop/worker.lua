-- worker.lua - what each worker thread's own Lua state runs: it rebuilds the agent and
-- hooks from plain data, then takes trace numbers from the pool until none are left.
local json = require("fluxloop.json")
local pool = require("fluxloop.pool")
local recorder = require("fluxloop.recorder")
local run = require("fluxloop.run")

local M = {}

-- main(setup_json, index) -> true | nil, message | false, message (this slot did not start)
function M.main(setup_json, index)
  local setup = assert(json.decode(setup_json, "worker setup"))
  local agent, info = require("fluxloop.target").resolve(setup.target,
    { project_dir = setup.project_dir, runner = setup.runner })
  -- The main state started the agent moments ago: a slot whose own start fails (a worker
  -- process that gives no hello) is said, and the slots that started do every run.
  if not agent then return false, ("worker %d did not start: %s"):format(index, info) end
  local hooks
  if setup.hooks_file then
    local hooks_mod = require("fluxloop.hooks")
    hooks = hooks_mod.load(setup.hooks_file, setup.hooks_display)
    if not hooks then return nil, ("worker %d: cannot load hooks %s"):format(index, setup.hooks_display) end
  end
  local replay
  if setup.replay_args then
    local rerr
    replay, rerr = require("fluxloop.replay").load(setup.replay_args)
    if not replay then return nil, ("worker %d: %s"):format(index, rerr) end
  end
  local rec = recorder.attach(pool.sink())
  local cfg = { runner = { timeout_ms = setup.timeout_ms, env = setup.runner and setup.runner.env },
    run_delay_seconds = setup.run_delay_seconds, secret_values = setup.secret_values, grading = setup.grading,
    multi_turn = setup.multi_turn }
  local S = run.state(agent, rec, hooks, cfg, replay)
  local jobs = run.prepare(setup.plan and require("fluxloop.plan").attach(setup.plan) or setup.entries,
    setup.personas)
  return run.work(S, jobs, setup.iterations, pool.next, pool.completed)
end

return M
