-- context.lua - the `ctx` an agent receives: run facts plus observe() and span() that feed the recorder.
local M = {}

-- The observation types of the Python fluxloop SDK.
M.TYPES = { span = true, event = true, generation = true, tool = true, agent = true,
  chain = true, evaluation = true }

local function type_list()
  local names = {}
  for k in pairs(M.TYPES) do names[#names + 1] = k end
  table.sort(names)
  return table.concat(names, ", ")
end

local function check_type(method, t)
  if not M.TYPES[t] then
    error(("ctx:%s: unknown observation type '%s' (use one of %s)"):format(method, tostring(t), type_list()), 3)
  end
end

local function count(v)
  if type(v) == "number" and v == v and v >= 0 and v < 2^53 then return math.tointeger(v) or v end
  return nil
end

-- extra(model, usage) -> the fields a model call adds to its observation (model,
-- prompt_tokens, completion_tokens, total_tokens), or nil when there are none. usage is an
-- OpenAI-style {prompt_tokens, completion_tokens, total_tokens} or an Anthropic-style
-- {input_tokens, output_tokens}; a missing total is the sum of the other two.
function M.extra(model, usage)
  local u = type(usage) == "table" and usage or {}
  local p = count(u.prompt_tokens) or count(u.input_tokens)
  local c = count(u.completion_tokens) or count(u.output_tokens)
  local t = count(u.total_tokens) or (p and c and p + c) or nil
  if type(model) ~= "string" then model = nil end
  if not (model or p or c or t) then return nil end
  return { model = model, prompt_tokens = p, completion_tokens = c, total_tokens = t }
end

-- class(rec) -> metatable for contexts recording into rec.
-- A ctx table carries persona, persona_info, iteration, metadata, trace_id, entry, args.
function M.class(rec)
  local Ctx = {}
  Ctx.__index = Ctx

  -- ctx:observe{ type=, name=, input=, output=, metadata=, duration_ms=, model=, usage= }
  -- -> observation id. model and usage (token counts) become the observation's model and
  -- prompt_tokens/completion_tokens/total_tokens fields.
  function Ctx:observe(o)
    if type(o) ~= "table" then
      error("ctx:observe expects a table: ctx:observe{type = \"tool\", name = ..., input = ..., output = ...}", 2)
    end
    local t = o.type or "event"
    check_type("observe", t)
    if o.name ~= nil and type(o.name) ~= "string" then error("ctx:observe: name must be a string", 2) end
    local extra = (o.model ~= nil or o.usage ~= nil) and M.extra(o.model, o.usage) or nil
    return rec:observe(t, o.name, o.input, o.output, o.metadata, o.duration_ms, extra)
  end

  local function finish_span(slot, ok, ...)
    if ok then
      rec:span_close(slot, (...), nil, nil)
      return ...
    end
    local err = ...
    rec:span_close(slot, nil, type(err) == "table" and (err.message or "error") or tostring(err), nil)
    error(err, 0) -- the agent's error goes on unchanged
  end

  -- ctx:span(name | {name=, type=, metadata=}, fn, ...) -> fn(...)'s results.
  -- Times fn; observations made inside it become its children.
  function Ctx:span(name, fn, ...)
    local t = "span"
    if type(name) == "table" then
      t = name.type or "span"
      name = name.name
    end
    check_type("span", t)
    if type(fn) ~= "function" then error("ctx:span: second argument must be a function", 2) end
    local n = select("#", ...)
    local input
    if n == 1 then input = (...) elseif n > 1 then input = { ... } end
    local slot = rec:span_open(t, name, input)
    return finish_span(slot, pcall(fn, ...))
  end

  -- The two halves of span(), for code that cannot pass a function (native agents):
  -- ctx:span_open(type, name, input) -> slot; ctx:span_close(slot, output, error_message
  -- [, model, usage]).
  function Ctx:span_open(t, name, input)
    t = t or "span"
    check_type("span_open", t)
    return rec:span_open(t, name, input)
  end

  -- model and usage (optional) as for observe: a model call's span gets its token counts.
  function Ctx:span_close(slot, out, err, model, usage)
    local extra = (model ~= nil or usage ~= nil) and M.extra(model, usage) or nil
    rec:span_close(slot, out, err, nil, extra)
  end

  return Ctx
end

return M
