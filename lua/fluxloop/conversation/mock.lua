-- conversation/mock.lua - the mock supervisor (deterministic, no model): scripted questions
-- one after the other, then the end of the script; with no script, mock_decision.
-- Settings are supervisor.metadata's keys, as the Python fluxloop reads them.
local util = require("fluxloop.util")

local M = {}

M.DEFAULT_NEXT = "Could you provide a bit more detail about that?"

local function fail(message)
  error({ type = "supervisor", message = message, traceback = false }, 0)
end

-- The input row's own scripted_questions (at its top level or in its metadata), which
-- replace the config's for that row's conversations.
local function row_script(entry)
  if type(entry) ~= "table" then return nil end
  local v = entry.scripted_questions
  if v == nil and util.is_mapping(entry.metadata) then v = entry.metadata.scripted_questions end
  if v == nil then return nil end
  local ok = type(v) == "table" and (util.is_array(v) or next(v) == nil)
  for _, q in ipairs(ok and v or {}) do
    if type(q) ~= "string" then ok = false end
  end
  if not ok then fail("the input's scripted_questions must be a list of strings") end
  return v
end

-- new(sup) -> decide(conversation, ctx): ctx.supervisor_state keeps the script's place.
function M.new(sup)
  local closing, reason = sup.mock_closing, sup.mock_reason
  return function(_, ctx)
    local state = ctx.supervisor_state
    local script = row_script(ctx.entry) or sup.scripted_questions
    if script then
      local i = (state.script_index or 0) + 1
      local response = { mock = true, scripted = true, script_index = i, script_length = #script }
      if i <= #script then
        state.script_index = i
        return { decision = "continue", message = script[i], response = response }
      end
      return { decision = "terminate", reason = reason or "script_complete", closing = closing, response = response }
    end
    local response = { mock = true, scripted = false, decision = sup.mock_decision or "continue" }
    if sup.mock_decision == "terminate" then
      return { decision = "terminate", reason = reason or "supervisor_terminate", closing = closing,
        response = response }
    end
    return { decision = "continue", message = sup.mock_next_user_message or M.DEFAULT_NEXT, response = response }
  end
end

return M
