-- args.lua - the flags of the commands that parse their own arguments (init project,
-- generate inputs): `--name VALUE` or `--name=VALUE`, booleans, repeatable lists, bounded
-- integers and rates, and a "did you mean" for a misspelt flag.
local util = require("fluxloop.util")

local M = {}

local function int_of(name, value, spec)
  local n = value:match("^%+?%d+$") and math.tointeger(tonumber(value))
  if not n or n < (spec.min or 0) or (spec.max and n > spec.max) then
    local range = spec.max and ("from %d to %d"):format(spec.min or 0, spec.max) or (">= " .. (spec.min or 0))
    return nil, ("%s: expected an integer %s, got '%s'"):format(name, range, value)
  end
  return n
end

local function rate_of(name, value)
  local r = value:match("^%+?%d*%.?%d+$") and tonumber(value)
  if not r or r <= 0 or r >= 1e9 then
    return nil, name .. ": expected a number > 0 (requests per second, such as 10 or 0.5), got '" .. value .. "'"
  end
  return r
end

local function choice_of(name, value, spec)
  for _, c in ipairs(spec.choices) do
    if c == value then return value end
  end
  return nil, ("%s: expected %s, got '%s'"):format(name, table.concat(spec.choices, " or "), value)
end

local CONVERT = { int = int_of, rate = rate_of, choice = choice_of }

-- int(name, value, min [, max]) / rate(name, value) -> number | nil, message: the checks of
-- an integer flag and of a requests-per-second flag (fluxloop.cli's too).
function M.int(name, value, min, max) return int_of(name, value, { min = min, max = max }) end
M.rate = rate_of

-- parse(args, spec, see) -> opts, positional | nil, message
-- spec maps a flag to its kind: "bool", "string", "list" (repeatable), or a table
-- { kind = "int", min =, max = } / { kind = "rate" } / { kind = "choice", choices = {...} }.
-- opts uses the flag's name without dashes, "-" as "_" (--dry-run -> opts.dry_run); -h is
-- --help. `see` ends every message ("; see 'fluxloop x --help'").
function M.parse(args, spec, see)
  local opts, positional = { }, {}
  local names = {}
  for k in pairs(spec) do names[#names + 1] = k end
  table.sort(names)
  local i = 1
  while i <= #args do
    local arg = args[i]
    i = i + 1
    if arg == "-h" then arg = "--help" end
    if arg:sub(1, 1) ~= "-" or arg == "-" then
      positional[#positional + 1] = arg
    else
      local name, value = arg:match("^(%-%-[^=]+)=(.*)$")
      name = name or arg
      local s = spec[name]
      if s == nil then
        local guess = util.closest(name, names)
        return nil, ("unknown option '%s'%s%s"):format(name, guess and (" (did you mean '" .. guess .. "'?)") or "",
          see)
      end
      local kind = type(s) == "table" and s.kind or s
      local field = name:sub(3):gsub("%-", "_")
      if kind == "bool" then
        if value ~= nil then return nil, name .. " takes no value" .. see end
        opts[field] = true
      else
        if value == nil then
          value = args[i]
          if value == nil or value:sub(1, 2) == "--" then return nil, name .. " needs a value" .. see end
          i = i + 1
        end
        if value == "" then return nil, name .. " needs a value" .. see end
        if CONVERT[kind] then
          local v, err = CONVERT[kind](name, value, s)
          if v == nil then return nil, err .. see end
          value = v
        end
        if kind == "list" then
          opts[field] = opts[field] or {}
          table.insert(opts[field], value)
        else
          opts[field] = value
        end
      end
    end
  end
  return opts, positional
end

return M
