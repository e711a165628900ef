-- analysis.lua - one streaming pass over an experiment's traces, input by input: the traces are in
-- input order (trace order is input-major), so each input is summed up as its runs go by and
-- then let go. Kept: per persona and overall figures, failures grouped, the slowest runs, and
-- what the report shows of the inputs (the worst MAX_ROWS, the slowest CHART_ROWS); memory does
-- not grow with the number of inputs or runs (samples past their exact limit are binned, see
-- fluxloop.statistics). An input is a run of consecutive traces with one input text.
local json = require("fluxloop.json")
local statistics = require("fluxloop.statistics")
local text_of = require("fluxloop.util").text_of

local M = {}

M.SLOWEST = 10        -- slowest runs kept (with their file offsets, to show their timelines)
M.GROUP_INPUTS = 20   -- inputs named per failure group
M.MAX_OUTPUTS = 1000  -- distinct outputs counted per input; past that an input is "saturated"
M.MAX_GROUPS = 1000   -- failure groups; messages past that are counted under "(other messages)" of their type
M.MAX_PERSONAS = 1000 -- personas counted apart; the rest under "(other personas)"
M.MAX_ROWS = 500      -- the worst inputs kept for the report's table
M.CHART_ROWS = 40     -- the inputs with the highest p95 kept for its chart
M.INPUT_LIMIT = 65536 -- exact durations of one input or persona (then binned)

local KEYS = { "trace_id", "input", "#output", "duration_ms", "success", "persona", "=error", "started_at",
  "completed_at", "iteration" }

