-- replay.lua - replays recorded agent arguments (Python fluxloop JSONL): load, select, override, capture.
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

local null = json.null
local LT = ("<"):byte()

-- The placeholder string of every capture function made here, so traces and new
-- recordings can write it back. It is the JSON encoder's table of function names (weak
-- keys: captures die with their run's args), so a trace's args are encoded as they are.
local placeholder_of = json.function_names

-- Top-level keys that Python fluxloop's default callable_providers always turn into
-- collectors, whatever marker was recorded for them.
local PROVIDERS = { send_message_callback = "send", send_error_callback = "error" }

local SELECT = { last = true, first = true, cycle = true }

local Replayer = {}
Replayer.__index = Replayer

-- Reading and checking the recording ------------------------------------------------

local function kind(v)
  if v == null then return "null" end
  local t = type(v)
  if t == "table" then return util.is_array(v) and "a list" or "a mapping" end
  if t == "string" or t == "number" or t == "boolean" then return "a " .. t end
  return t
end

local function read_all(path)
  local f, err = io.open(path, "rb")
  if not f then
    return nil, ("replay_args.recording_file: cannot open %s; record one (FLUXLOOP_RECORD_ARGS=1 with "
      .. "FLUXLOOP_RECORDING_FILE) or fix the path"):format(err)
  end
  local text, rerr = f:read("a")
  f:close()
  if text == nil then return nil, ("replay_args.recording_file: cannot read %s: %s"):format(path, tostring(rerr)) end
  return text
end

-- One non-blank line -> entry | nil, message naming file and line.
local function parse_line(file, n, line)
  local rec, err = json.decode(line, "")
  if rec == nil then
    local col, what = tostring(err):match("^:%d+:(%d+): (.*)$")
    return nil, ("%s:%d:%s: not JSON: %s"):format(file, n, col or "1", what or err)
  end
  if type(rec) ~= "table" or util.is_array(rec) then
    return nil, ("%s:%d: expected a JSON object with \"kwargs\", got %s"):format(file, n, kind(rec))
  end
  if rec.kwargs == nil then
    return nil, ("%s:%d: no \"kwargs\" in this line (a recording line is "
      .. "{\"_version\":\"1\",\"iteration\":0,\"target\":...,\"kwargs\":{...},\"timestamp\":...})"):format(file, n)
  end
  if type(rec.kwargs) ~= "table" or util.is_array(rec.kwargs) then
    return nil, ("%s:%d: \"kwargs\" is %s; expected a mapping of argument names to values")
      :format(file, n, kind(rec.kwargs))
  end
  return { line = n, kwargs = rec.kwargs, target = rec.target, iteration = rec.iteration }
end

