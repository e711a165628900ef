-- compare.lua - `fluxloop compare BASE NEW`: per input and overall, did the success rate, latency,
-- consistency or a grader's pass rate change? Fisher's exact test, Mann-Whitney U, Holm's
-- correction across inputs, Cochran-Mantel-Haenszel for grades overall (fluxloop.compare.grades);
-- a drop too small for the runs to tell is said to be one, with the runs it would take.
local analysis = require("fluxloop.analysis")
local grades = require("fluxloop.compare.grades")
local results = require("fluxloop.results")
local statistics = require("fluxloop.statistics")
local util = require("fluxloop.util")

local M = {}

-- A latency change is a finding only when it is also large enough to matter: timing noise on a
-- busy machine is significant at thousands of runs, but not worth a failed CI job.
M.MIN_LATENCY_RATIO = 0.10
M.MIN_LATENCY_MS = 0.5
M.MAX_LISTED = 100 -- inputs of one run only, listed by name
M.POWER = 0.8      -- the power "about N iterations would" is computed at

-- too_few(p_base, p_new, runs, alpha [, per]) -> iterations | nil. When a rate dropped and the
-- test did not find it, the runs a side that would (fluxloop.statistics.two_prop_n: the normal
-- approximation at the observed rates, alpha two-sided, 80% power) in iterations: runs / per
-- (per = the inputs, for a figure over all of them), rounded up. nil when there is no drop, or
-- when the runs there are already that many (the test had its chance).
function M.too_few(p_base, p_new, runs, alpha, per)
  if p_new >= p_base then return nil end
  local n = statistics.two_prop_n(p_base, p_new, alpha, M.POWER)
  if not n or n <= runs then return nil end
  return math.ceil(n / (per or 1))
end

function M.too_few_text(iterations)
  if iterations > 999999 then return "too few runs to tell; about 999999+ iterations would" end
  return ("too few runs to tell; about %d iterations would"):format(iterations)
end

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

local TESTS = { "p_success", "p_latency", "p_consistency" } -- Holm-adjusted across inputs, each apart

