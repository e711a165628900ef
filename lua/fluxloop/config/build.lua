-- config/build.lua - what the runner's keys mean: builds cfg (runner, output, inputs,
-- hooks, replay_args, personas) from a checked document, collecting every error.
local util = require("fluxloop.util")
local checker = require("fluxloop.config.checker")

local M = {}

-- Upper bounds: workers (threads or processes) at once, and a run's time limit (24 days,
-- what the C guard's int milliseconds hold).
M.MAX_PARALLEL = 1024
M.MAX_TIMEOUT_MS = 2147483647

local TARGET_HINT = '"module.path:function" (for example examples.my_agent:run)'

local function null() return require("fluxloop.json").null end
local join_key, got = checker.join_key, checker.got
local Checker = checker.Checker

-- Keys under runner: that are shaped like a command-line flag: the run would silently go
-- on without what the user asked for (no isolation, no time limit), so each is an error
-- that names the key meant.
M.FLAG_SHAPED = {
  isolate = "runner.isolation: process",
  inputs = "inputs.file: <path> (at the top level)", output_dir = "output.directory: <folder>",
  ["output-dir"] = "output.directory: <folder>", name = "name: <name> (at the top level)",
  hooks = "hooks: <file> (at the top level)", config = "the --config flag",
  script = "the --script flag", lua_path = "the --lua-path flag (or FLUXLOOP_LUA_PATH)",
  ["lua-path"] = "the --lua-path flag (or FLUXLOOP_LUA_PATH)", resume = "the --resume flag",
  retry_failed = "the --retry-failed flag", ["retry-failed"] = "the --retry-failed flag",
  quiet = "the --quiet flag", no_progress = "the --no-progress flag", ["no-progress"] = "the --no-progress flag",
}

