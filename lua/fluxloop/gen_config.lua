-- gen_config.lua - what `fluxloop generate inputs` reads: configs/input.yaml (merged with the
-- project's other section files, as `run` and the Python tool merge them), checked with the
-- file, line and column of every problem, and the prompts it makes (base input x persona x
-- strategy).
local config = require("fluxloop.config")
local fs = require("fluxloop.fs")
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.DEFAULT_STRATEGIES = { "rephrase", "verbose", "concise" }

-- What {strategy} says for the strategies a model needs no prompt of the user's for.
M.BUILTIN = {
  rephrase = "Rephrase it: the same request in different words.",
  verbose = "Make it longer and more detailed, with the context a real user would add.",
  concise = "Make it as short as it can be while keeping the request.",
  typo = "Write it with the typos and slips of someone typing fast.",
  error_prone = "Write it with realistic mistakes: typos, wrong terms, a missing detail.",
  persona_based = "Write it the way this persona would, in their words and with their concerns.",
  adversarial = "Make it tricky: ambiguous, leading or at the edge of what the assistant should do, "
    .. "but still something a real user might send.",
  multilingual = "Write it in another language than the original, one this persona might use.",
}

local MODES = { llm = true, deterministic = true }

local function null() return json.null end
local function present(v) return v ~= nil and v ~= null() end

-- The display form of name beside display's folder ("configs/input.yaml" -> "configs/x").
local function sibling(display, name)
  local dir = util.dirname(display)
  if dir == "." or dir == "" or not display:find("/", 1, true) then return name end
  return dir .. "/" .. name
end

-- locate(flag, cwd) -> where | nil, message. where = { abs, display (what is loaded: the
-- simulation.yaml of a configs/ folder, so the sections merge), input_display, project_dir }.
function M.locate(flag, cwd)
  local display = flag or "configs/input.yaml"
  local abs = util.abspath(display, cwd)
  if flag and fs.isdir(abs) then -- a project folder was named
    display = display:gsub("/+$", "") .. "/configs/input.yaml"
    abs = util.abspath(display, cwd)
  end
  if not fs.exists(abs) then
    if flag then
      return nil, ("config file not found: %s (check --config; it is relative to the folder you run fluxloop "
        .. "from, %s)"):format(display, cwd)
    end
    return nil, "config file not found: configs/input.yaml (run fluxloop generate inputs in a project folder; "
      .. "`fluxloop init project` writes one; or pass --config FILE)"
  end
  local dir = util.dirname(abs)
  local in_configs = util.basename(dir) == "configs"
  local where = { abs = abs, display = display, input_display = display,
    project_dir = in_configs and util.dirname(dir) or dir }
  if in_configs and fs.exists(dir .. "/simulation.yaml") then
    where.abs, where.display = dir .. "/simulation.yaml", sibling(display, "simulation.yaml")
    if util.basename(abs) ~= "input.yaml" and fs.exists(dir .. "/input.yaml") then
      where.input_display = sibling(display, "input.yaml")
    end
  end
  return where
end

-- A pass over the merged document that collects problems with their places.
local Checker = {}
Checker.__index = Checker

-- "FILE:LINE:COL" of the value at path, else of its nearest enclosing key; a key missing
-- at the top points at the input file, where it belongs.
function Checker:where(path)
  local p, m = path, self.marks[path]
  while m == nil and p ~= "" do
    p = p:match("^(.*)%.[^.]*$") or ""
    m = self.marks[p]
  end
  if m == nil or p == "" then return self.input_display .. ":1:1" end
  return ("%s:%d:%d"):format(m.file or self.display, m.line or 1, m.col or 1)
end

function Checker:error(path, msg)
  self.errors[#self.errors + 1] = ("%s: %s: %s"):format(self:where(path), path, msg)
end

function Checker:warn(path, msg)
  self.warnings[#self.warnings + 1] = ("%s: warning: %s: %s"):format(self:where(path), path, msg)
end

local function kind(v)
  if v == null() then return "null" end
  if type(v) == "table" then return util.is_array(v) and "a list" or "a mapping" end
  if type(v) == "string" then return ("'%s'"):format(#v > 40 and v:sub(1, 37) .. "..." or v) end
  return tostring(v)
end

-- The keys of mapping v at path in the order they were written.
function Checker:keys(path, v)
  local m = self.marks[path]
  if m and m.keys then return m.keys end
  return util.sorted_keys(v)
end

function Checker:base_inputs()
  local v, out = self.doc.base_inputs, {}
  if not present(v) then
    self:error("base_inputs", 'missing: add a list of the inputs to vary, such as\n  base_inputs:\n'
      .. '    - input: "How do I get started?"')
    return out
  end
  if not util.is_array(v) or #v == 0 then
    self:error("base_inputs", "expected a list of mappings with 'input', got " .. (#v == 0 and util.is_array(v)
      and "an empty list" or kind(v)))
    return out
  end
  for i, item in ipairs(v) do
    local p = "base_inputs." .. i
    if not util.is_mapping(item) then
      self:error(p, "expected a mapping with 'input' (- input: \"...\"), got " .. kind(item))
    elseif type(item.input) ~= "string" or item.input:match("^%s*$") then
      -- As the Python tool: an entry without text is no base input.
      self:warn(p, "no 'input' text; this entry is skipped")
    else
      out[#out + 1] = { index = i - 1, entry = item }
    end
  end
  if #out == 0 and #self.errors == 0 then self:error("base_inputs", "no entry has an 'input' text") end
  return out
end

function Checker:personas()
  local v, out = self.doc.personas, {}
  if not present(v) then return out end
  local function add(persona, p)
    local name = persona.name
    if type(name) ~= "string" or name == "" then
      self:error(p .. ".name", "expected the persona's name (a string), got " .. kind(name))
    else
      out[#out + 1] = persona
    end
  end
  if util.is_array(v) then
    for i, item in ipairs(v) do
      if util.is_mapping(item) then add(item, "personas." .. i)
      else self:error("personas." .. i, "expected a mapping with 'name', got " .. kind(item)) end
    end
  elseif util.is_mapping(v) then
    for _, name in ipairs(self:keys("personas", v)) do
      local item, p = v[name], "personas." .. name
      if item == null() then item = {} end
      if not util.is_mapping(item) then
        self:error(p, "expected a mapping (description:, characteristics:, ...), got " .. kind(item))
      else
        item = util.shallow_copy(item)
        if not present(item.name) then item.name = name end
        add(item, p)
      end
    end
  else
    self:error("personas", "expected a list of mappings with 'name', got " .. kind(v))
  end
  return out
end

-- A strategy as the Python tool normalises it: a string, or a mapping's type, name,
-- strategy or value; lower case, '-' and spaces as '_'.
local function strategy_name(v)
  if util.is_mapping(v) then v = v.type or v.name or v.strategy or v.value end
  if type(v) ~= "string" then return nil end
  local s = v:lower():gsub("[%s%-]+", "_")
  if s == "" then return nil end
  return s
end

-- The strategies: --strategy (each), else variation_strategies, else the defaults; each
-- with where it came from ({ name, path } or { name, flag }).
function Checker:strategies(flag_list)
  local out, seen = {}, {}
  local function add(s)
    if not seen[s.name] then seen[s.name] = true out[#out + 1] = s end
  end
  if flag_list and #flag_list > 0 then
    for _, f in ipairs(flag_list) do
      local name = strategy_name(f)
      if name then add({ name = name, flag = f }) end
    end
    return out
  end
  local v = self.doc.variation_strategies
  if present(v) then
    if not util.is_array(v) then
      self:error("variation_strategies", "expected a list of strategy names ([rephrase, verbose]), got " .. kind(v))
      return out
    end
    for i, item in ipairs(v) do
      local name = strategy_name(item)
      if name then add({ name = name, path = "variation_strategies." .. i })
      else self:error("variation_strategies." .. i, "expected a strategy name, got " .. kind(item)) end
    end
    if #v > 0 then return out end
  end
  for _, name in ipairs(M.DEFAULT_STRATEGIES) do add({ name = name, default = true }) end
  return out
end

-- A mapping of strings at path (nil when absent).
function Checker:string_map(path, v)
  if not present(v) then return nil end
  if not util.is_mapping(v) then
    self:error(path, "expected a mapping of strategy: text, got " .. kind(v))
    return nil
  end
  local out = {}
  for k, text in pairs(v) do
    local name = strategy_name(k) or tostring(k)
    if type(text) == "string" then
      out[name] = text
    elseif util.is_array(text) and #text > 0 then
      for i, t in ipairs(text) do
        if type(t) ~= "string" then self:error(("%s.%s.%d"):format(path, k, i), "expected a text, got " .. kind(t)) end
      end
      out[name] = text
    else
      self:error(path .. "." .. tostring(k), "expected a text, got " .. kind(text))
    end
  end
  return out
end

function Checker:optional(path, v, want)
  if not present(v) then return nil end
  if want == "string" and type(v) == "string" then return v end
  if want == "number" and type(v) == "number" and v > 0 then return v end
  if want == "integer" and math.type(v) == "integer" and v >= 0 then return v end
  self:error(path, ("expected %s, got %s"):format(({ string = "a text", number = "a number > 0",
    integer = "an integer >= 0" })[want], kind(v)))
  return nil
end

-- The llm section: model (required), and what shapes the request.
function Checker:llm(g)
  local llm = present(g.llm) and g.llm or {}
  if not util.is_mapping(llm) then
    self:error("input_generation.llm", "expected a mapping (model:, base_url:, ...), got " .. kind(llm))
    llm = {}
  end
  local P = "input_generation.llm."
  local out = {
    provider = self:optional(P .. "provider", llm.provider, "string") or "openai",
    model = self:optional(P .. "model", llm.model, "string"),
    base_url = self:optional(P .. "base_url", llm.base_url, "string"),
    api_key = self:optional(P .. "api_key", llm.api_key, "string"),
    system_prompt = self:optional(P .. "system_prompt", llm.system_prompt, "string"),
    user_prompt_template = self:optional(P .. "user_prompt_template", llm.user_prompt_template, "string"),
    strategy_prompts = self:string_map(P .. "strategy_prompts", llm.strategy_prompts) or {},
    request_timeout = self:optional(P .. "request_timeout", llm.request_timeout, "number") or 60,
    retries = self:optional(P .. "retries", llm.retries, "integer") or 3,
  }
  if out.provider ~= "openai" then
    self:error(P .. "provider", ("'%s': only OpenAI-compatible endpoints are spoken here; write provider: openai "
      .. "and point base_url at the server"):format(out.provider))
  end
  if not out.model or out.model == "" then
    self:error(P .. "model", "missing: the model to ask (such as gpt-4o-mini); --mode deterministic needs none")
  end
  if out.retries and out.retries > 20 then self:error(P .. "retries", "expected at most 20") end
  if out.base_url then
    local ok, why = require("fluxloop.http").check_url(out.base_url)
    if not ok then
      self:error(P .. "base_url", ("'%s' is not a URL fluxloop can ask (%s); write it as "
        .. "http://127.0.0.1:8000/v1"):format(out.base_url, why))
    end
  end
  return out
end

function Checker:strategy_problem(s, what)
  if s.flag then
    self.errors[#self.errors + 1] = ("--strategy %s: %s"):format(s.flag, what)
  elseif s.path then
    self:error(s.path, what)
  else
    self:error("variation_strategies", what)
  end
end

local function names_of(t)
  local list = util.sorted_keys(t)
  return table.concat(list, ", ")
end

-- Each strategy needs a prompt (llm: built in or strategy_prompts) or a template (deterministic).
function Checker:check_strategies(spec)
  for _, s in ipairs(spec.strategies) do
    if spec.mode == "llm" then
      if not M.BUILTIN[s.name] and not spec.llm.strategy_prompts[s.name] then
        self:strategy_problem(s, ("unknown strategy '%s' and no prompt for it: add "
          .. "input_generation.llm.strategy_prompts.%s: \"what to do\", or use one of %s"):format(s.name, s.name,
          names_of(M.BUILTIN)))
      end
    elseif not spec.templates[s.name] then
      self:strategy_problem(s, ("no template for strategy '%s': add input_generation.deterministic.templates.%s: "
        .. "\"... {input} ...\"%s"):format(s.name, s.name, next(spec.templates) and (" (there are templates for "
        .. names_of(spec.templates) .. ")") or ""))
    end
  end
end

-- load(flags, cwd) -> spec, warnings | nil, message (every problem, one a line).
-- flags: config, mode, strategy (list).
function M.load(flags, cwd)
  local where, err = M.locate(flags.config, cwd)
  if not where then return nil, err end
  local doc, marks = config.load_sections(where.abs, where.display)
  if not doc then return nil, marks end
  local c = setmetatable({ doc = doc, marks = marks, display = where.display, input_display = where.input_display,
    errors = {}, warnings = {} }, Checker)
  local g = present(doc.input_generation) and doc.input_generation or {}
  if not util.is_mapping(g) then
    c:error("input_generation", "expected a mapping (mode:, llm:, deterministic:), got " .. kind(g))
    g = {}
  end
  local mode = flags.mode or (present(g.mode) and g.mode) or "llm"
  if not MODES[mode] then c:error("input_generation.mode", ("expected llm or deterministic, got %s"):format(kind(mode))) end
  local spec = { where = where, doc = doc, mode = mode, project_dir = where.project_dir,
    base_inputs = c:base_inputs(), personas = c:personas(), strategies = c:strategies(flags.strategy) }
  if mode == "llm" then
    spec.llm = c:llm(g)
  elseif mode == "deterministic" then
    local d = present(g.deterministic) and g.deterministic or {}
    if not util.is_mapping(d) then
      c:error("input_generation.deterministic", "expected a mapping with templates:, got " .. kind(d))
      d = {}
    end
    spec.templates = c:string_map("input_generation.deterministic.templates", d.templates) or {}
  end
  if MODES[mode] then c:check_strategies(spec) end
  if #c.errors > 0 then
    for _, w in ipairs(c.warnings) do c.errors[#c.errors + 1] = w end
    return nil, table.concat(c.errors, "\n")
  end
  local inputs_file = doc.inputs_file
  if not present(inputs_file) and util.is_mapping(doc.inputs) then inputs_file = doc.inputs.file end
  if type(inputs_file) == "string" and inputs_file ~= "" then
    spec.inputs_file = util.abspath(inputs_file, where.project_dir)
  end
  return spec, c.warnings
end

-- The persona as the prompt shows it (the Python tool's Persona.to_prompt), or "Generic user".
function M.persona_text(p)
  if not p then return "Generic user" end
  local lines = { "User Persona: " .. p.name }
  if type(p.description) == "string" then lines[#lines + 1] = "Description: " .. p.description end
  for _, f in ipairs({ { "characteristics", "Characteristics" }, { "goals", "Goals" },
      { "constraints", "Constraints" } }) do
    local list = p[f[1]]
    if util.is_array(list) and #list > 0 then
      local parts = {}
      for i, x in ipairs(list) do parts[i] = tostring(x) end
      lines[#lines + 1] = f[2] .. ": " .. table.concat(parts, ", ")
    end
  end
  lines[#lines + 1] = "Language: " .. tostring(present(p.language) and p.language or "en")
  lines[#lines + 1] = "Expertise Level: " .. tostring(present(p.expertise_level) and p.expertise_level or "intermediate")
  return table.concat(lines, "\n")
end

-- fill(template, vars) -> text: {name} of vars replaced; other braces stay as written.
function M.fill(template, vars)
  return (template:gsub("{([%w_]+)}", function(name) return vars[name] end))
end

-- prompts(spec, prompt_template, limit) -> list of { base_index, base, persona, strategy, prompt }
-- in the order base input, persona, strategy (and template, deterministic), at most limit.
function M.prompts(spec, prompt_template, limit)
  local out = {}
  local personas = #spec.personas > 0 and spec.personas or { false }
  for _, base in ipairs(spec.base_inputs) do
    for _, persona in ipairs(personas) do
      for _, s in ipairs(spec.strategies) do
        local texts
        if spec.mode == "llm" then
          texts = { M.fill(prompt_template, { input = base.entry.input, persona = M.persona_text(persona),
            strategy = spec.llm.strategy_prompts[s.name] or M.BUILTIN[s.name], metadata = json.encode(base.entry) }) }
        else
          local t = spec.templates[s.name]
          texts = {}
          for i, one in ipairs(type(t) == "table" and t or { t }) do
            texts[i] = M.fill(one, { input = base.entry.input, persona = persona and persona.name or "user" })
          end
        end
        for _, text in ipairs(texts) do
          if limit and #out >= limit then return out end
          out[#out + 1] = { base_index = base.index, base = base.entry, persona = persona or nil, strategy = s.name,
            prompt = text }
        end
      end
    end
  end
  return out
end

return M
