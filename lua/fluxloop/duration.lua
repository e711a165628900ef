-- duration.lua - time limits written with a unit (500ms, 30s, 2m, 1h) for --timeout and
-- runner.timeout. A bare number stays milliseconds, as before; a small one is most likely
-- seconds meant, so it gets a warning.
local M = {}

local UNITS = { ms = 1, s = 1000, m = 60000, h = 3600000 }

-- Below this many bare milliseconds a time limit is taken for seconds written without a unit.
M.SUSPICIOUS_MS = 100

M.EXAMPLES = "500ms, 30s, 2m or 1h; a bare number is milliseconds"

-- parse(v [, max_ms]) -> ms, bare | nil, message. v is a string ("30s", "1.5m", "250") or a
-- number (milliseconds). ms is a whole number of milliseconds from 0 to max_ms; bare is
-- true when v had no unit.
function M.parse(v, max_ms)
  local num, unit
  if type(v) == "number" then
    num, unit = v, ""
  elseif type(v) == "string" then
    local n, u = v:match("^%s*(%d*%.?%d+)%s*(%a*)%s*$")
    num, unit = tonumber(n), u and u:lower()
  end
  if not num or num ~= num or num < 0 or (unit ~= "" and not UNITS[unit]) then
    return nil, "expected a time such as " .. M.EXAMPLES .. "; 0 = no limit"
  end
  local ms = num * (UNITS[unit] or 1)
  if ms ~= math.floor(ms) and unit ~= "" then ms = math.floor(ms + 0.5) end
  ms = math.tointeger(ms)
  if not ms or (max_ms and ms > max_ms) then
    return nil, ("expected a whole number of milliseconds up to %d (about 24 days); 0 = no limit"):format(
      max_ms or math.maxinteger)
  end
  return ms, unit == ""
end

-- suspicious(ms, bare) -> true when a bare number is under SUSPICIOUS_MS (and not 0).
function M.suspicious(ms, bare)
  return bare and ms > 0 and ms < M.SUSPICIOUS_MS
end

-- did_you_mean(what, ms) -> the warning for a suspicious bare number, what being "--timeout"
-- or a config path.
function M.did_you_mean(what, ms)
  return ("%s %d is %d milliseconds; did you mean %ds? (write %ds for seconds, or %dms to keep "
    .. "milliseconds and silence this)"):format(what, ms, ms, ms, ms, ms)
end

return M
