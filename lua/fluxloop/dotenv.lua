-- dotenv.lua - reads a project's .env files as the Python fluxloop does: the .env of the
-- folder above the project, then the project's own (which wins); a variable already set in
-- the environment wins over both. Lines are NAME=value as python-dotenv reads them.
local util = require("fluxloop.util")

local M = {}

local ESCAPES = { n = "\n", t = "\t", r = "\r", ["\\"] = "\\", ['"'] = '"', ["'"] = "'", a = "\a", b = "\b",
  f = "\f", v = "\v" }

-- ${NAME} and ${NAME:-default} in a value: lookup(name), else the default (python-dotenv:
-- the default only when NAME is not set at all), else "". Anything else in ${...} stays.
local function expand(value, lookup)
  return (value:gsub("%${([^}]*)}", function(inner)
    local name, default = inner:match("^([%a_][%w_]*):%-(.*)$")
    name = name or inner:match("^[%a_][%w_]*$")
    if not name then return nil end
    local v = lookup(name)
    if v == nil then v = default or "" end
    return v
  end))
end

-- The value that starts at text[i] (after `=`): returns value, how it was quoted, the index
-- after the statement (past its newline), or nil and a message.
local function read_value(text, i)
  local q = text:sub(i, i)
  if q == "'" or q == '"' then
    local out, j = {}, i + 1
    while j <= #text do
      local c = text:sub(j, j)
      if c == q then break end
      if c == "\\" and (q == '"' or text:sub(j + 1, j + 1) == "'" or text:sub(j + 1, j + 1) == "\\") then
        local e = text:sub(j + 1, j + 1)
        out[#out + 1] = q == '"' and (ESCAPES[e] or ("\\" .. e)) or e
        j = j + 2
      else
        out[#out + 1] = c
        j = j + 1
      end
    end
    if j > #text then return nil, "the value's closing " .. q .. " is missing" end
    local rest_end = text:find("\n", j + 1, true) or #text + 1
    local rest = text:sub(j + 1, rest_end - 1)
    if not rest:match("^%s*$") and not rest:match("^%s+#") then
      return nil, "unexpected text after the closing " .. q .. ": '" .. rest .. "'"
    end
    return table.concat(out), q, rest_end + 1
  end
  local line_end = text:find("\n", i, true) or #text + 1
  local v = text:sub(i, line_end - 1):gsub("%s+#.*$", ""):gsub("^%s+", ""):gsub("%s+$", "")
  return v, "", line_end + 1
end

local function line_at(text, i)
  local _, n = text:sub(1, i - 1):gsub("\n", "")
  return n + 1
end

-- parse(text, name) -> entries, warnings. entries: { {name=, value=, quote=, line=} } in file
-- order; a line that is not NAME=value is skipped with a warning "name:LINE: warning: ...",
-- as python-dotenv skips it. A NAME with no `=` sets nothing (python-dotenv: no value).
function M.parse(text, name)
  local entries, warnings = {}, {}
  text = text:gsub("^\239\187\191", ""):gsub("\r\n", "\n")
  local i = 1
  while i <= #text do
    local line_end = text:find("\n", i, true) or #text + 1
    local line = text:sub(i, line_end - 1)
    local lineno = line_at(text, i)
    if line:match("^%s*$") or line:match("^%s*#") then
      i = line_end + 1
    else
      local lead, key, eq = line:match("^(%s*export%s+)([%a_][%w_%.%-]*)%s*(=?)")
      if not key then lead, key, eq = line:match("^(%s*)([%a_][%w_%.%-]*)%s*(=?)") end
      if not key then lead, key, eq = line:match("^(%s*)'([^']+)'%s*(=?)") end
      local value, quote, nxt
      if key and eq == "=" then
        local vstart = i + #line:match("^(.-=)")
        while text:sub(vstart, vstart):match("^[ \t]$") do vstart = vstart + 1 end
        value, quote, nxt = read_value(text, vstart)
      elseif key and line:sub(#lead + 1):match("^[%w_%.%-']+%s*$") then
        value, quote, nxt = false, "", line_end + 1 -- NAME alone: no value
      else
        quote = "expected NAME=value, got '" .. line .. "'"
      end
      if value == nil then
        warnings[#warnings + 1] = ("%s:%d: warning: %s; this line is skipped"):format(name, lineno, quote)
        i = line_end + 1
      else
        if value then entries[#entries + 1] = { name = key, value = value, quote = quote, line = lineno } end
        i = nxt
      end
    end
  end
  return entries, warnings
end

-- files(project_dir) -> the .env files to read, in order (the later wins): the folder
-- above's, then the project's. Only those that exist.
function M.files(project_dir)
  local fs = require("fluxloop.fs")
  local list = {}
  for _, dir in ipairs({ util.dirname(project_dir), project_dir }) do
    local p = util.join_path(dir, ".env")
    if list[#list] ~= p and fs.exists(p) and not fs.isdir(p) then list[#list + 1] = p end
  end
  return list
end

-- read(files, getenv) -> { set = {{name=, value=}...} (what to put in the environment, in
-- order), kept = {names the environment already set}, warnings = {...} } | nil, message.
-- ${NAME} in an unquoted or "double-quoted" value is the environment's NAME, else one read
-- before it.
function M.read(files, getenv)
  local values, order, kept, seen_kept, warnings = {}, {}, {}, {}, {}
  local function lookup(n)
    local v = getenv(n)
    if v == nil then v = values[n] end
    return v
  end
  for _, path in ipairs(files) do
    local text, err = util.read_file(path)
    if not text then return nil, ("cannot read %s: %s"):format(path, tostring(err)) end
    local entries, w = M.parse(text, path)
    for _, line in ipairs(w) do warnings[#warnings + 1] = line end
    for _, e in ipairs(entries) do
      if getenv(e.name) ~= nil and values[e.name] == nil then
        if not seen_kept[e.name] then seen_kept[e.name], kept[#kept + 1] = true, e.name end
      else
        if values[e.name] == nil then order[#order + 1] = e.name end
        values[e.name] = e.quote == "'" and e.value or expand(e.value, lookup)
      end
    end
  end
  local set = {}
  for _, n in ipairs(order) do set[#set + 1] = { name = n, value = values[n] } end
  return { set = set, kept = kept, warnings = warnings }
end

-- notice(files, result) -> the one line that says what was read, or nil when nothing was.
local function notice(files, r)
  if #files == 0 then return nil end
  local names = {}
  for _, e in ipairs(r.set) do names[#names + 1] = e.name end
  local text = ("notice: read %s: %s"):format(table.concat(files, ", "),
    #names > 0 and ("set " .. table.concat(names, ", ")) or "nothing to set")
  if #r.kept > 0 then
    text = text .. "; already in the environment, so kept as they are: " .. table.concat(r.kept, ", ")
  end
  return text
end

-- apply(project_dir [, setenv [, getenv]]) -> { values = {name=value}, warnings = {...} } |
-- nil, message: reads the .env files and sets what they hold in this process's environment
-- (the agent, its workers and ${NAME} in the config see it).
function M.apply(project_dir, setenv, getenv)
  setenv = setenv or require("fluxloop.fs").setenv
  getenv = getenv or os.getenv
  local files = M.files(project_dir)
  local r, err = M.read(files, getenv)
  if not r then return nil, err end
  local values = {}
  for _, e in ipairs(r.set) do
    local ok, serr = setenv(e.name, e.value)
    if not ok then return nil, ("%s: %s: %s"):format(table.concat(files, ", "), e.name, tostring(serr)) end
    values[e.name] = e.value
  end
  local warnings = r.warnings
  warnings[#warnings + 1] = notice(files, r)
  return { values = values, warnings = warnings }
end

return M
