-- conversation/mock.lua - the mock supervisor (deterministic, no model): scripted questions
-- one after the other, then the end of the script; with no script, mock_decision.
-- Settings are supervisor.metadata's keys, as the Python fluxloop reads them.
local util = require("fluxloop.util")

local M = {}

M.DEFAULT_NEXT = "Could you provide a bit more detail about that?"

-- Its decisions take a few table reads and no user code: the loop calls it without a time
-- limit (conversation/init.lua).
M.BOUNDED = true

local function fail(message)
  error({ type = "supervisor", message = message, traceback = false }, 0)
end

-- The input row's own scripted_questions (at its top level or in its metadata), which
-- replace the config's for that row's conversations.
-- (A list's field is nil, so is_mapping is asked only about a metadata that holds one.)
local function row_script(entry)
  if type(entry) ~= "table" then return nil end
  local v = entry.scripted_questions
  if v == nil then
    local md = entry.metadata
    if type(md) ~= "table" then return nil end
    v = md.scripted_questions
    if v == nil or not util.is_mapping(md) then return nil end
  end
  local ok = type(v) == "table" and (util.is_array(v) or next(v) == nil)
  for _, q in ipairs(ok and v or {}) do
    if type(q) ~= "string" then ok = false end
  end
  if not ok then fail("the input's scripted_questions must be a list of strings") end
  return v
end

-- The decision at place i of a script (past its end: the end of the conversation).
local function scripted(script, i, sup)
  if i <= #script then return { decision = "continue", message = script[i] } end
  return { decision = "terminate", reason = sup.mock_reason or "script_complete", closing = sup.mock_closing }
end

-- new(sup) -> decide(conversation, ctx, state): state (one a conversation) keeps the
-- row's script (read once) and the place in the script. Decisions that do not depend on the input are made once: the loop reads
-- them and never changes them. (The mock has no response worth keeping: supervisor_response
-- is the model's, openai.lua's.)
function M.new(sup)
  local script, made = sup.scripted_questions, {}
  for i = 1, script and #script + 1 or 0 do made[i] = scripted(script, i, sup) end
  local unscripted = sup.mock_decision == "terminate"
    and { decision = "terminate", reason = sup.mock_reason or "supervisor_terminate", closing = sup.mock_closing }
    or { decision = "continue", message = sup.mock_next_user_message or M.DEFAULT_NEXT }
  return function(_, ctx, state)
    local own = state.own
    if own == nil then
      own = row_script(ctx.entry) or false
      state.own = own
    end
    local questions = own or script
    if not questions then return unscripted end
    local i = (state.script_index or 0) + 1
    if i <= #questions then state.script_index = i end
    return not own and made[i] or scripted(questions, i, sup)
  end
end

return M