-- A run's time limit in ms: runner.timeout (30s, 2m, 500ms; a bare number is ms), runner.timeout_ms,
-- or the Python tool's runner.timeout_seconds. Two that disagree are an error: which was meant?
function Checker:run_timeout()
  local duration = require("fluxloop.duration")
  local found = {}
  local function add(path, ms, text)
    if ms then found[#found + 1] = { path = path, ms = ms, text = text } end
  end
  local ms = self:integer("runner.timeout_ms", 0, " (milliseconds; 0 = no limit)", M.MAX_TIMEOUT_MS)
  add("runner.timeout_ms", ms, tostring(ms))
  local v = self:get("runner.timeout")
  if v ~= nil then
    local t, bare = duration.parse(v, M.MAX_TIMEOUT_MS)
    if not t then
      self:error("runner.timeout", bare .. ", got " .. got(v))
    elseif duration.suspicious(t, bare) then
      self:warn("runner.timeout", duration.did_you_mean("runner.timeout:", t))
    end
    add("runner.timeout", t, tostring(v))
  end
  local sec = self:get("runner.timeout_seconds")
  if sec ~= nil then
    local t = type(sec) == "number" and sec >= 0 and math.tointeger(math.floor(sec * 1000 + 0.5)) or nil
    if not t or t > M.MAX_TIMEOUT_MS then
      self:error("runner.timeout_seconds", "expected a number of seconds >= 0 (0 = no limit), got " .. got(sec))
    end
    add("runner.timeout_seconds", t, tostring(sec))
  end
  for i = 2, #found do
    if found[i].ms ~= found[1].ms then
      self:error(found[i].path, ("%s (%d ms) contradicts %s: %s (%d ms); keep one of them"):format(found[i].text,
        found[i].ms, found[1].path, found[1].text, found[1].ms))
    end
  end
  return found[1] and found[1].ms or 0
end

-- runner.max_retries / retry_delay (Python fluxloop keys, never used there either): a run is
-- not retried by itself here, so say what does it.
function Checker:retry_keys()
  local present = {}
  for _, k in ipairs({ "runner.max_retries", "runner.retry_delay" }) do
    if self:get(k) ~= nil then present[#present + 1] = k end
  end
  if #present == 0 then return end
  self:warn(present[1], table.concat(present, " and ") .. (#present == 1 and " has" or " have")
    .. " no effect: fluxloop does not retry a failed run "
    .. "on its own; after the experiment, `fluxloop run experiment --retry-failed DIR` runs its failed runs again "
    .. "(an http: target retries its requests with runner.http.retries)", true)
end

-- runner.rate_limit: {requests_per_second: R, burst: B} (or just R), one bucket shared by
-- every worker's HTTP requests (fluxloop.ratelimit).
function Checker:rate_limit()
  local path = "runner.rate_limit"
  local v = self:get(path)
  if v == nil then return nil end
  local function rate(p)
    local r = self:get(p)
    if type(r) ~= "number" or r ~= r or r <= 0 or r >= 1e9 then
      self:error(p, "expected a number > 0 (requests per second, 0.5 for one every 2 s), got " .. got(r))
      return nil
    end
    return r
  end
  if type(v) == "number" or type(v) == "string" then
    local r = rate(path)
    return r and { requests_per_second = r, burst = 1 } or nil
  end
  if not self:mapping(path, "requests_per_second: R, burst: B") then return nil end
  if self:get(path .. ".requests_per_second") == nil then
    self:error(path, "missing requests_per_second (a number > 0)")
    return nil
  end
  local r = rate(path .. ".requests_per_second")
  local b = self:integer(path .. ".burst", 1, " (requests that may go at once)", 1000000)
  return r and { requests_per_second = r, burst = b or 1 } or nil
end

-- An integer that may be written as ${NAME} (retries: "${RETRIES}"): the name comes from
-- env (runner.env), then the environment, and what it holds is checked as the integer would be.
function Checker:expanded_integer(path, env, min, hint, max)
  local v = self:get(path)
  if type(v) ~= "string" or not v:find("${", 1, true) then return self:integer(path, min, hint, max) end
  local text, missing = require("fluxloop.httptarget").expand(v, env)
  if not text then
    self:error(path, ("${%s} is not set in runner.env or in the environment"):format(missing))
    return nil
  end
  local digits = text:match("^%s*([+-]?%d+)%s*$")
  local n = digits and math.tointeger(tonumber(digits))
  if n == nil or n < min or (max and n > max) then
    local range = max and ("from %d to %d"):format(min, max) or (">= " .. min)
    self:error(path, ("expected an integer %s%s, got %s, which is '%s'"):format(range, hint or "", got(v),
      checker.one_line(text:sub(1, 60))))
    return nil
  end
  return n
end

-- runner.http: what an http: target sends and keeps; checked with the target itself (a bad
-- URL or a body template that is not JSON is a config error, before any run).
function Checker:http_target(target, env)
  local t = self:mapping("runner.http", "body:, headers:, output:")
  local is_http = type(target) == "string" and target:match("^http:") ~= nil
  if t and not is_http then
    self:warn("runner.http", "runner.http is used only by an http: target (runner.target: \"http:POST URL\")", true)
  end
  if not is_http then return nil end
  local http = {
    body = self:get("runner.http.body") ~= nil and self:string("runner.http.body", "a body template") or nil,
    output = self:string("runner.http.output", "a path such as choices.0.message.content"),
    timeout_ms = self:expanded_integer("runner.http.timeout_ms", env, 0, " (milliseconds per attempt; 0 = none)",
      M.MAX_TIMEOUT_MS),
    retries = self:expanded_integer("runner.http.retries", env, 0, nil, 20),
  }
  local headers = self:mapping("runner.http.headers", "Name: value lines")
  if headers then
    http.headers = {}
    for _, k in ipairs(util.sorted_keys(headers)) do
      local v = headers[k]
      if type(v) == "string" or type(v) == "number" then http.headers[tostring(k)] = tostring(v)
      else self:error(join_key("runner.http.headers", k), "expected a string, got " .. got(v)) end
    end
  end
  for _, p in ipairs(require("fluxloop.httptarget").check(target, http, env)) do self:error(p.path, p.message) end
  return http
end

function Checker:env_from(path, env)
  local t = self:mapping(path, "NAME: value lines")
  if t == nil then return end
  for _, k in ipairs(util.sorted_keys(t)) do
    local v = t[k]
    local vt = type(v)
    if vt == "string" or vt == "number" or vt == "boolean" then
      env[tostring(k)] = tostring(v)
    elseif v ~= null() then
      self:error(join_key(path, k), "expected a string, number or boolean, got " .. got(v))
    end
  end
end

function Checker:personas()
  local v = self:get("personas")
  local out = {}
  if v == nil then return out end
  local function add(name, persona, path)
    if out[name] ~= nil then
      self:warn(path, "persona '" .. name .. "' is defined twice; the last one is used")
    end
    out[name] = persona
  end
  if util.is_array(v) then
    for i, item in ipairs(v) do
      local p = "personas." .. i
      if not util.is_mapping(item) then
        self:error(p, "expected a mapping with a 'name' key, got " .. got(item))
      else
        local name = item.name
        if type(name) == "number" then name = tostring(name) end
        if name == nil or name == null() then
          self:error(p, "missing 'name'")
        elseif type(name) ~= "string" or name == "" then
          self:error(p .. ".name", "expected a string, got " .. got(name))
        else
          add(name, util.deep_copy(item), p)
        end
      end
    end
  elseif util.is_mapping(v) then
    for _, name in ipairs(self:keys_of("personas", v)) do
      local item, p = v[name], "personas." .. name
      if item == null() then
        add(name, { name = name }, p)
      elseif not util.is_mapping(item) then
        self:error(p, "expected a mapping (description:, characteristics:, ...), got "
          .. got(item))
      else
        local persona = util.deep_copy(item)
        if persona.name == nil or persona.name == null() then persona.name = name end
        add(name, persona, p)
      end
    end
  else
    self:error("personas", "expected a list of mappings with 'name' (or a mapping of "
      .. "name: persona), got " .. got(v))
  end
  return out
end

local function resolve(p, project_dir)
  if p == nil then return nil end
  return util.abspath(p, project_dir)
end

-- Builds cfg from the document, collecting every error.
function M.build(c, abs, project_dir)
  local root = c.doc
  c:scan_keys("", root)
  local cfg = { config_file = abs, project_dir = project_dir, doc = root, marks = c.marks, display = c.display }
  cfg.name = c:string("name")

  local runner = c:mapping("runner", "target:, iterations:, ...")
  local target
  if c:get("runner.target") ~= nil then
    target = c:string("runner.target", TARGET_HINT)
    if target ~= nil and not target:match("^[^:].*:.*[^:]$") then
      c:error("runner.target", "expected " .. TARGET_HINT .. ", got " .. got(target))
      target = nil
    end
  elseif c:get("runner.module_path") ~= nil then
    local module_path = c:string("runner.module_path", "a module path (examples.my_agent)")
    local fn = c:string("runner.function_name", "a function name") or "run"
    if module_path then target = module_path .. ":" .. fn end
  elseif runner ~= nil or c:get("runner") == nil then
    local file, line, col = c.display, 1, 1
    if c.marks["runner"] then file, line, col = c:where("runner", true) end
    c.seq = c.seq + 1
    table.insert(c.errors, { file = file, line = line, col = col, seq = c.seq,
      text = string.format("%s:%d:%d: runner.target: missing; set it to %s", file, line, col,
        TARGET_HINT) })
  end

  local function int1(p) return c:integer(p, 1) end
  local env = {}
  c:env_from("runner.environment_vars", env)
  c:env_from("runner.env", env)
  cfg.runner = {
    target = target,
    iterations = c:aliased("runner.iterations", "iterations", int1) or 10,
    parallel = c:aliased("runner.parallel", "parallel_runs",
      function(p) return c:integer(p, 1, nil, M.MAX_PARALLEL) end) or 1,
    timeout_ms = c:run_timeout(),
    isolation = c:choice("runner.isolation", { "thread", "process" }) or "thread",
    env = env,
    command = c:command("runner.command", project_dir),
    language = c:choice("runner.language", { "lua", "python" }),
    python = c:string("runner.python", "an interpreter (python3, .venv/bin/python)"),
    working_directory = resolve(c:string("runner.working_directory", "a folder path"), project_dir),
    python_path = c:path_list("runner.python_path", project_dir),
    start_timeout_ms = c:integer("runner.start_timeout_ms", 1, " (milliseconds a worker may take to say hello)",
      M.MAX_TIMEOUT_MS),
  }
  c:retry_keys()
  cfg.runner.rate_limit = c:rate_limit()
  cfg.runner.max_concurrent_requests = c:integer("runner.max_concurrent_requests", 1,
    " (HTTP requests in flight at once, over every worker)", 4096)
  cfg.runner.http = c:http_target(target, env)
  -- A project's own interpreter path (.venv/bin/python) is relative to the project.
  local py = cfg.runner.python
  if py and py:find("/", 1, true) then cfg.runner.python = resolve(py, project_dir) end

  c:mapping("output", "directory:, format:")
  local function str(p) return c:string(p, "a folder path") end
  local out_dir = c:aliased("output.directory", "output_directory", str)
  cfg.output = {
    directory = resolve(out_dir or "experiments", project_dir),
    format = c:choice("output.format", { "jsonl" }) or "jsonl",
  }

  c:mapping("inputs", "file: inputs/generated.yaml")
  local function file(p) return c:string(p, "a file path") end
  cfg.inputs_file = resolve(c:aliased("inputs.file", "inputs_file", file), project_dir)
  cfg.hooks = resolve(c:string("hooks", "a Lua file path"), project_dir)

  c:mapping("replay_args", "enabled:, recording_file:, ...")
  local replay = {
    enabled = c:boolean("replay_args.enabled") or false,
    recording_file = resolve(c:string("replay_args.recording_file", "a file path"),
      project_dir),
    override_param_path = c:string("replay_args.override_param_path", "a dotted path")
      or "data.content",
    select = c:choice("replay_args.select", { "last", "first", "cycle" }) or "last",
  }
  if replay.enabled and replay.recording_file == nil
      and c:get("replay_args.recording_file") == nil then
    c:error("replay_args.recording_file", "missing; replay_args.enabled is true, so set it "
      .. "to the JSONL recording (for example recordings/args.jsonl)", true)
  end
  cfg.replay_args = replay

  cfg.personas = c:personas()
  cfg.run_delay_seconds = c:number("run_delay_seconds", 0) or 0
  return cfg
end

return M
