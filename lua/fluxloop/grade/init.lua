-- grade/init.lua - graders: the registry of grader types, checking a grader's spec, and
-- grading one finished run with every grader that applies to it (the config's
-- evaluation.graders, then its input's own `assert:` list).
-- A grader type lives in a family module (rules, script, judge); each exports
--   KEYS[type] (the keys a grader of that type takes besides name, type, threshold)
--   check(spec, out, problem) -> out, the spec normalized (problem(key, text) says what is wrong)
--   compile(spec, env) -> fn(view) -> pass, score, reason   (raises when the grader fails)
-- The rules that read only the output's text are graded in C (fluxloop.rules), the rest in Lua.
-- Grades never change a run's success; a failed run is a failed grade of every grader.
local clock = require("fluxloop.clock")
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

-- type -> family module.
M.TYPES = {
  equals = "fluxloop.grade.rules", contains = "fluxloop.grade.rules", icontains = "fluxloop.grade.rules",
  not_contains = "fluxloop.grade.rules", starts_with = "fluxloop.grade.rules", regex = "fluxloop.grade.rules",
  one_of = "fluxloop.grade.rules", is_json = "fluxloop.grade.rules", max_length = "fluxloop.grade.rules",
  max_latency_ms = "fluxloop.grade.rules", max_tokens = "fluxloop.grade.rules", tool_called = "fluxloop.grade.rules",
  lua = "fluxloop.grade.script", python = "fluxloop.grade.script", llm_judge = "fluxloop.grade.judge",
}

-- Keys every grader may have; a family adds its own (family.KEYS).
M.COMMON_KEYS = { "name", "type", "threshold" }

function M.type_names()
  return util.sorted_keys(M.TYPES)
end

local function family(t) return require(M.TYPES[t]) end

-- keys_of(type) -> the keys a grader of that type may have.
function M.keys_of(t)
  local keys = { table.unpack(M.COMMON_KEYS) }
  for _, k in ipairs(family(t).KEYS[t] or {}) do keys[#keys + 1] = k end
  return keys
end

local function describe(v)
  if type(v) == "string" then return "'" .. v .. "'" end
  if type(v) == "table" then return util.is_array(v) and "a list" or "a mapping" end
  return tostring(v)
end

-- check(spec, problem [, opts]) -> normalized spec | nil
-- Checks one grader's spec (a decoded mapping). problem(key, text) is called for each
-- mistake (key nil: the grader as a whole), and warn(key, text) for unknown keys when
-- opts.warn is given. A normalized spec is plain data (it crosses to worker states as JSON).
function M.check(spec, problem, opts)
  opts = opts or {}
  if type(spec) ~= "table" or util.is_array(spec) then
    problem(nil, "expected a mapping (type: contains, value: ...), got " .. describe(spec))
    return nil
  end
  local t = spec.type
  if t == nil or t == json.null then
    problem(nil, "missing 'type' (one of " .. table.concat(M.type_names(), ", ") .. ")")
    return nil
  end
  if type(t) ~= "string" or not M.TYPES[t] then
    local guess = type(t) == "string" and util.closest(t, M.type_names()) or nil
    problem("type", ("unknown grader type %s%s (one of %s)"):format(describe(t),
      guess and (" (did you mean '" .. guess .. "'?)") or "", table.concat(M.type_names(), ", ")))
    return nil
  end
  local name = spec.name
  if name ~= nil and name ~= json.null and (type(name) ~= "string" or name == "") then
    problem("name", "expected a non-empty string, got " .. describe(name))
    return nil
  end
  local out = { name = (name ~= nil and name ~= json.null) and name or t, type = t }
  local th = spec.threshold
  if th ~= nil and th ~= json.null then
    if type(th) ~= "number" or th < 0 or th > 1 then
      problem("threshold", "expected a pass rate from 0 to 1 (0.9 = 90%), got " .. describe(th))
      return nil
    end
    out.threshold = th
  end
  if opts.warn then
    local known = {}
    for _, k in ipairs(M.keys_of(t)) do known[k] = true end
    for _, k in ipairs(util.sorted_keys(spec)) do
      if not known[k] then
        local guess = type(k) == "string" and util.closest(k, M.keys_of(t)) or nil
        opts.warn(k, ("unknown key '%s' for a %s grader%s"):format(tostring(k), t,
          guess and (" (did you mean '" .. guess .. "'?)") or ""))
      end
    end
  end
  return family(t).check(spec, out, problem, opts)
end

-- The run as graders see it. text is the output as text (a string as it is, anything else
-- as its JSON), made when first asked for; observations likewise.
local View = {}
View.__index = function(v, key)
  if key == "text" then
    local o = v.output
    local text = type(o) == "string" and o or (o == nil and "" or json.encode(o))
    rawset(v, "text", text)
    return text
  elseif key == "observations" then
    local obs = v.load_observations and v.load_observations() or {}
    rawset(v, "observations", obs)
    return obs
  end
  return View[key]
end

local NO_ENTRY = {}

-- view(trace, job, load_observations [, v]) -> the table grader functions receive: output,
-- text, input, expected, entry, iteration, persona, metadata, duration_ms, trace,
-- observations, conversation. v: a view to fill again (a set grades run after run with one).
function M.view(trace, job, load_observations, v)
  v = v or setmetatable({}, View)
  local entry = job and job.entry or NO_ENTRY
  v.output, v.input, v.expected, v.entry = trace.output, trace.input, entry.expected, entry
  v.iteration, v.persona, v.metadata = trace.iteration, trace.persona, trace.metadata
  v.duration_ms, v.trace, v.load_observations = trace.duration_ms, trace, load_observations
  v.conversation = trace.shared and trace.shared.conversation -- a conversation's transcript (multi_turn)
  v.text, v.observations = nil, nil -- worked out again when asked
  return v
end

-- A set of compiled graders: the config's, plus per input those of its `assert:` list.
-- The rules that only read the output's text run in C (fluxloop.rules: no Lua call per
-- grader); their lines come first in a trace's scores, then the other graders', each group
-- in the order the config and the input give.
local Set = {}
Set.__index = Set

-- compile(specs, env) -> { rules = fluxloop.rules set | nil, lua = list of { name, fn },
-- names = every grader's name in scores order }. env: { project_dir, judge cache, ... }.
local function compile_all(specs, env)
  local rules_mod = require("fluxloop.grade.rules")
  local g = { lua = {}, names = {} }
  local later = {}
  for _, spec in ipairs(specs) do
    if rules_mod.native(spec) then
      g.rules = g.rules or require("fluxloop.rules").new()
      assert(g.rules:add(spec))
      g.names[#g.names + 1] = spec.name
    else
      g.lua[#g.lua + 1] = { name = spec.name, fn = family(spec.type).compile(spec, env) }
      later[#later + 1] = spec.name
    end
  end
  table.move(later, 1, #later, #g.names + 1, g.names)
  return g
end

-- set(specs, env) -> a set. specs are normalized specs (check); env.entry_asserts false: the
-- inputs have no assert: lists to compile.
function M.set(specs, env)
  env = env or {}
  return setmetatable({ specs = specs or {}, env = env, config = compile_all(specs or {}, env),
    entry_asserts = env.entry_asserts ~= false, out = {}, view_table = setmetatable({}, View) }, Set)
end

-- The graders of a job: the config's, then those of its entry's `assert:` (compiled once
-- per input: the runs of an input come together). -> config group, the input's group | nil
function Set:for_job(job)
  local asserts = job and job.entry and job.entry.assert
  if not self.entry_asserts or asserts == nil or asserts == json.null then return self.config end
  if self.job == job then return self.config, self.job_graders end
  local specs = {}
  for i, raw in ipairs(asserts) do
    specs[i] = M.check(raw, function(key, text)
      error(("assert %d%s: %s"):format(i, key and ("." .. key) or "", text), 0)
    end)
  end
  self.job, self.job_graders = job, compile_all(specs, self.env)
  return self.config, self.job_graders
end

-- Entry i of a score list, filled anew (the list and its entries are reused run after run:
-- the recorder has written them before the next run is graded).
local function put(out, i, grader, pass, score, reason, err, ms)
  local e = out[i]
  if not e then
    e = {}
    out[i] = e
  end
  e.grader, e.pass, e.score, e.reason, e.error, e.duration_ms = grader, pass, score, reason, err, ms
end

local function trim(out, n)
  for i = #out, n + 1, -1 do out[i] = nil end
  return out
end

-- The grade of every grader when the run itself failed: not graded, failed.
local function run_failed(out, groups, trace)
  local e = type(trace.error) == "table" and trace.error or NO_ENTRY
  local reason = ("the run failed (%s)"):format(tostring(e.type or "error"))
  local n = 0
  out.text, out.rules = nil, nil
  for _, g in ipairs(groups) do -- natives first, then the others, as a graded run has them
    for i = 1, g.rules and g.rules:count() or 0 do n = n + 1 put(out, n, g.names[i], false, 0, reason, nil, 0) end
  end
  for _, g in ipairs(groups) do
    for _, l in ipairs(g.lua) do n = n + 1 put(out, n, l.name, false, 0, reason, nil, 0) end
  end
  return trim(out, n)
end

local function error_text(e)
  return type(e) == "table" and tostring(e.message or json.encode(e)) or tostring(e)
end

-- Runs the Lua graders of group g on view, into out from n + 1. -> the last index filled
local function grade_lua(out, n, g, view)
  local now = clock.now_ns
  local t = now()
  for _, l in ipairs(g.lua) do
    local ok, pass, score, reason = pcall(l.fn, view)
    local t2 = now()
    n = n + 1
    if ok then
      if score == nil then score = pass and 1 or 0 end
      put(out, n, l.name, pass and true or false, score, reason ~= nil and tostring(reason) or nil, nil, (t2 - t) / 1e6)
    else
      put(out, n, l.name, nil, nil, nil, error_text(pass), (t2 - t) / 1e6)
    end
    t = t2
  end
  return n
end

-- grade(trace, job [, duration_ms]) -> list of score entries { grader, pass, score, reason,
-- error, duration_ms } (the recorder's trace.scores); its field rules holds the config's C
-- rules, for the recorder to grade with as it writes, and text the lines of the input's own
-- C rules, both written before the entries. A grader that raises has failed (pass nil,
-- error why). duration_ms: the run's, when the trace has none yet. The list is the set's
-- own, filled again by the next grade.
function Set:grade(trace, job, duration_ms)
  local out, config, own = self.out, self.config, nil
  if self.entry_asserts then
    local ok, c, o = pcall(self.for_job, self, job)
    if not ok then
      -- An assert that cannot be compiled here (checked at load, so rare): the grade of the
      -- run says why, and the run itself is untouched.
      out.text, out.rules = nil, nil
      put(out, 1, "assert", nil, nil, nil, tostring(c), 0)
      return trim(out, 1)
    end
    own = o
  end
  if not trace.success then return run_failed(out, { config, own }, trace) end
  -- The config's rules grade as the recorder writes the trace (it has the output's text and
  -- the run's duration at hand); an input's own rules, which change from input to input, here.
  out.rules, out.text = config.rules, nil
  if not own and #config.lua == 0 then return trim(out, 0) end
  local o, ms = trace.output, duration_ms or trace.duration_ms or 0
  local text = type(o) == "string" and o or (o == nil and "" or json.encode(o)) -- the output as text
  out.text = own and own.rules and own.rules:grade(trace.trace_id, text, ms) or nil
  local n = 0
  if #config.lua > 0 or (own and #own.lua > 0) then
    local view = M.view(trace, job, self.observations_of, self.view_table)
    view.duration_ms, view.text = ms, text
    n = grade_lua(out, n, config, view)
    if own then n = grade_lua(out, n, own, view) end
  end
  return trim(out, n)
end

-- failed(trace, job) -> the scores of a run lost before it could be graded (a crash in an
-- isolated worker, written by the parent).
function Set:failed(trace, job)
  local ok, c, o = pcall(self.for_job, self, job)
  return run_failed(self.out, { self.config, ok and o or nil }, trace)
end

-- plan(cfg, has_asserts) -> cfg.grading, or nil when nothing grades: the plain data every
-- state builds its graders from (workers get it as JSON). has_asserts: an input has assert:.
function M.plan(cfg, has_asserts)
  local specs = cfg.evaluation and cfg.evaluation.graders or {}
  if #specs == 0 and not has_asserts then return nil end
  local r = cfg.runner or {}
  return { specs = specs, asserts = has_asserts and true or false, project_dir = cfg.project_dir,
    python = r.python, working_directory = r.working_directory, python_path = r.python_path, runner_env = r.env }
end

-- env_of(grading) -> what families compile with.
function M.env_of(grading)
  return { project_dir = grading.project_dir, results_dir = grading.results_dir, no_cache = grading.no_cache,
    python = grading.python, working_directory = grading.working_directory, python_path = grading.python_path,
    runner_env = grading.runner_env, entry_asserts = grading.asserts }
end

-- for_state(grading, rec) -> the set a run state grades with (observations come from the
-- recorder: the run's, before they are written); nil when the graders are rules the recorder
-- applies itself as it writes (rec:grade_with: no Lua per run).
function M.for_state(grading, rec)
  local set = M.set(grading.specs, M.env_of(grading))
  if not grading.asserts and #set.config.lua == 0 and set.config.rules then
    rec:grade_with(set.config.rules)
    return nil
  end
  set.observations_of = function() return rec:observations() end
  return set
end

-- lost_scores(grading, error_type, job) -> the scores of a run lost before it could be graded
-- (a crash in an isolated worker: the parent writes its trace).
local lost_sets = setmetatable({}, { __mode = "k" })
function M.lost_scores(grading, error_type, job)
  local set = lost_sets[grading]
  if not set then
    set = M.set(grading.specs, M.env_of(grading))
    lost_sets[grading] = set
  end
  return set:failed({ success = false, error = { type = error_type } }, job)
end



return M
