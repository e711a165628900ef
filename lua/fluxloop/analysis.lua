-- analysis.lua - one streaming pass over an experiment's traces: exact counts and percentiles per
-- input, per persona and overall; output consistency; failures grouped; the slowest runs.
-- Memory: the per input and per persona aggregates live in C (fluxloop.statistics.groups): 8
-- bytes a run (durations, for exact percentiles and the Mann-Whitney test), 12 a distinct output
-- of an input (up to MAX_OUTPUTS) and some 200 bytes an input; no per-trace records.
local json = require("fluxloop.json")
local statistics = require("fluxloop.statistics")
local text_of = require("fluxloop.util").text_of

local M = {}

M.SLOWEST = 10        -- slowest runs kept (with their file offsets, to show their timelines)
M.GROUP_INPUTS = 20   -- inputs named per failure group
M.MAX_OUTPUTS = 1000  -- distinct outputs counted per input; past that an input is "saturated"
M.MAX_GROUPS = 1000   -- failure groups; messages past that are counted under "(other messages)" of their type

local KEYS = { "trace_id", "input", "#output", "duration_ms", "success", "persona", "=error", "started_at",
  "completed_at", "iteration" }

-- A group (an input or a persona) as the report and compare see it: a view of one C aggregate.
-- g.n, g.ok, g.distinct, g.top, g.untracked, g.saturated, g.top_share; g.sample:percentile(p)
-- (g.sample is g itself); fields are read from C when asked for, so a view costs little.
local Group = {}
local FIELDS = { n = 1, ok = 2, distinct = 3, top = 4, untracked = 5 }

function Group.percentile(g, p) return g.set:percentile(g.id, p) end

Group.__index = function(g, k)
  if k == "sample" then return g end
  local f = Group[k]
  if f then return f end
  local at = FIELDS[k]
  if at then return (select(at, g.set:get(g.id))) end
  if k == "saturated" then return (select(5, g.set:get(g.id))) > 0 end
  if k == "top_share" then
    local _, ok, _, top = g.set:get(g.id)
    return ok > 0 and top / ok or nil -- a lower bound when saturated
  end
  return nil
end

local function views(set, keys, personas)
  local list = {}
  for i, key in ipairs(keys) do
    list[i] = setmetatable({ set = set, id = i, key = key, persona = personas and personas[i] or nil }, Group)
  end
  return list
end

-- The error of a failed trace as type, message, traceback (traces.jsonl has an object,
-- trace_summary.jsonl a string).
local function error_parts(raw)
  if raw == nil or raw == "null" then return "unknown", "(no error recorded)", nil end
  local ok, v = pcall(json.decode, raw)
  if not ok then return "unknown", raw, nil end
  if type(v) == "table" then
    return text_of(v.type or "error"), text_of(v.message or ""), type(v.traceback) == "string" and v.traceback or nil
  end
  return "error", tostring(v), nil
end

-- Keeps the n slowest runs in a list sorted slowest first.
local function keep_slow(list, n, entry)
  local i = #list + 1
  while i > 1 and list[i - 1].duration < entry.duration do i = i - 1 end
  if i > n then return end
  table.insert(list, i, entry)
  if #list > n then list[#list] = nil end
end

local function label(v)
  if v == nil then return "(none)" end
  return tostring(v)
end

