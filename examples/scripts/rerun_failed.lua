-- rerun_failed.lua - a custom orchestration: run again only the inputs that failed in a
-- previous experiment folder, with the project's config, agent and hooks.
--   fluxloop run experiment --script examples/scripts/rerun_failed.lua -- experiments/my_agent_20261125_170000
-- It reuses the default parts: fluxloop.main.prepare (config, inputs, hooks, target) and
-- fluxloop.run.experiment (the run loop and the five files).
local json = require("fluxloop.json")
local main = require("fluxloop.main")
local run = require("fluxloop.run")

local flags = ...
local previous = flags.script_args[1]
if not previous then error("usage: --script rerun_failed.lua -- PREVIOUS_EXPERIMENT_DIR", 0) end

-- The inputs (as JSON text, so tables compare too) of the failed traces.
local failed = {}
local f = assert(io.open(previous .. "/trace_summary.jsonl", "rb"))
for line in f:lines() do
  local row = json.decode(line)
  if row and row.success == false then failed[json.encode(row.input)] = true end
end
f:close()

local exp, err = main.prepare(flags)
if not exp then error(err, 0) end
local kept = {}
for _, entry in ipairs(exp.entries) do
  if failed[json.encode(entry.input)] then kept[#kept + 1] = entry end
end
if #kept == 0 then
  io.stderr:write("[INFO] No failed inputs in ", previous, "; nothing to run\n")
  return 0
end
exp.inputs_dropped = #exp.entries - #kept
exp.entries = kept
local code, summary, dir, rerr = run.experiment(exp)
return main.finish(code, summary, dir, rerr, flags)
