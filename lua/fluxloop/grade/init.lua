-- grade/init.lua - graders: the registry of grader types, checking a grader's spec, and
-- grading one finished run with every grader that applies to it (the config's
-- evaluation.graders, then its input's own `assert:` list).
-- A grader type lives in a family module (rules, script, judge); each exports
--   check(spec, problem) -> normalized spec   (problem(key, text) reports what is wrong)
--   compile(spec, env) -> fn(view) -> pass, score, reason   (raises when the grader fails)
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
  local names = util.sorted_keys(M.TYPES)
  return names
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

-- view(trace, job, load_observations) -> the table grader functions receive: output, text,
-- input, expected, entry, iteration, persona, metadata, duration_ms, trace, observations.
function M.view(trace, job, load_observations)
  local entry = job and job.entry or {}
  return setmetatable({
    output = trace.output, input = trace.input, expected = entry.expected, entry = entry,
    iteration = trace.iteration, persona = trace.persona, metadata = trace.metadata,
    duration_ms = trace.duration_ms, trace = trace, load_observations = load_observations,
    conversation = trace.shared and trace.shared.conversation, -- a conversation's transcript (multi_turn)
  }, View)
end

-- A set of compiled graders: the config's, plus per input those of its `assert:` list.
local Set = {}
Set.__index = Set

-- compile(specs, env) -> list of { name, fn }. env: { project_dir, cache (judge), ... }.
local function compile_all(specs, env)
  local out = {}
  for i, spec in ipairs(specs) do
    out[i] = { name = spec.name, fn = family(spec.type).compile(spec, env) }
  end
  return out
end

-- set(specs, env) -> set | nil when there is nothing to grade with and no input could add
-- graders (env.entry_asserts false). specs are normalized specs (check).
function M.set(specs, env)
  env = env or {}
  return setmetatable({ specs = specs or {}, env = env, config = compile_all(specs or {}, env),
    entry_asserts = env.entry_asserts ~= false }, Set)
end

-- The graders of a job: the config's, then those of its entry's `assert:` (compiled once
-- per input: the runs of an input come together).
function Set:for_job(job)
  local asserts = job and job.entry and job.entry.assert
  if not self.entry_asserts or asserts == nil or asserts == json.null then return self.config end
  if self.job == job then return self.job_graders end
  local list = { table.unpack(self.config) }
  for i, raw in ipairs(asserts) do
    local spec = M.check(raw, function(key, text)
      error(("assert %d%s: %s"):format(i, key and ("." .. key) or "", text), 0)
    end)
    list[#list + 1] = { name = spec.name, fn = family(spec.type).compile(spec, self.env) }
  end
  self.job, self.job_graders = job, list
  return list
end

-- The grade of every grader when the run itself failed: not graded, failed.
local function run_failed(graders, trace)
  local e = type(trace.error) == "table" and trace.error or {}
  local reason = ("the run failed (%s)"):format(tostring(e.type or "error"))
  local out = {}
  for i, g in ipairs(graders) do
    out[i] = { grader = g.name, pass = false, score = 0, reason = reason, duration_ms = 0 }
  end
  return out
end

-- One grader on one view -> its score entry. A grader that raises has failed (pass nil).
local function grade_one(g, view)
  local t0 = clock.now_ns()
  local ok, pass, score, reason = pcall(g.fn, view)
  local ms = (clock.now_ns() - t0) / 1e6
  if not ok then
    local msg = type(pass) == "table" and (pass.message or json.encode(pass)) or tostring(pass)
    return { grader = g.name, pass = nil, error = msg, duration_ms = ms }
  end
  if score == nil then score = pass and 1 or 0 end
  return { grader = g.name, pass = pass and true or false, score = score,
    reason = reason ~= nil and tostring(reason) or nil, duration_ms = ms }
end

-- grade(trace, job [, duration_ms]) -> list of score entries (the recorder's trace.scores),
-- one per grader, in grader order. duration_ms: the run's, when the trace has none yet.
function Set:grade(trace, job, duration_ms)
  local ok, graders = pcall(self.for_job, self, job)
  if not ok then
    -- An assert that cannot be compiled here (checked at load, so rare): every grade of
    -- the run says why, and the run itself is untouched.
    return { { grader = "assert", pass = nil, error = tostring(graders), duration_ms = 0 } }
  end
  if not trace.success then return run_failed(graders, trace) end
  local view = M.view(trace, job, self.observations_of)
  if duration_ms then view.duration_ms = duration_ms end
  local out = {}
  for i, g in ipairs(graders) do out[i] = grade_one(g, view) end
  return out
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

-- for_state(grading, rec) -> the set a run state grades with; observations come from the
-- recorder (the run's, before they are written).
function M.for_state(grading, rec)
  local set = M.set(grading.specs, M.env_of(grading))
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

-- failed(trace, job) -> the scores of a run lost before it could be graded (a crash in an
-- isolated worker, written by the parent).
function Set:failed(trace, job)
  local ok, graders = pcall(self.for_job, self, job)
  return run_failed(ok and graders or self.config, trace)
end

return M
