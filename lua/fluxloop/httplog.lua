-- httplog.lua - how fluxloop.http records a request made during a run: one observation with
-- the request and the response (secret headers and URL parameters masked, bodies bounded),
-- the attempts and retries, and the model and token counts of an OpenAI-compatible answer.
-- A project may override it (lua/fluxloop/httplog.lua) to keep more or less.
local context = require("fluxloop.context")
local json = require("fluxloop.json")
local secrets = require("fluxloop.secrets")

local M = {}

-- Bytes of a request or response body kept in the observation; the rest is cut off, and
-- the text says how much was left out.
M.BODY_LIMIT = 32 * 1024

local function unescape(s)
  return (s:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end))
end

-- mask_url(url) -> the URL with its password and the values of secret-looking query
-- parameters (key, api_key, token, ...) written as "***".
function M.mask_url(url)
  if type(url) ~= "string" then return url end
  local head, query, tail = url:match("^([^?#]*)%??([^#]*)(.*)$")
  head = secrets.mask_value(head)
  if url:find("?", 1, true) then
    query = "?" .. query:gsub("([^&=]*)=([^&]*)", function(k, v)
      if secrets.is_secret_key(unescape(k)) then return k .. "=" .. secrets.MASK end
      return k .. "=" .. secrets.mask_value(v)
    end)
  end
  return head .. query .. tail
end

-- Whether a key name is secret, remembered: the same few dozen keys ("role", "content",
-- "model") come back in every request and answer. Bounded, for keys that never repeat.
local secret_memo, memo_size = {}, 0
local function is_secret(name)
  local v = secret_memo[name]
  if v == nil then
    v = secrets.is_secret_key(name)
    if memo_size >= 4096 then secret_memo, memo_size = {}, 0 end
    secret_memo[name], memo_size = v, memo_size + 1
  end
  return v
end

-- mask_headers(headers) -> { name = value } with the value of every secret header
-- (Authorization, X-Api-Key, Cookie, ...) written as "***", and token shapes in the others
-- (a bearer token under another name). headers is a map or a list of "Name: value" lines.
function M.mask_headers(headers)
  if type(headers) ~= "table" then return nil end
  local out = {}
  for k, v in pairs(headers) do
    local name, value = k, v
    if math.type(k) == "integer" and type(v) == "string" then name, value = v:match("^([^:]*):%s*(.*)$") end
    if type(name) == "string" then
      out[name] = is_secret(name) and secrets.MASK or secrets.mask_header_value(tostring(value))
    end
  end
  return out
end

-- A copy of a decoded body with the value under every secret-looking key ("api_key",
-- "password") written as "***". Values are not scanned for token shapes: that costs more
-- than the request on a long answer, and the recorder masks the config's own secrets in
-- every line anyway.
local function mask_keys(v, depth)
  if type(v) ~= "table" or depth > 64 then return v end
  local c = setmetatable({}, getmetatable(v))
  for k, x in pairs(v) do
    if type(k) == "string" and is_secret(k) then c[k] = secrets.MASK else c[k] = mask_keys(x, depth + 1) end
  end
  return c
end

