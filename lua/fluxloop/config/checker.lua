-- config/checker.lua - one validation pass over a decoded config document: typed reads of
-- dotted paths that collect every error and warning with its FILE:LINE:COL (libyaml's marks).
-- fluxloop.config builds the runner's settings with it; a module that owns a config section
-- (fluxloop.config's SECTIONS) checks its section with the same reads.
local util = require("fluxloop.util")

local M = {}

local function null() return require("fluxloop.json").null end

local function set_of(list)
  local s = {}
  for _, v in ipairs(list or {}) do s[v] = true end
  return s
end

-- Messages are one line each: control characters of user text show as \n, \t, \27 ...
local ESCAPES = { ["\n"] = "\\n", ["\r"] = "\\r", ["\t"] = "\\t" }
function M.one_line(s)
  return (s:gsub("%c", function(c) return ESCAPES[c] or ("\\" .. c:byte()) end))
end

-- A short rendering of a value for "got ..." in messages.
function M.got(v)
  local t = type(v)
  if t == "string" then
    if #v > 60 then v = v:sub(1, 57) .. "..." end
    -- A quoted number ("3") is a string to YAML: say so, or 'got 3' reads like a riddle.
    if tonumber(v) then return ('the string "%s" (write it without quotes)'):format(v) end
    return "'" .. M.one_line(v) .. "'"
  elseif t == "number" or t == "boolean" then
    return tostring(v)
  elseif t == "table" then
    return util.is_array(v) and "a list" or "a mapping"
  elseif v == null() then
    return "null"
  end
  return t
end

function M.join_key(path, key)
  if path == "" then return tostring(key) end
  return path .. "." .. tostring(key)
end

local one_line, got, join_key = M.one_line, M.got, M.join_key

-- A validation pass over one decoded document.
local Checker = {}
Checker.__index = Checker
-- config/build.lua adds the runner's own reads (rate_limit, http_target, personas ...).
M.Checker = Checker

-- new(doc, marks, display, schema) -> a checker. schema.known / schema.ignored map a
-- mapping's dotted path ("" is the top level) to its key names: the keys the runner reads,
-- and the Python fluxloop's keys that have no effect here. schema.flag_shaped maps a path
-- to { key = "what to write instead" } for keys that read like command-line flags.
function M.new(doc, marks, display, schema)
  return setmetatable({ doc = doc, marks = marks, display = display, schema = schema or { known = {} },
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

-- Reports unknown keys (with a suggestion) and collects the ignored Python keys
-- of the mapping at path.
function Checker:scan_keys(path, t)
  local schema = self.schema
  local known, ignored = set_of(schema.known[path]), set_of(schema.ignored and schema.ignored[path])
  local flag_shaped = schema.flag_shaped and schema.flag_shaped[path] or {}
  local candidates = {}
  for _, k in ipairs(schema.known[path] or {}) do candidates[#candidates + 1] = k end
  for _, k in ipairs(schema.ignored and schema.ignored[path] or {}) do candidates[#candidates + 1] = k end
  for _, k in ipairs(self:keys_of(path, t)) do
    local p = join_key(path, k)
    if ignored[k] then
      self.notice[#self.notice + 1] = p
    elseif not known[k] and flag_shaped[k] then
      self:error(p, ("not a config key (it reads like the --%s flag): use %s")
        :format(tostring(k):gsub("_", "-"), flag_shaped[k]))
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
  if self.schema.known[path] then self:scan_keys(path, v) end
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

return M
