-- grade/summary.lua - what summary.json and the closing lines say about grades: per grader
-- the counts, the pass rate with its 95% Wilson interval, the mean score, and pass^k; and
-- which graders fell under their threshold (the command then exits 1).
local M = {}

-- Rates and scores keep 6 decimals in summary.json: enough, and no binary noise.
local function r6(x) return math.floor(x * 1e6 + 0.5) / 1e6 end

-- scores(figures, specs) -> summary.scores: { [grader] = { graded, passed, failed, errors,
-- pass_rate, pass_rate_ci95, mean_score, threshold, pass_hat_k = { ["1"] = share, ... } } }.
-- figures: a recorder's grades() or gradestats' figures(); specs give thresholds by name.
-- pass_rate and its interval count the grades that were given (errors left out).
function M.scores(figures, specs)
  local wilson = require("fluxloop.statistics").wilson
  local thresholds = {}
  for _, s in ipairs(specs or {}) do thresholds[s.name] = s.threshold end
  local out = {}
  for _, f in ipairs(figures or {}) do
    local n = f.passed + f.failed
    local lo, hi = wilson(f.passed, n)
    local hat = {}
    for k, v in ipairs(f.pass_hat_k or {}) do hat[tostring(k)] = r6(v) end
    out[f.name] = {
      graded = f.graded, passed = f.passed, failed = f.failed, errors = f.errors,
      pass_rate = n > 0 and r6(f.passed / n) or nil,
      pass_rate_ci95 = n > 0 and require("fluxloop.json").array({ r6(lo), r6(hi) }) or nil,
      mean_score = f.scored > 0 and r6(f.score_sum / f.scored) or nil,
      threshold = thresholds[f.name],
      pass_hat_k = hat,
    }
  end
  return out
end

-- read(dir, iterations, grading) -> summary.scores of a folder's whole scores.jsonl (after a
-- resume or a merge joined its lines), or nil when it has none.
function M.read(dir, iterations, grading)
  local path = dir .. "/scores.jsonl"
  if not require("fluxloop.fs").exists(path) then return nil end
  local figures = require("fluxloop.gradestats").read(path, iterations)
  return figures and M.scores(figures, grading and grading.specs) or nil
end

-- The order of a grader's fields in summary.json (fluxloop.output's encoder).
M.ORDER = { "graded", "passed", "failed", "errors", "pass_rate", "pass_rate_ci95", "mean_score", "threshold",
  "pass_hat_k", pass_hat_k = "numeric" }

-- below(scores) -> list of { name, pass_rate, threshold }, graders whose pass rate is under
-- their threshold (a grader with no grade given counts as 0).
function M.below(scores)
  local out = {}
  for name, s in pairs(scores or {}) do
    if s.threshold and (s.pass_rate or 0) < s.threshold then
      out[#out + 1] = { name = name, pass_rate = s.pass_rate or 0, threshold = s.threshold }
    end
  end
  table.sort(out, function(a, b) return a.name < b.name end)
  return out
end

local function pct(x) return ("%.1f%%"):format(x * 100) end

-- lines(scores, iterations) -> the closing lines (one per grader), and the lines that say
-- which grader missed its threshold (printed even with --quiet: they explain exit 1).
function M.lines(scores, iterations)
  local names, missed = {}, {}
  for _, b in ipairs(M.below(scores)) do
    missed[#missed + 1] = ("fluxloop: grader %s: pass rate %s is under its threshold %s"):format(b.name,
      pct(b.pass_rate), pct(b.threshold))
  end
  for name in pairs(scores or {}) do names[#names + 1] = name end
  table.sort(names)
  if #names == 0 then return {}, missed end
  local lines = { "[INFO] Grades (pass rate, 95% interval; pass^k: all k runs of an input pass):" }
  for _, name in ipairs(names) do
    local s = scores[name]
    local k = iterations and iterations > 1 and s.pass_hat_k[tostring(iterations)] and iterations or nil
    local text
    if s.pass_rate then
      text = ("%d/%d passed (%s, %s-%s)"):format(s.passed, s.passed + s.failed, pct(s.pass_rate),
        pct(s.pass_rate_ci95[1]), pct(s.pass_rate_ci95[2]))
    else
      text = "no grade given"
    end
    if k then text = text .. (", pass^%d %s"):format(k, pct(s.pass_hat_k[tostring(k)])) end
    if s.errors > 0 then text = text .. (", %d grader error%s"):format(s.errors, s.errors == 1 and "" or "s") end
    lines[#lines + 1] = ("  %-20s %s"):format(name, text)
  end
  return lines, missed
end

return M
