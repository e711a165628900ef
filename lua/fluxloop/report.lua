-- report.lua - `fluxloop report DIR`: one self-contained HTML file (inline CSS and SVG, nothing from
-- the network) made from one streaming pass over the traces; templates in lua/fluxloop/report/.
local analysis = require("fluxloop.analysis")
local compare = require("fluxloop.compare")
local host = require("fluxloop.host")
local json = require("fluxloop.json")
local jsonlread = require("fluxloop.jsonlread")
local output = require("fluxloop.output")
local results = require("fluxloop.results")
local template = require("fluxloop.template")
local util = require("fluxloop.util")

local M = {}

M.MAX_INPUT_ROWS = 500   -- the worst inputs listed in full; the file stays small at any size
M.MAX_CHART_INPUTS = 40
M.MAX_TIMELINE_OBS = 60
M.MAX_LOG_LINES = 20      -- stderr lines of a failure's example shown

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

local pct, ms = compare.pct, compare.ms

local function num(x) return ("%.1f"):format(x) end

local function ci_text(lo, hi) return ("[%s, %s]"):format(pct(lo), pct(hi)) end

-- v as text of at most 300 characters (cut at a character boundary).
local function label(v)
  v = tostring(v)
  if #v <= 300 then return v end
  local cut = utf8.len(v) and utf8.offset(v, 301)
  return (cut and v:sub(1, cut - 1) or v:sub(1, 300)) .. "…"
end

-- Worst first: lowest success rate, then highest p95 (a sorted copy).
local function worst_first(list)
  local out = { table.unpack(list) }
  table.sort(out, analysis.worse)
  return out
end

local function first_n(list, n)
  if #list <= n then return list end
  return { table.unpack(list, 1, n) }
end

local function svg(t, id, label_text, w, h, parts)
  return t:render("svg", { id = id, label = label_text, w = w, h = h, body = table.concat(parts) })
end

local function text(t, x, y, s, anchor, extra)
  return t:render("text", { x = num(x), y = num(y), text = s, anchor = anchor or "start", extra = extra or "" })
end

