-- results.lua - opens an experiment folder for reading (parse, report, compare): says what state
-- the run is in, and streams its traces with the fields asked for.
local fs = require("fluxloop.fs")
local jsonlread = require("fluxloop.jsonlread")

local M = {}

local Exp = {}
Exp.__index = Exp

local read_json = require("fluxloop.util").read_json

local read_text = require("fluxloop.util").read_file

-- open(dir [, display]) -> exp | nil, message. display: how to name the folder in messages.
function M.open(dir, display)
  display = display or dir
  if not fs.exists(dir) then
    return nil, ("%s: no such folder; give an experiment folder, such as experiments/my_agent_20261125_170000"):format(display)
  end
  if not fs.isdir(dir) then
    return nil, ("%s is a file, not an experiment folder; give the folder that holds traces.jsonl"):format(display)
  end
  local exp = setmetatable({ dir = dir, display = display }, Exp)
  for _, name in ipairs({ "traces.jsonl", "trace_summary.jsonl" }) do
    if fs.exists(dir .. "/" .. name) then
      exp.file, exp.file_name = dir .. "/" .. name, name
      break
    end
  end
  if not exp.file then
    return nil, ("%s is not an experiment folder: it has no traces.jsonl or trace_summary.jsonl "
      .. "(give a folder that `fluxloop run experiment` wrote, under experiments/)"):format(display)
  end
  exp.summary, exp.summary_damage = read_json(dir .. "/summary.json")
  exp.plan = read_json(dir .. "/plan.json")
  exp.config_text = read_text(dir .. "/config.yaml")
  exp.name = (exp.summary and exp.summary.name) or dir:match("([^/]+)/*$")
  if exp.summary == nil then
    exp.state = "incomplete"
  elseif exp.summary.interrupted == true then
    exp.state = "interrupted"
  else
    exp.state = "complete"
  end
  return exp
end

function Exp:planned()
  local s = self.summary or self.plan or {}
  return math.tointeger(s.planned_traces)
end

-- note(count) -> nil for a finished run, else a sentence that says what the traces on disk are.
function Exp:note(count)
  local planned = self:planned()
  local of = planned and (" of %d planned"):format(planned) or ""
  if self.state == "incomplete" and self.summary_damage then
    return ("%s, so it cannot say how the experiment ended. Shown: the %d traces on disk%s; "
      .. "`fluxloop run experiment --resume %s` writes it again."):format(self.summary_damage, count, of, self.display)
  elseif self.state == "incomplete" then
    return ("This experiment has no summary.json: it is still running, or it stopped before it could "
      .. "finish. Shown: the %d traces on disk%s."):format(count, of)
  elseif self.state == "interrupted" then
    return ("This experiment was interrupted (summary.json says so): %d traces%s finished; "
      .. "`fluxloop run experiment --resume %s` runs the rest."):format(count, of, self.display)
  end
  return nil
end

-- reader(keys [, opts]) -> a fluxloop.jsonlread reader over the trace file (see jsonlread.open).
function Exp:reader(keys, opts)
  local r, err = jsonlread.open(self.file, keys, opts)
  if not r then return nil, err end
  return r
end

-- damage(reader) -> count, list of "file:line: reason" lines (the first 20), ended_inside_a_line
function Exp:damage(r)
  local count, list, partial = r:damaged()
  local lines = {}
  for _, d in ipairs(list) do
    lines[#lines + 1] = ("%s/%s:%d: damaged line skipped (%s)"):format(self.display, self.file_name, d.line, d.reason)
  end
  if count > #list then lines[#lines + 1] = ("... and %d more damaged lines"):format(count - #list) end
  return count, lines, partial
end

-- empty_message(damaged) -> why there is nothing to read.
function Exp:empty_message(damaged)
  if damaged > 0 then
    return ("%s has no readable trace: all %d lines of %s are damaged"):format(self.display, damaged, self.file_name)
  end
  local still = self.state == "incomplete" and " (the run may still be starting: try again later)" or ""
  return ("%s holds no traces yet: %s is empty%s"):format(self.display, self.file_name, still)
end

-- Days since 1970-01-01 of a civil date (Howard Hinnant's algorithm): UTC arithmetic without
-- the local time zone that os.time assumes.
local function days_from_civil(y, m, d)
  y = m <= 2 and y - 1 or y
  local era = (y >= 0 and y or y - 399) // 400
  local yoe = y - era * 400
  local doy = (153 * (m + (m > 2 and -3 or 9)) + 2) // 5 + d - 1
  local doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
  return era * 146097 + doe - 719468
end

-- iso_us(iso) -> microseconds since 1970 of an ISO 8601 UTC time ("...T17:00:00.000012Z"), or nil.
function M.iso_us(iso)
  if type(iso) ~= "string" then return nil end
  local y, mo, d, h, mi, s, frac = iso:match("^(%d+)-(%d+)-(%d+)T(%d+):(%d+):(%d+)%.?(%d*)Z$")
  if not y then return nil end
  local us = math.tointeger(tonumber((frac .. "000000"):sub(1, 6)))
  local t = ((days_from_civil(tonumber(y), tonumber(mo), tonumber(d)) * 24 + tonumber(h)) * 60 + tonumber(mi)) * 60
    + tonumber(s)
  return t * 1000000 + us
end

-- iso_plus(iso, ms) -> the ISO 8601 UTC time ms after iso (microseconds), or nil.
function M.iso_plus(iso, ms)
  local t = M.iso_us(iso)
  if t == nil or type(ms) ~= "number" then return nil end
  local total = t + math.floor(ms * 1000 + 0.5)
  return os.date("!%Y-%m-%dT%H:%M:%S", total // 1000000) .. (".%06dZ"):format(total % 1000000)
end

return M
