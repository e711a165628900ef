-- config.lua - finds, loads, validates and snapshots configs/simulation.yaml.
local util = require("fluxloop.util")

local M = {}

local DEFAULT_CONFIG = "configs/simulation.yaml"
local NOT_FOUND_HINT = "(run fluxloop from your project folder, which holds "
  .. "configs/simulation.yaml, or pass --config FILE)"
-- Upper bounds: workers (threads or processes) at once, and a run's time limit (24 days,
-- what the C guard's int milliseconds hold).
M.MAX_PARALLEL = 1024
M.MAX_TIMEOUT_MS = 2147483647

local TARGET_HINT = '"module.path:function" (for example examples.my_agent:run)'

-- Keys the runner reads, per mapping path ("" is the top level).
local KNOWN = {
  [""] = { "name", "runner", "output", "inputs", "hooks", "replay_args", "personas",
    "run_delay_seconds", "iterations", "parallel_runs", "output_directory", "inputs_file" },
  runner = { "target", "iterations", "parallel", "timeout_ms", "isolation", "env",
    "module_path", "function_name", "environment_vars", "command", "language", "python",
    "working_directory", "python_path", "start_timeout_ms", "rate_limit", "max_concurrent_requests", "http" },
  ["runner.rate_limit"] = { "requests_per_second", "burst" },
  ["runner.http"] = { "body", "headers", "output", "timeout_ms", "retries" },
  output = { "directory", "format" },
  inputs = { "file" },
  replay_args = { "enabled", "recording_file", "override_param_path", "select" },
}

-- Keys of the Python fluxloop that are accepted and have no effect here.
local IGNORED = {
  [""] = { "description", "version", "save_traces", "save_aggregated_metrics", "seed",
    "multi_turn", "evaluators", "collector_url", "collector_api_key", "tags", "metadata",
    "variation_strategies", "variation_count", "variation_temperature", "variation_model",
    "custom_variation_prompt", "base_inputs", "input_template", "input_generation",
    "source_root" },
  runner = { "timeout_seconds", "max_retries",
    "retry_delay", "factory", "factory_kwargs", "stream_output_path", "requirements_file",
    "setup_commands", "use_docker", "docker_image", "docker_build_context",
    "docker_volumes" },
  replay_args = { "callable_providers" },
}

local function set_of(list)
  local s = {}
  for _, v in ipairs(list) do s[v] = true end
  return s
end

local KNOWN_SET, IGNORED_SET = {}, {}
for section, keys in pairs(KNOWN) do KNOWN_SET[section] = set_of(keys) end
for section, keys in pairs(IGNORED) do IGNORED_SET[section] = set_of(keys) end

local function yaml() return require("fluxloop.yaml") end
local function null() return require("fluxloop.json").null end

local function fs_module()
  local ok, fs = pcall(require, "fluxloop.fs")
  if ok and type(fs) == "table" then return fs end
  return nil
end

local function exists(p)
  local fs = fs_module()
  if fs and fs.exists then return fs.exists(p) and true or false end
  local f = io.open(p, "r")
  if f then f:close() return true end
  return false
end

local function isdir(p)
  local fs = fs_module()
  if fs and fs.isdir then return fs.isdir(p) and true or false end
  local f = io.open(p, "r")
  if not f then return false end
  local _, _, code = f:read(1)
  f:close()
  return code == 21 -- EISDIR
end

local read_file = util.read_file

-- Joins a display folder and a file name without a leading "./".
local function display_join(dir, name)
  if dir == "." then return name end
  return util.join_path(dir, name)
end

local function project_dir_of(abs)
  local dir = util.dirname(abs)
  if util.basename(dir) == "configs" then return util.dirname(dir) end
  return dir
end

-- Finds the config file. Returns its absolute path, the project folder and the
-- path as the user would write it (for messages); or nil and a message.
function M.locate(config_flag, cwd)
  cwd = cwd or util.getcwd()
  local display = config_flag or DEFAULT_CONFIG
  local path = util.abspath(display, cwd)
  if config_flag and isdir(path) then
    -- A project folder (or a configs/ folder) was named.
    for _, rel in ipairs({ "configs/simulation.yaml", "simulation.yaml" }) do
      local p = util.join_path(path, rel)
      if exists(p) and not isdir(p) then
        return p, project_dir_of(p), display_join(config_flag:gsub("/+$", ""), rel)
      end
    end
    return nil, "config file not found: " .. display_join(config_flag:gsub("/+$", ""),
      "configs/simulation.yaml") .. " " .. NOT_FOUND_HINT
  end
  if not exists(path) then
    if config_flag then
      return nil, ("config file not found: %s (check the path given to --config; it is relative to "
        .. "the folder you run fluxloop from, %s)"):format(display, cwd)
    end
    return nil, "config file not found: " .. display .. " " .. NOT_FOUND_HINT
  end
  return path, project_dir_of(path), display
