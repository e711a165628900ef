-- grade/worker.lua - what each thread of `fluxloop evaluate` runs (fluxloop.pool with
-- module = "fluxloop.grade.worker"): it reads traces.jsonl on its own, grades the traces
-- the pool hands it (their place in the file), and writes their scores through the shared
-- sink, which puts them in trace order.
local grade = require("fluxloop.grade")
local json = require("fluxloop.json")
local pool = require("fluxloop.pool")
local recorder = require("fluxloop.recorder")

local M = {}

-- The fields of a trace line graders can use; objects and arrays come as JSON text.
M.FIELDS = { "trace_id", "success", "iteration", "persona", "duration_ms", "=input", "=output", "=metadata",
  "=error", "=observations" }

local function decode(text)
  if text == nil then return nil end
  local v = json.decode(text)
  if v == json.null then return nil end
  return v
end

-- trace_of(row) -> trace, job, observations (JSON text): a line's fields (row[1] is its line
-- number, then FIELDS) as run_one's trace and job would hold them. entries: the inputs' own
-- graders and expected values by input index (setup.entries).
function M.trace_of(row, entries, iterations)
  local metadata = decode(row[9]) or {}
  local trace = {
    trace_id = row[2], success = row[3] == true, iteration = row[4], persona = row[5], duration_ms = row[6],
    input = decode(row[7]), output = decode(row[8]), metadata = metadata, error = decode(row[10]),
  }
  local k = tonumber(tostring(row[2]):match("^trace_(%d+)$"))
  local own = k and entries and entries[tostring((k - 1) // iterations + 1)]
  local entry = { input = trace.input, expected = metadata.expected }
  if own and own.input_hash == require("fluxloop.stats").hash(json.encode(trace.input)) then
    entry.assert = own.assert
    if own.expected ~= nil then entry.expected = own.expected end
  end
  return trace, { entry = entry }, row[11]
end

-- main(setup_json, index) -> true | nil, message. setup: { traces (path), iterations,
-- grading (grade.plan's, with results_dir and no_cache), entries, secret_values }.
function M.main(setup_json, index)
  local setup = assert(json.decode(setup_json, "grade worker setup"))
  local rec = recorder.attach(pool.sink())
  if setup.secret_values and setup.secret_values[1] then rec:redact(setup.secret_values) end
  local set = grade.set(setup.grading.specs, grade.env_of(setup.grading))
  local observations
  set.observations_of = function() return decode(observations) or {} end
  local reader, err = require("fluxloop.jsonlread").open(setup.traces, M.FIELDS)
  if not reader then return nil, ("grader %d: %s"):format(index, err) end
  local at = 0 -- valid lines read so far
  while true do
    local _, seq = pool.next()
    if not seq then break end
    local row
    while at < seq do
      row = { reader:next() }
      if row[1] == nil then reader:close() return nil, ("grader %d: traces.jsonl ended early"):format(index) end
      at = at + 1
    end
    local trace, job
    trace, job, observations = M.trace_of(row, setup.entries, setup.iterations)
    local ok, werr = rec:write_scores(seq, trace.trace_id, set:grade(trace, job))
    if not ok then reader:close() return nil, werr end
    pool.completed()
  end
  reader:close()
  return true
end

return M
