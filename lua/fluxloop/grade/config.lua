-- grade/config.lua - the `evaluation:` section of a config: its graders, checked before any
-- run (fluxloop.config calls check with its checker, so every problem has FILE:LINE:COL).
--   evaluation:
--     graders:
--       - {name: mentions_refund, type: contains, value: refund, threshold: 0.9}
local grade = require("fluxloop.grade")
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.known = { evaluation = { "graders" } }

-- check_graders(list, where_of, errors, warns, project_dir) -> specs
-- The shared walk over a list of grader specs (a config's, or an input's assert:), with
-- where_of(i, key) naming the place and errors/warns receiving (path, text).
function M.check_list(list, path, report, project_dir)
  local specs, seen = {}, {}
  for i, raw in ipairs(list) do
    local at = path .. "." .. i
    local ok = true
    local spec = grade.check(raw, function(key, text)
      ok = false
      report.error(key and (at .. "." .. key) or at, text)
    end, { warn = report.warn and function(key, text) report.warn(at .. "." .. tostring(key), text) end })
    if spec and ok then
      if seen[spec.name] then
        report.error(at, ("grader name '%s' is used twice (also %s.%d); give each a unique name:"):format(
          spec.name, path, seen[spec.name]))
      else
        seen[spec.name] = i
        local good, why = require("fluxloop.grade.script").check_target(spec, project_dir)
        if good then specs[#specs + 1] = spec else report.error(at .. ".target", why) end
      end
    end
  end
  return specs
end

-- check(c, cfg): cfg.evaluation = { graders = specs } (specs plain data, for workers too).
function M.check(c, cfg)
  local section = c:mapping("evaluation", "graders: [...]")
  if not section then return end
  local list = c:get("evaluation.graders")
  if list == nil then
    cfg.evaluation = { graders = {} }
    return
  end
  if type(list) ~= "table" or not util.is_array(list) then
    c:error("evaluation.graders", "expected a list of graders (- type: contains, value: ...)")
    return
  end
  local specs = M.check_list(list, "evaluation.graders", {
    error = function(p, text) c:error(p, text) end,
    warn = function(p, text) c:warn(p, text, true) end,
  }, cfg.project_dir)
  cfg.evaluation = { graders = specs }
end

-- secret_values(specs) -> the judges' keys as they are expanded here, so that the
-- recorders mask them wherever a trace or an error message echoes one.
function M.secret_values(specs)
  local out = {}
  for _, spec in ipairs(specs or {}) do
    if spec.type == "llm_judge" then
      local key = require("fluxloop.grade.judge").api_key(spec)
      if key and #key >= 4 then out[#out + 1] = key end
    end
  end
  return out
end

-- entry_problem(entry) -> message, key path | nil: an input's assert: list, checked when the
-- inputs are read (the key path points the inputs file's line at the problem).
function M.entry_problem(entry)
  local list = entry.assert
  if list == nil or list == json.null then return nil end
  if type(list) ~= "table" or not util.is_array(list) then
    return "'assert' must be a list of graders (- type: contains, value: ...)", "assert"
  end
  local first
  M.check_list(list, "assert", {
    error = function(p, text) if not first then first = { p, text } end end,
  })
  if first then return first[1] .. ": " .. first[2], first[1] end
  return nil
end

return M
