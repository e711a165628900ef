-- hooks.lua - loads a Lua hooks file and applies its input hooks (DESIGN "Hooks (Lua)").
-- Per-run hooks (before_run, after_run, replay_args) are called by fluxloop.run, and only
-- when the file defines them: with no hooks, no hook call happens per run.
local util = require("fluxloop.util")

local M = {}

M.NAMES = { "filter_input", "filter_inputs", "transform_input", "before_experiment",
  "after_experiment", "before_run", "after_run", "replay_args" }
local KNOWN = {}
for _, n in ipairs(M.NAMES) do KNOWN[n] = true end

-- load(path, display) -> hooks, warnings | nil, message
-- hooks = { file = display, path = path, <name> = function, ... } with only the functions
-- the file defines.
function M.load(path, display)
  display = display or path
  local f = io.open(path, "rb")
  if not f then
    return nil, ("hooks file not found: %s (check `hooks:` in the config or --hooks)"):format(display)
  end
  local text = f:read("a")
  f:close()
  local chunk, err = load(text, "@" .. display, "t")
  if not chunk then return nil, ("hooks file %s does not compile: %s"):format(display, err) end
  local ok, result = xpcall(chunk, debug.traceback)
  if not ok then return nil, ("hooks file %s failed while loading: %s"):format(display, result) end
  if type(result) ~= "table" then
    return nil, ("hooks file %s must return a table of functions (it returned a %s); end it with `return { filter_input = ..., }`")
      :format(display, type(result))
  end
  local hooks, warnings = { file = display, path = path }, {}
  for name, fn in pairs(result) do
    if type(name) ~= "string" or not KNOWN[name] then
      local near = type(name) == "string" and util.closest(name, M.NAMES)
      warnings[#warnings + 1] = ("%s: warning: unknown hook '%s'%s; hooks are: %s"):format(display, tostring(name),
        near and (" (did you mean '" .. near .. "'?)") or "", table.concat(M.NAMES, ", "))
    elseif type(fn) ~= "function" then
      return nil, ("%s: hook '%s' must be a function, not a %s"):format(display, name, type(fn))
    else
      hooks[name] = fn
    end
  end
  table.sort(warnings)
  return hooks, warnings
end

-- The message handler of call(): keeps the error and the stack where it was raised apart.
local function failure(err)
  return { message = tostring(err), traceback = debug.traceback("stack traceback of the hook:", 2) }
end

-- call(hooks, name, ...) -> true, results... | false, message, traceback
-- Calls a hook in protected mode; the message names the hook and the hook's error (with
-- its file:line), the traceback is the stack it was raised in.
function M.call(hooks, name, ...)
  local function pack(ok, ...)
    if ok then return true, ... end
    local f = ...
    return false, ("hook '%s' (%s) failed: %s"):format(name, hooks.file, f.message), f.traceback
  end
  return pack(xpcall(hooks[name], failure, ...))
end

-- call_or_message(hooks, name, ...) -> true, results... | false, "message\ntraceback"
-- For hooks whose failure stops the experiment: the whole story goes to stderr.
local function call_or_message(hooks, name, ...)
  local function pack(ok, ...)
    if ok then return true, ... end
    local msg, tb = ...
    return false, msg .. "\n" .. tb
  end
  return pack(M.call(hooks, name, ...))
end

local function is_entry(v)
  return type(v) == "table" and v.input ~= nil and v.input ~= require("fluxloop.json").null
end

-- filter_input(entry, i) -> true | false | nil, message
local function keep_one(hooks, entry, i)
  local ok, keep = call_or_message(hooks, "filter_input", entry, i)
  if not ok then return nil, keep end
  if type(keep) ~= "boolean" then
    return nil, ("hook 'filter_input' (%s) returned a %s for entry %d; return true to keep the entry or false to drop it")
      :format(hooks.file, type(keep), i)
  end
  return keep
end

-- transform_input(entry) -> the changed entry | nil, message
local function transform_one(hooks, entry, i)
  local ok, changed = call_or_message(hooks, "transform_input", entry)
  if not ok then return nil, changed end
  if not is_entry(changed) then
    return nil, ("hook 'transform_input' (%s) returned a %s for entry %d; return the entry (a table with an 'input')")
      :format(hooks.file, type(changed), i)
  end
  return changed
end

-- per_entry(hooks) -> fn(entry, index) -> entry | false (dropped) | nil, message, or nil
-- when the hooks need the whole list (filter_inputs): filter_input then transform_input for
-- one entry, so inputs can be read one at a time.
function M.per_entry(hooks)
  if hooks.filter_inputs then return nil end
  return function(entry, i)
    if hooks.filter_input then
      local keep, err = keep_one(hooks, entry, i)
      if not keep then return keep, err end
    end
    if hooks.transform_input then return transform_one(hooks, entry, i) end
    return entry
  end
end

-- filter(hooks, entries) -> kept, dropped | nil, message
-- Applies filter_input, then filter_inputs, then transform_input, as DESIGN's table says.
function M.filter(hooks, entries)
  local kept = entries
  if hooks.filter_input then
    kept = {}
    for i, entry in ipairs(entries) do
      local keep, err = keep_one(hooks, entry, i)
      if keep == nil then return nil, err end
      if keep then kept[#kept + 1] = entry end
    end
  end
  if hooks.filter_inputs then
    local ok, list = call_or_message(hooks, "filter_inputs", kept)
    if not ok then return nil, list end
    if type(list) ~= "table" then
      return nil, ("hook 'filter_inputs' (%s) returned a %s; return a list of input entries")
        :format(hooks.file, type(list))
    end
    if is_entry(list) then
      return nil, ("hook 'filter_inputs' (%s) returned one entry, not a list; return { entry, ... }")
        :format(hooks.file)
    end
    local count = 0
    for _ in pairs(list) do count = count + 1 end
    if count ~= #list or (count > 0 and not util.is_array(list)) then
      return nil, ("hook 'filter_inputs' (%s) returned a table that is not a list (keys other than 1..n, "
        .. "or holes); return a list of input entries, such as the one it was given with some removed")
        :format(hooks.file)
    end
    for i, entry in ipairs(list) do
      if not is_entry(entry) then
        return nil, ("hook 'filter_inputs' (%s) returned a list whose item %d is not an input entry (a table with an 'input')")
          :format(hooks.file, i)
      end
    end
    kept = list
  end
  if hooks.transform_input then
    local out = {}
    for i, entry in ipairs(kept) do
      local changed, err = transform_one(hooks, entry, i)
      if not changed then return nil, err end
      out[i] = changed
    end
    kept = out
  end
  if #kept == 0 and #entries > 0 then return nil, M.all_dropped(hooks, #entries) end
  return kept, math.max(0, #entries - #kept)
end

-- The message when the hooks dropped all n inputs.
function M.all_dropped(hooks, n)
  return ("the hooks of %s dropped every input (%d of %d): there is nothing to run; check "
    .. "filter_input / filter_inputs"):format(hooks.file, n, n)
end

return M