end

-- Messages are one line each: control characters of user text show as \n, \t, \27 ...
local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
local function one_line(s)
  return (s:gsub("%c", function(c) return ESCAPES[c] or ("\\" .. c:byte()) end))
end

-- A short rendering of a value for "got ..." in messages.
local function got(v)
  local t = type(v)
  if t == "string" then
    if #v > 60 then v = v:sub(1, 57) .. "..." end
    -- A quoted number ("3") is a string to YAML: say so, or 'got 3' reads like a riddle.
    if tonumber(v) then return ('the string "%s" (write it without quotes)'):format(v) end
    return "'" .. one_line(v) .. "'"
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return util.is_array(v) and "a list" or "a mapping"
  elseif v == null() then
    return "null"
  end
  return t
end

local function join_key(path, key)
  if path == "" then return tostring(key) end
  return path .. "." .. tostring(key)
end

-- Merging of Python multi-section configs ------------------------------------

local function tag_marks(marks, file)
  for _, m in pairs(marks) do m.file = file end
  return marks
end

local function has_prefix(p, prefix)
  return p == prefix or p:sub(1, #prefix + 1) == prefix .. "."
end

-- Deep-merges src into dst (both mappings at path): mappings merge, anything
-- else from src replaces; marks follow the value that won.
local function merge_into(dst, dmarks, src, smarks, path)
  local skeys = (smarks[path] and smarks[path].keys) or util.sorted_keys(src)
  local dmark = dmarks[path]
  if dmark == nil then
    dmark = { line = 1, col = 1, keys = {} }
    dmarks[path] = dmark
  end
  dmark.keys = dmark.keys or {}
  for _, k in ipairs(skeys) do
    local p = join_key(path, k)
    local dv, sv = dst[k], src[k]
    if util.is_mapping(dv) and util.is_mapping(sv) then
      merge_into(dv, dmarks, sv, smarks, p)
    else
      if dv == nil then dmark.keys[#dmark.keys + 1] = k end
      dst[k] = sv
      for mp in pairs(dmarks) do
        if has_prefix(mp, p) then dmarks[mp] = nil end
      end
      for mp, m in pairs(smarks) do
        if has_prefix(mp, p) then dmarks[mp] = m end
      end
    end
  end
end

-- Reads and decodes one file; returns doc, marks or nil, message.
local function decode_file(abs, display)
  local text, err = read_file(abs)
  if text == nil then
    if not exists(abs) then
      return nil, "config file not found: " .. display .. " " .. NOT_FOUND_HINT
    end
    return nil, "cannot read " .. display .. ": " .. tostring(err)
  end
  local doc, marks = yaml().decode(text, display, true)
  if doc == nil then return nil, marks end
  return doc, tag_marks(marks or {}, display)
end

-- The sections a Python project splits its config into, merged in the order
-- project -> input -> simulation when simulation.yaml sits in configs/.
-- Returns doc, marks or nil, message.
function M.load_sections(abs, display)
  local sections = {}
  local dir = util.dirname(abs)
  if util.basename(abs) == "simulation.yaml" and util.basename(dir) == "configs" then
    for _, name in ipairs({ "project.yaml", "input.yaml" }) do
      local p = util.join_path(dir, name)
      if exists(p) then
        sections[#sections + 1] = { abs = p, display = display_join(util.dirname(display), name) }
      end
    end
  end
  sections[#sections + 1] = { abs = abs, display = display }
  local doc, marks
  local all_empty = true
  for _, s in ipairs(sections) do
    local d, m = decode_file(s.abs, s.display)
    if d == nil then return nil, m end
    if d ~= null() then
      all_empty = false
      if not util.is_mapping(d) then
        local mark = m[""] or { line = 1, col = 1 }
        return nil, string.format("%s:%d:%d: the config must be a mapping of keys "
          .. "(runner:, output:, ...), got %s", s.display, mark.line, mark.col, got(d))
      end
      if doc == nil then
        doc, marks = d, m
      else
        merge_into(doc, marks, d, m, "")
      end
    end
  end
  if all_empty then
    return nil, display .. ": the config is empty; it needs at least runner.target"
  end
  return doc, marks
end

-- Validation ------------------------------------------------------------------

-- A validation pass over one decoded document.
local Checker = {}
Checker.__index = Checker

local function new_checker(doc, marks, display)
  return setmetatable({ doc = doc, marks = marks, display = display,
    errors = {}, warnings = {}, notice = {}, seq = 0 }, Checker)
end

-- "FILE:LINE:COL" of the value at path (or of its key, when at_key).
function Checker:where(path, at_key)
  local m = self.marks[path]
  while m == nil and path ~= "" do
    path = path:match("^(.*)%.[^.]*$") or ""
    m = self.marks[path]
    at_key = true
  end
  m = m or {}
  local line, col = m.line or 1, m.col or 1
  if at_key and m.key_line then line, col = m.key_line, m.key_col end
  return m.file or self.display, line, col
end

function Checker:add(list, path, at_key, text)
  local file, line, col = self:where(path, at_key)
  self.seq = self.seq + 1
  list[#list + 1] = { file = file, line = line, col = col, seq = self.seq,
    text = string.format("%s:%d:%d: %s", file, line, col, one_line(text)) }
end

function Checker:error(path, text, at_key)
  self:add(self.errors, path, at_key, path .. ": " .. text)
end

function Checker:warn(path, text, at_key)
  self:add(self.warnings, path, at_key, "warning: " .. text)
end

-- Value at a dotted path of plain keys, nil when absent or null.
function Checker:get(path)
  local v = self.doc
  for part in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil end
    v = v[part]
  end
  if v == null() then return nil end
  return v
end

-- Keys of the mapping at path in document order.
function Checker:keys_of(path, t)
  local m = self.marks[path]
  if m and m.keys then
    local keys, seen = {}, {}
    for _, k in ipairs(m.keys) do
      if t[k] ~= nil and not seen[k] then keys[#keys + 1] = k seen[k] = true end
    end
    for _, k in ipairs(util.sorted_keys(t)) do
      if not seen[k] then keys[#keys + 1] = k end
    end
    return keys
  end
  return util.sorted_keys(t)
end

-- Keys under runner: that are shaped like a command-line flag: the run would silently go
-- on without what the user asked for (no isolation, no time limit), so each is an error
-- that names the key meant.
local FLAG_SHAPED = {
  isolate = "runner.isolation: process", timeout = "runner.timeout_ms: <milliseconds>",
  inputs = "inputs.file: <path> (at the top level)", output_dir = "output.directory: <folder>",
  ["output-dir"] = "output.directory: <folder>", name = "name: <name> (at the top level)",
  hooks = "hooks: <file> (at the top level)", config = "the --config flag",
  script = "the --script flag", lua_path = "the --lua-path flag (or FLUXLOOP_LUA_PATH)",
  ["lua-path"] = "the --lua-path flag (or FLUXLOOP_LUA_PATH)", resume = "the --resume flag",
  retry_failed = "the --retry-failed flag", ["retry-failed"] = "the --retry-failed flag",
  quiet = "the --quiet flag", no_progress = "the --no-progress flag", ["no-progress"] = "the --no-progress flag",
}

-- Reports unknown keys (with a suggestion) and collects the ignored Python keys
-- of the mapping at path.
function Checker:scan_keys(path, t)
  local known, ignored = KNOWN_SET[path], IGNORED_SET[path] or {}
  local candidates = {}
  for _, k in ipairs(KNOWN[path]) do candidates[#candidates + 1] = k end
  for _, k in ipairs(IGNORED[path] or {}) do candidates[#candidates + 1] = k end
  for _, k in ipairs(self:keys_of(path, t)) do
    local p = join_key(path, k)
    if ignored[k] then
      self.notice[#self.notice + 1] = p
    elseif not known[k] and path == "runner" and FLAG_SHAPED[k] then
      self:error(p, ("not a config key (it reads like the --%s flag): use %s")
        :format(tostring(k):gsub("_", "-"), FLAG_SHAPED[k]))
    elseif not known[k] then
      local guess = type(k) == "string" and util.closest(k, candidates) or nil
      local text = "unknown key '" .. p .. "'"
      if guess then text = text .. " (did you mean '" .. join_key(path, guess) .. "'?)" end
      self:warn(p, text, true)
    end
  end
end

-- The mapping at path, nil when unset; an error when it is something else.
function Checker:mapping(path, example)
  local v = self:get(path)
  if v == nil then return nil end
  if not util.is_mapping(v) then
    self:error(path, "expected a mapping (" .. example .. "), got " .. got(v))
    return nil
  end
  if KNOWN[path] then self:scan_keys(path, v) end
  return v
end

function Checker:integer(path, min, hint, max)
  local v = self:get(path)
  if v == nil then return nil end
  local n = v
  if math.type(n) == "float" and n == math.floor(n) and n > -2^53 and n < 2^53 then
    n = math.tointeger(n)
  end
  if math.type(n) ~= "integer" or n < min or (max and n > max) then
    local range = max and ("from %d to %d"):format(min, max) or (">= " .. min)
    self:error(path, "expected an integer " .. range .. (hint or "") .. ", got " .. got(v))
    return nil
  end
  return n
end

function Checker:number(path, min)
  local v = self:get(path)
  if v == nil then return nil end
  if type(v) ~= "number" or v ~= v or v < min or v == math.huge then
    self:error(path, "expected a number >= " .. min .. ", got " .. got(v))
    return nil
  end
  return v
end

function Checker:string(path, what)
  local v = self:get(path)
  if v == nil then return nil end
  if type(v) == "number" then return tostring(v) end
  if type(v) ~= "string" or v == "" then
    self:error(path, "expected " .. (what or "a string") .. ", got " .. got(v))
    return nil
  end
  return v
end

function Checker:boolean(path)
  local v = self:get(path)
  if v == nil then return nil end
  if type(v) ~= "boolean" then
    self:error(path, "expected true or false, got " .. got(v))
    return nil
  end
  return v
end

function Checker:choice(path, choices)
  local v = self:get(path)
  if v == nil then return nil end
  for _, c in ipairs(choices) do
    if v == c then return v end
  end
  local text = "expected " .. table.concat(choices, " or ") .. ", got " .. got(v)
  if type(v) == "string" then
    local guess = util.closest(v, choices)
    if guess then text = text .. " (did you mean '" .. guess .. "'?)" end
  end
  self:error(path, text)
  return nil
end

-- The value of a flat Python alias or of its runner.* key; the latter wins.
function Checker:aliased(new_path, old_path, read)
  local new, old = read(new_path), read(old_path)
  if new ~= nil and old ~= nil and new ~= old then
    self:warn(old_path, "both '" .. old_path .. "' and '" .. new_path .. "' are set; using "
      .. new_path, true)
  end
  if new ~= nil then return new end
  return old
end

-- runner.command: a list of words (no shell), e.g. ["node", "agents/echo.js"].
function Checker:command(path)
  local v = self:get(path)
  if v == nil then return nil end
  if not util.is_array(v) or #v == 0 then
    self:error(path, 'expected a list of words such as ["node", "agents/echo.js"] (no shell), got ' .. got(v))
    return nil
  end
  local words = {}
  for i, w in ipairs(v) do
    if type(w) ~= "string" and type(w) ~= "number" then
      self:error(join_key(path, i), "expected a string, got " .. got(w))
      return nil
    end
    words[i] = tostring(w)
  end
  return words
end

-- A folder or a list of folders, each relative to the project.
function Checker:path_list(path, project_dir)
  local v = self:get(path)
  if v == nil then return nil end
  if type(v) == "string" then v = { v } end
  if not util.is_array(v) then
    self:error(path, "expected a folder or a list of folders, got " .. got(v))
    return nil
  end
  local out = {}
  for i, d in ipairs(v) do
    if type(d) ~= "string" then self:error(join_key(path, i), "expected a folder, got " .. got(d)) return nil end
    out[i] = util.abspath(d, project_dir)
  end
  return out
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
    timeout_ms = self:integer("runner.http.timeout_ms", 0, " (milliseconds per attempt; 0 = none)", M.MAX_TIMEOUT_MS),
    retries = self:integer("runner.http.retries", 0, nil, 20),
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
function Checker:build(abs, project_dir)
  local c = self
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
    timeout_ms = c:integer("runner.timeout_ms", 0, " (milliseconds; 0 = no limit)", M.MAX_TIMEOUT_MS) or 0,
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

local function sorted_texts(list, files)
  table.sort(list, function(a, b)
    local fa, fb = files[a.file] or 0, files[b.file] or 0
    if fa ~= fb then return fa < fb end
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.seq < b.seq
  end)
  local out = {}
  for i, e in ipairs(list) do out[i] = e.text end
  return out
end

-- Loads and validates the config at path. Returns cfg, warnings (a list of
-- lines; the one starting "notice:" lists the Python keys that have no effect)
-- or nil and every error, one per line.
function M.load(path, project_dir, display_name)
  assert(type(path) == "string", "config.load: path must be a string")
  local display = display_name or path
  local abs = util.abspath(path)
  project_dir = project_dir and util.abspath(project_dir) or project_dir_of(abs)
  local doc, marks = M.load_sections(abs, display)
  if doc == nil then return nil, marks end
  local c = new_checker(doc, marks, display)
  local cfg = c:build(abs, project_dir)
  -- Order messages by file (project, input, simulation), then position.
  local files, n = {}, 0
  for _, name in ipairs({ "project.yaml", "input.yaml" }) do
    n = n + 1
    files[display_join(util.dirname(display), name)] = n
  end
  files[display] = n + 1
  if #c.errors > 0 then
    -- The warnings go with the errors: an unknown key's "did you mean" is often the cause
    -- (`runer:` makes runner.target missing).
    local texts = sorted_texts(c.errors, files)
    for _, w in ipairs(sorted_texts(c.warnings, files)) do texts[#texts + 1] = w end
    return nil, table.concat(texts, "\n")
  end
  local warnings = sorted_texts(c.warnings, files)
  if #c.notice > 0 then
    warnings[#warnings + 1] = "notice: these Python fluxloop keys have no effect here: "
      .. table.concat(c.notice, ", ")
  end
  return cfg, warnings
end

-- where(cfg, path) -> "FILE:LINE:COL" of the value at a dotted path of the loaded config
-- (of the nearest enclosing key when it is not there), for problems found after loading.
function M.where(cfg, path)
  local file, line, col = new_checker(cfg.doc, cfg.marks or {}, cfg.display or cfg.config_file):where(path)
  return ("%s:%d:%d"):format(file, line, col)
end

-- Overrides from the command line ---------------------------------------------

local function present(t, key)
  return type(t) == "table" and t[key] ~= nil and t[key] ~= null()
end

-- Writes v into doc at the keys the user used: "section.key" and/or the flat
-- alias when present, else "section.key".
local function write_doc(doc, section, key, alias, v)
  local sec = doc[section]
  local wrote = false
  if alias and present(doc, alias) then
    doc[alias] = v
    wrote = true
  end
  if present(sec, key) or not wrote then
    if not util.is_mapping(sec) then
      sec = {}
      doc[section] = sec
    end
    sec[key] = v
  end
end

-- Applies the command-line flags to cfg (and to cfg.doc, so the snapshot shows
-- them). Paths in flags must already be absolute.
function M.apply_overrides(cfg, flags)
  local doc = cfg.doc
  if flags.iterations ~= nil then
    cfg.runner.iterations = flags.iterations
    write_doc(doc, "runner", "iterations", "iterations", flags.iterations)
  end
  if flags.parallel ~= nil then
    cfg.runner.parallel = flags.parallel
    write_doc(doc, "runner", "parallel", "parallel_runs", flags.parallel)
  end
  if flags.timeout_ms ~= nil then
    cfg.runner.timeout_ms = flags.timeout_ms
    write_doc(doc, "runner", "timeout_ms", nil, flags.timeout_ms)
  end
  if flags.isolate then
    cfg.runner.isolation = "process"
    write_doc(doc, "runner", "isolation", nil, "process")
  end
  if flags.rate_limit ~= nil then
    local limit = cfg.runner.rate_limit or { burst = 1 }
    limit.requests_per_second = flags.rate_limit
    cfg.runner.rate_limit = limit
    local sec = doc.runner
    if util.is_mapping(sec) and util.is_mapping(sec.rate_limit) then
      sec.rate_limit.requests_per_second = flags.rate_limit
    else
      write_doc(doc, "runner", "rate_limit", nil, { requests_per_second = flags.rate_limit })
    end
  end
  if flags.inputs ~= nil then
    cfg.inputs_file = flags.inputs
    write_doc(doc, "inputs", "file", "inputs_file", flags.inputs)
  end
  if flags.output_dir ~= nil then
    cfg.output.directory = flags.output_dir
    write_doc(doc, "output", "directory", "output_directory", flags.output_dir)
  end
  if flags.name ~= nil then
    cfg.name = flags.name
    doc.name = flags.name
  end
  if flags.hooks ~= nil then
    cfg.hooks = flags.hooks
    doc.hooks = flags.hooks
  end
  return cfg
end

-- Secrets -----------------------------------------------------------------------

-- True when a key name looks like it holds a secret (fluxloop.secrets has the rules).
function M.is_secret_key(name)
  return require("fluxloop.secrets").is_secret_key(name)
end

-- A copy of v with every secret masked: values of secret-looking keys at any depth, and
-- secret-shaped values (tokens, URL passwords) under any key.
function M.mask(v)
  return require("fluxloop.secrets").mask(v)
end

-- The resolved config as YAML text, secrets masked, keys in the user's order.
function M.snapshot(cfg)
  return yaml().encode(M.mask(cfg.doc), { order = cfg.marks })
end

return M
