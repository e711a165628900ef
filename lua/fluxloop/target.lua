-- target.lua - resolves runner.target ("a.b.c:fn", "a.b:Table.method") to a callable agent.
local M = {}

local function split_dots(s)
  local parts = {}
  for p in s:gmatch("[^.]+") do parts[#parts + 1] = p end
  return parts
end

local function field_names(t)
  local names = {}
  for k, v in pairs(t) do
    if type(k) == "string" then names[#names + 1] = k .. (type(v) == "function" and "()" or "") end
  end
  table.sort(names)
  return #names > 0 and table.concat(names, ", ") or "nothing"
end

local function is_callable(v)
  if type(v) == "function" then return true end
  local mt = getmetatable(v)
  return type(mt) == "table" and mt.__call ~= nil
end

-- Loads a Lua module from package.path (the project folder comes first), with the
-- file name and a traceback in the message when loading fails.
local function load_module(spec, module)
  local path, tried = package.searchpath(module, package.path)
  if not path then
    return nil, ("target '%s': Lua module '%s' not found. Tried:%s\n" ..
      "Check runner.target in the config: 'examples.my_agent:run' means examples/my_agent.lua in the project folder.")
      :format(spec, module, ("\n" .. tried):gsub("\n\t?", "\n  "))
  end
  local ok, mod = xpcall(require, debug.traceback, module)
  if not ok then
    return nil, ("target '%s': error while loading %s:\n  %s"):format(spec, path, mod)
  end
  return mod, path
end

-- A module part with a '/' or a shared-library suffix names a native agent's library.
function M.is_native(module)
  return module:find("/", 1, true) ~= nil or module:match("%.so$") ~= nil or module:match("%.dylib$") ~= nil
end

-- The runner config the agent's init receives, as JSON ("{}" when the caller gave none).
local function runner_json(opts)
  if type(opts.runner) ~= "table" then return "{}" end
  local ok, text = pcall(require("fluxloop.json").encode, opts.runner)
  return ok and text or "{}"
end

-- "lib/x.so:agent" -> the agent object of fluxloop.native (callable as agent(input, ctx)).
-- A relative path starts at opts.project_dir.
local function resolve_native(spec, module, symbol, opts)
  opts = opts or {}
  local path = module
  if path:sub(1, 1) ~= "/" then path = (opts.project_dir or ".") .. "/" .. path end -- never a library-path search
  local agent, msg, code = require("fluxloop.native").load(path, symbol, runner_json(opts))
  if not agent then
    return nil, ("target '%s': cannot load the native agent: %s"):format(spec, msg), code
  end
  return agent, { spec = spec, module = module, path = path, symbol = symbol, native = true, name = symbol }
end

-- resolve(spec [, opts]) -> agent(input, ctx), info | nil, message [, code]
-- info = { spec, module, path, name } where name is the last module component (the
-- symbol for a native agent). opts.project_dir: where relative library paths of native
-- targets start; opts.runner: the runner config a native agent's init receives as JSON.
function M.resolve(spec, opts)
  if type(spec) ~= "string" or spec == "" then
    return nil, "runner.target is missing; set it to \"module.path:function\" (for example examples.my_agent:run)"
  end
  local module, attr = spec:match("^(.-):([^:]*)$")
  if not module or module == "" or attr == "" then
    return nil, ("target '%s': expected \"module.path:function\" (for example examples.my_agent:run) " ..
      "or \"path/to/libagent.so:symbol\""):format(spec)
  end
  local script = module:match("%.lua$") or module:match("%.py$")
  if script then
    -- A file path, not a module path: say how a target is written (and never advise a
    -- build command whose output would overwrite the user's file).
    local dotted = module:gsub("%.[%w]+$", ""):gsub("^%./", ""):gsub("/", ".")
    return nil, ("target '%s': a target names a module, not a file; write it \"%s:%s\" (module path with dots, "
      .. "relative to the project folder: %s)%s"):format(spec, dotted, attr, module,
      script == ".py" and "; Python agents run over the worker protocol (runner.command)" or "")
  end
  if M.is_native(module) then return resolve_native(spec, module, attr, opts) end
  local mod, path = load_module(spec, module)
  if not mod then return nil, path end
  if type(mod) ~= "table" then
    return nil, ("target '%s': %s returned a %s, not a table of functions; end the file with 'return M'")
      :format(spec, path, type(mod))
  end
  local parts = split_dots(attr)
  local owner, value, where = nil, mod, module
  for _, name in ipairs(parts) do
    if type(value) ~= "table" then
      return nil, ("target '%s': %s is a %s, not a table"):format(spec, where, type(value))
    end
    owner, value = value, value[name]
    if value == nil then
      return nil, ("target '%s': %s (%s) has no field '%s'; it has: %s")
        :format(spec, where, path, name, field_names(owner))
    end
    where = where .. (where == module and ":" or ".") .. name
  end
  if not is_callable(value) then
    return nil, ("target '%s': %s is a %s, not a function"):format(spec, where, type(value))
  end
  local agent = value
  if #parts > 1 then
    -- a.b:Table.method is called as a method: Table:method(input, ctx).
    local object, method = owner, value
    agent = function(input, ctx) return method(object, input, ctx) end
  end
  return agent, { spec = spec, module = module, path = path, name = module:match("([^.]+)$") }
end

return M
