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

-- Where the Python bridge and SDK live: installed (bin/../share/fluxloop/python), or in the
-- source tree the binary was built in (build/fluxloop, build/asan/fluxloop -> python/).
local function bridge_dir()
  local fs = require("fluxloop.fs")
  local exe = fs.realpath("/proc/self/exe")
  local dir = exe and exe:match("^(.*)/[^/]*$")
  for _ = 1, 3 do
    if not dir then return nil end
    for _, sub in ipairs({ "/share/fluxloop/python", "/python" }) do
      if fs.exists(dir .. sub .. "/fluxloop_worker.py") then return fs.realpath(dir .. sub) end
    end
    dir = dir:match("^(.*)/[^/]*$")
  end
  return nil
end

M.bridge_dir = bridge_dir

-- `fluxloop python-path`: prints the folder that holds the Python SDK (`import fluxloop`), for
-- PYTHONPATH outside a run (recording call arguments in production, a test of one's own).
function M.python_path_main()
  local dir = bridge_dir()
  if not dir then
    io.stderr:write("fluxloop: error: the Python SDK (python/fluxloop) is not installed beside this binary; "
      .. "run make install\n")
    return 2
  end
  io.stdout:write(dir, "\n")
  return 0
end

-- The Python file of a module path in the project (a.b -> a/b.py or a/b/__init__.py), or nil.
local function python_file(module, opts)
  local fs = require("fluxloop.fs")
  local base = (opts.runner and opts.runner.working_directory or opts.project_dir or ".") .. "/"
    .. module:gsub("%.", "/")
  for _, path in ipairs({ base .. ".py", base .. "/__init__.py" }) do
    if fs.exists(path) then return path end
  end
  return nil
end

-- A process agent: runner.command, or the Python bridge for a Python module.
local function resolve_process(spec, module, opts, command, python)
  local runner = opts.runner or {}
  local env = { FLUXLOOP_PROJECT_DIR = opts.project_dir or "." }
  if runner.python_path then env.FLUXLOOP_PYTHON_PATH = table.concat(runner.python_path, ":") end
  local agent, err = require("fluxloop.procagent").new({ command = command, target = spec,
    cwd = runner.working_directory or opts.project_dir, env = env, hello_ms = runner.start_timeout_ms })
  if not agent then
    local hint = python and ("; check runner.python (now %s): a project's venv is .venv/bin/python"):format(command[1])
      or "; check runner.command"
    return nil, ("target '%s': %s%s"):format(spec, err, hint)
  end
  -- The interpreter the worker named (past a version manager's shim, which costs a few
  -- hundred ms a start): every other worker of the experiment starts it directly.
  local exe = python and agent.hello and agent.hello.executable
  if type(exe) == "string" and exe ~= "" and type(opts.runner) == "table" then opts.runner.python = exe end
  return agent, { spec = spec, module = module, name = module:match("([^./]+)$") or module, process = true }
end

-- resolve(spec [, opts]) -> agent(input, ctx), info | nil, message [, code]
-- info = { spec, module, path, name } where name is the last module component (the
-- symbol for a native agent). opts.project_dir: where relative library paths of native
-- targets start; opts.runner: the runner config a native agent's init receives as JSON.
function M.resolve(spec, opts)
  if type(spec) ~= "string" or spec == "" then
    return nil, "runner.target is missing; set it to \"module.path:function\" (for example examples.my_agent:run)"
  end
  if spec:match("^http:") then return require("fluxloop.httptarget").resolve(spec, opts) end
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
  local runner = opts and opts.runner or {}
  if runner.command then return resolve_process(spec, module, opts, runner.command, false) end
  -- A Python module runs through the bridge: when there is no Lua module of that name (a
  -- .lua file wins), or when runner.language says so.
  if runner.language ~= "lua" and (runner.language == "python" or not package.searchpath(module, package.path))
      and python_file(module, opts or {}) then
    local dir = bridge_dir()
    if not dir then
      return nil, ("target '%s': %s is Python, but fluxloop's Python bridge (python/fluxloop_worker.py) "
        .. "is not installed beside this binary; run make install"):format(spec, python_file(module, opts))
    end
    local python = runner.python or "python3"
    if not python:find("/", 1, true) then -- a name on PATH: past a pyenv shim's ~250 ms a start
      python = require("fluxloop.pyenv").resolve(python, runner.working_directory or (opts and opts.project_dir) or ".")
    end
    return resolve_process(spec, module, opts, { python, dir .. "/fluxloop_worker.py" }, true)
  end
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
