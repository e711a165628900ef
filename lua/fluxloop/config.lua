-- config.lua - finds, loads, validates and snapshots configs/simulation.yaml.
-- The parts: config/sections.lua reads the files (and merges a Python project's section
-- files), config/checker.lua is the validation pass, config/build.lua gives the runner's
-- keys their meaning. A feature that owns a top-level section (evaluation:, multi_turn:)
-- checks it in its own module, listed in M.SECTIONS.
local fs = require("fluxloop.fs")
local util = require("fluxloop.util")
local build = require("fluxloop.config.build")
local checker = require("fluxloop.config.checker")
local sections = require("fluxloop.config.sections")

local M = {}

local DEFAULT_CONFIG = "configs/simulation.yaml"
local NOT_FOUND_HINT = sections.NOT_FOUND_HINT
M.MAX_PARALLEL = build.MAX_PARALLEL
M.MAX_TIMEOUT_MS = build.MAX_TIMEOUT_MS

-- Keys the runner reads, per mapping path ("" is the top level).
M.KNOWN = {
  [""] = { "name", "runner", "output", "inputs", "hooks", "replay_args", "personas",
    "run_delay_seconds", "iterations", "parallel_runs", "output_directory", "inputs_file" },
  runner = { "target", "iterations", "parallel", "timeout_ms", "timeout", "timeout_seconds", "max_retries",
    "retry_delay", "isolation", "env",
    "module_path", "function_name", "environment_vars", "command", "language", "python",
    "working_directory", "python_path", "start_timeout_ms", "rate_limit", "max_concurrent_requests", "http" },
  ["runner.rate_limit"] = { "requests_per_second", "burst" },
  ["runner.http"] = { "body", "headers", "output", "timeout_ms", "retries" },
  output = { "directory", "format" },
  inputs = { "file" },
  replay_args = { "enabled", "recording_file", "override_param_path", "select" },
}

-- Keys of the Python fluxloop that are accepted and have no effect here.
M.IGNORED = {
  [""] = { "description", "version", "save_traces", "save_aggregated_metrics", "seed",
    "evaluators", "collector_url", "collector_api_key", "tags", "metadata",
    "variation_count", "variation_temperature", "variation_model",
    "custom_variation_prompt", "input_template", "source_root" },
  runner = { "factory", "factory_kwargs", "stream_output_path", "requirements_file",
    "setup_commands", "use_docker", "docker_image", "docker_build_context",
    "docker_volumes" },
  replay_args = { "callable_providers" },
}

