-- output.lua - the experiment folder, summary.json and config.yaml.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local json = require("fluxloop.json")

local M = {}

-- create_dir(base, name [, wall_ns]) -> path | nil, message
-- Makes <base>/<name>_<YYYYMMDD_HHMMSS>; an existing folder is never reused: _2, _3, ... are tried.
function M.create_dir(base, name, wall_ns)
  local ok, err = fs.mkdirs(base)
  if not ok then return nil, ("cannot create the output directory: %s"):format(err) end
  local stem = ("%s/%s_%s"):format(base, name, clock.local_stamp(wall_ns))
  for i = 1, 1000 do
    local path = i == 1 and stem or ("%s_%d"):format(stem, i)
    local made, merr, code = fs.mkdir(path)
    if made then return path end
    if code ~= "EEXIST" then return nil, ("cannot create the experiment folder: %s"):format(merr) end
  end
  return nil, ("cannot create the experiment folder: %s and 999 others exist"):format(stem)
end

-- write_file(path, text) -> true | nil, message. Written to a temporary name then renamed,
-- so a reader never sees half a file.
function M.write_file(path, text)
  local tmp = path .. ".tmp"
  local f, err = io.open(tmp, "wb")
  if not f then return nil, err end
  local ok, werr = f:write(text)
  local closed, cerr = f:close()
  if not ok or not closed then
    os.remove(tmp)
    return nil, ("%s: %s"):format(path, werr or cerr)
  end
  local renamed, rerr = os.rename(tmp, path)
  if not renamed then return nil, rerr end
  return true
end

function M.write_json(path, value)
  return M.write_file(path, json.encode(value, { indent = 2 }) .. "\n")
end

-- summary.json's keys in the order of the fluxloop documentation's example and DESIGN's
-- list (duration_ms's too); any other key follows, sorted.
-- scores (fluxloop.grade.summary) follows the same rule: each grader's fields in ORDER.
local SUMMARY_ORDER = { "name", "total_traces", "successful", "failed", "avg_duration_ms", "started_at",
  "completed_at", "iterations", "inputs", "inputs_file", "planned_traces", "interrupted", "duration_ms",
  duration_ms = { "min", "mean", "p50", "p90", "p95", "p99", "max", "stddev" } }

local function by_name(a, b) return tostring(a) < tostring(b) end
local function by_number(a, b) return (tonumber(a) or math.huge) < (tonumber(b) or math.huge) end

-- Pretty JSON of the mapping t, its keys in `order` first (nested orders by key name; an
-- order ["*"] is every member's; the order "numeric" sorts keys "1", "2" ... "10" as numbers).
local function encode_ordered(t, order)
  local keys, seen, rest = {}, {}, {}
  local numeric = order == "numeric"
  order = numeric and {} or order
  for _, k in ipairs(order) do
    if t[k] ~= nil then keys[#keys + 1], seen[k] = k, true end
  end
  for k in pairs(t) do
    if not seen[k] then rest[#rest + 1] = k end
  end
  table.sort(rest, numeric and by_number or by_name)
  table.move(rest, 1, #rest, #keys + 1, keys)
  local members = {}
  for i, k in ipairs(keys) do
    local v = t[k]
    local sub = order[k] or order["*"]
    local text = type(v) == "table" and sub and next(v) ~= nil and encode_ordered(v, sub) or json.encode(v, { indent = 2 })
    -- Pretty JSON has no raw newline but its own, so one more level is a gsub away.
    members[i] = ("  %s: %s"):format(json.encode(tostring(k)), (text:gsub("\n", "\n  ")))
  end
  return "{\n" .. table.concat(members, ",\n") .. "\n}"
end

-- write_summary(path, summary) -> true | nil, message. Secrets an after_experiment hook
-- may have copied in are masked as in config.yaml (fluxloop.secrets).
function M.write_summary(path, summary)
  -- Grader names are the user's labels, not secrets: a grader "token_budget" keeps its figures.
  local scores = summary.scores
  summary.scores = nil
  local masked = require("fluxloop.secrets").mask(summary)
  summary.scores, masked.scores = scores, scores
  local order = SUMMARY_ORDER
  if scores then
    order = setmetatable({ scores = { ["*"] = require("fluxloop.grade.summary").ORDER } }, { __index = SUMMARY_ORDER })
  end
  return M.write_file(path, encode_ordered(masked, order) .. "\n")
end

-- Durations keep nanosecond resolution, not binary noise: 0.004122499999999999 -> 0.004122.
local function ms(x)
  return math.floor(x * 1e6 + 0.5) / 1e6
end

-- summary{...} -> the summary.json table (DESIGN "Output" and "Details > Summary").
function M.summary(s)
  local st = s.stats
  local total = st.count
  return {
    name = s.name,
    total_traces = total,
    successful = st.successful,
    failed = st.failed,
    success_rate = total > 0 and st.successful / total or 0,
    avg_duration_ms = ms(st.mean),
    duration_ms = { min = ms(st.min), mean = ms(st.mean), p50 = ms(st.p50), p90 = ms(st.p90),
      p95 = ms(st.p95), p99 = ms(st.p99), max = ms(st.max), stddev = ms(st.stddev) },
    started_at = s.started_at,
    completed_at = s.completed_at,
    iterations = s.iterations,
    inputs = s.inputs,
    inputs_file = s.inputs_file,
    planned_traces = s.planned_traces,
    interrupted = s.interrupted or false,
    config_file = s.config_file,
    target = s.target,
    fluxloop_version = require("fluxloop.host").version,
  }
end

return M