-- compare_groups(b, n) -> the row of one input (or the overall figures): b and n have key, n, ok,
-- sample (durations), and top and saturated (the most common output's count).
local function compare_groups(b, n)
  local row = { key = n.key, base = b, new = n }
  row.p_success = statistics.fisher(b.ok, b.n - b.ok, n.ok, n.n - n.ok)
  row.d_success = n.ok / n.n - b.ok / b.n
  row.p_latency = statistics.mannwhitney(b.sample, n.sample).p
  row.base_p50, row.new_p50 = b.sample:percentile(50), n.sample:percentile(50)
  if b.ok > 0 and n.ok > 0 and b.top and n.top and not b.saturated and not n.saturated then
    local tb, tn = b.top, n.top
    row.p_consistency = statistics.fisher(tb, b.ok - tb, tn, n.ok - tn)
    row.base_share, row.new_share = tb / b.ok, tn / n.ok
  end
  return row
end
M.compare_groups = compare_groups

-- Holm's adjustment of each test's p-values over the rows (row[test .. "_adj"]), in place.
local function holm(rows)
  for _, field in ipairs(TESTS) do
    local pv = statistics.pvalues()
    for _, row in ipairs(rows) do pv:add(row[field]) end
    pv:holm()
    for i, row in ipairs(rows) do row[field .. "_adj"] = pv:get(i) end
  end
end

-- Which way each significant change goes: -1 worse, 1 better, nil not significant. A drop in
-- success the test did not find sets row.too_few (see M.too_few: its alpha is power_alpha, its
-- iterations runs / per).
local function judge(row, alpha, power_alpha, per)
  local v = {}
  if (row.p_success_adj or row.p_success) < alpha and row.d_success ~= 0 then
    v.success = row.d_success < 0 and -1 or 1
  else
    local b, n = row.base, row.new
    row.too_few = M.too_few(b.ok / b.n, n.ok / n.n, math.min(b.n, n.n), power_alpha or alpha, per)
  end
  local d = row.new_p50 - row.base_p50
  local big = math.abs(d) >= M.MIN_LATENCY_MS and math.abs(d) >= M.MIN_LATENCY_RATIO * math.max(row.base_p50, 1e-9)
  if (row.p_latency_adj or row.p_latency) < alpha and big then v.latency = d > 0 and -1 or 1 end
  if row.p_consistency and (row.p_consistency_adj or row.p_consistency) < alpha and row.new_share ~= row.base_share then
    v.consistency = row.new_share < row.base_share and -1 or 1
  end
  row.regression = v.success == -1 or v.latency == -1 or v.consistency == -1
  row.improvement = v.success == 1 or v.latency == 1 or v.consistency == 1
  local words = {}
  local names = { success = { "fails more", "fails less" }, latency = { "slower", "faster" },
    consistency = { "less consistent", "more consistent" } }
  for _, k in ipairs({ "success", "latency", "consistency" }) do
    if v[k] then words[#words + 1] = names[k][v[k] == -1 and 1 or 2] end
  end
  if row.too_few then words[#words + 1] = "too few runs" end
  row.verdict_text = #words > 0 and table.concat(words, ", ") or "no change"
end

-- The overall row; inputs: those compared (what "iterations" divides the runs by).
local function overall_row(base, new, alpha, inputs)
  local overall = compare_groups({ key = "(overall)", n = base.total, ok = base.ok, sample = base.sample },
    { key = "(overall)", n = new.total, ok = new.ok, sample = new.sample })
  judge(overall, alpha, alpha, math.max(inputs, 1))
  return overall
end

-- Grade rows of a pair judged (row.grades), counted in d.regressions and d.grade_drops.
local function grade_rows(d, gs, row, b, n, i, alpha, m)
  row.grades = gs:rows(b, n, i, alpha, m)
  for _, r in ipairs(row.grades) do
    if r.regression then
      row.grade_regression = true
      d.regressions = d.regressions + 1
      d.grade_drops[r.name] = (d.grade_drops[r.name] or 0) + 1
    end
  end
end

-- The overall grade rows (d.grades), after the first pass.
local function grade_overall(d, gs, alpha)
  gs:holm()
  d.grades = gs:overall(alpha)
  for _, r in ipairs(d.grades.rows) do
    if r.regression then
      d.regressions = d.regressions + 1
      d.grade_drops[r.name] = (d.grade_drops[r.name] or 0) + 1
      d.grade_overall_drops[#d.grade_overall_drops + 1] = r.name
    end
  end
end

local function no_common(nb, nn)
  return ("the two experiments have no input in common (%d inputs in BASE, %d in NEW): compare runs of "
    .. "the same inputs file"):format(nb, nn)
end

-- diff(base, new, alpha) -> { rows (inputs in both, in NEW's order), count, overall, only_base,
-- only_new, regressions, grades (overall grade rows, fluxloop.compare.grades), grade_drops
-- (grader -> significant drops) } | nil, message. base and new are aggregates held in memory:
-- { total, ok, sample, inputs = { {key, n, ok, sample, top, saturated [, grades, grade_names]},
-- ... }, by_input = key -> input }. A row's grades: its grader rows.
function M.diff(base, new, alpha)
  local rows, only_base, only_new = {}, {}, {}
  for _, g in ipairs(new.inputs) do
    local b = base.by_input[g.key]
    if b then rows[#rows + 1] = compare_groups(b, g) else only_new[#only_new + 1] = g.key end
  end
  for _, g in ipairs(base.inputs) do
    if not new.by_input[g.key] then only_base[#only_base + 1] = g.key end
  end
  if #rows == 0 then return nil, no_common(#base.inputs, #new.inputs) end
  holm(rows)
  local d = { rows = rows, count = #rows, only_base = only_base, only_new = only_new, only_base_count = #only_base,
    only_new_count = #only_new, regressions = 0, alpha = alpha, grade_drops = {}, grade_overall_drops = {} }
  local gs = grades.new()
  for i, row in ipairs(rows) do gs:first(row.base, row.new, i) end
  grade_overall(d, gs, alpha)
  for i, row in ipairs(rows) do
    judge(row, alpha, alpha / #rows, 1)
    if row.regression then d.regressions = d.regressions + 1 end
    grade_rows(d, gs, row, row.base, row.new, i, alpha, #rows)
  end
  d.overall = overall_row(base, new, alpha, #rows)
  if d.overall.regression then d.regressions = d.regressions + 1 end
  return d
end

-- A held input (matched out of step) keeps a copy of its durations: the walker reuses its own.
local function held(row)
  local copy = {}
  for k, v in pairs(row) do copy[k] = v end
  copy.sample = statistics.merge({ row.sample })
  return copy
end

-- in_step(wb, wn, pair, only) -> true | nil, message: walks two walkers (fluxloop.analysis) input by
-- input and calls pair(b, n) for each input both have, only(side, row) for the others. Runs of
-- the same inputs file are in the same order, so nothing is held; an input found out of step
-- is held until its match comes (or the end: then it is of one side only).
local function in_step(wb, wn, pair, only)
  local hb, hn, err = {}, {}, nil
  local function nextb() local g, e = wb:next_input() err = err or e return g end
  local function nextn() local g, e = wn:next_input() err = err or e return g end
  local gb, gn = nextb(), nextn()
  while gb or gn do
    if gb and gn and gb.key == gn.key then
      pair(gb, gn)
      gb, gn = nextb(), nextn()
    elseif gn and hb[gn.key] then
      pair(hb[gn.key], gn)
      hb[gn.key] = nil
      gn = nextn()
    elseif gb and hn[gb.key] then
      pair(gb, hn[gb.key])
      hn[gb.key] = nil
      gb = nextb()
    elseif gb and gn then
      hb[gb.key], hn[gn.key] = held(gb), held(gn)
      gb, gn = nextb(), nextn()
    elseif gb then
      only("base", gb)
      gb = nextb()
    else
      only("new", gn)
      gn = nextn()
    end
  end
  if err then return nil, err end
  for _, side in ipairs({ { "base", hb }, { "new", hn } }) do
    local list = {}
    for _, g in pairs(side[2]) do list[#list + 1] = g end
    table.sort(list, function(a, b) return a.seen < b.seen end)
    for _, g in ipairs(list) do only(side[1], g) end
  end
  return true
end

local function walkers(base_exp, new_exp)
  local wb, err = analysis.walker(base_exp, { personas = false })
  if not wb then return nil, err end
  local wn, nerr = analysis.walker(new_exp, { personas = false })
  if not wn then wb:close() return nil, nerr end
  return wb, wn
end

-- stream(base_exp, new_exp, alpha, out) -> d | nil, message: diff of two experiment folders
-- (fluxloop.results) read in step, twice: the first pass gathers each input's p-values (8
-- bytes a test) for Holm's correction, the second hands out each row, adjusted and judged,
-- through out.row(row, d) in NEW's order (out.header(d) first). d = { count, overall, only_base,
-- only_new (the first MAX_LISTED_KEYS names), only_base_count, only_new_count, regressions,
-- grades, grade_drops, alpha, base, new (the walkers' analyses) }; rows are never all in memory.
M.MAX_LISTED_KEYS = 500
function M.stream(base_exp, new_exp, alpha, out)
  local wb, wn = walkers(base_exp, new_exp)
  if not wb then return nil, wn end
  local pv, count = {}, 0
  for _, f in ipairs(TESTS) do pv[f] = statistics.pvalues() end
  local d = { only_base = {}, only_new = {}, only_base_count = 0, only_new_count = 0, alpha = alpha, regressions = 0,
    grade_drops = {}, grade_overall_drops = {} }
  local gs = grades.new()
  local ok, err = in_step(wb, wn, function(b, n)
    local row = compare_groups(b, n)
    count = count + 1
    for _, f in ipairs(TESTS) do pv[f]:add(row[f]) end
    gs:first(b, n, count)
  end, function(side, g)
    d["only_" .. side .. "_count"] = d["only_" .. side .. "_count"] + 1
    local list = d["only_" .. side]
    if #list < M.MAX_LISTED_KEYS then list[#list + 1] = g.key end
  end)
  local base, berr = wb:finish()
  local new, nerr = wn:finish()
  if not ok then return nil, err end
  if not base or not new then return nil, berr or nerr end
  d.base, d.new, d.count = base, new, count
  if count == 0 then return nil, no_common(wb.inputs, wn.inputs) end
  for _, f in ipairs(TESTS) do pv[f]:holm() end
  d.overall = overall_row(base, new, alpha, count)
  grade_overall(d, gs, alpha)
  if out.header then out.header(d) end
  wb, wn = walkers(base_exp, new_exp)
  if not wb then return nil, wn end
  -- Rows go out in NEW's order: one matched out of step waits for those before it (a few, when
  -- the inputs are in the same order; p-values are indexed in the order of matching).
  local i, waiting, next_seen = 0, {}, 1
  local function settle(seen, row)
    waiting[seen] = row or false
    while waiting[next_seen] ~= nil do
      local r = waiting[next_seen]
      waiting[next_seen], next_seen = nil, next_seen + 1
      if r then out.row(r, d) end
    end
  end
  ok, err = in_step(wb, wn, function(b, n)
    i = i + 1
    local row = compare_groups(b, n)
    for _, f in ipairs(TESTS) do row[f .. "_adj"] = pv[f]:get(i) end
    judge(row, alpha, alpha / count, 1)
    if row.regression then d.regressions = d.regressions + 1 end
    grade_rows(d, gs, row, b, n, i, alpha, count)
    b.sample, n.sample = nil, nil -- reused by the walkers
    settle(n.seen, row)
  end, function(side, g) if side == "new" then settle(g.seen) end end)
  wb:close()
  wn:close()
  if not ok then return nil, err end
  if d.overall.regression then d.regressions = d.regressions + 1 end
  return d
end

-- Formatting shared by the table and the report.
function M.pct(x) return x and ("%d%%"):format(math.floor(x * 100 + 0.5)) or "-" end
function M.pval(p)
  if p == nil then return "-" end
  if p < 0.0001 then return "<.0001" end
  return ("%.4f"):format(p):gsub("^0", "")
end
function M.ms(x)
  if x == nil then return "-" end
  if x >= 100 then return ("%.0f"):format(x) elseif x >= 1 then return ("%.1f"):format(x) end
  return ("%.3f"):format(x)
end

local function cut(s, n)
  s = tostring(s):gsub("%s+", " ")
  if utf8.len(s) and utf8.len(s) > n then return s:sub(1, utf8.offset(s, n) - 1) .. "~" end
  return s
end

local function pad(s, n)
  local len = utf8.len(s) or #s
  return s .. string.rep(" ", math.max(0, n - len))
end

local function lpad(s, n)
  local len = utf8.len(s) or #s
  return string.rep(" ", math.max(0, n - len)) .. s
end

local function table_line(row)
  local b, n = row.base, row.new
  return table.concat({
    pad(cut(row.key, 24), 24),
    lpad(M.pct(b.ok / b.n) .. ">" .. M.pct(n.ok / n.n), 10),
    lpad(M.pval(row.p_success_adj or row.p_success), 7),
    lpad(M.ms(row.base_p50) .. ">" .. M.ms(row.new_p50), 15),
    lpad(M.pval(row.p_latency_adj or row.p_latency), 7),
    lpad(row.base_share and (M.pct(row.base_share) .. ">" .. M.pct(row.new_share)) or "-", 10),
    " " .. (row.regression and "! " or "") .. row.verdict_text,
  }, " ")
end

local function grade_line(r)
  return table.concat({
    pad("  grade " .. cut(r.name, 16), 24),
    lpad(M.pct(r.base_rate) .. ">" .. M.pct(r.new_rate), 10),
    lpad(M.pval(r.p_adj), 7),
    " " .. (r.regression and "! " or "") .. r.verdict_text,
  }, " ")
end

M.grade_line = grade_line

-- An input's line, the runs a drop in success would take, and a line per grader.
local function row_lines(row)
  local out = { table_line(row) }
  if row.too_few then out[#out + 1] = "  success: " .. M.too_few_text(row.too_few) end
  for _, r in ipairs(row.grades or {}) do out[#out + 1] = grade_line(r) end
  return table.concat(out, "\n")
end

-- "short (overall), picky (2 inputs)": the graders with a significant drop.
local function dropped(d)
  local names, overall = {}, {}
  for _, name in ipairs(d.grade_overall_drops or {}) do overall[name] = true end
  for name, count in pairs(d.grade_drops or {}) do
    local per_input = count - (overall[name] and 1 or 0)
    local what = {}
    if overall[name] then what[#what + 1] = "overall" end
    if per_input > 0 then what[#what + 1] = ("%d input%s"):format(per_input, per_input == 1 and "" or "s") end
    names[#names + 1] = ("%s (%s)"):format(name, table.concat(what, ", "))
  end
  table.sort(names)
  return names
end
M.dropped = dropped

local function grades_footer(out, g)
  if not g or #g.rows + #g.only_base + #g.only_new + #g.unpaired == 0 then return end
  out[#out + 1] = ""
  out[#out + 1] = "grades overall: Cochran-Mantel-Haenszel test, stratified by input (grader errors left out)"
  for _, r in ipairs(g.rows) do out[#out + 1] = grade_line(r) end
  for _, side in ipairs({ { g.only_base, "only in BASE" }, { g.only_new, "only in NEW" },
    { g.unpaired, "in both, never on the same input" } }) do
    for _, name in ipairs(side[1]) do out[#out + 1] = ("  grade %s: %s, not compared"):format(cut(name, 40), side[2]) end
  end
end

local function text_header(d, base_name, new_name)
  local out = {}
  out[#out + 1] = ("BASE %s\nNEW  %s"):format(base_name, new_name)
  out[#out + 1] = ("alpha %.3g; p Holm-adjusted over %d inputs; latency changes < %d%% or < %.1f ms not flagged")
    :format(d.alpha, d.count, M.MIN_LATENCY_RATIO * 100, M.MIN_LATENCY_MS)
  out[#out + 1] = ""
  out[#out + 1] = table.concat({ pad("input", 24), lpad("success", 10), lpad("p", 7), lpad("p50 ms", 15), lpad("p", 7),
    lpad("same out", 10), " verdict" }, " ")
  out[#out + 1] = string.rep("-", 99)
  return table.concat(out, "\n") .. "\n"
end

local function text_footer(d)
  local out = {}
  out[#out + 1] = string.rep("-", 99)
  out[#out + 1] = row_lines(d.overall)
  grades_footer(out, d.grades)
  if d.only_base_count > 0 or d.only_new_count > 0 then
    out[#out + 1] = ""
    for _, side in ipairs({ { d.only_base, d.only_base_count, "only in BASE: " }, { d.only_new, d.only_new_count,
      "only in NEW:  " } }) do
      for i, k in ipairs(side[1]) do
        if i > M.MAX_LISTED then break end
        out[#out + 1] = side[3] .. cut(k, 84)
      end
      if side[2] > M.MAX_LISTED then out[#out + 1] = ("%s... and %d more"):format(side[3], side[2] - M.MAX_LISTED) end
    end
  end
  out[#out + 1] = ""
  out[#out + 1] = d.regressions > 0 and ("%d significant regression%s (marked !)"):format(d.regressions,
    d.regressions == 1 and "" or "s") or "no significant regression"
  local names = dropped(d)
  if #names > 0 then out[#out + 1] = "graders that pass less: " .. table.concat(names, ", ") end
  return table.concat(out, "\n") .. "\n"
end

-- text(d, base_name, new_name) -> the table, at most 100 columns wide (d from diff).
function M.text(d, base_name, new_name)
  local out = { text_header(d, base_name, new_name) }
  for _, row in ipairs(d.rows) do out[#out + 1] = row_lines(row) .. "\n" end
  out[#out + 1] = text_footer(d)
  return table.concat(out)
end

-- open(path, display) -> an experiment folder (fluxloop.results) | nil, message.
function M.open(path, display)
  return results.open(path, display)
end

-- say_state(exp, an, display): the warnings and the note of one side, once.
function M.say_state(exp, an, display)
  for _, line in ipairs(an.damage_lines) do say("fluxloop: warning: ", line) end
  local note = exp:note(an.total)
  if note then say("fluxloop: note: ", display, ": ", note) end
end

-- main(flags) -> exit status. flags: base, new, alpha, fail_on.
function M.main(flags)
  local cwd = util.getcwd()
  local base, berr = results.open(util.abspath(flags.base, cwd), flags.base)
  if not base then say("fluxloop: error: ", berr) return 2 end
  local new, nerr = results.open(util.abspath(flags.new, cwd), flags.new)
  if not new then say("fluxloop: error: ", nerr) return 2 end
  local stdout = io.stdout
  stdout:setvbuf("full", 1 << 16)
  local d, derr = M.stream(base, new, flags.alpha or 0.05, {
    header = function(d)
      M.say_state(base, d.base, flags.base)
      M.say_state(new, d.new, flags.new)
      stdout:write(text_header(d, flags.base, flags.new))
    end,
    row = function(row) stdout:write(row_lines(row), "\n") end,
  })
  if not d then say("fluxloop: error: ", derr) return 2 end
  stdout:write(text_footer(d))
  stdout:flush()
  if d.only_base_count > 0 or d.only_new_count > 0 then
    say(("fluxloop: warning: the experiments' inputs differ: %d only in BASE, %d only in NEW (listed, not compared)")
      :format(d.only_base_count, d.only_new_count))
  end
  if flags.fail_on == "regression" and d.regressions > 0 then
    local names = dropped(d)
    say(("fluxloop: --fail-on regression: %d significant regression%s%s"):format(d.regressions,
      d.regressions == 1 and "" or "s", #names > 0 and ("; graders that pass less: " .. table.concat(names, ", ")) or ""))
    return 1
  end
  return 0
end

return M
