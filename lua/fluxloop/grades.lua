-- grades.lua - an experiment's grades read back, for report and compare: scores.jsonl streams
-- in step with the traces as fluxloop.analysis walks them input by input (both files are in
-- trace order; a trace has a line per grader). An accumulator of analysis.accumulators: per
-- input, each grader's passes, fails and errors (row.grades); overall, each grader's counts,
-- mean score, pass^k, a few failed grades to show, and the inputs worst by grades. Memory is
-- in the graders and the rows kept, never in the traces or inputs.
local json = require("fluxloop.json")
local jsonlread = require("fluxloop.jsonlread")
local statistics = require("fluxloop.statistics")

local M = {}

M.MAX_ROWS = 200      -- inputs kept for the report's input x grader matrix (the worst)
M.MAX_GRADERS = 100   -- graders counted apart; lines of the others count as "(other graders)"
M.EXAMPLES = 3        -- failed grades (and grader errors) kept per grader, with their reasons
M.MAX_K = 1000        -- pass^k is kept for k up to this (as summary.json's)
M.FILE = "scores.jsonl"

local Acc = {}
Acc.__index = Acc

-- new(opts, exp) -> an accumulator, or nil when the folder has no scores.jsonl.
function M.new(_, exp)
  local path = exp and exp.dir and (exp.dir .. "/" .. M.FILE)
  local f = path and io.open(path, "rb")
  if not f then return nil end
  f:close()
  local r = jsonlread.open(path, { "trace_id", "grader", "pass", "score" })
  if not r then return nil end
  return setmetatable({ r = r, path = path, graders = {}, by_name = {}, touched = {}, worst = {}, input_no = 0,
    inputs = 0, unmatched = 0, ungraded = 0, runs = 0 }, Acc)
end

local function trace_number(id)
  return type(id) == "string" and tonumber(id:match("^trace_(%d+)$")) or nil
end

-- Reads the next score line into self.p_* (true), or false at the end of the file.
function Acc:read()
  if self.eof then return false end
  local line, id, grader, pass, score = self.r:next()
  if not line then
    self.eof = true
    return false
  end
  self.p_id, self.p_grader, self.p_pass, self.p_score = id, grader, pass, score
  self.pending = true
  return true
end

function Acc:grader(name)
  local g = self.by_name[name]
  if g then return g end
  if #self.graders >= M.MAX_GRADERS then -- one more, for the rest
    name = "(other graders)"
    g = self.by_name[name]
    if g then return g end
  end
  g = { name = name, graded = 0, passed = 0, failed = 0, errors = 0, scored = 0, score_sum = 0, hat_sum = {},
    hat_inputs = {}, fails = {}, error_examples = {}, seen = -1, cp = 0, cf = 0, ce = 0 }
  self.by_name[name] = g
  self.graders[#self.graders + 1] = g
  return g
end

-- One grade of run, from the reader's last line (so r:offset() is its place: asked only for
-- the few kept as examples).
local function count(self, name, pass, score, run)
  local g = self.by_name[name] or self:grader(type(name) == "string" and name or "(unnamed)")
  if g.seen ~= self.input_no then
    g.seen, g.cp, g.cf, g.ce = self.input_no, 0, 0, 0
    self.touched[#self.touched + 1] = g
  end
  g.graded = g.graded + 1
  if pass == true then
    g.passed, g.cp = g.passed + 1, g.cp + 1
  elseif pass == false then
    g.failed, g.cf = g.failed + 1, g.cf + 1
    if #g.fails < M.EXAMPLES then g.fails[#g.fails + 1] = { trace_id = run.trace_id, input = run.key, offset = self.r:offset() } end
  else
    g.errors, g.ce = g.errors + 1, g.ce + 1
    if #g.error_examples < M.EXAMPLES then
      g.error_examples[#g.error_examples + 1] = { trace_id = run.trace_id, input = run.key, offset = self.r:offset() }
    end
  end
  if type(score) == "number" then g.scored, g.score_sum = g.scored + 1, g.score_sum + score end
end

-- add(run): the score lines of run's trace. A line of a trace the walk never sees (its trace
-- line damaged, say) is passed over; a line of a later trace waits for it (self.p_*). The
-- loop reads the file itself: it runs once a grade.
function Acc:add(run)
  local id, r, got = run.trace_id, self.r, false
  local pid, name, pass, score
  local have = self.pending
  if have then pid, name, pass, score = self.p_id, self.p_grader, self.p_pass, self.p_score end
  self.runs, self.pending = self.runs + 1, false
  while true do
    if not have then
      if self.eof then break end
      local line
      line, pid, name, pass, score = r:next()
      if not line then self.eof = true break end
    end
    have = false
    if pid == id then
      count(self, name, pass, score, run)
      got = true
    else
      local a, b = trace_number(pid), trace_number(id)
      if a == nil or (b ~= nil and a < b) then
        self.unmatched = self.unmatched + 1
      else
        self.p_id, self.p_grader, self.p_pass, self.p_score, self.pending = pid, name, pass, score, true
        break
      end
    end
  end
  if not got then self.ungraded = self.ungraded + 1 end
end

-- C(c,k)/C(n,k) for k = 1..n into the grader's pass^k sums (gradestats.c does the same).
local function fold(g, n, c)
  local r = 1.0
  local hs, hi = g.hat_sum, g.hat_inputs
  for k = 1, math.min(n, M.MAX_K) do
    r = c - (k - 1) <= 0 and 0.0 or r * (c - (k - 1)) / (n - (k - 1))
    hs[k], hi[k] = (hs[k] or 0) + r, (hi[k] or 0) + 1
  end
end

-- Worst first: the lowest mean pass rate over the input's graders, then the most failed grades.
local function worse(a, b)
  local ra, rb = a.rate or 2, b.rate or 2
  if ra ~= rb then return ra < rb end
  if a.failed ~= b.failed then return a.failed > b.failed end
  return tostring(a.key) < tostring(b.key)
end
M.worse = worse

-- finish_input(row): row.grades = { [grader] = { passed, failed, errors } }, row.grade_names
-- (in the order the graders came), row.grade_rate (mean pass rate over them; nil if none graded).
function Acc:finish_input(row)
  local grades, names, rate_sum, rated, failed = {}, {}, 0, 0, 0
  for i, g in ipairs(self.touched) do
    grades[g.name] = { passed = g.cp, failed = g.cf, errors = g.ce }
    names[i] = g.name
    local n = g.cp + g.cf
    if n > 0 then
      fold(g, n, g.cp)
      rate_sum, rated = rate_sum + g.cp / n, rated + 1
    end
    failed = failed + g.cf
  end
  self.input_no = self.input_no + 1
  row.grades, row.grade_names, row.grade_rate = grades, names, rated > 0 and rate_sum / rated or nil
  if #names == 0 then return end
  self.touched = {}
  self.inputs = self.inputs + 1
  local worst, rate = self.worst, row.grade_rate or 2
  local last = worst[#worst]
  if #worst >= M.MAX_ROWS and rate > (last.rate or 2) then return end -- not among the worst: nothing made
  require("fluxloop.analysis").keep(worst, M.MAX_ROWS, { key = row.key, persona = row.persona, grades = grades,
    names = names, rate = row.grade_rate, failed = failed }, worse)
end

-- The reason (or error) of the score line at offset.
function Acc:reason_at(offset, field)
  local line = jsonlread.line_at(self.path, offset)
  local ok, v = pcall(json.decode, line or "")
  if not ok or type(v) ~= "table" or type(v[field]) ~= "string" then return nil end
  return v[field]
end

-- One grader's overall figures: counts, pass rate (errors left out) with its Wilson interval,
-- mean score, pass^k, and the examples with their reasons.
function Acc:figures(g)
  local n = g.passed + g.failed
  local lo, hi = statistics.wilson(g.passed, n)
  local hat = {}
  for k = 1, #g.hat_sum do hat[k] = g.hat_sum[k] / g.hat_inputs[k] end
  for _, e in ipairs(g.fails) do e.reason = self:reason_at(e.offset, "reason") or "(no reason given)" end
  for _, e in ipairs(g.error_examples) do e.reason = self:reason_at(e.offset, "error") or "(no error recorded)" end
  return { name = g.name, graded = g.graded, passed = g.passed, failed = g.failed, errors = g.errors,
    pass_rate = n > 0 and g.passed / n or nil, lo = n > 0 and lo or nil, hi = n > 0 and hi or nil,
    mean_score = g.scored > 0 and g.score_sum / g.scored or nil, pass_hat_k = hat, fails = g.fails,
    error_examples = g.error_examples }
end

-- result(an): an.grades = { graders (in the order they came), worst (rows, worst first), inputs
-- (inputs graded), runs, ungraded (runs without a grade), unmatched (lines of no trace read),
-- damaged, damage_lines } | nil when scores.jsonl has no grade.
function Acc:result(an)
  local list = {}
  for i, g in ipairs(self.graders) do list[i] = self:figures(g) end
  local damaged, dl = self.r:damaged()
  local lines = {}
  for _, d in ipairs(dl) do lines[#lines + 1] = ("%s:%d: damaged line skipped (%s)"):format(M.FILE, d.line, d.reason) end
  -- lines after the last trace read were never matched
  while self.pending or self:read() do
    self.unmatched, self.pending = self.unmatched + 1, false
  end
  self:close()
  if #list == 0 and damaged == 0 then return end
  an.grades = { graders = list, worst = self.worst, inputs = self.inputs, runs = self.runs, ungraded = self.ungraded,
    unmatched = self.unmatched, damaged = damaged, damage_lines = lines }
end

function Acc:close()
  if not self.closed then
    self.r:close()
    self.closed = true
  end
end

return M
