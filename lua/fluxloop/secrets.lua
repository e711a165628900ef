-- secrets.lua - what counts as a secret, by key name or by the shape of a value, and the
-- masked copies fluxloop writes instead (config.yaml, summary.json, recordings).
-- A project may override this module (lua/fluxloop/secrets.lua) to add its own rules.
local util = require("fluxloop.util")

local M = {}

M.MASK = "***"

-- A key is secret when a part of its name is one of these words. Names are split on
-- `_`, `-`, `.`, spaces and camelCase humps: authHeader -> auth, header.
M.SECRET_PARTS = {}
for _, w in ipairs({ "key", "apikey", "token", "password", "passwd", "pass", "secret", "auth",
  "authorization", "credential", "credentials", "cookie", "session", "pat", "bearer", "dsn" }) do
  M.SECRET_PARTS[w] = true
end

-- name_parts("OpenAIKey") -> { "open", "ai", "key" }
function M.name_parts(name)
  local s = tostring(name):gsub("([%l%d])(%u)", "%1_%2"):gsub("(%u)(%u%l)", "%1_%2"):lower()
  local parts = {}
  for part in s:gmatch("[^_%-%.%s]+") do parts[#parts + 1] = part end
  return parts
end

-- True when a key name looks like it holds a secret: a part is a secret word, or ends in
-- key/token (APIKEY, sessionkey; not keyword, author, max_tokens).
function M.is_secret_key(name)
  for _, part in ipairs(M.name_parts(name)) do
    if M.SECRET_PARTS[part] or part:sub(-3) == "key" or part:sub(-5) == "token" then return true end
  end
  return false
end

-- Well-known token shapes, masked whatever key holds them: { Lua pattern, shortest length }.
-- Patterns start at a word boundary so that a word merely containing "sk-" is left alone.
M.TOKEN_SHAPES = {
  { "%f[%w]sk%-[%w_%-]+", 20 },          -- OpenAI, Anthropic (sk-..., sk-proj-..., sk-ant-...)
  { "%f[%w][rs]k_live_[%w]+", 20 },      -- Stripe live keys
  { "%f[%w]gh[pousr]_[%w]+", 30 },       -- GitHub tokens
  { "%f[%w]github_pat_[%w_]+", 30 },     -- GitHub fine-grained tokens
  { "%f[%w]glpat%-[%w_%-]+", 20 },       -- GitLab personal access tokens
  { "%f[%w]xox[abprse]%-[%w%-]+", 15 },  -- Slack
  { "%f[%w]A[KS]IA[%u%d]+", 20 },        -- AWS access key ids
  { "%f[%w]AIza[%w_%-]+", 35 },          -- Google API keys
  { "%f[%w]eyJ[%w_%-]+%.[%w_%-]+%.[%w_%-]+", 30 }, -- JWTs (header.payload.signature)
}

-- Whether a secret value is distinctive enough to be masked wherever it appears in a trace:
-- at least 8 bytes and two kinds of character (lower, upper, digit, other). A word such as
-- "interactive" under SESSION_MODE is masked in config.yaml but left alone in outputs.
local function distinctive(s)
  if #s < 8 then return false end
  local kinds = 0
  for _, class in ipairs({ "%l", "%u", "%d", "[^%w]" }) do
    if s:find(class) then kinds = kinds + 1 end
  end
  return kinds >= 2
end

-- The words of an Authorization scheme, as case-blind patterns, with what its credential is
-- made of: Bearer and Token take any token characters, Basic takes base64.
local function blind(word) return (word:gsub("%a", function(c) return "[" .. c:upper() .. c:lower() .. "]" end)) end
local SCHEMES = {
  { blind("bearer"), "[%w%-%._~%+/]+=*" },
  { blind("token"), "[%w%-%._~%+/]+=*" },
  { blind("basic"), "[%w%+/]+=*" },
}
local SCHEME_CREDENTIAL = {} -- "(Bearer )(credential)" patterns, made once
for i, scheme in ipairs(SCHEMES) do SCHEME_CREDENTIAL[i] = "(%f[%w]" .. scheme[1] .. "%s+)(" .. scheme[2] .. ")" end

-- Whether the word after a scheme looks like a credential rather than prose: 8 characters
-- or more with a digit, a symbol or a capital inside ("abc.def-123", "dXNlcjpwYXNz"; not
-- "questions" or "Information").
local function credential(s)
  if #s < 8 then return false end
  return s:find("[%d%-%._~%+/=]") ~= nil or (s:find("^.+%u") ~= nil and s:find("%l") ~= nil)
end

local function mask_credential(head, cred)
  if credential(cred) then return head .. M.MASK end
end

-- mask_value(s) -> s with its secrets replaced: token shapes by "***", the credential after
-- "Bearer", "Token" or "Basic" when it looks like one (not "asks basic questions"), and the
-- password of a URL (scheme, user and host stay readable).
function M.mask_value(s)
  if type(s) ~= "string" then return s end
  for _, shape in ipairs(M.TOKEN_SHAPES) do
    s = s:gsub(shape[1], function(tok) if #tok >= shape[2] then return M.MASK end end)
  end
  if s:find("%s") then -- a scheme and its credential are two words
    for _, pattern in ipairs(SCHEME_CREDENTIAL) do s = s:gsub(pattern, mask_credential) end
  end
  s = s:gsub("(%a[%w%+%.%-]*://[^:/@%s]*):[^@/%s]+@", "%1:" .. M.MASK .. "@")
  return s
end

-- mask_header_value(v) -> a header's value with its secrets masked: a value that starts with
-- an Authorization scheme holds a credential whatever it looks like ("Bearer abcdef").
function M.mask_header_value(v)
  if type(v) ~= "string" then return v end
  for _, scheme in ipairs(SCHEMES) do
    local head = v:match("^%s*" .. scheme[1] .. "%s+")
    if head and #v > #head then return head .. M.MASK end
  end
  return M.mask_value(v)
end

-- The run's secret values (of_run), for what does not go through a recorder: stderr, and
-- the copies mask makes (config.yaml, summary.json).
local known = {}

-- remember(list): the values scrub masks from now on (of_run's list).
function M.remember(list)
  known = {}
  for i, v in ipairs(list or {}) do known[i] = v end
  table.sort(known, function(a, b) return #a > #b end) -- a secret inside another: the longer first
end

-- scrub(text) -> text with every remembered secret value written "***".
function M.scrub(text)
  if known[1] == nil or type(text) ~= "string" then return text end
  for _, v in ipairs(known) do
    local from = 1
    while true do
      local s, e = text:find(v, from, true)
      if not s then break end
      text = text:sub(1, s - 1) .. M.MASK .. text:sub(e + 1)
      from = s + #M.MASK
    end
  end
  return text
end

-- Every scalar under a secret key is masked; null (a userdata) stays null.
local function mask_all(v)
  if type(v) == "table" then
    local c = setmetatable({}, getmetatable(v))
    for k, x in pairs(v) do c[k] = mask_all(x) end
    return c
  end
  if type(v) == "userdata" then return v end
  return M.MASK
end

-- mask(v [, is_secret]) -> a copy of v where the value of every secret key (by is_secret,
-- default is_secret_key) is masked at any depth, and every other string has its secret
-- shapes and the run's secret values (remember) masked. Metatables (JSON array markers)
-- are kept.
function M.mask(v, is_secret)
  is_secret = is_secret or M.is_secret_key
  if type(v) == "string" then return M.mask_value(M.scrub(v)) end
  if type(v) ~= "table" then return v end
  local c = setmetatable({}, getmetatable(v))
  local array = util.is_array(v)
  for k, x in pairs(v) do
    if not array and type(k) == "string" and is_secret(k) then
      c[k] = mask_all(x)
    else
      c[k] = M.mask(x, is_secret)
    end
  end
  return c
end

-- values(doc) -> list of the config's secret strings, for the recorder to mask in traces
-- (an agent or hook that echoes its API key): distinctive values under secret keys, token
-- shapes and URL passwords under any key.
function M.values(doc)
  local list, seen = {}, {}
  local function add(s)
    if type(s) == "string" and not seen[s] and distinctive(s) then
      seen[s] = true
      list[#list + 1] = s
    end
  end
  local function shapes(s)
    for _, shape in ipairs(M.TOKEN_SHAPES) do
      for tok in s:gmatch(shape[1]) do if #tok >= shape[2] then add(tok) end end
    end
    for pw in s:gmatch("%a[%w%+%.%-]*://[^:/@%s]*:([^@/%s]+)@") do add(pw) end
  end
  local function walk(v, secret)
    if type(v) == "table" then
      for k, x in pairs(v) do walk(x, secret or (type(k) == "string" and M.is_secret_key(k))) end
    elseif type(v) == "string" then
      if secret then add(v) end
      shapes(v)
    end
  end
  walk(doc, false)
  return list
end

-- environment_values(environ) -> the distinctive values of the secret-named variables of an
-- environment ({ NAME = value }): an agent may read any of them (os.getenv), so any of them
-- may come back in a trace. SERVICE_TOKEN=... is masked; SESSION_KIND=interactive is not.
function M.environment_values(environ)
  local list = {}
  for name, value in pairs(environ or {}) do
    if type(value) == "string" and distinctive(value) and M.is_secret_key(name) then list[#list + 1] = value end
  end
  table.sort(list)
  return list
end

-- of_run(cfg, environ [, doc]) -> every secret value a run's traces and messages must not
-- show: the config's (values of doc, default cfg.doc; main adds the .env files' values),
-- the environment's (environment_values), and what an http: target's ${NAME}s put in a
-- secret header, key or URL password.
function M.of_run(cfg, environ, doc)
  local list, seen = {}, {}
  local function add_all(values)
    for _, v in ipairs(values) do
      if not seen[v] then seen[v], list[#list + 1] = true, v end
    end
  end
  add_all(M.values(doc or cfg.doc))
  add_all(M.environment_values(environ))
  local runner = cfg.runner or {}
  if type(runner.target) == "string" and runner.target:match("^http:") then
    add_all(require("fluxloop.httptarget").secret_values(runner.target, runner.http, runner.env))
  end
  return list
end

return M
