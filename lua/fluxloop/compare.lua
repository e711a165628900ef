-- compare.lua - `fluxloop compare BASE NEW`: per input and overall, did the success rate, latency or
-- consistency change? Fisher's exact test, Mann-Whitney U, Holm's correction across inputs.
local analysis = require("fluxloop.analysis")
local results = require("fluxloop.results")
local statistics = require("fluxloop.statistics")
local util = require("fluxloop.util")

local M = {}

-- A latency change is a finding only when it is also large enough to matter: timing noise on a
-- busy machine is significant at thousands of runs, but not worth a failed CI job.
M.MIN_LATENCY_RATIO = 0.10
M.MIN_LATENCY_MS = 0.5
M.MAX_LISTED = 100 -- inputs of one run only, listed by name

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

-- Holm's step-down adjustment of the p-values at list[i][field], in place (field .. "_adj").
local function holm(list, field)
  local order = {}
  for i, row in ipairs(list) do if row[field] then order[#order + 1] = i end end
  table.sort(order, function(a, b) return list[a][field] < list[b][field] end)
  local m, running = #order, 0
  for rank, i in ipairs(order) do
    local adj = math.min(1, (m - rank + 1) * list[i][field])
    if adj < running then adj = running end
    running = adj
    list[i][field .. "_adj"] = adj
  end
end

local function compare_groups(b, n)
  local row = { key = n.key, base = b, new = n }
  row.p_success = statistics.fisher(b.ok, b.n - b.ok, n.ok, n.n - n.ok)
  row.d_success = n.ok / n.n - b.ok / b.n
  if b.set and n.set then -- two views of C aggregates (fluxloop.analysis)
    row.p_latency = b.set:mannwhitney(b.id, n.set, n.id).p
  else
    row.p_latency = statistics.mannwhitney(b.sample, n.sample).p
  end
  row.base_p50, row.new_p50 = b.sample:percentile(50), n.sample:percentile(50)
  if b.ok > 0 and n.ok > 0 and b.top and n.top and not b.saturated and not n.saturated then
    local tb, tn = b.top, n.top
    row.p_consistency = statistics.fisher(tb, b.ok - tb, tn, n.ok - tn)
    row.base_share, row.new_share = tb / b.ok, tn / n.ok
  end
  return row
end

-- Which way each significant change goes: -1 worse, 1 better, nil not significant.
local function judge(row, alpha)
  local v = {}
  if (row.p_success_adj or row.p_success) < alpha and row.d_success ~= 0 then
    v.success = row.d_success < 0 and -1 or 1
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
  row.verdict_text = #words > 0 and table.concat(words, ", ") or "no change"
end

-- diff(base, new, alpha) -> { rows (inputs in both, in NEW's order), overall, only_base, only_new,
-- regressions } | nil, message. base and new are fluxloop.analysis results.
function M.diff(base, new, alpha)
  local rows, only_base, only_new = {}, {}, {}
  for _, g in ipairs(new.inputs) do
    local b = base.by_input[g.key]
    if b then rows[#rows + 1] = compare_groups(b, g) else only_new[#only_new + 1] = g.key end
  end
  for _, g in ipairs(base.inputs) do
    if not new.by_input[g.key] then only_base[#only_base + 1] = g.key end
  end
  if #rows == 0 then
    return nil, ("the two experiments have no input in common (%d inputs in BASE, %d in NEW): compare runs of "
      .. "the same inputs file"):format(#base.inputs, #new.inputs)
  end
  holm(rows, "p_success")
  holm(rows, "p_latency")
  holm(rows, "p_consistency")
  local regressions = 0
  for _, row in ipairs(rows) do
    judge(row, alpha)
    if row.regression then regressions = regressions + 1 end
  end
  local overall = compare_groups({ key = "(overall)", n = base.total, ok = base.ok, sample = base.sample, outputs = {} },
    { key = "(overall)", n = new.total, ok = new.ok, sample = new.sample, outputs = {} })
  overall.p_consistency, overall.base_share, overall.new_share = nil, nil, nil
  judge(overall, alpha)
  if overall.regression then regressions = regressions + 1 end
  return { rows = rows, overall = overall, only_base = only_base, only_new = only_new, regressions = regressions,
    alpha = alpha }
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

-- text(d, base_name, new_name) -> the table, at most 100 columns wide.
function M.text(d, base_name, new_name)
  local out = {}
  out[#out + 1] = ("BASE %s\nNEW  %s"):format(base_name, new_name)
  out[#out + 1] = ("alpha %.3g; p Holm-adjusted over %d inputs; latency changes < %d%% or < %.1f ms not flagged")
    :format(d.alpha, #d.rows, M.MIN_LATENCY_RATIO * 100, M.MIN_LATENCY_MS)
  out[#out + 1] = ""
  out[#out + 1] = table.concat({ pad("input", 24), lpad("success", 10), lpad("p", 7), lpad("p50 ms", 15), lpad("p", 7),
    lpad("same out", 10), " verdict" }, " ")
  out[#out + 1] = string.rep("-", 99)
  for _, row in ipairs(d.rows) do out[#out + 1] = table_line(row) end
  out[#out + 1] = string.rep("-", 99)
  out[#out + 1] = table_line(d.overall)
  if #d.only_base > 0 or #d.only_new > 0 then
    out[#out + 1] = ""
    for _, side in ipairs({ { d.only_base, "only in BASE: " }, { d.only_new, "only in NEW:  " } }) do
      for i, k in ipairs(side[1]) do
        if i > M.MAX_LISTED then
          out[#out + 1] = ("%s... and %d more"):format(side[2], #side[1] - M.MAX_LISTED)
          break
        end
        out[#out + 1] = side[2] .. cut(k, 84)
      end
    end
  end
  out[#out + 1] = ""
  out[#out + 1] = d.regressions > 0 and ("%d significant regression%s (marked !)"):format(d.regressions,
    d.regressions == 1 and "" or "s") or "no significant regression"
  return table.concat(out, "\n") .. "\n"
end

-- load(path, display) -> analysis | nil, message (an experiment folder, read and summed up).
function M.load(path, display)
  local exp, err = results.open(path, display)
  if not exp then return nil, err end
  local an, aerr = analysis.run(exp, { personas = false })
  if not an then return nil, aerr end
  for _, line in ipairs(an.damage_lines) do say("fluxloop: warning: ", line) end
  local note = exp:note(an.total)
  if note then say("fluxloop: note: ", display, ": ", note) end
  an.exp = exp
  return an
end

-- main(flags) -> exit status. flags: base, new, alpha, fail_on.
function M.main(flags)
  local cwd = util.getcwd()
  local base, berr = M.load(util.abspath(flags.base, cwd), flags.base)
  if not base then say("fluxloop: error: ", berr) return 2 end
  local new, nerr = M.load(util.abspath(flags.new, cwd), flags.new)
  if not new then say("fluxloop: error: ", nerr) return 2 end
  local d, derr = M.diff(base, new, flags.alpha or 0.05)
  if not d then say("fluxloop: error: ", derr) return 2 end
  io.stdout:write(M.text(d, flags.base, flags.new))
  if #d.only_base > 0 or #d.only_new > 0 then
    say(("fluxloop: warning: the experiments' inputs differ: %d only in BASE, %d only in NEW (listed, not compared)")
      :format(#d.only_base, #d.only_new))
  end
  if flags.fail_on == "regression" and d.regressions > 0 then return 1 end
  return 0
end

return M
