-- tokens.lua - the token counts of an experiment's model calls, added up per run: one streaming
-- pass over observations.jsonl (model, prompt_tokens, completion_tokens, total_tokens of each
-- observation that has them), for the report's "Model tokens" section; with a `pricing:` table
-- (fluxloop.pricing), the cost of each model's tokens.
local jsonlread = require("fluxloop.jsonlread")
local statistics = require("fluxloop.statistics")

local M = {}

M.TOP = 5         -- the runs with the most tokens, listed
M.MAX_MODELS = 20 -- models listed; the rest are counted as "(other models)"

local function count(v) return math.type(v) and v >= 0 and v or nil end

-- Keeps the M.TOP heaviest runs, most first.
local function keep_top(top, run)
  local i = #top + 1
  while i > 1 and top[i - 1].total < run.total do i = i - 1 end
  if i <= M.TOP then
    table.insert(top, i, run)
    top[M.TOP + 1] = nil
  end
end

-- Whether any line of the file may have a token count: a plain search for `_tokens":`, far
-- cheaper than reading every line's fields (3 million observations without any: 0.12 s, not
-- 2.1 s). It finds `kens":` (a 'k' is rare in fluxloop's lines where '"' is everywhere, and
-- Lua's plain find skips ahead to the first byte), and stops at the first hit, which in an
-- experiment with model calls is near the top. A hit inside a value (`max_tokens` in a request)
-- only costs the full read, which takes the top-level fields alone.
local MARK, RARE = '_tokens":', 'kens":'
local function has_counts(path)
  local f = io.open(path, "rb")
  if not f then return false end
  local tail = ""
  while true do
    local chunk = f:read(1 << 18) -- 256 KB: cache-sized pieces, a small peak RSS
    if not chunk then break end
    local buf = tail .. chunk
    local at = buf:find(RARE, 1, true)
    while at do
      if buf:sub(at - #MARK + #RARE, at + #RARE - 1) == MARK then
        f:close()
        return true
      end
      at = buf:find(RARE, at + 1, true)
    end
    tail = buf:sub(-(#MARK - 1))
  end
  f:close()
  return false
end

-- read(dir) -> t | nil when no observation has token counts (or there is no observations.jsonl).
-- t = { runs (runs with counts), calls, prompt, completion, total, sample (each run's total:
-- a statistics.sample), top = {{trace_id, total, prompt, completion, calls}} most first,
-- models = {{model, calls, prompt, completion, total}} most tokens first }. Lines are in trace
-- order (as fluxloop writes them), so one run is added up at a time.
function M.read(dir)
  if not has_counts(dir .. "/observations.jsonl") then return nil end
  local r = jsonlread.open(dir .. "/observations.jsonl",
    { "trace_id", "total_tokens", "prompt_tokens", "completion_tokens", "model" })
  if not r then return nil end
  local t = { runs = 0, calls = 0, prompt = 0, completion = 0, total = 0, sample = statistics.sample(), top = {} }
  local by_model, run = {}, nil
  local function close_run()
    if run then
      t.runs = t.runs + 1
      t.sample:add(run.total)
      keep_top(t.top, run)
    end
  end
  while true do
    local n, id, total, prompt, completion, model = r:next()
    if not n then break end
    prompt, completion = count(prompt) or 0, count(completion) or 0
    total = count(total) or (prompt + completion)
    if total > 0 or prompt > 0 or completion > 0 then
      if not run or run.trace_id ~= id then
        close_run()
        run = { trace_id = tostring(id), total = 0, prompt = 0, completion = 0, calls = 0 }
      end
      run.total, run.prompt, run.completion, run.calls = run.total + total, run.prompt + prompt,
        run.completion + completion, run.calls + 1
      t.calls, t.total, t.prompt, t.completion = t.calls + 1, t.total + total, t.prompt + prompt,
        t.completion + completion
      local name = type(model) == "string" and model or "(no model named)"
      local m = by_model[name] or { model = name, calls = 0, prompt = 0, completion = 0, total = 0 }
      by_model[name] = m
      m.calls, m.prompt, m.completion, m.total = m.calls + 1, m.prompt + prompt, m.completion + completion, m.total + total
    end
  end
  r:close()
  close_run()
  if t.calls == 0 then return nil end
  t.models = {}
  for _, m in pairs(by_model) do t.models[#t.models + 1] = m end
  table.sort(t.models, function(a, b)
    if a.total ~= b.total then return a.total > b.total end
    return a.model < b.model
  end)
  return t
end

-- A count with thousands separators: 1234567 -> "1,234,567".
local function thousands(n)
  local s, k = tostring(math.tointeger(n) or n), 1
  while k > 0 do s, k = s:gsub("^(%d+)(%d%d%d)", "%1,%2") end
  return s
end
M.thousands = thousands

-- costs(t, pricing) -> the cost of each priced model (m.cost), their total, and the models
-- without a price.
local function costs(t, pricing)
  local pr = require("fluxloop.pricing")
  local total, unpriced = 0, {}
  for _, m in ipairs(t.models) do
    local prices = pr.price(pricing, m.model)
    if prices then
      m.cost = pr.cost(prices, m.prompt, m.completion)
      total = total + m.cost
    else
      unpriced[#unpriced + 1] = m.model
    end
  end
  return total, unpriced
end

-- The cost card and the note under the table (both "" without a pricing table).
local function cost_parts(tpl, t, pricing, problems)
  local notes = {}
  for _, p in ipairs(problems or {}) do notes[#notes + 1] = "config.yaml: " .. p end
  if not pricing then return "", table.concat(notes, " ") end
  local total, unpriced = costs(t, pricing)
  local text = require("fluxloop.pricing").text
  if #unpriced > 0 then
    notes[#notes + 1] = ("No price in pricing: for %s (not in the cost)."):format(table.concat(unpriced, ", ", 1,
      math.min(#unpriced, M.MAX_MODELS)))
  end
  return tpl:render("tokens_cost", { cost = text(total), per_run = text(t.runs > 0 and total / t.runs or 0),
    priced = #t.models - #unpriced, models = #t.models }), table.concat(notes, " ")
end

-- section(dir, total_runs [, pricing, problems]) -> the report's "Model tokens" HTML ("" when no
-- run recorded any). pricing: fluxloop.pricing's table (a cost per model when given); problems:
-- why some of its entries could not be used.
function M.section(dir, total_runs, pricing, problems)
  local t = M.read(dir)
  if not t then return "" end
  local tpl = require("fluxloop.template").load("report/tokens")
  local s = t.sample:summary()
  local cost_card, cost_note = cost_parts(tpl, t, pricing, problems)
  local text = require("fluxloop.pricing").text
  local rows = {}
  for i, m in ipairs(t.models) do
    if i > M.MAX_MODELS then break end
    rows[#rows + 1] = tpl:render("tokens_model", { model = m.model, calls = thousands(m.calls),
      prompt = thousands(m.prompt), completion = thousands(m.completion), total = thousands(m.total),
      cost = pricing and tpl:render("tokens_model_cost", { cost = m.cost and text(m.cost) or "-" }) or "" })
  end
  local top = {}
  for _, run in ipairs(t.top) do
    top[#top + 1] = tpl:render("tokens_run", { trace_id = run.trace_id, calls = thousands(run.calls),
      prompt = thousands(run.prompt), completion = thousands(run.completion), total = thousands(run.total) })
  end
  return tpl:render("tokens", {
    total = thousands(t.total), prompt = thousands(t.prompt), completion = thousands(t.completion),
    calls = thousands(t.calls), runs = thousands(t.runs), of_runs = thousands(total_runs or t.runs),
    mean = thousands(math.floor(s.mean + 0.5)), p50 = thousands(math.floor(s.p50 + 0.5)),
    p95 = thousands(math.floor(s.p95 + 0.5)), max = thousands(math.floor(s.max + 0.5)),
    models = table.concat(rows, "\n"), cost_card = cost_card, cost_head = pricing and '<th class="n">cost</th>' or "",
    more_models = (#t.models > M.MAX_MODELS and ("%d more models not listed. "):format(#t.models - M.MAX_MODELS) or "")
      .. cost_note,
    top = table.concat(top, "\n"),
  })
end

return M
