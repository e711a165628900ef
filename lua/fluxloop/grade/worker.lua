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

-- A trace's fields kept as JSON text are decoded when a grader first reads them: a rule
-- grader reads only the output, and decoding the rest of a million lines is most of the work.
local LAZY = { input = 7, metadata = 9, error = 10 }
local Trace = {}
Trace.__index = function(t, key)
  local at = LAZY[key]
  if not at then return nil end
  local v = decode(rawget(t, "raw")[at])
  if key == "metadata" and v == nil then v = {} end
  rawset(t, key, v)
  return v
end

-- The job of a trace: its entry as graders see it (input, expected, its own assert: list).
local Job = {}
Job.__index = function(job, key)
  if key ~= "entry" then return nil end
  local trace = rawget(job, "trace")
  local entry = { input = trace.input, expected = trace.metadata.expected }
  local own = rawget(job, "own")
  if own and own.input_hash == require("fluxloop.stats").hash(json.encode(trace.input)) then
    entry.assert = own.assert
    if own.expected ~= nil then entry.expected = own.expected end
  end
  rawset(job, "entry", entry)
  return entry
end

-- trace_of(row) -> trace, job, observations (JSON text): a line's fields (row[1] is its line
-- number, then FIELDS) as run_one's trace and job would hold them. entries: the inputs' own
-- graders and expected values by input index (setup.entries).
function M.trace_of(row, entries, iterations)
  local trace = setmetatable({ trace_id = row[2], success = row[3] == true, iteration = row[4], persona = row[5],
    duration_ms = row[6], output = decode(row[8]), raw = row }, Trace)
  local k = entries and tonumber(tostring(row[2]):match("^trace_(%d+)$"))
  local own = k and entries[tostring((k - 1) // iterations + 1)]
  return trace, setmetatable({ trace = trace, own = own }, Job), row[11]
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
  local at, ended = 0, false -- valid lines read so far
  while true do
    local _, seq = pool.next()
    if not seq then break end
    local row
    while at < seq and not ended do
      row = { reader:next() }
      ended = row[1] == nil
      at = at + 1
    end
    if ended then
      -- The count was of lines; damaged ones are not traces: the places past the last trace
      -- hold nothing.
      rec:skip(seq)
      goto continue
    end
    local trace, job
    trace, job, observations = M.trace_of(row, setup.entries, setup.iterations)
    local o = trace.output
    local ok, werr = rec:write_scores(seq, trace.trace_id, set:grade(trace, job),
      type(o) == "string" and o or (o == nil and "" or json.encode(o)), trace.duration_ms)
    if not ok then reader:close() return nil, werr end
    pool.completed()
    ::continue::
  end
  reader:close()
  return true
end

return M
