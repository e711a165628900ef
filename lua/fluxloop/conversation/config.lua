-- conversation/config.lua - the `multi_turn:` section (the Python fluxloop's keys, plus
-- supervisor.base_url and the lua provider): checked when the config loads, so that a bad
-- value stops the experiment before any run, with its FILE:LINE:COL. Also the flags
-- --multi-turn, --no-multi-turn and --max-turns.
local util = require("fluxloop.util")

local M = {}

M.PROVIDERS = { "mock", "openai", "lua" }
M.MAX_TURNS = 100
M.DEFAULT_MAX_TURNS = 8
M.DEFAULT_TIMEOUT_MS = 60000 -- one supervisor request (the Python fluxloop's 60 s)

-- The keys fluxloop.config's scan knows (metadata is free-form: its keys are the mock's).
M.known = {
  multi_turn = { "enabled", "max_turns", "supervisor", "auto_approve_tools", "persona_override" },
  ["multi_turn.supervisor"] = { "provider", "model", "base_url", "api_key", "system_prompt", "target",
    "metadata", "temperature", "timeout_ms" },
}

-- Python keys accepted here with no effect (named in the config's notice line).
local NO_EFFECT = { "auto_approve_tools", "persona_override" }

local SUP = "multi_turn.supervisor"

-- The settings of a conversation when nothing says otherwise (--multi-turn on a config
-- without the section): the mock supervisor, continuing until max_turns.
function M.defaults()
  return { enabled = false, max_turns = M.DEFAULT_MAX_TURNS, supervisor = { provider = "mock", metadata = {} } }
end

-- A list of non-empty strings at path, or nil (an error when it is something else).
local function string_list(c, path)
  local v = c:get(path)
  if v == nil then return nil end
  if not util.is_array(v) and not (type(v) == "table" and next(v) == nil) then
    c:error(path, 'expected a list of strings such as ["And the fee?", "Can I do it online?"], got '
      .. require("fluxloop.config.checker").got(v))
    return nil
  end
  local out = {}
  for i, q in ipairs(v) do
    if type(q) ~= "string" and type(q) ~= "number" then
      c:error(path, ("expected a list of strings; item %d is %s"):format(i, require("fluxloop.config.checker").got(q)))
      return nil
    end
    out[i] = tostring(q)
  end
  return out
end

-- The mock's settings: supervisor.metadata's scripted_questions and mock_* keys.
local function check_mock(c, sup)
  local meta = SUP .. ".metadata"
  sup.scripted_questions = string_list(c, meta .. ".scripted_questions")
  sup.mock_decision = c:choice(meta .. ".mock_decision", { "continue", "terminate" })
  sup.mock_reason = c:string(meta .. ".mock_reason", "a reason (a string)")
  sup.mock_closing = c:string(meta .. ".mock_closing", "a closing message (a string)")
  sup.mock_next_user_message = c:string(meta .. ".mock_next_user_message", "a message (a string)")
end

-- openai: a model is required; the key may be ${NAME} (from runner.env, then the environment).
local function check_openai(c, sup, cfg)
  sup.model = c:string(SUP .. ".model", "a model name")
  if not sup.model and c:get(SUP .. ".model") == nil then
    c:error(SUP .. ".model", "missing: the openai supervisor needs a model (for example model: gpt-4o-mini)")
  end
  sup.base_url = c:string(SUP .. ".base_url", "a URL such as http://127.0.0.1:8000/v1")
  if sup.base_url then
    local ok, why = require("fluxloop.http").check_url(sup.base_url)
    if not ok then c:error(SUP .. ".base_url", ("invalid URL '%s': %s"):format(sup.base_url, why)) end
  end
  local key_path = c:get(SUP .. ".api_key") ~= nil and SUP .. ".api_key" or SUP .. ".metadata.api_key"
  local key = c:string(key_path, "an API key or ${NAME}")
  if key then
    local text, missing = require("fluxloop.httptarget").expand(key, cfg.runner and cfg.runner.env)
    if not text and c:get("multi_turn.enabled") == true then -- (--multi-turn: checked when the supervisor starts)
      c:error(key_path, ("${%s} is not set in runner.env or in the environment"):format(missing))
    end
    sup.api_key = key
  end
  sup.system_prompt = c:string(SUP .. ".system_prompt", "a prompt (a string)")
  local context = c:get("metadata.service_context") -- the Python fluxloop's top-level metadata
  sup.service_context = type(context) == "string" and context or nil
  local t = c:get(SUP .. ".temperature")
  if t ~= nil and (type(t) ~= "number" or t < 0 or t > 2) then
    c:error(SUP .. ".temperature", "expected a number from 0 to 2, got " .. require("fluxloop.config.checker").got(t))
  else
    sup.temperature = t
  end
  sup.timeout_ms = c:integer(SUP .. ".timeout_ms", 1, " (milliseconds)", 2147483647) or M.DEFAULT_TIMEOUT_MS
end

-- lua: target "module:function", which must load now.
local function check_lua(c, sup)
  sup.target = c:string(SUP .. ".target", '"module:function" (for example supervisors.mine:next)')
  if not sup.target then
    if c:get(SUP .. ".target") == nil then
      c:error(SUP .. ".target", 'missing: the lua supervisor needs target: "module:function" '
        .. "(for example supervisors.mine:next, a function in supervisors/mine.lua)")
    end
    return
  end
  local fn, err = require("fluxloop.conversation.lua").resolve(sup.target)
  if not fn then c:error(SUP .. ".target", err) end
end

-- The provider: as written, else openai when a model is named (the Python fluxloop's
-- default provider), else mock.
local function provider_of(c)
  local v = c:get(SUP .. ".provider")
  if v == "anthropic" then
    c:error(SUP .. ".provider", "anthropic is not a supervisor here: use provider: openai with an "
      .. "OpenAI-compatible base_url, or lua")
    return nil
  end
  if v ~= nil then return c:choice(SUP .. ".provider", M.PROVIDERS) end
  return c:get(SUP .. ".model") ~= nil and "openai" or "mock"
end

-- check(c, cfg): reads multi_turn: with the checker c into cfg.multi_turn.
function M.check(c, cfg)
  local v = c:get("multi_turn")
  if v == nil then return end
  if not c:mapping("multi_turn", "enabled: true, max_turns: 8, supervisor: {provider: mock}") then return end
  for _, k in ipairs(NO_EFFECT) do
    if c:get("multi_turn." .. k) ~= nil then c.notice[#c.notice + 1] = "multi_turn." .. k end
  end
  local mt = M.defaults()
  local enabled = c:boolean("multi_turn.enabled")
  mt.enabled = enabled == true
  mt.max_turns = c:integer("multi_turn.max_turns", 1, " (turns of a conversation)", M.MAX_TURNS)
    or M.DEFAULT_MAX_TURNS
  c:mapping(SUP, "provider: mock, metadata: {scripted_questions: [...]}")
  c:mapping(SUP .. ".metadata", "scripted_questions: [...], mock_closing: ...")
  local sup = mt.supervisor
  sup.provider = provider_of(c) or "mock"
  check_mock(c, sup)
  if sup.provider == "openai" then check_openai(c, sup, cfg)
  elseif sup.provider == "lua" then check_lua(c, sup) end
  if mt.enabled and cfg.replay_args and cfg.replay_args.enabled then
    c:error("multi_turn.enabled", "a conversation cannot replay recorded arguments: turn off replay_args.enabled "
      .. "or multi_turn.enabled")
  end
  cfg.multi_turn = mt
end

-- apply(cfg, flags): --multi-turn / --no-multi-turn (flags.multi_turn) and --max-turns
-- (flags.max_turns), into cfg and into cfg.doc (so that the snapshot shows them).
function M.apply(cfg, flags)
  if flags.multi_turn == nil and flags.max_turns == nil then return end
  local mt = cfg.multi_turn or M.defaults()
  cfg.multi_turn = mt
  local doc = util.is_mapping(cfg.doc.multi_turn) and cfg.doc.multi_turn or {}
  cfg.doc.multi_turn = doc
  if flags.multi_turn ~= nil then mt.enabled, doc.enabled = flags.multi_turn, flags.multi_turn end
  if flags.max_turns ~= nil then mt.max_turns, doc.max_turns = flags.max_turns, flags.max_turns end
  if mt.enabled and cfg.replay_args and cfg.replay_args.enabled then
    return nil, "--multi-turn: a conversation cannot replay recorded arguments (replay_args.enabled is on)"
  end
  return true
end

return M
