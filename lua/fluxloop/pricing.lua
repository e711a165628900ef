-- pricing.lua - the `pricing:` section of a config: a price per million tokens, input and
-- output, for each model, so that the report turns token counts into a cost:
--   pricing:
--     gpt-4o-mini: {input_per_1m: 0.15, output_per_1m: 0.60}
-- Checked when the config loads (a section module of fluxloop.config); the report reads it back
-- from the experiment's config.yaml snapshot. Model names are free (keys with dots included).
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.KEYS = { "input_per_1m", "output_per_1m" }
M.EXAMPLE = "gpt-4o-mini: {input_per_1m: 0.15, output_per_1m: 0.60}"

-- Its keys are model names: nothing for the config's scan to know.
M.known = {}

local function absent(v) return v == nil or v == json.null end

local function got(v) return require("fluxloop.config.checker").got(v) end

-- entry_problems(entry, problem) -> { input_per_1m, output_per_1m } | nil: one model's prices,
-- problem(key | nil, text, warning) told of each problem.
local function entry_prices(entry, problem)
  if not util.is_mapping(entry) then
    problem(nil, ("expected a mapping {input_per_1m: ..., output_per_1m: ...} (prices per million tokens), got %s")
      :format(got(entry)))
    return nil
  end
  for _, k in ipairs(util.sorted_keys(entry)) do
    if k ~= M.KEYS[1] and k ~= M.KEYS[2] then
      local guess = type(k) == "string" and util.closest(k, M.KEYS) or nil
      problem(k, ("unknown key '%s'%s"):format(tostring(k), guess and (" (did you mean '" .. guess .. "'?)") or ""), true)
    end
  end
  local out = {}
  for _, k in ipairs(M.KEYS) do
    local v = entry[k]
    if absent(v) then
      problem(nil, ("missing '%s' (the price of a million %s tokens; 0 when free)"):format(k,
        k == "input_per_1m" and "prompt" or "completion"))
      return nil
    elseif type(v) ~= "number" or v ~= v or v < 0 or v == math.huge then
      problem(k, "expected a price >= 0 per million tokens, got " .. got(v))
      return nil
    end
    out[k] = v
  end
  return out
end

-- check(c, cfg): cfg.pricing = { [model] = { input_per_1m, output_per_1m } }.
function M.check(c, cfg)
  local section = c:mapping("pricing", M.EXAMPLE)
  if not section then return end
  local out = {}
  for _, model in ipairs(c:keys_of("pricing", section)) do
    local path = "pricing." .. tostring(model)
    local prices = entry_prices(section[model], function(key, text, warning)
      local at = key and (path .. "." .. tostring(key)) or path
      if warning then c:warn(at, text, true) else c:error(at, text) end
    end)
    out[tostring(model)] = prices
  end
  cfg.pricing = out
end

-- of_config_text(text) -> pricing | nil, problems: the prices of a config snapshot (config.yaml
-- of an experiment folder); problems lists the models whose prices cannot be used, and why.
function M.of_config_text(text)
  if type(text) ~= "string" then return nil, {} end
  local ok, doc = pcall(require("fluxloop.yaml").decode, text, "config.yaml")
  if not ok or type(doc) ~= "table" or not util.is_mapping(doc.pricing) then return nil, {} end
  local out, problems, any = {}, {}, false
  for _, model in ipairs(util.sorted_keys(doc.pricing)) do
    local prices = entry_prices(doc.pricing[model], function(key, text_, warning)
      if not warning then problems[#problems + 1] = ("pricing.%s%s: %s"):format(model, key and ("." .. key) or "", text_) end
    end)
    if prices then out[tostring(model)] = prices any = true end
  end
  return any and out or nil, problems
end

-- price(pricing, model) -> prices | nil: the model's own, else those of the longest name that
-- the model's starts with followed by '-' (gpt-4o-mini's for gpt-4o-mini-2024-07-18, as APIs
-- name a model's dated version).
function M.price(pricing, model)
  if not pricing or type(model) ~= "string" then return nil end
  if pricing[model] then return pricing[model] end
  local best, len = nil, 0
  for name, p in pairs(pricing) do
    if #name > len and model:sub(1, #name + 1) == name .. "-" then best, len = p, #name end
  end
  return best
end

-- cost(prices, prompt_tokens, completion_tokens) -> the cost, in the prices' unit.
function M.cost(prices, prompt, completion)
  return (prompt * prices.input_per_1m + completion * prices.output_per_1m) / 1e6
end

-- text(x) -> a cost as text: 2 decimals from 100 on, else 4 significant digits, no exponent.
function M.text(x)
  if x >= 100 then return ("%.2f"):format(x) end
  if x == 0 then return "0" end
  local digits = math.max(2, 3 - math.floor(math.log(x, 10)))
  local s = ("%." .. math.min(digits, 10) .. "f"):format(x)
  return (s:gsub("(%.%d-)0+$", "%1"):gsub("%.$", ""))
end

return M
