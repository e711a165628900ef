-- util.lua - small helpers shared by the Lua layer: suggestions, path strings, tables.
local M = {}

-- The array metatable of decoded YAML/JSON, found lazily so this module also
-- loads where the C modules are absent.
local array_mt
local function get_array_mt()
  if array_mt == nil then
    local ok, json = pcall(require, "fluxloop.json")
    array_mt = ok and json.array_mt or false
  end
  return array_mt
end

-- n_of(3, "run") -> "3 runs", n_of(1, "run") -> "1 run".
function M.n_of(n, noun)
  return ("%d %s%s"):format(n, noun, n == 1 and "" or "s")
end

-- Levenshtein distance between two strings (bytes).
function M.distance(a, b)
  local la, lb = #a, #b
  if la == 0 then return lb end
  if lb == 0 then return la end
  local prev, cur = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    cur[0] = i
    local ca = a:byte(i)
    for j = 1, lb do
      local cost = (ca == b:byte(j)) and 0 or 1
      local v = prev[j - 1] + cost
      if prev[j] + 1 < v then v = prev[j] + 1 end
      if cur[j - 1] + 1 < v then v = cur[j - 1] + 1 end
      cur[j] = v
    end
    prev, cur = cur, prev
  end
  return prev[lb]
end

-- The candidate closest to word, or nil when none is within
-- max(2, #word // 3) edits. Ties go to the earlier candidate.
function M.closest(word, candidates)
  local best, best_d
  local lw = word:lower()
  for _, c in ipairs(candidates) do
    local d = M.distance(lw, c:lower())
    if best_d == nil or d < best_d then best, best_d = c, d end
  end
  if best == nil then return nil end
  local limit = math.max(2, #word // 3)
  if best_d > limit or best_d >= math.max(#word, #best) then return nil end
  return best
end

-- Path components, without empty ones: "/a//b/" -> {"a", "b"}.
function M.split_path(p)
  local parts = {}
  for part in p:gmatch("[^/]+") do parts[#parts + 1] = part end
  return parts
end

-- Joins path pieces with "/"; an absolute later piece replaces what came before.
function M.join_path(...)
  local out = nil
  for _, piece in ipairs({ ... }) do
    if piece ~= "" then
      if out == nil or piece:sub(1, 1) == "/" then
        out = piece
      elseif out:sub(-1) == "/" then
        out = out .. piece
      else
        out = out .. "/" .. piece
      end
    end
  end
  return out or ""
end

-- The folder part of p ("a/b" -> "a", "b" -> ".", "/b" -> "/").
function M.dirname(p)
  p = p:gsub("/+$", "")
  if p == "" then return "/" end
  local d = p:match("^(.*)/[^/]*$")
  if d == nil then return "." end
  if d == "" then return "/" end
  return (d:gsub("/+$", ""))
end

-- The last component of p ("a/b.yaml" -> "b.yaml").
function M.basename(p)
  p = p:gsub("/+$", "")
  return p:match("([^/]*)$")
end

-- The current directory, from fluxloop.fs when present.
function M.getcwd()
  local ok, fs = pcall(require, "fluxloop.fs")
  if ok and fs.getcwd then
    local cwd = fs.getcwd()
    if cwd then return cwd end
  end
  return os.getenv("PWD") or "."
end

-- Absolute, normalised form of p ("." and ".." resolved as strings, no
-- symlinks followed); a relative p is taken relative to base (default: cwd).
function M.abspath(p, base)
  if p:sub(1, 1) ~= "/" then
    base = base or M.getcwd()
    if base:sub(1, 1) ~= "/" then base = M.getcwd() .. "/" .. base end
    p = base .. "/" .. p
  end
  local out = {}
  for _, part in ipairs(M.split_path(p)) do
    if part == ".." then
      if #out > 0 then out[#out] = nil end
    elseif part ~= "." then
      out[#out + 1] = part
    end
  end
  return "/" .. table.concat(out, "/")
end

-- True for a list: a table with the array metatable, or a non-empty table
-- whose keys are exactly 1..n.
function M.is_array(t)
  if type(t) ~= "table" then return false end
  local mt = getmetatable(t)
  if mt ~= nil and mt == get_array_mt() then return true end
  local n = #t
  if n == 0 then return false end
  for k in pairs(t) do
    if math.type(k) ~= "integer" or k < 1 or k > n then return false end
  end
  return true
end

-- True for a table that is not a list (a mapping; an unmarked {} counts).
function M.is_mapping(t)
  return type(t) == "table" and not M.is_array(t)
end

function M.shallow_copy(t)
  local c = {}
  for k, v in pairs(t) do c[k] = v end
  return setmetatable(c, getmetatable(t))
end

-- Copy of t at every depth; metatables (the array marker) are kept.
function M.deep_copy(t, seen)
  if type(t) ~= "table" then return t end
  seen = seen or {}
  if seen[t] then return seen[t] end
  local c = {}
  seen[t] = c
  for k, v in pairs(t) do c[M.deep_copy(k, seen)] = M.deep_copy(v, seen) end
  return setmetatable(c, getmetatable(t))
end

-- Keys of t sorted (numbers before strings, each in natural order).
function M.sorted_keys(t)
  local keys = {}
  for k in pairs(t) do keys[#keys + 1] = k end
  table.sort(keys, function(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return ta < tb end
    if ta == "number" or ta == "string" then return a < b end
    return tostring(a) < tostring(b)
  end)
  return keys
end

-- read_file(path) -> the whole file's bytes | nil, message (the system's, naming the path).
function M.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local text, rerr = f:read("a")
  f:close()
  if text == nil then return nil, ("%s: %s"):format(path, tostring(rerr)) end
  return text
end

-- read_json(path) -> the JSON object (a table) in the file at path; nil when the file is missing
-- or unreadable; nil, message when it is there but damaged (not JSON, with the parser's
-- "path:line:col: problem", or not an object): a damaged summary.json is not a missing one.
function M.read_json(path)
  local text = M.read_file(path)
  if not text then return nil end
  local ok, v, err = pcall(require("fluxloop.json").decode, text, path)
  if not ok then v, err = nil, v end
  if v == nil then return nil, ("%s is damaged (%s)"):format(path, tostring(err)) end
  if not M.is_mapping(v) then
    return nil, ("%s is damaged (it holds a JSON %s, not an object)"):format(path, type(v) == "table" and "array" or type(v))
  end
  return v
end

-- Control characters of text shown on a terminal, escaped: ESC as \e, the rest as \x07 ...
-- (an error message or a worker's stderr must not move the cursor or change colours).
function M.escape_controls(s)
  return (tostring(s):gsub("%c", function(c)
    if c == "\27" then return "\\e" end
    return ("\\x%02x"):format(c:byte())
  end))
end

-- text_of(v) -> v as text for a message: a string as it is, a table as JSON (an error whose
-- type or message is an object must not read "table: 0x..."), anything else by tostring.
function M.text_of(v)
  if type(v) == "string" then return v end
  if type(v) == "table" or type(v) == "userdata" then
    local ok, text = pcall(require("fluxloop.json").encode, v)
    if ok then return text end
  end
  return tostring(v)
end

return M
