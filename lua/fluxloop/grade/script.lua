-- grade/script.lua - graders that are the user's own code: `lua` (a function of a Lua
-- module on the project's path) and `python` (a function of a Python module, called through
-- fluxloop's Python bridge with its arguments bound by name). Both get the output and the
-- run's facts and return a boolean, a score from 0 to 1, or {pass, score, reason}.
local json = require("fluxloop.json")
local util = require("fluxloop.util")

local M = {}

M.KEYS = { lua = { "target", "pass_score" }, python = { "target", "pass_score", "python" } }

local function absent(v) return v == nil or v == json.null end

function M.check(spec, out, problem)
  local target = spec.target
  if absent(target) then
    problem(nil, ("missing 'target' (\"module.path:function\", e.g. graders.checks:%s)"):format(
      out.type == "lua" and "polite" or "is_polite"))
    return nil
  end
  if type(target) ~= "string" or not target:match("^[^:]+:[^:]+$") then
    problem("target", "expected \"module.path:function\", got " .. tostring(target))
    return nil
  end
  out.target = target
  if not M.number_key(spec, out, "pass_score", 0, 1, problem,
    "a score from 0 to 1 (a returned score at or above it passes)") then return nil end
  if out.type == "python" and not absent(spec.python) then out.python = tostring(spec.python) end
  return out
end

-- number_key(spec, out, key, lo, hi, problem, what) -> true | nil: spec[key], when given, is a
-- number from lo to hi, copied to out; else problem(key, ...) and nil. (The judge's keys too.)
function M.number_key(spec, out, key, lo, hi, problem, what)
  local v = spec[key]
  if absent(v) then return true end
  if type(v) ~= "number" or v ~= v or v < lo or v > hi then
    problem(key, ("expected %s, got %s"):format(what, tostring(v)))
    return nil
  end
  out[key] = v
  return true
end

-- verdict(value, pass_score) -> pass, score, reason: what a grader function returned.
function M.verdict(v, pass_score)
  pass_score = pass_score or 0.5
  if type(v) == "boolean" then return v, v and 1 or 0 end
  if type(v) == "number" then
    if v ~= v or v < 0 or v > 1 then error(("returned the score %s; a score is from 0 to 1"):format(tostring(v)), 0) end
    return v >= pass_score, v
  end
  if type(v) == "table" and not util.is_array(v) then
    local pass, score, reason = v.pass, v.score, v.reason
    if pass == json.null then pass = nil end
    if score == json.null then score = nil end
    if score ~= nil and (type(score) ~= "number" or score ~= score or score < 0 or score > 1) then
      error(("returned score = %s; a score is a number from 0 to 1"):format(tostring(score)), 0)
    end
    if pass == nil and score == nil then error("returned a table without pass or score", 0) end
    if pass ~= nil and type(pass) ~= "boolean" then
      error(("returned pass = %s; pass is true or false"):format(tostring(pass)), 0)
    end
    if pass == nil then pass = score >= pass_score end
    if reason == json.null then reason = nil end
    return pass, score or (pass and 1 or 0), reason ~= nil and (type(reason) == "string" and reason or json.encode(reason))
      or nil
  end
  error(("returned %s; return true/false, a score from 0 to 1, or {pass = ..., score = ..., reason = ...}")
    :format(v == nil and "nothing" or ("a " .. type(v))), 0)
end

-- The facts a grader gets besides the output (ctx of a Lua grader, keyword arguments of a
-- Python one).
local function facts(view)
  local trace = view.trace
  return {
    input = view.input, input_text = view.input, expected = view.expected, iteration = view.iteration,
    persona = view.persona, metadata = view.metadata, entry = view.entry, duration_ms = view.duration_ms,
    trace_id = trace.trace_id, conversation = view.conversation, -- multi_turn: the whole transcript
    trace = { trace_id = trace.trace_id, input = trace.input, output = trace.output, success = trace.success,
      iteration = trace.iteration, persona = trace.persona, metadata = trace.metadata,
      duration_ms = view.duration_ms, observations = json.array(view.observations) },
  }
end

local function resolve(spec, env, runner)
  local fn, info = require("fluxloop.target").resolve(spec.target, { project_dir = env.project_dir, runner = runner })
  if not fn then error(("grader %s: %s"):format(spec.name, info), 0) end
  return fn
end

local function compile_lua(spec, env)
  local fn -- resolved at the first grade, in the state that grades (a worker's own)
  return function(view)
    fn = fn or resolve(spec, env, { language = "lua" })
    local ctx = facts(view)
    return M.verdict(fn(view.output, ctx), spec.pass_score)
  end
end

-- What a Python grader records is not the agent's run: its observations are dropped.
local Quiet = {}
Quiet.__index = Quiet
function Quiet.observe() end
function Quiet.span_open() end
function Quiet.span_close() end

-- A Python grader is a worker of the Python bridge whose function is called with the
-- output and the facts by name (ctx.bind): def grade(output, expected, input_text, trace).
local function compile_python(spec, env)
  local fn
  return function(view)
    fn = fn or resolve(spec, env, { language = "python", python = spec.python or env.python,
      working_directory = env.working_directory, python_path = env.python_path, env = env.runner_env })
    local bind = facts(view)
    bind.output = view.output
    local out = fn(view.output, setmetatable({ bind = bind, trace_id = view.trace.trace_id, iteration = view.iteration,
      persona = view.persona, metadata = view.metadata }, Quiet))
    return M.verdict(out, spec.pass_score)
  end
end

function M.compile(spec, env)
  if spec.type == "lua" then return compile_lua(spec, env) end
  return compile_python(spec, env)
end

-- check_target(spec, project_dir) -> true | nil, message: a Lua grader's target resolves, a
-- Python grader's module is a file of the project (checked before any run, so a typo is a
-- config error, not a thousand failed grades).
function M.check_target(spec, project_dir)
  if spec.type == "python" then
    local module = spec.target:match("^([^:]+):")
    local rel = module:gsub("%.", "/")
    local fs = require("fluxloop.fs")
    for _, p in ipairs({ rel .. ".py", rel .. "/__init__.py" }) do
      if fs.exists((project_dir or ".") .. "/" .. p) then return true end
    end
    return nil, ("target '%s': no Python module %s (looked for %s.py and %s/__init__.py in the project folder %s)")
      :format(spec.target, module, rel, rel, tostring(project_dir))
  end
  if spec.type ~= "lua" then return true end
  local fn, info = require("fluxloop.target").resolve(spec.target, { project_dir = project_dir,
    runner = { language = "lua" } })
  if not fn then return nil, info end
  return true
end

return M