-- run(exp [, opts]) -> analysis | nil, message. opts.personas = false skips the per-persona
-- aggregates (compare does not show them, and holds two experiments at once). analysis = { total,
-- ok, failed, sample, inputs (views, first seen first), by_input (input -> view), personas (views),
-- failures (list, most frequent first), slowest, damaged, damage_lines, partial, first_started,
-- last_completed }.
function M.run(exp, opts)
  local by_persona = not (opts and opts.personas == false)
  -- The start and end times of the traces are needed only when summary.json does not say them:
  -- two strings a trace less to make (and collect) otherwise.
  local keys_wanted = KEYS
  if exp.summary and exp.summary.started_at and exp.summary.completed_at then keys_wanted = { table.unpack(KEYS, 1, 7) } end
  local r, err = exp:reader(keys_wanted)
  if not r then return nil, err end
  local set = statistics.groups(M.MAX_OUTPUTS)
  local pset = by_persona and statistics.groups(0) or nil
  local index, keys, persona_of = {}, {}, {}   -- input -> id, id -> input, id -> its first persona
  local pindex, pkeys = {}, {}
  local groups, group_list = {}, {}
  local overall = statistics.sample()
  local slowest, slow_min = {}, -math.huge
  local total, ok_count = 0, 0
  local first_started, last_completed
  while true do
    local line, trace_id, input, out_hash, duration, success, persona, err_raw, started, completed = r:next()
    if not line then
      if trace_id then r:close() return nil, ("%s/%s: %s"):format(exp.display, exp.file_name, trace_id) end
      break
    end
    duration = tonumber(duration) or 0
    if input == nil then input = "(none)" end
    total = total + 1
    success = success == true
    local id = index[input]
    if id == nil then
      id = #keys + 1
      keys[id], index[input], persona_of[id] = input, id, persona or false
    end
    set:add(id, duration, success, out_hash)
    if by_persona then
      local pkey = label(persona)
      local pid = pindex[pkey]
      if pid == nil then
        pid = #pkeys + 1
        pkeys[pid], pindex[pkey] = pkey, pid
      end
      pset:add(pid, duration, success)
    end
    overall:add(duration)
    if success then
      ok_count = ok_count + 1
    else
      local etype, message, traceback = error_parts(err_raw)
      local key = etype .. "\0" .. message
      if groups[key] == nil and #group_list >= M.MAX_GROUPS then
        -- Messages that name something per run (an id, a time) must not make a group each.
        message, traceback = "(other messages)", nil
        key = etype .. "\0" .. message
      end
      local fg = groups[key]
      if fg == nil then
        fg = { type = etype, message = message, traceback = traceback, count = 0, inputs = {}, input_list = {},
          trace_id = trace_id, offset = r:offset(), seen = #group_list + 1 }
        groups[key] = fg
        group_list[#group_list + 1] = fg
      end
      fg.count = fg.count + 1
      local label_in = label(input)
      if fg.inputs[label_in] then
        fg.inputs[label_in] = fg.inputs[label_in] + 1
      elseif #fg.input_list < M.GROUP_INPUTS then
        fg.inputs[label_in] = 1
        fg.input_list[#fg.input_list + 1] = label_in
      else
        fg.more_inputs = true
      end
    end
    if duration > slow_min or #slowest < M.SLOWEST then
      keep_slow(slowest, M.SLOWEST, { trace_id = trace_id, duration = duration, input = input, success = success,
        persona = persona, offset = r:offset() })
      if #slowest == M.SLOWEST then slow_min = slowest[#slowest].duration end
    end
    if started and (first_started == nil or started < first_started) then first_started = started end
    if completed and (last_completed == nil or completed > last_completed) then last_completed = completed end
  end
  local damaged, damage_lines, partial = exp:damage(r)
  r:close()
  if total == 0 then return nil, exp:empty_message(damaged) end
  local input_list = views(set, keys, persona_of)
  local by_input = {}
  for i, key in ipairs(keys) do by_input[key] = input_list[i] end
  table.sort(group_list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.seen < b.seen
  end)
  return {
    total = total, ok = ok_count, failed = total - ok_count, sample = overall, inputs = input_list,
    by_input = by_input, personas = by_persona and views(pset, pkeys) or {}, failures = group_list, slowest = slowest,
    damaged = damaged, damage_lines = damage_lines, partial = partial, first_started = first_started, last_completed = last_completed,
  }
end

-- figures(group) -> success rate, Wilson 95% lo and hi, p50, p95 of a group (input or persona).
function M.figures(g)
  local n, ok = g.set:get(g.id)
  local lo, hi = statistics.wilson(ok, n)
  return ok / n, lo, hi, g:percentile(50), g:percentile(95)
end

return M