-- The latency histogram: 30 bins from 0 to the p99 (slower runs go in the last bin).
local function histogram(t, an)
  local W, H, L, B = 540, 240, 48, 36
  local hi = an.sample:percentile(99)
  local max = an.sample:percentile(100)
  if hi <= 0 then hi = max > 0 and max or 1 end
  local bins = 30
  local counts = an.sample:histogram(0, hi, bins)
  local top = 1
  for _, c in ipairs(counts) do if c > top then top = c end end
  local parts, bw = {}, (W - L - 10) / bins
  for i, c in ipairs(counts) do
    local h = (H - B - 10) * c / top
    local from, to = hi * (i - 1) / bins, hi * i / bins
    parts[#parts + 1] = t:render("rect", { x = num(L + (i - 1) * bw + 1), y = num(H - B - h), w = num(bw - 2),
      h = num(h), fill = "#4c78a8", extra = ' data-count="' .. c .. '"',
      title = ("%s-%s%s ms: %d runs"):format(ms(from), ms(to), i == bins and max > to and " (and slower)" or "", c) })
  end
  parts[#parts + 1] = t:render("line", { x1 = L, y1 = H - B, x2 = W - 10, y2 = H - B, stroke = "#656d76", sw = 1 })
  for k = 0, 4 do
    local x = L + (W - L - 10) * k / 4
    parts[#parts + 1] = text(t, x, H - B + 14, ms(hi * k / 4), k == 4 and "end" or (k == 0 and "start" or "middle"))
  end
  parts[#parts + 1] = text(t, (W + L) / 2, H - 6, "run duration (ms)" .. (max > hi and "; last bar: p99 and slower" or ""),
    "middle")
  parts[#parts + 1] = text(t, L - 6, 14, tostring(top), "end")
  parts[#parts + 1] = text(t, L - 6, H - B, "0", "end")
  return svg(t, "histogram", "histogram of run durations", W, H, parts)
end

-- Latency by input: a p50 bar and a p95 tick per input, slowest p95 first.
local function by_input_chart(t, an)
  local list = {}
  for i, g in ipairs(an.chart) do list[i] = { g = g, p50 = g.p50, p95 = g.p95 } end -- slowest p95 first
  local shown = math.min(#list, M.MAX_CHART_INPUTS)
  local W, L, row = 540, 200, 18
  local H = shown * row + 40
  local hi = list[1] and list[1].p95 or 1
  if hi <= 0 then hi = 1 end
  local parts = {}
  for i = 1, shown do
    local e, y = list[i], 10 + (i - 1) * row
    local w50, x95 = (W - L - 20) * e.p50 / hi, L + (W - L - 20) * e.p95 / hi
    local name = tostring(e.g.key)
    parts[#parts + 1] = text(t, L - 6, y + 12, #name > 30 and name:sub(1, 29) .. "…" or name, "end")
    parts[#parts + 1] = t:render("rect", { x = L, y = num(y + 2), w = num(math.max(w50, 1)), h = row - 6,
      fill = e.g.ok < e.g.n and "#cf222e" or "#4c78a8", extra = "",
      title = ("%s: p50 %s ms, p95 %s ms, %d/%d ok"):format(name, ms(e.p50), ms(e.p95), e.g.ok, e.g.n) })
    parts[#parts + 1] = t:render("line", { x1 = num(x95), y1 = num(y), x2 = num(x95), y2 = num(y + row - 2),
      stroke = "#1f2328", sw = 2 })
  end
  local axis_y = 10 + shown * row
  parts[#parts + 1] = t:render("line", { x1 = L, y1 = axis_y, x2 = W - 20, y2 = axis_y, stroke = "#656d76", sw = 1 })
  parts[#parts + 1] = text(t, L, axis_y + 14, "0", "middle")
  parts[#parts + 1] = text(t, W - 20, axis_y + 14, ms(hi) .. " ms", "end")
  if an.input_count > shown then
    parts[#parts + 1] = text(t, L, axis_y + 28, ("%d slowest of %d inputs"):format(shown, an.input_count), "start")
  end
  return svg(t, "latency-by-input", "latency by input", W, H, parts)
end

local function group_rows(t, list, block, worst)
  local rows = {}
  for i, g in ipairs(list) do
    local rate, lo, hi, p50, p95 = analysis.figures(g)
    rows[#rows + 1] = t:render(block, {
      class = (worst and i == 1 and g.ok < g.n) and "worst" or "", input = label(g.key),
      persona = label(block == "persona_row" and g.key or (g.persona or "-")),
      n = g.n, ok = g.ok, pct = num(rate * 100), rate = pct(rate), ci = ci_text(lo, hi), p50 = ms(p50), p95 = ms(p95),
      distinct = g.saturated and (g.distinct .. "+") or (g.ok > 0 and g.distinct or "-"),
      top_share = g.top_share and ((g.saturated and ">=" or "") .. pct(g.top_share)) or "-",
    })
  end
  return table.concat(rows, "\n")
end

-- The timeline of one trace: a bar per observation on the trace's time axis, indented by depth.
local function timeline(t, trace)
  local obs = type(trace.observations) == "table" and trace.observations or {}
  local t0 = results.iso_us(trace.started_at)
  local total = tonumber(trace.duration_ms) or 0
  local depth, rows = {}, {}
  for _, o in ipairs(obs) do
    local parent = o.parent_id ~= json.null and o.parent_id or nil
    depth[o.id or ""] = parent and (depth[parent] or 0) + 1 or 0
    local start = results.iso_us(o.started_at)
    local off = (t0 and start) and (start - t0) / 1000 or 0
    rows[#rows + 1] = { o = o, depth = depth[o.id or ""], off = off, dur = tonumber(o.duration_ms) or 0 }
    if off + rows[#rows].dur > total then total = off + rows[#rows].dur end
    if #rows >= M.MAX_TIMELINE_OBS then break end
  end
  if #rows == 0 then return '<p class="muted">No observations.</p>' end
  if total <= 0 then total = 1 end
  local W, L, row = 1000, 260, 18
  local H = #rows * row + 30
  local parts = {}
  local colors = { span = "#4c78a8", tool = "#f58518", generation = "#54a24b", event = "#b279a2", agent = "#e45756",
    chain = "#72b7b2", evaluation = "#9d755d" }
  for i, r in ipairs(rows) do
    local y = 6 + (i - 1) * row
    local x = L + (W - L - 20) * r.off / total
    local w = math.max((W - L - 20) * r.dur / total, 2)
    parts[#parts + 1] = text(t, 8 + math.min(r.depth, 12) * 14, y + 12, ("[%s] %s"):format(tostring(r.o.type), label(r.o.name)))
    parts[#parts + 1] = t:render("rect", { x = num(x), y = num(y + 2), w = num(w), h = row - 5,
      fill = colors[r.o.type] or "#4c78a8", extra = ' data-depth="' .. r.depth .. '"',
      title = ("%s: starts at %s ms, takes %s ms"):format(tostring(r.o.name), ms(r.off), ms(r.dur)) })
  end
  local axis_y = 6 + #rows * row
  parts[#parts + 1] = t:render("line", { x1 = L, y1 = axis_y, x2 = W - 20, y2 = axis_y, stroke = "#656d76", sw = 1 })
  parts[#parts + 1] = text(t, L, axis_y + 14, "0 ms", "middle")
  parts[#parts + 1] = text(t, W - 20, axis_y + 14, ms(total) .. " ms", "end")
  return svg(t, "timeline", "observation timeline of " .. tostring(trace.trace_id), W, H, parts)
end

-- The trace at a byte offset of the trace file, decoded ({} when it cannot be read).
local function read_trace(exp, offset)
  local line = jsonlread.line_at(exp.file, offset)
  local ok, trace = pcall(json.decode, line or "")
  if not ok or type(trace) ~= "table" then return {} end
  return trace
end

-- What a process agent wrote on stderr during the trace (its `logs`), the last lines of it.
local function logs_block(t, trace)
  local logs = type(trace.logs) == "table" and trace.logs or nil
  if not logs or #logs == 0 then return "" end
  local from = math.max(1, #logs - M.MAX_LOG_LINES + 1)
  local lines = {}
  for i = from, #logs do lines[#lines + 1] = tostring(logs[i]) end
  return t:render("failure_logs", { shown = #lines, total = #logs, text = table.concat(lines, "\n") })
end

-- A conversation's transcript (multi_turn), above its timeline.
local function transcript(trace) return require("fluxloop.conversation.results").transcript_html(trace) end

local function failures(t, an, exp)
  if #an.failures == 0 then return t:render("failures_none", {}) end
  local parts = {}
  for i, f in ipairs(an.failures) do
    if i > 50 then break end
    local names = {}
    for k, input in ipairs(f.input_list) do names[k] = label(input) .. " (" .. f.inputs[input] .. ")" end
    local trace = i <= 10 and read_trace(exp, f.offset) or nil -- the example's details, for the first ten
    parts[#parts + 1] = t:render("failure", { type = f.type, message = label(f.message), count = f.count,
      inputs = table.concat(names, "; "), more = f.more_inputs and "; and more" or "", trace_id = tostring(f.trace_id),
      traceback = f.traceback or f.message, logs = trace and logs_block(t, trace) or "",
      timeline = trace and (transcript(trace) .. timeline(t, trace)) or "" })
  end
  return table.concat(parts, "\n")
end

local function slowest(t, an, exp)
  local parts = {}
  for _, s in ipairs(an.slowest) do
    local trace = read_trace(exp, s.offset)
    parts[#parts + 1] = t:render("slow", { trace_id = tostring(s.trace_id), duration = ms(s.duration),
      status = s.success and "succeeded" or "failed", status_class = s.success and "ok" or "bad", input = label(s.input),
      timeline = transcript(trace) .. timeline(t, trace) })
  end
  return table.concat(parts, "\n")
end

-- The rows a report shows of a comparison: regressions first, then improvements, then the rest,
-- at most MAX_INPUT_ROWS, gathered as compare.stream hands them out.
local function compare_rows()
  local kept, count = { {}, {}, {} }, 0
  return kept, function(row)
    count = count + 1
    local l = kept[(row.regression or row.grade_regression) and 1 or (row.improvement and 2 or 3)]
    if #l < M.MAX_INPUT_ROWS then l[#l + 1] = row end
  end
end

-- "; grader g passes less" for each grader of a compared row with something to say.
local function grade_verdicts(r)
  local out = {}
  for _, g in ipairs(r.grades or {}) do
    if g.regression or g.improvement then out[#out + 1] = ("; grader %s %s"):format(g.name, g.verdict_text) end
  end
  return table.concat(out)
end

-- The overall grade rows of a comparison (Cochran-Mantel-Haenszel), "" without grades.
local function compare_grades(t, d)
  if not d.grades or #d.grades.rows == 0 then return "" end
  local rows = {}
  for _, r in ipairs(d.grades.rows) do
    rows[#rows + 1] = t:render("compare_grade_row", { name = r.name, rates = pct(r.base_rate) .. " > " .. pct(r.new_rate),
      p = compare.pval(r.p), verdict = r.regression and "regression" or (r.improvement and "improvement" or "same"),
      verdict_class = r.regression and "sig-worse" or (r.improvement and "sig-better" or "muted"),
      verdict_text = r.verdict_text })
  end
  return t:render("compare_grades", { rows = table.concat(rows, "\n") })
end

local function compare_section(t, cmp)
  local d, base_name = cmp.diff, cmp.base_name
  local rows = {}
  local function row_html(r)
    local b, n = r.base, r.new
    return t:render("compare_row", { input = label(r.key), runs = b.n .. " > " .. n.n,
      success = pct(b.ok / b.n) .. " > " .. pct(n.ok / n.n), p_success = compare.pval(r.p_success_adj or r.p_success),
      p50 = ms(r.base_p50) .. " > " .. ms(r.new_p50), p_latency = compare.pval(r.p_latency_adj or r.p_latency),
      consistency = r.base_share and (pct(r.base_share) .. " > " .. pct(r.new_share)) or "-",
      verdict = (r.regression or r.grade_regression) and "regression" or (r.improvement and "improvement" or "same"),
      verdict_class = (r.regression or r.grade_regression) and "sig-worse" or (r.improvement and "sig-better" or "muted"),
      verdict_text = r.verdict_text .. grade_verdicts(r) })
  end
  for _, list in ipairs(cmp.kept) do
    for _, r in ipairs(list) do
      if #rows < M.MAX_INPUT_ROWS then rows[#rows + 1] = row_html(r) end
    end
  end
  local hidden = d.count - #rows
  rows[#rows + 1] = row_html(d.overall)
  local only = {}
  if hidden > 0 then only[#only + 1] = ("<li>%d more inputs without a significant change are not listed</li>"):format(hidden) end
  for _, side in ipairs({ { d.only_base, d.only_base_count, "only in BASE: " }, { d.only_new, d.only_new_count,
    "only in this run: " } }) do
    for i, k in ipairs(side[1]) do
      if i > M.MAX_INPUT_ROWS then break end
      only[#only + 1] = "<li>" .. side[3] .. template.escape(label(k)) .. "</li>"
    end
    if side[2] > M.MAX_INPUT_ROWS then
      only[#only + 1] = ("<li>%s%d more</li>"):format(side[3], side[2] - M.MAX_INPUT_ROWS)
    end
  end
  local verdict = d.regressions > 0
    and t:render("notice", { class = "bad", kind = "regressions",
      text = ("%d significant regression%s"):format(d.regressions, d.regressions == 1 and "" or "s") })
    or t:render("notice", { class = "", kind = "regressions", text = "No significant regression." })
  return t:render("compare", { base = base_name, alpha = d.alpha, verdict = verdict, rows = table.concat(rows, "\n"),
    grades = compare_grades(t, d),
    only = #only > 0 and ("<p>Not listed above:</p><ul>" .. table.concat(only) .. "</ul>") or "" })
end

-- Seconds between two ISO times, as text.
local function run_time(a, b)
  local ua, ub = results.iso_us(a), results.iso_us(b)
  if not ua or not ub then return "-" end
  local s = (ub - ua) / 1e6
  if s < 60 then return ("%.2f s"):format(s) end
  return ("%dm %02ds"):format(math.floor(s / 60), math.floor(s % 60))
end

-- build(exp, an [, cmp]) -> the HTML text. cmp = { diff, kept, base_name } for --compare (kept:
-- the rows shown, see compare_rows).
function M.build(exp, an, cmp)
  local t = template.load("report/page")
  local sum = an.sample:summary()
  local lo, hi = require("fluxloop.statistics").wilson(an.ok, an.total)
  local summary = exp.summary or {}
  local notices = {}
  local note = exp:note(an.total)
  if note then notices[#notices + 1] = t:render("notice", { class = "", kind = exp.state, text = note }) end
  if an.damaged > 0 then
    notices[#notices + 1] = t:render("notice", { class = "bad", kind = "damaged", text = ("%d damaged line%s skipped: %s")
      :format(an.damaged, an.damaged == 1 and "" or "s", table.concat(an.damage_lines, "; ")) })
  end
  local inputs = an.worst -- worst first
  local shown = first_n(inputs, M.MAX_INPUT_ROWS)
  local worst = ""
  if inputs[1] and inputs[1].ok < inputs[1].n then
    local g = inputs[1]
    worst = t:render("worst", { input = label(g.key), rate = pct(g.ok / g.n), ok = g.ok, n = g.n, p95 = ms(g.p95) })
  end
  local started = summary.started_at or an.first_started
  local completed = summary.completed_at or an.last_completed
  local planned = exp:planned()
  local grades = require("fluxloop.report.grades").section(an, summary) -- "" without scores.jsonl
  return t:render("page", {
    name = exp.name, dir = exp.dir, state = exp.state == "complete" and "complete" or exp.state, made_at = os.date("!%Y-%m-%d %H:%M UTC"),
    version = host.version, notices = table.concat(notices, "\n"),
    total = an.total, planned = (planned and planned ~= an.total) and (" of " .. planned .. " planned") or "",
    successful = an.ok, failed = an.failed, failed_class = an.failed > 0 and "bad" or "",
    success_rate = pct(an.ok / an.total), success_ci = ci_text(lo, hi), inputs = an.input_count,
    iterations = tostring(summary.iterations or "?"), p50 = ms(sum.p50), p95 = ms(sum.p95), p99 = ms(sum.p99),
    max = ms(sum.max), mean = ms(sum.mean), run_time = run_time(started, completed), started = started and started:sub(1, 19):gsub("T", " ") or "?", worst = worst, histogram = histogram(t, an),
    by_input_chart = by_input_chart(t, an),
    inputs_note = an.input_count > #shown and (" The %d worst of %d inputs are listed."):format(#shown, an.input_count) or "",
    input_rows = group_rows(t, shown, "input_row", true), persona_rows = group_rows(t, first_n(worst_first(an.personas), M.MAX_INPUT_ROWS), "persona_row"),
    failures = failures(t, an, exp), slowest = slowest(t, an, exp),
    grades = grades, grades_link = grades ~= "" and '<a href="#grades">Grades</a>' or "",
    -- "" when no run recorded token counts; a cost per model with the snapshot's pricing: table
    tokens = require("fluxloop.tokens").section(exp.dir, an.total, require("fluxloop.pricing").of_config_text(exp.config_text)),
    conversations = require("fluxloop.conversation.results").report_section(exp.dir),
    compare_link = cmp and '<a href="#compare">Compare</a>' or "",
    compare = cmp and compare_section(t, cmp) or "",
    config = exp.config_text or "(no config.yaml)", file = exp.file_name,
  })
end

-- main(flags) -> exit status. flags: dir, output, compare, alpha, quiet.
function M.main(flags)
  local cwd = util.getcwd()
  local dir = util.abspath(flags.dir, cwd)
  local exp, err = results.open(dir, flags.dir)
  if not exp then say("fluxloop: error: ", err) return 2 end
  local an, aerr = analysis.run(exp)
  if not an then say("fluxloop: error: ", aerr) return 2 end
  for _, line in ipairs(an.damage_lines) do say("fluxloop: warning: ", line) end
  local note = exp:note(an.total)
  if note then say("fluxloop: note: ", note) end
  local cmp
  if flags.compare then
    local base, berr = compare.open(util.abspath(flags.compare, cwd), flags.compare)
    if not base then say("fluxloop: error: --compare: ", berr) return 2 end
    local kept, on_row = compare_rows()
    local d, derr = compare.stream(base, exp, flags.alpha or 0.05, {
      header = function(d) compare.say_state(base, d.base, flags.compare) end, row = on_row })
    if not d then say("fluxloop: error: --compare: ", derr) return 2 end
    cmp = { diff = d, kept = kept, base_name = flags.compare }
  end
  local out = flags.output and util.abspath(flags.output, cwd) or (dir .. "/report.html")
  local ok, werr = output.write_file(out, M.build(exp, an, cmp))
  if not ok then say("fluxloop: error: cannot write the report: ", tostring(werr)) return 2 end
  if not flags.quiet then say(("[INFO] Report of %d traces: %s"):format(an.total, out)) end
  return 0
end

return M
