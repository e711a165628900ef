-- analysis.lua - one streaming pass over an experiment's traces: exact counts and percentiles per
-- input, per persona and overall; output consistency; failures grouped; the slowest runs.
-- Memory: per input and persona aggregates, 8 bytes a duration (for exact percentiles and the
-- Mann-Whitney test) and a count per distinct output of an input, up to MAX_OUTPUTS; no
-- per-trace records.
local json = require("fluxloop.json")
local statistics = require("fluxloop.statistics")

local M = {}

M.SLOWEST = 10        -- slowest runs kept (with their file offsets, to show their timelines)
M.GROUP_INPUTS = 20   -- inputs named per failure group
M.MAX_OUTPUTS = 1000  -- distinct outputs counted per input; past that an input is "saturated"
M.MAX_GROUPS = 1000   -- failure groups; messages past that are counted under "(other messages)" of their type

local KEYS = { "trace_id", "input", "#output", "duration_ms", "success", "persona", "=error", "started_at",
  "completed_at", "iteration" }

-- Stands in for the persona group when personas are not counted.
local NO_GROUP = { n = 0, ok = 0 }

local function new_group(key)
  return { key = key, n = 0, ok = 0, sample = statistics.sample(), outputs = {}, distinct = 0, untracked = 0 }
end

-- The error of a failed trace as type, message, traceback (traces.jsonl has an object,
-- trace_summary.jsonl a string).
local function error_parts(raw)
  if raw == nil or raw == "null" then return "unknown", "(no error recorded)", nil end
  local ok, v = pcall(json.decode, raw)
  if not ok then return "unknown", raw, nil end
  if type(v) == "table" then
    return tostring(v.type or "error"), tostring(v.message or ""), type(v.traceback) == "string" and v.traceback or nil
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
-- aggregates (compare does not show them, and holds two experiments at once). analysis = { total, ok, failed, sample, inputs (list, first
-- seen first), personas (list), failures (list, most frequent first), slowest, damaged,
-- damage_lines, partial, first_started, last_completed }.
function M.run(exp, opts)
  local by_persona = not (opts and opts.personas == false)
  local r, err = exp:reader(KEYS)
  if not r then return nil, err end
  local inputs, input_list, personas, persona_list = {}, {}, {}, {}
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
    local g = inputs[input]
    if g == nil then
      g = new_group(input)
      g.persona = persona
      inputs[input] = g
      input_list[#input_list + 1] = g
    end
    local pg = NO_GROUP
    if by_persona then
      local pkey = label(persona)
      pg = personas[pkey]
      if pg == nil then
        pg = new_group(pkey)
        personas[pkey] = pg
        persona_list[#persona_list + 1] = pg
      end
      pg.sample:add(duration)
    end
    g.n, pg.n = g.n + 1, pg.n + 1
    g.sample:add(duration)
    overall:add(duration)
    if success == true then
      ok_count = ok_count + 1
      g.ok, pg.ok = g.ok + 1, pg.ok + 1
      local outs, h = g.outputs, out_hash or 0
      local c = outs[h]
      if c then
        outs[h] = c + 1
      elseif g.distinct < M.MAX_OUTPUTS then
        outs[h], g.distinct = 1, g.distinct + 1
      else
        -- Past MAX_OUTPUTS distinct outputs there is no consistency to speak of; counting more
        -- would cost memory per run when every output differs.
        g.untracked = g.untracked + 1
      end
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
      keep_slow(slowest, M.SLOWEST, { trace_id = trace_id, duration = duration, input = input, success = success == true,
        persona = persona, offset = r:offset() })
      if #slowest == M.SLOWEST then slow_min = slowest[#slowest].duration end
    end
    if started and (first_started == nil or started < first_started) then first_started = started end
    if completed and (last_completed == nil or completed > last_completed) then last_completed = completed end
  end
  local damaged, damage_lines, partial = exp:damage(r)
  r:close()
  if total == 0 then return nil, exp:empty_message(damaged) end
  for _, g in ipairs(input_list) do
    local top = 0
    for _, c in pairs(g.outputs) do
      if c > top then top = c end
    end
    g.top, g.saturated = top, g.untracked > 0
    g.top_share = g.ok > 0 and top / g.ok or nil -- a lower bound when saturated
  end
  table.sort(group_list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.seen < b.seen
  end)
  return {
    total = total, ok = ok_count, failed = total - ok_count, sample = overall, inputs = input_list,
    by_input = inputs, personas = persona_list, failures = group_list, slowest = slowest, damaged = damaged,
    damage_lines = damage_lines, partial = partial, first_started = first_started, last_completed = last_completed,
  }
end

-- figures(group) -> success rate, Wilson 95% lo and hi, p50, p95 of a group (input or persona).
function M.figures(g)
  local lo, hi = statistics.wilson(g.ok, g.n)
  return g.ok / g.n, lo, hi, g.sample:percentile(50), g.sample:percentile(95)
end

return M
