-- traces.lua - spec support: compares the trace files of two experiment folders up to the
-- fields that differ between any two runs (times and durations; and tracebacks, whose
-- frames of fluxloop's own code depend on --parallel and --isolate).
local json = require("fluxloop.json")

local T = {}

T.FILES = { "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }
local TIMING = { duration_ms = true, started_at = true, completed_at = true, traceback = true }

-- A canonical text of a decoded value without its timing fields (keys sorted).
local function canon(v)
  if type(v) ~= "table" then return json.encode(v) end
  if #v > 0 or next(v) == nil then
    local parts = {}
    for i, x in ipairs(v) do parts[i] = canon(x) end
    if #parts == 0 and next(v) == nil then return "[]" end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do if not TIMING[k] then keys[#keys + 1] = k end end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do parts[i] = json.encode(k) .. ":" .. canon(v[k]) end
  return "{" .. table.concat(parts, ",") .. "}"
end
T.canon = canon

-- lines(path) -> list of canonical lines
function T.lines(path)
  local f = assert(io.open(path, "rb"), "missing " .. path)
  local out = {}
  for line in f:lines() do
    local v, err = json.decode(line)
    assert(v ~= nil, ("%s:%d: not JSON: %s"):format(path, #out + 1, tostring(err)))
    out[#out + 1] = canon(v)
  end
  f:close()
  return out
end

-- same(a, b) -> true | nil, what differs first: the three files of folders a and b hold
-- the same lines in the same order, times and durations aside.
function T.same(a, b)
  for _, name in ipairs(T.FILES) do
    local la, lb = T.lines(a .. "/" .. name), T.lines(b .. "/" .. name)
    for i = 1, math.max(#la, #lb) do
      if la[i] ~= lb[i] then
        return nil, ("%s line %d differs:\n  %s\n  %s"):format(name, i, tostring(la[i]), tostring(lb[i]))
      end
    end
  end
  return true
end

return T