local function cut(text)
  if #text <= M.BODY_LIMIT then return text end
  return text:sub(1, M.BODY_LIMIT) .. ("... [%d more bytes not kept]"):format(#text - M.BODY_LIMIT)
end

-- A body as the observation keeps it: JSON as its value (secret keys masked) when it is
-- small enough, else text cut at BODY_LIMIT.
local function body_of(text, decoded)
  if text == nil or text == "" then return nil end
  if decoded ~= nil and #text <= M.BODY_LIMIT then return mask_keys(decoded, 0) end
  return cut(text)
end

local function host_path(url)
  local rest = url:match("^%a[%w+.-]*://(.*)$") or url
  rest = rest:gsub("^[^/?#]*@", "")
  return rest:match("^([^?#]*)") or rest
end

-- The observation's type and name: what `observe = {type=, name=}` says, else a
-- "generation" when the request names a model, else a "span"; "POST api.host/v1/chat".
local function type_and_name(req, method, decoded)
  local o = type(req.observe) == "table" and req.observe or {}
  local model = type(decoded) == "table" and decoded.model or nil
  local t = o.type or (type(model) == "string" and "generation" or "span")
  return t, o.name or (method .. " " .. host_path(req.url))
end

-- The request's JSON value: req.json, or a body that is JSON text small enough to keep.
local function request_value(req)
  if req.json ~= nil then return req.json end
  local body = req.body
  if type(body) == "string" and #body <= M.BODY_LIMIT and body:match("^%s*[{%[]") then
    return json.decode(body)
  end
  return nil
end

-- open(rec, req, method) -> span slot. Called before the request's first attempt.
function M.open(rec, req, method)
  local body = req.body
  local decoded = request_value(req)
  if req.json ~= nil then
    local ok, text = pcall(json.encode, req.json)
    body = ok and text or nil
  end
  local t, name = type_and_name(req, method, decoded)
  return rec:span_open(t, name, {
    method = method, url = M.mask_url(req.url), headers = M.mask_headers(req.headers), body = body_of(body, decoded),
  })
end

-- The text a streamed chat answer adds up to (choices[1].delta.content of each event).
local function streamed_text(body)
  local parts = {}
  for data in body:gmatch("data: ?([^\r\n]*)") do
    if data:sub(1, 1) == "{" then
      local ev = json.decode(data)
      local choice = type(ev) == "table" and type(ev.choices) == "table" and ev.choices[1]
      local delta = type(choice) == "table" and choice.delta
      if type(delta) == "table" and type(delta.content) == "string" then parts[#parts + 1] = delta.content end
    end
  end
  return #parts > 0 and table.concat(parts) or nil
end

local function is_json(res)
  local ct = res.headers and res.headers["content-type"] or ""
  return ct:find("json", 1, true) ~= nil
end

-- usage_of(res [, decoded]) -> model, usage: from the last streamed event that carries
-- usage, else from the JSON body.
function M.usage_of(res, decoded)
  local src = decoded
  if res.last_usage_event then src = json.decode(res.last_usage_event) end
  if type(src) ~= "table" then return nil, nil end
  return src.model, src.usage
end

local function facts(res, code)
  local m = {
    status = res.status ~= 0 and res.status or nil, attempts = res.attempts, retried = res.retried,
    duration_ms = res.duration_ms, ttfb_ms = res.ttfb_ms, first_event_ms = res.first_event_ms, events = res.events,
    bytes_sent = res.bytes_sent, bytes_received = res.bytes_received, stopped = res.stopped, note = res.note,
    error_code = code,
  }
  if res.rate_wait_ms and res.rate_wait_ms > 0 then m.rate_wait_ms = res.rate_wait_ms end
  -- A retried request says what each attempt got and how long it waited first.
  if res.retried then m.attempt_log = res.attempt_log end
  return m
end

-- close(rec, slot, req, res, err, code): after the request; err and code when it failed
-- (res then holds what is known: attempts, timings, any partial body).
function M.close(rec, slot, req, res, err, code)
  local decoded
  if res.body ~= "" and #res.body <= M.BODY_LIMIT and not res.events and is_json(res) then
    decoded = json.decode(res.body)
  end
  local output
  if not err then
    local headers = {}
    for name, value in pairs(res.headers) do headers[name] = is_secret(name) and secrets.MASK or value end
    output = { status = res.status, headers = headers, body = body_of(res.body, decoded) }
    if res.events then output.text = streamed_text(res.body) end
  end
  local model, usage = M.usage_of(res, decoded)
  if model == nil then
    local sent = request_value(req)
    model = type(sent) == "table" and sent.model or nil
  end
  rec:span_close(slot, output, err, facts(res, code), context.extra(model, usage))
end

return M