local function parse_lines(file, text)
  local entries, n = {}, 0
  for line in (text .. "\n"):gmatch("(.-)\r?\n") do
    n = n + 1
    if not line:find("^%s*$") then
      local entry, err = parse_line(file, n, line)
      if not entry then return nil, err end
      entries[#entries + 1] = entry
    end
  end
  if #entries == 0 then
    return nil, ("%s: the recording is empty; it needs at least one line "
      .. "{\"kwargs\": {...}} (record one with require(\"fluxloop\").record)"):format(file)
  end
  return entries
end

-- "messages.0.content" -> { keys = {...}, index = { [2] = 0 } } | nil, message
local function parse_path(path)
  local p = { text = path, keys = {}, index = {} }
  if path == "" then return p end
  for seg in (path .. "."):gmatch("(.-)%.") do
    if seg == "" then
      return nil, ("replay_args.override_param_path '%s': empty segment; write keys and 0-based "
        .. "indexes joined by dots (data.content, messages.0.content)"):format(path)
    end
    p.keys[#p.keys + 1] = seg
    if seg:find("^%d+$") then p.index[#p.keys] = math.tointeger(tonumber(seg)) end
  end
  return p
end

local function check_cfg(c)
  if type(c) ~= "table" then error("replay.load: expected the replay_args table of the config", 3) end
  if type(c.recording_file) ~= "string" then error("replay.load: recording_file must be a path string", 3) end
  if c.select ~= nil and not SELECT[c.select] then
    error(("replay.load: select must be last, first or cycle (got %s)"):format(tostring(c.select)), 3)
  end
  if c.override_param_path ~= nil and type(c.override_param_path) ~= "string" then
    error("replay.load: override_param_path must be a string", 3)
  end
end

-- load(replay_cfg) -> replayer | nil, message
-- replay_cfg = { recording_file = absolute path, override_param_path = "data.content",
--                select = "last" | "first" | "cycle" }. Every line is checked and decoded once.
function M.load(c)
  check_cfg(c)
  local path, perr = parse_path(c.override_param_path or "")
  if not path then return nil, perr end
  local text, err = read_all(c.recording_file)
  if not text then return nil, err end
  local entries, lerr = parse_lines(c.recording_file, text)
  if not entries then return nil, lerr end
  local choice = c.select or "last"
  -- fixed: the entry every trace uses, unless lines are cycled through.
  local fixed = choice == "first" and entries[1] or choice == "last" and entries[#entries] or nil
  return setmetatable({ file = c.recording_file, select = choice, path = path,
    entries = entries, count = #entries, fixed = fixed }, Replayer)
end

-- Choosing a line -------------------------------------------------------------------

local function entry_index(self, k)
  if math.type(k) ~= "integer" or k < 1 then
    error(("replayer: trace number must be an integer >= 1 (got %s)"):format(tostring(k)), 3)
  end
  if self.select == "first" then return 1 end
  if self.select == "cycle" then return (k - 1) % self.count + 1 end
  return self.count
end

-- replayer:select_line(k) -> the recording's line number (in the file) that trace k uses.
-- cycle walks the recorded (non-blank) lines: trace k uses the ((k-1) mod count)+1-th.
function Replayer:select_line(k)
  return self.entries[entry_index(self, k)].line
end

-- Captures ---------------------------------------------------------------------------

-- "<builtin:collector.send>" -> "send", "<callable:reply>" -> "reply", anything else -> nil.
local function capture_name(s)
  local what, name = s:match("^<(%a+):([%w_%.%-:]+)>$")
  if what == "builtin" then
    return (name:gsub(":async$", "")):match("([^%.]+)$")
  elseif what == "callable" then
    return name
  end
  return nil
end

-- A function that appends what it is called with to list: the argument, or a list of the
-- arguments when there are several (nil as null).
local function capture_into(list, placeholder)
  local function capture(...)
    local n = select("#", ...)
    local msg
    if n == 1 then
      msg = ...
      if msg == nil then msg = null end
    else
      msg = json.array(table.pack(...))
      msg.n = nil
      for i = 1, n do if msg[i] == nil then msg[i] = null end end
    end
    list[#list + 1] = msg
  end
  placeholder_of[capture] = placeholder
  return capture
end

-- capture_into(callbacks[name]), the list made on first use.
local function make_capture(name, placeholder, callbacks)
  local list = callbacks[name]
  if not list then
    list = json.array({})
    callbacks[name] = list
  end
  return capture_into(list, placeholder)
end

-- Deep copy of a recorded value; placeholders become capture functions.
local function copy_value(v, callbacks)
  local t = type(v)
  if t == "table" then
    local c = {}
    for k, x in pairs(v) do c[k] = copy_value(x, callbacks) end
    return setmetatable(c, getmetatable(v))
  elseif t == "string" and v:byte(1) == LT then
    local name = capture_name(v)
    if name then return make_capture(name, v, callbacks) end
  end
  return v
end

local function copy_kwargs(kwargs, callbacks)
  local c = {}
  for k, v in pairs(kwargs) do
    local provider = PROVIDERS[k]
    if provider and type(v) == "string" and v:byte(1) == LT then
      c[k] = make_capture(provider, v, callbacks)
    else
      c[k] = copy_value(v, callbacks)
    end
  end
  return c
end

-- Compiled copies ----------------------------------------------------------------------
-- A Lua table constructor sized by the compiler builds a copy about 6x faster than a
-- pairs() walk (which rehashes each new table as it grows), so each recorded line is
-- turned, on first use, into a function made of constructors: `{["k"]=..., ...}`, lists
-- as A{...}, placeholders as C(L1, placeholder) where L1 is the capture list of that name,
-- made at the top with the callbacks table. Lines too deep or odd to compile use
-- copy_kwargs instead.

local MAX_COMPILE_DEPTH = 24
local MAX_CAPTURE_NAMES = 100 -- each is a local of the compiled function

-- The local that holds the capture list of `name` in the compiled function (out.lists).
local function list_local(out, name)
  local lists = out.lists
  if not lists[name] then
    lists[#lists + 1] = name
    lists[name] = "L" .. #lists
  end
  return lists[name]
end

local emit

-- want, wi: on the way to the override slot, want[wi] is the key to follow next; the value
-- at the end of want is not copied but the run's input put there ("I").
local function emit_member(k, x, out, depth, want, wi)
  if wi and want[wi] == k then
    if wi == #want then
      out[#out + 1] = "I"
      return true
    end
    return emit(x, out, depth + 1, want, wi + 1)
  end
  return emit(x, out, depth + 1)
end

local function emit_table(v, out, depth, want, wi)
  local mt = getmetatable(v)
  if depth > MAX_COMPILE_DEPTH or (mt ~= nil and mt ~= json.array_mt) then return false end
  if mt ~= nil then
    out[#out + 1] = "A{"
    for i = 1, #v do
      if not emit_member(i, v[i], out, depth, want, wi) then return false end
      out[#out + 1] = ","
    end
  else
    out[#out + 1] = "{"
    for k, x in pairs(v) do
      if type(k) ~= "string" then return false end
      out[#out + 1] = ("[%q]="):format(k)
      if not emit_member(k, x, out, depth, want, wi) then return false end
      out[#out + 1] = ","
    end
  end
  out[#out + 1] = "}"
  return true
end

-- Appends Lua source that evaluates to a fresh copy of v; false when v cannot be compiled.
function emit(v, out, depth, want, wi)
  local t = type(v)
  if t == "table" then return emit_table(v, out, depth, want, wi) end
  if v == null then
    out[#out + 1] = "N"
  elseif t == "string" and v:byte(1) == LT and capture_name(v) then
    out[#out + 1] = ("C(%s,%q)"):format(list_local(out, capture_name(v)), v)
  elseif t == "string" or t == "number" or t == "boolean" then
    out[#out + 1] = ("%q"):format(v)
  else
    return false
  end
  return true
end

-- compile(kwargs [, want]) -> function(input) -> copy, callbacks | nil
-- With want (the Lua keys of the override path in kwargs) the copy has the input in place.
local function compile(kwargs, want)
  local out = { lists = {}, "" } -- out[1]: the lists' locals, once they are known
  out[#out + 1] = "return {"
  for k, v in pairs(kwargs) do
    if type(k) ~= "string" then return nil end
    out[#out + 1] = ("[%q]="):format(k)
    if want and want[1] == k then
      if #want == 1 then
        out[#out + 1] = "I"
      elseif not emit(v, out, 1, want, 2) then
        return nil
      end
    elseif PROVIDERS[k] and type(v) == "string" and v:byte(1) == LT then
      out[#out + 1] = ("C(%s,%q)"):format(list_local(out, PROVIDERS[k]), v)
    elseif not emit(v, out, 1) then
      return nil
    end
    out[#out + 1] = ","
  end
  local lists = out.lists
  if #lists > MAX_CAPTURE_NAMES then return nil end
  out[#out + 1] = "}, {"
  local head = { "local C, A, N = ...\nreturn function(I)\n" }
  for _, name in ipairs(lists) do
    head[#head + 1] = ("local %s = A{}\n"):format(lists[name])
    out[#out + 1] = ("[%q]=%s,"):format(name, lists[name])
  end
  out[1] = table.concat(head)
  out[#out + 1] = "} end"
  local chunk = load(table.concat(out), "=(replay copy)", "t", {})
  if not chunk then return nil end
  return chunk(capture_into, json.array, null)
end

-- Overriding the input -----------------------------------------------------------------

local function key_list(t)
  local keys = util.sorted_keys(t)
  for i, k in ipairs(keys) do keys[i] = tostring(k) end
  if #keys > 12 then return table.concat(keys, ", ", 1, 12) .. ", ..." end
  return #keys > 0 and table.concat(keys, ", ") or "no keys"
end

-- The table key segment i names in node, or nil and why not. `where` names node.
local function step(node, path, i, where)
  local seg = path.keys[i]
  if type(node) ~= "table" then
    return nil, ("segment '%s': %s is %s, not a mapping or a list"):format(seg, where, kind(node))
  end
  if util.is_array(node) then
    local idx = path.index[i]
    if not idx then
      return nil, ("segment '%s': %s is a list; index it with a 0-based number"):format(seg, where)
    end
    if idx >= #node then
      return nil, ("segment '%s': past the end of %s (a list of %d, indexes 0..%d)"):format(seg, where, #node, #node - 1)
    end
    return idx + 1
  end
  if node[seg] == nil then
    return nil, ("segment '%s': %s has no key '%s' (it has: %s)"):format(seg, where, seg, key_list(node))
  end
  return seg
end

-- Sets the value at path in args to input; nil and a reason when the path is not there.
local function set_path(args, path, input)
  local node, where, n = args, "kwargs", #path.keys
  for i = 1, n do
    local key, why = step(node, path, i, where)
    if key == nil then return nil, why end
    if i == n then
      node[key] = input
    else
      node = node[key]
      where = i == 1 and path.keys[1] or (where .. "." .. path.keys[i])
    end
  end
  return true
end

-- The Lua keys that lead to the override path in kwargs; nil when the path is not there.
local function resolve(kwargs, path)
  local node, keys = kwargs, {}
  if #path.keys == 0 then return nil end
  for i = 1, #path.keys do
    local key = step(node, path, i, "kwargs")
    if key == nil then return nil end
    keys[i] = key
    node = node[key]
  end
  return keys
end

-- The copier of an entry (false: use copy_kwargs and set_path). entry.slotted: the
-- copier puts the input in place itself (the path is in the line).
local function compile_entry(entry, path)
  local want = resolve(entry.kwargs, path)
  local make = compile(entry.kwargs, want) or false
  entry.make, entry.slotted = make, make and want ~= nil
end

-- The JSON of an entry's args with the input left out, as { before, after } (false when
-- the override path is not in the entry, or the text cannot be split for sure). A trace's
-- args are then before .. json(input) .. after: the same text as encoding the args table
-- (capture functions encode as their placeholders), without walking 2 KB of it per run;
-- the recorder writes it so (trace.args_template).
local SLOT = "\0fluxloop:input\0"
local SLOT_JSON = json.encode(SLOT)

local function json_template(self, entry)
  local t = false
  local args = entry.slotted and entry.make(SLOT) or copy_kwargs(entry.kwargs, {})
  local ok, text = pcall(function()
    return (entry.slotted or set_path(args, self.path, SLOT)) and json.encode(args)
  end)
  if ok and text then
    local i, j = text:find(SLOT_JSON, 1, true)
    if i and not text:find(SLOT_JSON, j + 1, true) then t = { text:sub(1, i - 1), text:sub(j + 1) } end
  end
  return t
end

-- An entry is made ready on first use: compiled, and its args' JSON template found.
local function make_ready(self, entry)
  compile_entry(entry, self.path)
  entry.template = json_template(self, entry)
  entry.ready = true
end

-- replayer:prepare(k, input) -> args, callbacks, line, args_template | nil, message
-- What args_for returns, without its info table: fluxloop.run calls this once per run,
-- with a valid trace number k (checked here only when select is cycle).
function Replayer:prepare(k, input)
  if input == nil then error("replayer:prepare: input is nil", 2) end
  local entry = self.fixed or self.entries[entry_index(self, k)]
  if not entry.ready then make_ready(self, entry) end
  if type(input) == "table" then input = util.deep_copy(input) end
  local make, args, callbacks = entry.make, nil, nil
  if entry.slotted then
    args, callbacks = make(input)
  else
    if make then
      args, callbacks = make()
    else
      callbacks = {}
      args = copy_kwargs(entry.kwargs, callbacks)
    end
    local ok, why = set_path(args, self.path, input)
    if not ok then
      return nil, ("%s:%d: override_param_path '%s': %s"):format(self.file, entry.line, self.path.text, why)
    end
  end
  return args, callbacks, entry.line, entry.template or nil
end

-- replayer:args_for(k, input) -> args, info | nil, "FILE:LINE: override_param_path '...': segment ..."
-- args is a fresh deep copy of the chosen line's kwargs with the input at the override path;
-- info = { line = N, callbacks = { send = {messages}, ... }, args_template = {before, after} }.
function Replayer:args_for(k, input)
  if input == nil then error("replayer:args_for: input is nil", 2) end
  entry_index(self, k) -- checks k, which prepare leaves to its caller when the line is fixed
  local args, callbacks, line, template = self:prepare(k, input)
  if not args then return nil, callbacks end
  return args, { line = line, callbacks = callbacks, args_template = template }
end

-- After the run ------------------------------------------------------------------------

-- output_from_callbacks(callbacks) -> the last message sent through "send", or nil.
function M.output_from_callbacks(callbacks)
  local sent = callbacks and callbacks.send
  if type(sent) ~= "table" or #sent == 0 then return nil end
  local last = sent[#sent]
  if last == null then return nil end
  return last
end

-- placeholder(fn) -> "<builtin:collector.send>" etc. for a capture function made here, else nil.
function M.placeholder(fn)
  return placeholder_of[fn]
end

local MAX_DEPTH = 128

local function function_text(fn, key)
  return placeholder_of[fn] or ("<callable:%s>"):format(type(key) == "string" and key or "function")
end

-- t, or a copy of it in which functions are placeholder strings. Only the tables on the way
-- to a function are copied; the rest is shared (the result is for encoding, not for changes).
-- Leaves are checked inline: this runs once per replayed run.
local function trace_table(t, depth)
  if depth > MAX_DEPTH then return t end
  local c
  for k, x in pairs(t) do
    local tx, y = type(x), nil
    if tx == "table" then
      y = trace_table(x, depth + 1)
      if y == x then y = nil end
    elseif tx == "function" then
      y = function_text(x, k)
    end
    if y ~= nil then
      c = c or util.shallow_copy(t)
      c[k] = y
    end
  end
  return c or t
end

-- args_for_trace(args) -> a plain copy of args: capture functions back to their recorded
-- placeholder, other functions as "<callable:KEY>". Unchanged subtables are shared with
-- args. The JSON encoder names functions the same way, so traces need no copy; this is
-- for scripts that want the args as data.
function M.args_for_trace(args)
  if type(args) ~= "table" then error("replay.args_for_trace: expected the args table", 2) end
  return trace_table(args, 0)
end

return M