-- Per-input accumulators. Each kind is { new = function(opts, exp) -> acc | nil (nothing to count
-- in this folder) [, keys = {extra reader keys}] };
-- an acc has add(run) for each run of the current input, finish_input(row) that writes that
-- input's figures into row and readies it for the next input, and result(an) that writes its
-- overall figures into the analysis. `run` is reused from run to run: copy what you keep.
-- A kind added to this list is fed by report and compare alike; an acc may have close() too.
-- fluxloop.grades reads scores.jsonl in step with the traces (each grader's pass rate).
M.accumulators = { (require("fluxloop.grades")) }

-- The built-in accumulator: runs, successes, durations (p50, p95, and the sample for compare's
-- Mann-Whitney test: row.sample is valid until the next input's first run) and how often the
-- most common output came back.
local Core = {}
Core.__index = Core

function Core.new()
  return setmetatable({ sample = statistics.sample(M.INPUT_LIMIT), counts = {}, n = 0, ok = 0, distinct = 0,
    untracked = 0, stale = false }, Core)
end

function Core:add(run)
  if self.stale then
    self.sample:reset()
    self.counts, self.n, self.ok, self.distinct, self.untracked, self.stale = {}, 0, 0, 0, 0, false
  end
  self.n = self.n + 1
  self.sample:add(run.duration)
  if run.success then
    self.ok = self.ok + 1
    local h = run.output_hash or 0
    local c = self.counts[h]
    if c then
      self.counts[h] = c + 1
    elseif self.distinct < M.MAX_OUTPUTS then
      self.counts[h], self.distinct = 1, self.distinct + 1
    else
      self.untracked = self.untracked + 1
    end
  end
end

function Core:finish_input(row)
  local top = 0
  for _, c in pairs(self.counts) do if c > top then top = c end end
  row.n, row.ok, row.distinct, row.top, row.untracked = self.n, self.ok, self.distinct, top, self.untracked
  row.saturated = self.untracked > 0
  row.top_share = self.ok > 0 and top / self.ok or nil -- a lower bound when saturated
  row.p50, row.p95 = self.sample:percentile(50), self.sample:percentile(95)
  row.sample = self.sample
  self.stale = true
end

function Core.result() end

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

-- keep(list, n, item, before): list stays the n first items by before(a, b), in order.
function M.keep(list, n, item, before)
  local len = #list
  if len >= n and not before(item, list[len]) then return end
  local lo, hi = 1, len + 1
  while lo < hi do
    local mid = (lo + hi) // 2
    if before(item, list[mid]) then hi = mid else lo = mid + 1 end
  end
  table.insert(list, lo, item)
  if #list > n then list[#list] = nil end
end

local function label(v)
  if v == nil then return "(none)" end
  return tostring(v)
end

-- Worst first: lowest success rate, then highest p95, then the input's text.
function M.worse(a, b)
  local ra, rb = a.ok / a.n, b.ok / b.n
  if ra ~= rb then return ra < rb end
  local pa, pb = a.p95 or 0, b.p95 or 0
  if pa ~= pb then return pa > pb end
  return tostring(a.key) < tostring(b.key)
end

local function slower(a, b)
  if a.p95 ~= b.p95 then return a.p95 > b.p95 end
  return a.seen < b.seen
end

local Walker = {}
Walker.__index = Walker

-- walker(exp [, opts]) -> walker | nil, message: reads exp's traces input by input.
-- opts.personas = false skips the per-persona figures (compare does not show them).
function M.walker(exp, opts)
  local keys = KEYS
  -- The start and end times of the traces are needed only when summary.json does not say them.
  if exp.summary and exp.summary.started_at and exp.summary.completed_at then keys = { table.unpack(KEYS, 1, 7) } end
  local extra = {}
  local accs = { Core.new(opts) }
  for _, kind in ipairs(M.accumulators) do
    local acc = kind.new(opts, exp)
    if acc then
      accs[#accs + 1] = acc
      for _, k in ipairs(kind.keys or {}) do extra[#extra + 1] = k end
    end
  end
  if #extra > 0 then keys = { table.unpack(keys) } for _, k in ipairs(extra) do keys[#keys + 1] = k end end
  local r, err = exp:reader(keys)
  if not r then return nil, err end
  return setmetatable({
    exp = exp, r = r, accs = accs, nbase = #keys - #extra, extra = extra, run = {},
    by_persona = not (opts and opts.personas == false), overall = statistics.sample(),
    personas = {}, persona_list = {}, groups = {}, group_list = {}, slowest = {}, total = 0, ok = 0, inputs = 0,
  }, Walker)
end

-- Reads the next run into self.run (true), or nil at the end, or nil, message on a read error.
function Walker:read()
  local r, run, vals = self.r, self.run, nil
  local line, trace_id, input, out_hash, duration, success, persona, err_raw, started, completed
  if #self.extra == 0 then
    line, trace_id, input, out_hash, duration, success, persona, err_raw, started, completed = r:next()
  else
    vals = table.pack(r:next())
    line, trace_id, input, out_hash, duration, success, persona, err_raw = table.unpack(vals, 1, 8)
    if self.nbase == #KEYS then started, completed = vals[9], vals[10] end
  end
  if not line then
    if trace_id then return nil, ("%s/%s: %s"):format(self.exp.display, self.exp.file_name, trace_id) end
    return nil
  end
  if vals then
    for i, k in ipairs(self.extra) do run[(k:gsub("^[=#*]", ""))] = vals[self.nbase + 1 + i] end
  end
  run.trace_id, run.output_hash, run.persona, run.err_raw = trace_id, out_hash, persona, err_raw
  run.key = input == nil and "(none)" or input
  run.duration, run.success, run.offset = tonumber(duration) or 0, success == true, r:offset()
  run.started, run.completed = started, completed
  return true
end

-- The figures every run adds to, whatever its input: overall, persona, failures, slowest.
function Walker:count(run)
  self.total = self.total + 1
  self.overall:add(run.duration)
  if run.success then self.ok = self.ok + 1 else self:failure(run) end
  if self.by_persona then
    local key = label(run.persona)
    local p = self.personas[key]
    if p == nil then
      if #self.persona_list >= M.MAX_PERSONAS then key = "(other personas)" p = self.personas[key] end
      if p == nil then
        p = { key = key, n = 0, ok = 0, sample = statistics.sample(M.INPUT_LIMIT) }
        self.personas[key], self.persona_list[#self.persona_list + 1] = p, p
      end
    end
    p.n, p.ok = p.n + 1, p.ok + (run.success and 1 or 0)
    p.sample:add(run.duration)
  end
  local slow = self.slowest
  if #slow < M.SLOWEST or run.duration > slow[#slow].duration then
    M.keep(slow, M.SLOWEST, { trace_id = run.trace_id, duration = run.duration, input = run.key, success = run.success,
      persona = run.persona, offset = run.offset }, function(a, b) return a.duration > b.duration end)
  end
  local started, completed = run.started, run.completed
  if started and (self.first_started == nil or started < self.first_started) then self.first_started = started end
  if completed and (self.last_completed == nil or completed > self.last_completed) then self.last_completed = completed end
end

function Walker:failure(run)
  local etype, message, traceback = error_parts(run.err_raw)
  local key = etype .. "\0" .. message
  if self.groups[key] == nil and #self.group_list >= M.MAX_GROUPS then
    -- Messages that name something per run (an id, a time) must not make a group each.
    message, traceback = "(other messages)", nil
    key = etype .. "\0" .. message
  end
  local fg = self.groups[key]
  if fg == nil then
    fg = { type = etype, message = message, traceback = traceback, count = 0, inputs = {}, input_list = {},
      trace_id = run.trace_id, offset = run.offset, seen = #self.group_list + 1 }
    self.groups[key] = fg
    self.group_list[#self.group_list + 1] = fg
  end
  fg.count = fg.count + 1
  local label_in = label(run.key)
  if fg.inputs[label_in] then
    fg.inputs[label_in] = fg.inputs[label_in] + 1
  elseif #fg.input_list < M.GROUP_INPUTS then
    fg.inputs[label_in] = 1
    fg.input_list[#fg.input_list + 1] = label_in
  else
    fg.more_inputs = true
  end
end

-- w:next_input() -> the next input's row { key, persona, seen, first_trace, n, ok, p50, p95, ... (the
-- accumulators' fields) } | nil at the end | nil, message on a read error.
function Walker:next_input()
  if self.done then return nil end
  local run = self.run
  if not self.pending then
    local got, err = self:read()
    if not got then self.done = true return nil, err end
  end
  self.pending = false
  local key = run.key
  local row = { key = key, persona = run.persona or false, first_trace = run.trace_id }
  while true do
    self:count(run)
    for _, acc in ipairs(self.accs) do acc:add(run) end
    local got, err = self:read()
    if not got then
      self.done = true
      if err then return nil, err end
      break
    end
    if run.key ~= key then self.pending = true break end
  end
  for _, acc in ipairs(self.accs) do acc:finish_input(row) end
  self.inputs = self.inputs + 1
  row.seen = self.inputs
  return row
end

-- w:close(): the readers let go (finish does it too).
function Walker:close()
  self.r:close()
  for _, acc in ipairs(self.accs) do if acc.close then acc:close() end end
end

-- w:finish() -> analysis = { total, ok, failed, sample, input_count, personas, failures (most frequent
-- first), slowest, damaged, damage_lines, partial, first_started, last_completed } | nil, message.
function Walker:finish()
  local exp = self.exp
  local damaged, damage_lines, partial = exp:damage(self.r)
  self.r:close()
  if self.total == 0 then return nil, exp:empty_message(damaged) end
  table.sort(self.group_list, function(a, b)
    if a.count ~= b.count then return a.count > b.count end
    return a.seen < b.seen
  end)
  for _, p in ipairs(self.persona_list) do p.p50, p.p95 = p.sample:percentile(50), p.sample:percentile(95) end
  local an = {
    total = self.total, ok = self.ok, failed = self.total - self.ok, sample = self.overall, input_count = self.inputs,
    personas = self.persona_list, failures = self.group_list, slowest = self.slowest, damaged = damaged,
    damage_lines = damage_lines, partial = partial, first_started = self.first_started, last_completed = self.last_completed,
  }
  for _, acc in ipairs(self.accs) do acc:result(an) end
  return an
end

-- run(exp [, opts]) -> analysis | nil, message: the walker's analysis plus what the report shows
-- of the inputs: worst (the MAX_ROWS worst, worst first), chart (the CHART_ROWS highest p95),
-- inputs (= worst) and by_input (key -> row of those kept).
function M.run(exp, opts)
  local w, err = M.walker(exp, opts)
  if not w then return nil, err end
  local worst, chart = {}, {}
  while true do
    local row, rerr = w:next_input()
    if not row then
      if rerr then w:close() return nil, rerr end
      break
    end
    row.sample = nil -- reused by the next input
    M.keep(worst, M.MAX_ROWS, row, M.worse)
    if row.p95 then M.keep(chart, M.CHART_ROWS, row, slower) end
  end
  local an, ferr = w:finish()
  if not an then return nil, ferr end
  an.worst, an.chart, an.inputs, an.by_input = worst, chart, worst, {}
  for _, row in ipairs(worst) do an.by_input[row.key] = row end
  return an
end

-- figures(row) -> success rate, Wilson 95% lo and hi, p50, p95 of an input or persona.
function M.figures(g)
  local lo, hi = statistics.wilson(g.ok, g.n)
  return g.ok / g.n, lo, hi, g.p50, g.p95
end

return M
