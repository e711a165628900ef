-- compare/grades.lua - `compare` of grades: each grader per input (Fisher's exact test on passes
-- and fails, Holm-adjusted across inputs, grader by grader) and overall, stratified by input
-- (the Cochran-Mantel-Haenszel test: a 2x2 table per input, BASE/NEW x pass/fail), so a change
-- in which inputs were run cannot pass for a change in the agent. Grader errors are left out,
-- as in the pass rate. Fed the rows of two fluxloop.analysis walkers (row.grades, see
-- fluxloop.grades) in two passes: the first gathers p-values and strata, the second judges.
local statistics = require("fluxloop.statistics")

local M = {}

local compare -- fluxloop.compare (which requires this module): its too_few rule, found once
local function rule()
  compare = compare or require("fluxloop.compare")
  return compare
end

local State = {}
State.__index = State

-- new() -> the state of one comparison.
function M.new()
  return setmetatable({ graders = {}, order = {} }, State)
end

function State:grader(name)
  local g = self.graders[name]
  if g then return g end
  g = { name = name, pv = statistics.pvalues(), strata = statistics.strata(), bp = 0, bf = 0, np = 0, nf = 0,
    inputs = 0, in_base = false, in_new = false }
  self.graders[name], self.order[#self.order + 1] = g, g
  return g
end

-- The graders of one input on both sides, in the order they came (BASE's, then NEW's own).
local function names_of(b, n)
  local out, seen = {}, {}
  for _, row in ipairs({ b, n }) do
    for _, name in ipairs(row.grade_names or {}) do
      if not seen[name] then seen[name], out[#out + 1] = true, name end
    end
  end
  return out
end

-- Counts of one side: passed, failed (grades given) | nil when that side has none.
local function counts(row, name)
  local c = row.grades and row.grades[name]
  if not c or c.passed + c.failed == 0 then return nil end
  return c.passed, c.failed
end

-- first(b, n, i): the i-th pair of inputs (the order of matching), first pass.
function State:first(b, n, i)
  for _, name in ipairs(names_of(b, n)) do
    local g = self:grader(name)
    local bp, bf = counts(b, name)
    local np, nf = counts(n, name)
    g.in_base, g.in_new = g.in_base or bp ~= nil, g.in_new or np ~= nil
    while g.pv:count() < i - 1 do g.pv:add(nil) end
    if bp and np then
      g.pv:add(statistics.fisher(bp, bf, np, nf))
      g.strata:add(bp, bf, np, nf)
      g.bp, g.bf, g.np, g.nf, g.inputs = g.bp + bp, g.bf + bf, g.np + np, g.nf + nf, g.inputs + 1
    else
      g.pv:add(nil)
    end
  end
end

-- holm(): the p-values of each grader adjusted across inputs (after the first pass).
function State:holm()
  for _, g in ipairs(self.order) do g.pv:holm() end
end

-- judge(r, p, alpha, runs, power_alpha, per): r.regression / r.improvement / r.too_few and
-- r.verdict_text of a grader row with rates r.base_rate and r.new_rate.
local function judge(r, p, alpha, runs, power_alpha, per)
  local d = r.new_rate - r.base_rate
  if p and p < alpha and d ~= 0 then
    r.regression, r.improvement = d < 0, d > 0
    r.verdict_text = d < 0 and "passes less" or "passes more"
    return
  end
  r.regression, r.improvement = false, false
  r.too_few = rule().too_few(r.base_rate, r.new_rate, runs, power_alpha, per)
  r.verdict_text = r.too_few and rule().too_few_text(r.too_few) or "no change"
end

-- rows(b, n, i, alpha, m) -> the grader rows of the i-th pair: { name, base = {passed, failed},
-- new = {...}, base_rate, new_rate, p, p_adj, verdict }, judged at alpha (Holm-adjusted over
-- the inputs; the runs it would take, at alpha / m, m the inputs compared).
function State:rows(b, n, i, alpha, m)
  local out = {}
  for _, name in ipairs(names_of(b, n)) do
    local bp, bf = counts(b, name)
    local np, nf = counts(n, name)
    local g = self.graders[name]
    if bp and np and g then
      local r = { name = name, base = { passed = bp, failed = bf }, new = { passed = np, failed = nf },
        base_rate = bp / (bp + bf), new_rate = np / (np + nf), p = statistics.fisher(bp, bf, np, nf) }
      r.p_adj = i <= g.pv:count() and g.pv:get(i) or r.p
      judge(r, r.p_adj, alpha, math.min(bp + bf, np + nf), alpha / math.max(m, 1), 1)
      out[#out + 1] = r
    end
  end
  return out
end

-- overall(alpha) -> { rows (a row per grader graded on both sides of an input: the CMH test,
-- rates pooled over those inputs), only_base, only_new (graders of one side only), unpaired
-- (graders of both, never on the same input) }.
function State:overall(alpha)
  local rows, only_base, only_new, unpaired = {}, {}, {}, {}
  for _, g in ipairs(self.order) do
    if g.inputs > 0 then
      local t = g.strata:cmh()
      local r = { name = g.name, base = { passed = g.bp, failed = g.bf }, new = { passed = g.np, failed = g.nf },
        base_rate = g.bp / (g.bp + g.bf), new_rate = g.np / (g.np + g.nf), p = t.p, chi2 = t.chi2,
        odds_ratio = t.odds_ratio, inputs = g.inputs }
      r.p_adj = r.p
      if t.p < alpha and t.observed ~= t.expected then
        -- the direction the stratified test saw decides (BASE passed more than equal rates give)
        local worse = t.observed > t.expected
        r.regression, r.improvement = worse, not worse
        r.verdict_text = worse and "passes less" or "passes more"
      else
        judge(r, nil, alpha, math.min(g.bp + g.bf, g.np + g.nf), alpha, g.inputs)
      end
      rows[#rows + 1] = r
    elseif not g.in_new then
      only_base[#only_base + 1] = g.name
    elseif not g.in_base then
      only_new[#only_new + 1] = g.name
    else
      unpaired[#unpaired + 1] = g.name
    end
  end
  return { rows = rows, only_base = only_base, only_new = only_new, unpaired = unpaired }
end

return M
