-- report/grades.lua - the report's "Grades" section from the analysis' grades (fluxloop.grades):
-- each grader's pass rate with its interval, the pass^k curve (inline SVG), examples of failed
-- grades with their reasons, and the input x grader matrix, worst inputs first. Templates in
-- report/grades.html; every text from the files goes through the template's escaping.
local template = require("fluxloop.template")

local M = {}

M.MATRIX_GRADERS = 20 -- grader columns of the matrix (the rest are in the table above it)
M.POINTS = 60         -- pass^k curves with this many k or fewer get a dot per k
M.COLORS = { "#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#eeca3b", "#9d755d", "#ff9da6",
  "#bab0ac" }

local function pct(x) return x and ("%d%%"):format(math.floor(x * 100 + 0.5)) or "-" end
local function num(x) return ("%.1f"):format(x) end

-- v as text of at most n characters (cut at a character boundary).
local function cut(v, n)
  v = tostring(v)
  if #v <= n then return v end
  local at = utf8.len(v) and utf8.offset(v, n + 1)
  return (at and v:sub(1, at - 1) or v:sub(1, n)) .. "…"
end

local function color(i) return M.COLORS[(i - 1) % #M.COLORS + 1] end

-- The largest k any grader has a pass^k for.
local function max_k(graders)
  local k = 0
  for _, g in ipairs(graders) do if #g.pass_hat_k > k then k = #g.pass_hat_k end end
  return k
end

local function grader_rows(t, graders, summary_scores, k)
  local rows = {}
  for _, g in ipairs(graders) do
    local s = summary_scores[g.name]
    local threshold = type(s) == "table" and type(s.threshold) == "number" and s.threshold or nil
    local under = threshold and (g.pass_rate or 0) < threshold
    rows[#rows + 1] = t:render("grader_row", { name = g.name, graded = g.graded, passed = g.passed, failed = g.failed,
      errors = g.errors, failed_class = g.failed > 0 and "bad" or "", errors_class = g.errors > 0 and "bad" or "",
      pct = num((g.pass_rate or 0) * 100), rate = pct(g.pass_rate),
      ci = g.lo and ("[%s, %s]"):format(pct(g.lo), pct(g.hi)) or "(no grade given)",
      mean_score = g.mean_score and ("%.3f"):format(g.mean_score) or "-",
      threshold = threshold and (pct(threshold) .. (under and " (under)" or "")) or "-",
      threshold_class = under and "bad" or "", pass_hat = pct(g.pass_hat_k[k]) })
  end
  return table.concat(rows, "\n")
end

