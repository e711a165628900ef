-- inputs.lua - loads and checks the inputs file (inputs/generated.yaml) and reads its entries.
local util = require("fluxloop.util")

local M = {}

local EXPECTED = "expected a list under generated_inputs:, inputs:, or a top-level list"

local function null() return require("fluxloop.json").null end

local function kind(v)
  local t = type(v)
  if t == "table" then return util.is_array(v) and "a list" or "a mapping" end
  if v == null() then return "null" end
  if t == "string" then return "a string" end
  if t == "boolean" then return "a boolean" end
  if math.type(v) == "integer" then return "an integer" end
  if t == "number" then return "a number" end
  return t
end

-- Finds the list in a decoded document: returns list, path prefix for marks,
-- or nil, the key whose value is not a list (or nil when there is none).
local function find_list(doc)
  if util.is_array(doc) then return doc, "" end
  if util.is_mapping(doc) then
    for _, key in ipairs({ "generated_inputs", "inputs" }) do
      local v = doc[key]
      if v == null() then return {}, key .. "." end
      if v ~= nil then
        if util.is_array(v) or (type(v) == "table" and next(v) == nil) then
          return v, key .. "."
        end
        return nil, key
      end
    end
  end
  return nil, nil
end

-- The problem with one entry, or nil when it is fine.
local function entry_problem(e)
  if type(e) ~= "table" or util.is_array(e) then
    return "expected a mapping with an 'input' key, got " .. kind(e)
  end
  local input = e.input
  if input == nil or input == null() then return "missing 'input'" end
  local persona = e.persona
  if type(persona) == "table" or type(persona) == "userdata" and persona ~= null() then
    return "'persona' must be a name (a string), got " .. kind(persona), "persona"
  end
  -- An input's own graders (assert:) are checked here, so a bad one stops the run before it starts.
  if e.assert ~= nil then return require("fluxloop.grade.config").entry_problem(e) end
  return nil
end

-- Decodes again with marks to say where the problem is.
local function position(text, name, path)
  local _, marks = require("fluxloop.yaml").decode(text, name, true)
  local m = marks and marks[path]
  if m == nil then return 1, 1 end
  return m.line or 1, m.col or 1
end

-- Loads the entries of an inputs file. Returns the list of entries (each a
-- table with at least `input`) or nil and a message naming file, line and entry.
function M.load(path, display_name)
  assert(type(path) == "string", "inputs.load: path must be a string")
  local name = display_name or path
  local f = io.open(path, "rb")
  if f == nil then
    return nil, "inputs file not found: " .. name .. " (create it, or pass --inputs FILE)"
  end
  local text, err = f:read("a")
  f:close()
  if text == nil then return nil, "cannot read " .. name .. ": " .. tostring(err) end

  local yaml = require("fluxloop.yaml")
  local doc, derr = yaml.decode(text, name)
  if doc == nil then return nil, derr end
  if doc == null() then return nil, name .. ": no inputs found (" .. EXPECTED .. ")" end

  local list, where = find_list(doc)
  if list == nil then
    if where ~= nil then
      local line, col = position(text, name, where)
      return nil, string.format("%s:%d:%d: %s: expected a list of entries (- input: ...), "
        .. "got %s", name, line, col, where, kind(doc[where]))
    end
    local line, col = position(text, name, "")
    return nil, string.format("%s:%d:%d: no inputs found (%s), got %s", name, line, col,
      EXPECTED, kind(doc))
  end
  if #list == 0 then return nil, name .. ": no inputs found (" .. EXPECTED .. ")" end

  for i = 1, #list do
    local problem, key = entry_problem(list[i])
    if problem then
      local line, col = position(text, name, where .. i .. (key and "." .. key or ""))
      return nil, string.format("%s:%d:%d: entry %d: %s", name, line, col, i, problem)
    end
  end
  return list
end

-- stream(path, display_name, each) -> count | nil, message
-- Like load, without holding the file or the list: each(entry, index) is called for every
-- entry in order and may return false, message to stop. A file with a problem is loaded
-- whole instead, so the message is load's own (file, line and entry). A file whose list
-- one pass cannot tell (both generated_inputs: and inputs:, an anchored list) is loaded
-- whole too: each(nil) first says to forget the entries given so far.
function M.stream(path, display_name, each)
  assert(type(path) == "string", "inputs.stream: path must be a string")
  local name = display_name or path
  local f = io.open(path, "rb")
  if f == nil then
    return nil, "inputs file not found: " .. name .. " (create it, or pass --inputs FILE)"
  end
  f:close()
  local count, invalid, stop_message = 0, false, nil
  local result = require("fluxloop.yaml").stream_list(path, name, function(entry, i)
    if entry_problem(entry) then invalid = true return false end
    count = i
    local go, message = each(entry, i)
    if go == false then stop_message = message return false end
  end)
  if result == "stopped" and not invalid then return nil, stop_message end
  if result == true and count > 0 then return count end
  -- Not a plain list of valid entries (or a syntax error): load says exactly what is wrong.
  local list, err = M.load(path, display_name)
  if not list then return nil, err end
  each(nil)
  for i, entry in ipairs(list) do
    local go, message = each(entry, i)
    if go == false then return nil, message end
  end
  return #list
end

-- assert: is the input's graders, for grading, not for the agent.
local EXCLUDED = { input = true, persona = true, metadata = true, assert = true }

-- The entry's metadata as the agent sees it: every key but input, persona and
-- metadata, then the keys of entry.metadata, which win; {} when none.
function M.metadata_of(entry)
  local out = {}
  for k, v in pairs(entry) do
    if not EXCLUDED[k] then out[k] = v end
  end
  local meta = entry.metadata
  if util.is_mapping(meta) then
    for k, v in pairs(meta) do out[k] = v end
  end
  return out
end

local function as_name(v)
  local t = type(v)
  if t == "string" then return v end
  if t == "number" or t == "boolean" then return tostring(v) end
  return nil
end

-- The entry's persona name: entry.persona, else entry.metadata.persona.
function M.persona_of(entry)
  local p = as_name(entry.persona)
  if p ~= nil then return p end
  local meta = entry.metadata
  if util.is_mapping(meta) then return as_name(meta.persona) end
  return nil
end

return M