-- Keys of configs/input.yaml that `fluxloop generate inputs` reads (fluxloop.gen_config):
-- known to run, which merges input.yaml in, so neither a warning nor a notice names them.
M.KNOWN[""][#M.KNOWN[""] + 1] = "base_inputs"
M.KNOWN[""][#M.KNOWN[""] + 1] = "variation_strategies"
M.KNOWN[""][#M.KNOWN[""] + 1] = "input_generation"

-- Top-level sections owned by a feature's module: { key, module }. The module is loaded
-- only when the config has the key; it exports `known` (dotted path -> key names, as
-- M.KNOWN) and `check(c, cfg)`, which reads its section with the checker c and stores the
-- result in cfg[key].
M.SECTIONS = {
  { key = "multi_turn", module = "fluxloop.conversation.config" },
  { key = "evaluation", module = "fluxloop.grade.config" },
  { key = "pricing", module = "fluxloop.pricing" },
}

local display_join = sections.display_join

local function null() return require("fluxloop.json").null end

local function project_dir_of(abs)
  local dir = util.dirname(abs)
  if util.basename(dir) == "configs" then return util.dirname(dir) end
  return dir
end

-- Finds the config file. Returns its absolute path, the project folder and the
-- path as the user would write it (for messages); or nil and a message.
function M.locate(config_flag, cwd)
  cwd = cwd or util.getcwd()
  local display = config_flag or DEFAULT_CONFIG
  local path = util.abspath(display, cwd)
  if config_flag and fs.isdir(path) then
    -- A project folder (or a configs/ folder) was named.
    for _, rel in ipairs({ "configs/simulation.yaml", "simulation.yaml" }) do
      local p = util.join_path(path, rel)
      if fs.exists(p) and not fs.isdir(p) then
        return p, project_dir_of(p), display_join(config_flag:gsub("/+$", ""), rel)
      end
    end
    return nil, "config file not found: " .. display_join(config_flag:gsub("/+$", ""),
      "configs/simulation.yaml") .. " " .. NOT_FOUND_HINT
  end
  if not fs.exists(path) then
    if config_flag then
      return nil, ("config file not found: %s (check the path given to --config; it is relative to "
        .. "the folder you run fluxloop from, %s)"):format(display, cwd)
    end
    return nil, "config file not found: " .. display .. " " .. NOT_FOUND_HINT
  end
  return path, project_dir_of(path), display
end

-- load_sections(abs, display) -> doc, marks | nil, message (fluxloop.config.sections).
M.load_sections = sections.load

-- The schema the checker scans keys with: the runner's keys, plus those of each section
-- module the document uses (their modules, loaded).
local function schema_of(doc)
  local known, used = {}, {}
  for path, keys in pairs(M.KNOWN) do known[path] = keys end
  known[""] = { table.unpack(M.KNOWN[""]) }
  for _, s in ipairs(M.SECTIONS) do
    known[""][#known[""] + 1] = s.key
    if util.is_mapping(doc) and doc[s.key] ~= nil then
      local mod = require(s.module)
      for path, keys in pairs(mod.known or {}) do known[path] = keys end
      used[#used + 1] = { key = s.key, mod = mod }
    end
  end
  return { known = known, ignored = M.IGNORED, flag_shaped = { runner = build.FLAG_SHAPED } }, used
end

local function sorted_texts(list, files)
  table.sort(list, function(a, b)
    local fa, fb = files[a.file] or 0, files[b.file] or 0
    if fa ~= fb then return fa < fb end
    if a.line ~= b.line then return a.line < b.line end
    if a.col ~= b.col then return a.col < b.col end
    return a.seq < b.seq
  end)
  local out = {}
  for i, e in ipairs(list) do out[i] = e.text end
  return out
end

-- Loads and validates the config at path. Returns cfg, warnings (a list of
-- lines; the one starting "notice:" lists the Python keys that have no effect)
-- or nil and every error, one per line.
function M.load(path, project_dir, display_name)
  assert(type(path) == "string", "config.load: path must be a string")
  local display = display_name or path
  local abs = util.abspath(path)
  project_dir = project_dir and util.abspath(project_dir) or project_dir_of(abs)
  local doc, marks, merged = M.load_sections(abs, display)
  if doc == nil then return nil, marks end
  local schema, used = schema_of(doc)
  local c = checker.new(doc, marks, display, schema)
  local cfg = build.build(c, abs, project_dir)
  for _, s in ipairs(used) do s.mod.check(c, cfg) end
  -- Order messages by file (project, input, simulation), then position.
  local files, n = {}, 0
  for _, name in ipairs({ "project.yaml", "input.yaml" }) do
    n = n + 1
    files[display_join(util.dirname(display), name)] = n
  end
  files[display] = n + 1
  if #c.errors > 0 then
    -- The warnings go with the errors: an unknown key's "did you mean" is often the cause
    -- (`runer:` makes runner.target missing).
    local texts = sorted_texts(c.errors, files)
    for _, w in ipairs(sorted_texts(c.warnings, files)) do texts[#texts + 1] = w end
    return nil, table.concat(texts, "\n")
  end
  local warnings = sorted_texts(c.warnings, files)
  if merged then table.insert(warnings, 1, sections.merged_notice(display, merged)) end
  if #c.notice > 0 then
    warnings[#warnings + 1] = "notice: these Python fluxloop keys have no effect here: "
      .. table.concat(c.notice, ", ")
  end
  return cfg, warnings
end

-- where(cfg, path) -> "FILE:LINE:COL" of the value at a dotted path of the loaded config
-- (of the nearest enclosing key when it is not there), for problems found after loading.
function M.where(cfg, path)
  local file, line, col = checker.new(cfg.doc, cfg.marks or {}, cfg.display or cfg.config_file):where(path)
  return ("%s:%d:%d"):format(file, line, col)
end

-- Overrides from the command line ---------------------------------------------

local function present(t, key)
  return type(t) == "table" and t[key] ~= nil and t[key] ~= null()
end

-- Writes v into doc at the keys the user used: "section.key" and/or the flat
-- alias when present, else "section.key".
local function write_doc(doc, section, key, alias, v)
  local sec = doc[section]
  local wrote = false
  if alias and present(doc, alias) then
    doc[alias] = v
    wrote = true
  end
  if present(sec, key) or not wrote then
    if not util.is_mapping(sec) then
      sec = {}
      doc[section] = sec
    end
    sec[key] = v
  end
end

-- Applies the command-line flags to cfg (and to cfg.doc, so the snapshot shows
-- them). Paths in flags must already be absolute. Returns cfg | nil, message.
function M.apply_overrides(cfg, flags)
  local doc = cfg.doc
  if flags.iterations ~= nil then
    cfg.runner.iterations = flags.iterations
    write_doc(doc, "runner", "iterations", "iterations", flags.iterations)
  end
  if flags.parallel ~= nil then
    cfg.runner.parallel = flags.parallel
    write_doc(doc, "runner", "parallel", "parallel_runs", flags.parallel)
  end
  if flags.timeout_ms ~= nil then
    cfg.runner.timeout_ms = flags.timeout_ms
    -- One time limit in the snapshot: the flag's, in the key that needs no unit.
    if util.is_mapping(doc.runner) then doc.runner.timeout, doc.runner.timeout_seconds = nil, nil end
    write_doc(doc, "runner", "timeout_ms", nil, flags.timeout_ms)
  end
  if flags.isolate then
    cfg.runner.isolation = "process"
    write_doc(doc, "runner", "isolation", nil, "process")
  end
  if flags.rate_limit ~= nil then
    local limit = cfg.runner.rate_limit or { burst = 1 }
    limit.requests_per_second = flags.rate_limit
    cfg.runner.rate_limit = limit
    local sec = doc.runner
    if util.is_mapping(sec) and util.is_mapping(sec.rate_limit) then
      sec.rate_limit.requests_per_second = flags.rate_limit
    else
      write_doc(doc, "runner", "rate_limit", nil, { requests_per_second = flags.rate_limit })
    end
  end
  if flags.inputs ~= nil then
    cfg.inputs_file = flags.inputs
    write_doc(doc, "inputs", "file", "inputs_file", flags.inputs)
  end
  if flags.output_dir ~= nil then
    cfg.output.directory = flags.output_dir
    write_doc(doc, "output", "directory", "output_directory", flags.output_dir)
  end
  if flags.name ~= nil then
    cfg.name = flags.name
    doc.name = flags.name
  end
  if flags.hooks ~= nil then
    cfg.hooks = flags.hooks
    doc.hooks = flags.hooks
  end
  if flags.multi_turn ~= nil or flags.max_turns ~= nil then
    local ok, err = require("fluxloop.conversation.config").apply(cfg, flags)
    if not ok then return nil, err end
  end
  return cfg
end

-- Secrets -----------------------------------------------------------------------

-- True when a key name looks like it holds a secret (fluxloop.secrets has the rules).
function M.is_secret_key(name)
  return require("fluxloop.secrets").is_secret_key(name)
end

-- A copy of v with every secret masked: values of secret-looking keys at any depth, and
-- secret-shaped values (tokens, URL passwords) under any key.
function M.mask(v)
  return require("fluxloop.secrets").mask(v)
end

-- The resolved config as YAML text, secrets masked, keys in the user's order.
function M.snapshot(cfg)
  return require("fluxloop.yaml").encode(M.mask(cfg.doc), { order = cfg.marks })
end

return M
