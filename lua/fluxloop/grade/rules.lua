-- grade/rules.lua - graders that need no model and no code of the user's: the output
-- compared with a value, matched with a PCRE2 pattern, measured (length, latency, tokens),
-- or looked for in the run's observations (a tool call). Each gives score 1 or 0 and says
-- why it failed. This file checks them all; those that read only the output's text are
-- graded in C (src/rules.c, see native), the rest here.
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.KEYS = {
  equals = { "value" }, contains = { "value" }, icontains = { "value" }, not_contains = { "value" },
  starts_with = { "value" }, regex = { "value", "flags" }, one_of = { "values", "value" }, is_json = {},
  max_length = { "value" }, max_latency_ms = { "value" }, max_tokens = { "value" }, tool_called = { "value" },
}

local TEXT = { contains = true, icontains = true, not_contains = true, starts_with = true, tool_called = true }
local LIMIT = { max_length = "characters", max_latency_ms = "milliseconds", max_tokens = "tokens" }

local function absent(v) return v == nil or v == json.null end

local function describe(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then return util.is_array(v) and "a list" or "a mapping" end
  return tostring(v)
end

-- Quoted for a reason, cut to a readable length.
local function quote(s)
  s = tostring(s)
  if #s > 80 then s = s:sub(1, 77) .. "..." end
  return json.encode(s)
end

local function as_text(v)
  if type(v) == "number" then return (math.type(v) == "integer" or v ~= math.floor(v)) and tostring(v)
    or tostring(math.tointeger(v)) end
  return v
end

function M.check(spec, out, problem)
  local t, v = out.type, spec.value
  if TEXT[t] then
    v = as_text(v)
    if type(v) ~= "string" or v == "" then
      problem(not absent(v) and "value" or nil, absent(v) and ("missing 'value' (the text a %s grader looks for)"):format(t)
        or ("expected a non-empty string, got " .. describe(v)))
      return nil
    end
    out.value = v
  elseif t == "regex" then
    v = as_text(v)
    if type(v) ~= "string" or v == "" then
      problem(not absent(v) and "value" or nil, absent(v) and "missing 'value' (a PCRE2 pattern such as '\\d+ days')"
        or ("expected a pattern (a string), got " .. describe(v)))
      return nil
    end
    local flags = spec.flags
    if not absent(flags) and (type(flags) ~= "string" or not flags:match("^[ims]*$")) then
      problem("flags", "expected letters of 'ims' (i: ignore case, m: ^ and $ at each line, s: . matches a newline), got "
        .. describe(flags))
      return nil
    end
    local re, why, at = require("fluxloop.regex").compile(v, not absent(flags) and flags or nil)
    if not re then
      problem("value", ("invalid regex %s: %s at offset %d (PCRE2 syntax)"):format(quote(v), why, at))
      return nil
    end
    out.value, out.flags = v, not absent(flags) and flags or nil
  elseif t == "one_of" then
    local list = absent(spec.values) and spec.value or spec.values
    if type(list) ~= "table" or not util.is_array(list) or #list == 0 then
      problem(not absent(list) and (absent(spec.values) and "value" or "values") or nil,
        absent(list) and "missing 'values' (a list of the outputs that pass)" or ("expected a non-empty list, got "
        .. describe(list)))
      return nil
    end
    out.values = {}
    for i, x in ipairs(list) do
      x = as_text(x)
      if type(x) ~= "string" then problem("values." .. i, "expected a string, got " .. describe(x)) return nil end
      out.values[i] = x
    end
  elseif LIMIT[t] then
    if type(v) ~= "number" or v < 0 or v ~= v then
      problem(not absent(v) and "value" or nil, absent(v) and ("missing 'value' (the most %s that pass)"):format(LIMIT[t])
        or ("expected a number >= 0 (%s), got %s"):format(LIMIT[t], describe(v)))
      return nil
    end
    out.value = v
  elseif t == "equals" then
    if not absent(v) then out.value = type(v) == "table" and v or as_text(v) end -- else each input's `expected`
  end
  return out
end

-- Types that only read the output's text (and the run's duration): graded in C by
-- fluxloop.rules. equals compares text when its value is text; with a mapping or list, or
-- with each input's expected, it is graded here.
local NATIVE = { contains = true, icontains = true, not_contains = true, starts_with = true, regex = true,
  one_of = true, max_length = true, max_latency_ms = true }

-- native(spec) -> true when fluxloop.rules grades spec.
function M.native(spec)
  return NATIVE[spec.type] or (spec.type == "equals" and type(spec.value) == "string")
end

-- Deep equality of decoded values (an output table against a value from YAML).
local function same(a, b)
  if a == b then return true end
  if type(a) == "number" and type(b) == "number" then return a == b end
  if type(a) ~= "table" or type(b) ~= "table" then return false end
  for k, v in pairs(a) do if not same(v, b[k]) then return false end end
  for k in pairs(b) do if a[k] == nil then return false end end
  return true
end

-- Tokens the run's model calls used: total_tokens of each observation (else prompt +
-- completion), nil when no observation counted any.
local function tokens_of(observations)
  local sum, seen = 0, false
  for _, o in ipairs(observations) do
    local t = tonumber(o.total_tokens) or ((tonumber(o.prompt_tokens) or 0) + (tonumber(o.completion_tokens) or 0))
    if o.total_tokens ~= nil or o.prompt_tokens ~= nil or o.completion_tokens ~= nil then
      seen = true
      sum = sum + t
    end
  end
  return seen and sum or nil
end

local COMPILE = {}

function COMPILE.equals(spec)
  return function(view)
    local want = spec.value
    if want == nil then
      want = view.expected
      if want == nil or want == json.null then
        error("equals has no value, and this input has no 'expected' to compare with", 0)
      end
    end
    local ok
    if type(want) == "table" then ok = same(view.output, want)
    else ok = view.text == tostring(as_text(want)) end
    return ok, nil, not ok and ("output %s is not %s"):format(quote(view.text), quote(type(want) == "table"
      and json.encode(want) or as_text(want))) or nil
  end
end







function COMPILE.is_json()
  return function(view)
    if type(view.output) ~= "string" then return true end -- a table, number or boolean is JSON already
    local value, err = json.decode(view.text)
    return value ~= nil, nil, value == nil and ("output is not JSON: %s"):format(tostring(err)) or nil
  end
end



function COMPILE.max_tokens(spec)
  return function(view)
    local n = tokens_of(view.observations)
    if not n then error("no observation of this run counts tokens (a model call records them: see fluxloop.http, "
      .. "ctx:observe{usage = ...} or @fluxloop.prompt)", 0) end
    return n <= spec.value, nil, n > spec.value and ("the run used %d tokens, more than %s"):format(n, spec.value) or nil
  end
end

function COMPILE.tool_called(spec)
  local name = spec.value
  return function(view)
    local tools = {}
    for _, o in ipairs(view.observations) do
      if o.type == "tool" then
        if o.name == name then return true end
        tools[#tools + 1] = tostring(o.name)
      end
    end
    return false, nil, #tools == 0 and ("no tool was called (wanted %s)"):format(quote(name))
      or ("tool %s was not called (called: %s)"):format(quote(name), table.concat(tools, ", "))
  end
end

function M.compile(spec)
  return COMPILE[spec.type](spec)
end

return M