-- The pass^k curve: k from 1 to the most runs of an input on x, pass^k from 0 to 100% on y,
-- a line per grader (and a dot per k while there are few).
local function curve(t, graders, k_max)
  local W, H, L, B, R = 540, 270, 44, 70, 16
  local parts = {}
  local function x_of(k) return k_max > 1 and L + (W - L - R) * (k - 1) / (k_max - 1) or L + (W - L - R) / 2 end
  local function y_of(v) return 10 + (H - B - 10) * (1 - v) end
  for q = 0, 4 do
    local y = y_of(q / 4)
    parts[#parts + 1] = t:render("line", { x1 = L, y1 = num(y), x2 = W - R, y2 = num(y), stroke = q == 0 and "#656d76"
      or "#eaeef2", sw = 1 })
    parts[#parts + 1] = t:render("text", { x = L - 6, y = num(y + 4), anchor = "end", extra = "", text = pct(q / 4) })
  end
  local ticks = math.min(k_max, 6)
  for q = 0, ticks - 1 do
    local k = ticks > 1 and math.floor(1 + (k_max - 1) * q / (ticks - 1) + 0.5) or 1
    parts[#parts + 1] = t:render("text", { x = num(x_of(k)), y = num(H - B + 14), anchor = "middle", extra = "",
      text = tostring(k) })
  end
  parts[#parts + 1] = t:render("text", { x = num((W + L) / 2), y = num(H - B + 28), anchor = "middle", extra = "",
    text = "k (runs of one input)" })
  for i, g in ipairs(graders) do
    local pts = {}
    for k, v in ipairs(g.pass_hat_k) do
      pts[#pts + 1] = num(x_of(k)) .. "," .. num(y_of(v))
      if k_max <= M.POINTS then
        parts[#parts + 1] = t:render("point", { x = num(x_of(k)), y = num(y_of(v)), color = color(i), name = g.name,
          k = k, value = ("%.6f"):format(v), title = ("%s: pass^%d = %s"):format(g.name, k, pct(v)) })
      end
    end
    if #pts > 1 then
      parts[#parts + 1] = t:render("polyline", { points = table.concat(pts, " "), color = color(i), name = g.name })
    end
    if i <= 5 or (i == 6 and #graders == 6) then -- the legend: two rows of three
      local lx, ly = L + ((i - 1) % 3) * 160, H - 22 + 14 * ((i - 1) // 3)
      parts[#parts + 1] = t:render("swatch", { x = num(lx), y = num(ly - 9), color = color(i) })
      parts[#parts + 1] = t:render("text", { x = num(lx + 14), y = num(ly), anchor = "start", extra = "",
        text = cut(g.name, 22) })
    end
  end
  if #graders > 6 then
    parts[#parts + 1] = t:render("text", { x = num(L + 2 * 160), y = num(H - 8), anchor = "start", extra = "",
      text = ("and %d more (hover a line)"):format(#graders - 5) })
  end
  return t:render("svg", { id = "pass-hat-k", label = "pass^k by grader", w = W, h = H, body = table.concat(parts) })
end

local function examples(t, graders)
  local parts = {}
  for _, g in ipairs(graders) do
    if #g.fails + #g.error_examples > 0 then
      local items = {}
      for _, list in ipairs({ { g.fails, "failed" }, { g.error_examples, "grader error" } }) do
        for _, e in ipairs(list[1]) do
          items[#items + 1] = t:render("example", { trace_id = tostring(e.trace_id), kind = list[2],
            input = cut(e.input, 200), reason = cut(e.reason, 1000) })
        end
      end
      parts[#parts + 1] = t:render("examples", { name = g.name, failed = g.failed, errors = g.errors,
        items = table.concat(items) })
    end
  end
  if #parts == 0 then return t:render("examples_none", {}) end
  return table.concat(parts, "\n")
end

local function matrix(t, gr, graders)
  local shown = {}
  for i = 1, math.min(#graders, M.MATRIX_GRADERS) do shown[i] = graders[i].name end
  local head = {}
  for i, name in ipairs(shown) do head[i] = t:render("matrix_head", { name = cut(name, 40) }) end
  local rows = {}
  for _, row in ipairs(gr.worst) do
    local cells = {}
    for i, name in ipairs(shown) do
      local c = row.grades[name]
      local n = c and c.passed + c.failed or 0
      local rate = n > 0 and c.passed / n or nil
      cells[i] = t:render("matrix_cell", { name = name, passed = c and c.passed or 0, graded = n,
        class = rate == nil and "muted" or (rate < 1 and "bad" or "ok"),
        text = c and (n > 0 and ("%s (%d/%d)"):format(pct(rate), c.passed, n) or "error") or "-",
        title = c and ("%d passed, %d failed, %d errors"):format(c.passed, c.failed, c.errors) or "not graded" })
    end
    rows[#rows + 1] = t:render("matrix_row", { input = cut(row.key, 300), cells = table.concat(cells) })
  end
  local notes = {}
  if gr.inputs > #gr.worst then notes[#notes + 1] = (" The %d worst of %d inputs are listed."):format(#gr.worst, gr.inputs) end
  if #graders > #shown then notes[#notes + 1] = (" The first %d of %d graders are shown."):format(#shown, #graders) end
  return table.concat(head), table.concat(rows, "\n"), table.concat(notes)
end

local function notices(gr)
  local out = {}
  local function add(text) out[#out + 1] = ('<div class="notice" data-notice="grades">%s</div>'):format(template.escape(text)) end
  if gr.ungraded > 0 then
    add(("%d of %d runs have no grade in scores.jsonl (grading stopped early, or was added later: "
      .. "`fluxloop evaluate experiment DIR` grades them all)."):format(gr.ungraded, gr.runs))
  end
  if gr.unmatched > 0 then add(("%d lines of scores.jsonl grade traces not in the trace file."):format(gr.unmatched)) end
  for _, line in ipairs(gr.damage_lines) do add(line) end
  if gr.damaged > #gr.damage_lines then add(("... and %d more damaged lines"):format(gr.damaged - #gr.damage_lines)) end
  return table.concat(out, "\n")
end

-- section(an, summary) -> the section's HTML, "" when the folder has no grades.
function M.section(an, summary)
  local gr = an.grades
  if not gr then return "" end
  local t = template.load("report/grades")
  local graders = gr.graders
  local k = max_k(graders)
  local scores = type(summary) == "table" and type(summary.scores) == "table" and summary.scores or {}
  local head, rows, note = matrix(t, gr, graders)
  return t:render("grades", { notices = notices(gr), k = k, rows = grader_rows(t, graders, scores, k),
    curve = k > 0 and curve(t, graders, k) or '<p class="muted">No grade given.</p>', examples = examples(t, graders),
    matrix_head = head, matrix_rows = rows, matrix_note = note })
end

return M
