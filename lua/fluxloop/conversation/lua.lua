-- conversation/lua.lua - the lua supervisor: the user's own function decides each next turn.
--   next(conversation, ctx, state) -> {decision = "continue", message = "..."}
--                                   | {decision = "terminate", reason = "...", closing = "..."}
-- conversation is the transcript so far ({turn_index, role, content, source, metadata}
-- each, ending with the agent's reply; read-only); ctx is the run's ctx (with max_turns);
-- state is a table the function may keep things in for the rest of the conversation.
local M = {}

local HINT = 'return {decision = "continue", message = "..."} or '
  .. '{decision = "terminate", reason = "...", closing = "..."}'

-- resolve(spec) -> function | nil, message: "module.path:function" from package.path (the
-- project folder first, as for runner.target).
function M.resolve(spec)
  local module, name = spec:match("^([%w_%.%-/]+):([%w_]+)$")
  if not module then
    return nil, ("expected \"module.path:function\" (for example supervisors.mine:next), got '%s'"):format(spec)
  end
  local path, tried = package.searchpath(module, package.path)
  if not path then
    return nil, ("Lua module '%s' not found (write supervisors.mine:next for supervisors/mine.lua in the "
      .. "project folder); tried:%s"):format(module, ("\n" .. tried):gsub("\n\t?", " "))
  end
  local ok, mod = pcall(require, module)
  if not ok then return nil, ("error while loading %s: %s"):format(path, tostring(mod)) end
  local fn = type(mod) == "table" and mod[name] or nil
  if type(fn) ~= "function" then
    return nil, ("%s has no function '%s' (it returned a %s%s)"):format(path, name, type(mod),
      type(mod) == "table" and ", which needs M." .. name .. " = function(conversation, ctx) ... end" or "")
  end
  return fn
end

local function bad(what)
  error({ type = "supervisor", message = ("the lua supervisor %s; %s"):format(what, HINT), traceback = false }, 0)
end

-- new(sup) -> decide(conversation, ctx, state) -> {decision, message, reason, closing}.
function M.new(sup)
  local fn = assert(M.resolve(sup.target))
  return function(conversation, ctx, state)
    local d = fn(conversation, ctx, state)
    if type(d) ~= "table" then bad("returned a " .. type(d)) end
    if d.decision == "continue" then
      if type(d.message) ~= "string" or d.message == "" then bad("said continue without a message (a string)") end
      return { decision = "continue", message = d.message }
    elseif d.decision == "terminate" then
      if d.reason ~= nil and type(d.reason) ~= "string" then bad("gave a reason that is not a string") end
      if d.closing ~= nil and type(d.closing) ~= "string" then bad("gave a closing message that is not a string") end
      return { decision = "terminate", reason = d.reason, closing = d.closing ~= "" and d.closing or nil }
    end
    bad(("returned decision %s"):format(d.decision == nil and "nil" or ("'" .. tostring(d.decision) .. "'")))
  end
end

return M
