-- httptarget.lua - `runner.target: "http:POST http://127.0.0.1:8000/chat"`: an agent that is
-- already a web service, tested with no code. Each run sends runner.http.body (a template
-- whose {{input}}, {{persona}}, {{iteration}}, {{trace_id}} and {{metadata.NAME}} become the
-- JSON of the run's values) with runner.http.headers, and the output is runner.http.output
-- (a path into the JSON answer) or the whole answer. ${NAME} in the URL, the body, the
-- output path and the headers comes from runner.env, then the environment.
local json = require("fluxloop.json")
local secrets = require("fluxloop.secrets")

local M = {}

-- Bytes of an error answer quoted in a failed run's message.
M.ERROR_BODY_LIMIT = 2000

local PLACEHOLDER_HINT = "use {{input}}, {{persona}}, {{iteration}}, {{trace_id}} or {{metadata.NAME}}"
local METHODS = { GET = true, POST = true, PUT = true, PATCH = true, DELETE = true, HEAD = true, OPTIONS = true }

-- parse(spec) -> method, url | nil, message: "http:POST http://host/path".
function M.parse(spec)
  local rest = type(spec) == "string" and spec:match("^http:(.*)$")
  if not rest then return nil, "expected \"http:METHOD URL\"" end
  local method, url = rest:match("^%s*(%a+)%s+(%S+)%s*$")
  if not method then
    return nil, ("expected \"http:METHOD URL\" such as \"http:POST http://127.0.0.1:8000/chat\", got '%s'"):format(spec)
  end
  if not METHODS[method] then
    return nil, ("unknown HTTP method '%s' (use GET, POST, PUT, PATCH or DELETE, in capitals)"):format(method)
  end
  local ok, why = require("fluxloop.http").check_url(url)
  if not ok then return nil, ("invalid URL '%s': %s"):format(url, why) end
  return method, url
end

-- compile(text) -> parts | nil, message: the body template as literal strings and
-- placeholder names ({ "a", {name = "input"}, "b" }).
function M.compile(text)
  local parts, pos = {}, 1
  while true do
    local s, e, inner = text:find("{{%s*([^{}]-)%s*}}", pos)
    if not s then break end
    if s > pos then parts[#parts + 1] = text:sub(pos, s - 1) end
    local name, key = inner, nil
    if inner:match("^metadata%.") then name, key = "metadata", inner:sub(10) end
    if not (name == "input" or name == "persona" or name == "iteration" or name == "trace_id"
        or (name == "metadata" and key ~= "")) then
      return nil, ("unknown placeholder {{%s}}: %s"):format(inner, PLACEHOLDER_HINT)
    end
    parts[#parts + 1] = { name = name, key = key }
    pos = e + 1
  end
  if pos <= #text then parts[#parts + 1] = text:sub(pos) end
  return parts
end

local function value_of(p, v)
  local x
  if p.name == "metadata" then x = type(v.metadata) == "table" and v.metadata[p.key] or nil
  else x = v[p.name] end
  if x == nil then return json.null end
  return x
end

-- render(parts, values) -> text: values = {input, persona, iteration, trace_id, metadata}.
function M.render(parts, values)
  local out = {}
  for i, p in ipairs(parts) do
    out[i] = type(p) == "string" and p or json.encode(value_of(p, values))
  end
  return table.concat(out)
end

-- The value a template is checked with at load time: typical of each placeholder.
local SAMPLE = { input = "x", persona = "x", iteration = 0, trace_id = "trace_001", metadata = { } }
setmetatable(SAMPLE.metadata, { __index = function() return "x" end })

local function json_body(headers)
  for k, v in pairs(headers or {}) do
    local name, value = k, v
    if math.type(k) == "integer" then name, value = tostring(v):match("^([^:]*):%s*(.*)$") end
    if type(name) == "string" and name:lower() == "content-type" then
      return tostring(value):lower():find("json", 1, true) ~= nil
    end
  end
  return true
end

-- expand(value, env) -> text | nil, name: ${NAME} from env (runner.env), then the process
-- environment; nil and the first name found in neither.
function M.expand(value, env)
  local missing
  local text = tostring(value):gsub("%${([%w_]+)}", function(name)
    local v = env and env[name]
    if v == nil then v = os.getenv(name) end
    if v == nil then missing = missing or name return "" end
    return tostring(v)
  end)
  if missing then return nil, missing end
  return text
end

local function not_set(name) return ("${%s} is not set in runner.env or in the environment"):format(name) end

-- The body template, checked once its ${NAME}s are in: placeholders known, and JSON with
-- typical values when the headers say JSON.
local function check_body(body, headers, bad)
  local parts, err = M.compile(body)
  if not parts then
    bad("runner.http.body", err)
  elseif json_body(headers) then
    local ok, perr = json.decode(M.render(parts, SAMPLE), "body")
    if ok == nil then
      bad("runner.http.body", ("not valid JSON once its placeholders are replaced (%s). A placeholder "
        .. "stands for a JSON value, quotes included: write \"content\": {{input}}, not \"content\": \"{{input}}\"")
        :format(perr))
    end
  end
end

-- check(target, http, env) -> list of { path, message }: what is wrong with an http: target
-- and runner.http, found when the config loads (before any run).
function M.check(target, http, env)
  local problems = {}
  local function bad(path, msg) problems[#problems + 1] = { path = path, message = msg } end
  local spec, missing = M.expand(target, env)
  if not spec then bad("runner.target", not_set(missing)) end
  if spec then
    local method, why = M.parse(spec)
    if not method then bad("runner.target", why) end
  end
  http = http or {}
  for _, key in ipairs({ "body", "output" }) do
    if type(http[key]) == "string" then
      local text, name = M.expand(http[key], env)
      if not text then bad("runner.http." .. key, not_set(name))
      elseif key == "body" then check_body(text, http.headers, bad) end
    end
  end
  for name, value in pairs(type(http.headers) == "table" and http.headers or {}) do
    local ok, name_missing = M.expand(value, env)
    if not ok then bad("runner.http.headers." .. tostring(name), not_set(name_missing)) end
  end
  return problems
end

-- The ${NAME}s of a text that stand in a secret place: every one when the text is a secret
-- header's value (all), else those whose NAME looks secret (SERVICE_TOKEN), or that are the
-- value of a secret key in the text ("api_key": "${K}", ?token=${K}) or a URL's password.
local function secret_names(text, all)
  local names = {}
  for at, name in tostring(text):gmatch("()%${([%w_]+)}") do
    local before = text:sub(1, at - 1)
    local key = before:match('"([^"]+)"%s*:%s*"?[^",{}]*$') or before:match("[?&]([^?&=#]+)=[^&#]*$")
    if all or secrets.is_secret_key(name) or (key and secrets.is_secret_key(key))
        or before:match("://[^/@:]*:[^/@]*$") then
      names[#names + 1] = name
    end
  end
  return names
end

-- secret_values(target, http, env) -> the values the target's ${NAME}s put in a secret place
-- (see secret_names), 8 bytes or more: the recorders mask them wherever a trace echoes them.
function M.secret_values(target, http, env)
  local list = {}
  local function add(text, all)
    for _, name in ipairs(secret_names(text, all)) do
      local v = env and env[name]
      if v == nil then v = os.getenv(name) end
      if v ~= nil and #tostring(v) >= 8 then list[#list + 1] = tostring(v) end
    end
  end
  http = type(http) == "table" and http or {}
  add(target or "", false)
  if type(http.body) == "string" then add(http.body, false) end
  if type(http.output) == "string" then add(http.output, false) end
  for name, value in pairs(type(http.headers) == "table" and http.headers or {}) do
    add(tostring(value), secrets.is_secret_key(tostring(name)))
  end
  return list
end

-- A path such as choices.0.message.content into a decoded JSON value (integer segments
-- index arrays from 0). Returns the value | nil, the segment that was missing.
local function dig(v, path)
  for seg in path:gmatch("[^.]+") do
    if type(v) ~= "table" then return nil, seg end
    local i = math.tointeger(tonumber(seg))
    local x = v[seg]
    if x == nil and i then x = v[i + 1] end
    if x == nil then return nil, seg end
    v = x
  end
  return v
end

local function quote_body(body)
  if #body > M.ERROR_BODY_LIMIT then
    return body:sub(1, M.ERROR_BODY_LIMIT) .. ("... (%d bytes in all)"):format(#body)
  end
  return body
end

local function fail(kind, message) error({ type = kind, message = message, traceback = false }, 0) end

-- resolve(spec, opts) -> agent(input, ctx), info | nil, message.
-- opts.runner carries http = {body, headers, output, timeout_ms, retries} and env.
function M.resolve(spec, opts)
  local runner = opts and opts.runner or {}
  local cfg = type(runner.http) == "table" and runner.http or {}
  local method, url
  local problems = M.check(spec, cfg, runner.env)
  if problems[1] then return nil, ("target '%s': %s: %s"):format(spec, problems[1].path, problems[1].message) end
  method, url = M.parse(M.expand(spec, runner.env))
  local body_text = type(cfg.body) == "string" and M.expand(cfg.body, runner.env) or nil
  local headers = {}
  for name, value in pairs(type(cfg.headers) == "table" and cfg.headers or {}) do
    headers[tostring(name)] = M.expand(value, runner.env)
  end
  local json_content = json_body(headers)
  if json_content and not headers["Content-Type"] and cfg.body ~= nil then headers["Content-Type"] = "application/json" end
  local parts = body_text and assert(M.compile(body_text)) or nil
  local output_path = type(cfg.output) == "string" and M.expand(cfg.output, runner.env) or nil
  local http = require("fluxloop.http")
  local shown = method .. " " .. (url:gsub("[?#].*$", ""))

  local function agent(input, ctx)
    local values = { input = input, persona = ctx.persona, iteration = ctx.iteration, trace_id = ctx.trace_id,
      metadata = ctx.metadata }
    local req = { method = method, url = url, headers = headers, timeout_ms = cfg.timeout_ms, retries = cfg.retries }
    if parts then
      req.body = M.render(parts, values)
      if json_content then
        local ok, err = json.decode(req.body, "body")
        if ok == nil then
          fail("http_body", ("runner.http.body is not valid JSON after the run's values were put in (%s); body: %s")
            :format(err, quote_body(req.body)))
        end
      end
    elseif method ~= "GET" and method ~= "HEAD" and method ~= "DELETE" then
      req.json = values
    end
    local res, err = http.request(req)
    if not res then fail("http", err) end
    if res.status < 200 or res.status > 299 then
      fail("http", ("HTTP %d from %s%s%s: %s"):format(res.status, shown,
        res.attempts > 1 and (" after %d attempts"):format(res.attempts) or "",
        res.note and (" (" .. res.note .. ")") or "", quote_body(res.body)))
    end
    local ct = res.headers["content-type"] or ""
    if not output_path then
      if ct:find("json", 1, true) then
        local v = res:json()
        if v ~= nil then return v end
      end
      return res.body
    end
    local v, jerr = res:json()
    if v == nil then
      fail("http_output", ("runner.http.output '%s': %s; body: %s"):format(output_path, jerr, quote_body(res.body)))
    end
    local out, seg = dig(v, output_path)
    if out == nil then
      fail("http_output", ("runner.http.output '%s': the answer has no '%s' there; body: %s")
        :format(output_path, seg, quote_body(res.body)))
    elseif out == json.null then
      fail("http_output", ("runner.http.output '%s': the answer holds null there; body: %s")
        :format(output_path, quote_body(res.body)))
    end
    return out
  end

  local name = url:match("^%a+://[^/]*/([^?#]*)") or ""
  name = name:gsub("/+$", ""):match("([^/]+)$") or "http"
  return agent, { spec = spec, module = spec, name = name, http = true, method = method, url = url }
end

return M
