-- init.lua - the `fluxloop` package: clock, json and yaml, and record() for argument recordings.
local json = require("fluxloop.json")
local replay = require("fluxloop.replay")
local secrets = require("fluxloop.secrets")
local util = require("fluxloop.util")

local M = {
  clock = require("fluxloop.clock"),
  json = json,
  yaml = require("fluxloop.yaml"),
}

local null = json.null
local ON = { ["1"] = true, ["true"] = true, yes = true }

-- Next auto iteration per recording file, then per target (Python: per recorder, per target).
local counters = {}

-- Making kwargs JSON-safe -------------------------------------------------------------

local function repr(v)
  local s = tostring(v)
  if #s > 100 then s = s:sub(1, 100) end
  return "<repr:" .. s .. ">"
end

local function function_text(fn, key)
  return replay.placeholder(fn) or ("<callable:%s>"):format(type(key) == "string" and key or "function")
end

local safe_table

-- A JSON-safe copy of v: functions become placeholders, odd values "<repr:...>".
local function safe(v, key, seen)
  local t = type(v)
  if t == "function" then return function_text(v, key) end
  if t == "table" then return safe_table(v, seen) end
  if t == "thread" or (t == "userdata" and v ~= null) then return repr(v) end
  if t == "string" then return secrets.mask_value(v) end -- a token shape under any key
  return v
end

-- A recorded key is secret when its name, lower-cased, contains one of these words: the
-- Python tool's rule, so its users' recordings mask the same keys (dbPassword, clientSecret,
-- apiKeys, authHeader; also keyword and author, which config.yaml's stricter rule keeps),
-- or when config.yaml's rule calls it secret (SESSION_COOKIE, GITHUB_PAT, BEARER).
local RECORDED_SECRETS = { "token", "password", "passwd", "secret", "key", "auth", "credential", "creds" }

local function is_recorded_secret(name)
  local lower = name:lower()
  for _, word in ipairs(RECORDED_SECRETS) do
    if lower:find(word, 1, true) then return true end
  end
  return secrets.is_secret_key(name)
end

-- Copy of a table with secret-looking keys masked "***" (in mappings at any depth,
-- including mappings inside lists). A function stays a placeholder: it is no secret.
function safe_table(t, seen)
  if seen[t] then return "<repr:cycle>" end
  seen[t] = true
  local array = util.is_array(t)
  local c = {}
  for k, x in pairs(t) do
    if not array and type(x) ~= "function" and type(k) == "string" and is_recorded_secret(k) then
      c[k] = "***"
    else
      c[k] = safe(x, k, seen)
    end
  end
  seen[t] = nil
  if array then setmetatable(c, json.array_mt) end
  return c
end

-- Writing a line ----------------------------------------------------------------------

local function ensure_dir(path)
  local dir = util.dirname(path)
  if dir == "." or dir == "/" or dir == "" then return true end
  local fs = require("fluxloop.fs")
  if fs.isdir(dir) then return true end
  local ok, err = fs.mkdirs(dir)
  if not ok then return nil, ("fluxloop.record: cannot create %s"):format(err) end
  return true
end

-- Appends text with one write(2), so lines from parallel workers do not interleave.
local function append(path, text)
  local ok, err = ensure_dir(path)
  if not ok then return nil, err end
  local f, oerr = io.open(path, "ab")
  if not f then return nil, "fluxloop.record: cannot open " .. oerr end
  f:setvbuf("full", #text + 1)
  local wok, werr = f:write(text)
  local cok, cerr = f:close()
  if not wok or not cok then
    return nil, ("fluxloop.record: cannot write %s: %s"):format(path, tostring(werr or cerr))
  end
  return true
end

local function check_args(fname, target, kwargs, iteration)
  if type(target) ~= "string" or target == "" then
    error(("fluxloop.%s: target must be a non-empty string such as \"agents.chat:run\""):format(fname), 3)
  end
  if type(kwargs) ~= "table" or util.is_array(kwargs) then
    error(("fluxloop.%s: kwargs must be a table of argument names to values"):format(fname), 3)
  end
  if iteration ~= nil and not (math.type(iteration) and math.tointeger(iteration) and iteration >= 0) then
    error(("fluxloop.%s: iteration must be an integer >= 0 or nil"):format(fname), 3)
  end
end

local function write_record(path, target, kwargs, iteration)
  local per = counters[path] or {}
  counters[path] = per
  iteration = iteration and math.tointeger(iteration) or (per[target] or -1) + 1
  local line = json.encode({
    _version = "1", iteration = iteration, target = target,
    kwargs = safe_table(kwargs, {}), timestamp = M.clock.utc_iso(),
  })
  local ok, err = append(path, line .. "\n")
  if not ok then return nil, err end
  per[target] = iteration
  return true
end

local function env_reader(env)
  if type(env) == "function" then return env end
  if type(env) == "table" then return function(name) return env[name] end end
  error("fluxloop._record_with: env must be a table or a function like os.getenv", 3)
end

local function record_in(getenv, target, kwargs, iteration)
  if not ON[tostring(getenv("FLUXLOOP_RECORD_ARGS") or ""):lower()] then return false end
  local path = getenv("FLUXLOOP_RECORDING_FILE")
  if path == nil or path == "" then
    return nil, "fluxloop.record: FLUXLOOP_RECORD_ARGS is on but FLUXLOOP_RECORDING_FILE is not set; "
      .. "set it to the JSONL file to append to (for example recordings/args.jsonl)"
  end
  return write_record(path, target, kwargs, iteration)
end

-- Public -----------------------------------------------------------------------------

-- record(target, kwargs [, iteration]) -> true | false (recording off) | nil, message
-- Appends {"_version":"1","iteration":N,"target":...,"kwargs":{...},"timestamp":...} to
-- $FLUXLOOP_RECORDING_FILE when $FLUXLOOP_RECORD_ARGS is 1, true or yes.
function M.record(target, kwargs, iteration)
  check_args("record", target, kwargs, iteration)
  return record_in(os.getenv, target, kwargs, iteration)
end

-- The seams record() is made of, for specs and scripts that do not go through the
-- environment: _record_with(env table | getenv function, ...) and _record_to(path, ...).
function M._record_with(env, target, kwargs, iteration)
  check_args("_record_with", target, kwargs, iteration)
  return record_in(env_reader(env), target, kwargs, iteration)
end

function M._record_to(path, target, kwargs, iteration)
  if type(path) ~= "string" or path == "" then error("fluxloop._record_to: path must be a file path", 2) end
  check_args("_record_to", target, kwargs, iteration)
  return write_record(path, target, kwargs, iteration)
end

return M
