-- conversation/init.lua - multi_turn: one run is one conversation. Turn 1's user message is
-- the run's input; after each reply a supervisor (mock.lua, openai.lua, lua.lua) continues
-- with the next user message or ends it, up to max_turns. The run loop (fluxloop.run) hands
-- a run here through S.call, which has guard.call's shape, so a conversation is timed,
-- recorded, hooked and written as one run.
local guard = require("fluxloop.guard")
local json = require("fluxloop.json")

local M = {}

local PROVIDERS = { mock = "fluxloop.conversation.mock", openai = "fluxloop.conversation.openai",
  lua = "fluxloop.conversation.lua" }

local VALUE_OUTPUT = { string = true, table = true, number = true, boolean = true }

-- text(v) -> a reply or message as transcript text: a string as it is, any other value as JSON.
function M.text(v)
  if type(v) == "string" then return v end
  local ok, s = pcall(json.encode, v)
  if ok then return s end
  return nil
end

-- The metadata of most entries: one empty table that cannot be changed (written "{}").
local NO_METADATA = setmetatable({}, { __newindex = function()
  error("a conversation entry's metadata cannot be changed (ctx.conversation is read-only)", 2)
end })

local function append_logs(logs, more)
  if not logs then return more end
  for _, line in ipairs(more) do logs[#logs + 1] = line end
  return logs
end

-- A failed supervisor call as the run's error: type supervisor, unless a time limit ended it.
local function supervisor_error(err, why)
  local e = type(err) == "table" and err or { message = tostring(err) }
  local kind = why == "timeout" and "timeout" or "supervisor"
  local message = tostring(e.message or "the supervisor failed")
  if kind ~= "supervisor" or e.type ~= "supervisor" then message = "supervisor: " .. message end
  return { type = kind, message = message, traceback = e.traceback }
end

-- The message handler of an unguarded supervisor call: its own errors are tables, kept as
-- they are; anything else (a bug) gets the traceback guard.call would have given it.
local function with_traceback(err)
  if type(err) == "table" then return err end
  return { message = tostring(err), traceback = debug.traceback(tostring(err), 2) }
end

-- Calls the agent once per turn and the supervisor between turns. Returns what guard.call
-- returns (ok, output | error, why) for the conversation; its fields go to ctx.shared (both
-- trace files) and ctx.extra (traces.jsonl). Every turn costs: the entries are built in
-- place (no call each) and the recorder writes them without its generic encoder
-- (src/lrecshared.c, which knows their five keys).
local function converse(C, timeout_ms, agent, input, ctx)
  local rec, decide, max_turns, on_turn, turn_of, guarded = C.rec, C.decide, C.max_turns, C.on_turn, C.turn_of,
    C.guarded
  local first = type(input) == "string" and input or M.text(input) or tostring(input)
  -- The agent and the supervisor read the transcript itself (no copy a turn): it is the
  -- trace's, and read-only to them.
  -- Slots 2..8 are made empty now, filled as the turns come: no growing of the list at the
  -- 2nd, 3rd and 5th entries (# is still the entries so far: they have no gaps).
  local transcript = json.array({
    { turn_index = 1, role = "user", content = first, source = "input", metadata = NO_METADATA },
    nil, nil, nil, nil, nil, nil, nil })
  local turn, replies, reason, response, logs = 0, 0, nil, nil, nil
  local ok, out, why, sok, d, swhy
  local current, state = input, {}
  ctx.conversation, ctx.max_turns = transcript, max_turns
  while true do
    turn = turn + 1
    turn_of(rec, turn)
    if on_turn then on_turn(turn, max_turns) end
    ctx.turn_index = turn
    ok, out, why = guard.call(timeout_ms, agent, current, ctx)
    local more = ctx.logs
    if more then logs, ctx.logs = append_logs(logs, more), nil end
    local kind = ok and out ~= nil and type(out)
    local content = VALUE_OUTPUT[kind] and (kind == "string" and out or M.text(out))
    if not content then reason = "agent_error" break end -- the run fails (fluxloop.run's settle)
    replies = replies + 1
    transcript[#transcript + 1] = { turn_index = turn, role = "assistant", content = content, source = "agent",
      metadata = NO_METADATA }
    if turn >= max_turns then reason = "max_turns_reached" break end
    if guarded then
      sok, d, swhy = guard.call(timeout_ms, decide, transcript, ctx, state)
    else
      sok, d = xpcall(decide, with_traceback, transcript, ctx, state)
    end
    if not sok then
      ok, out, why, reason = false, supervisor_error(d, swhy), swhy, "supervisor_error"
      break
    end
    response = d.response or response -- the model's decision (openai); the last one is kept
    if d.decision == "terminate" then
      reason = d.reason or "supervisor_terminate"
      if d.closing then
        transcript[#transcript + 1] = { turn_index = turn + 1, role = "user", content = d.closing,
          source = "supervisor", metadata = { closing = true } }
      end
      break
    end
    current = d.message
    transcript[#transcript + 1] = { turn_index = turn + 1, role = "user", content = current, source = "supervisor",
      metadata = NO_METADATA }
  end
  turn_of(rec, 0)
  ctx.conversation = nil
  ctx.shared = { conversation = transcript, turn_count = replies, termination_reason = reason }
  ctx.extra = (logs or response) and { logs = logs, supervisor_response = response } or nil
  return ok, out, why
end

-- caller(mt, rec [, opts]) -> call(timeout_ms, agent, input, ctx): a conversation in
-- guard.call's shape, for one Lua state's runs. mt is cfg.multi_turn (fluxloop.conversation.
-- config); opts.env is runner.env (for the openai key's ${NAME}); opts.on_turn(turn,
-- max_turns) is called as each turn starts (the progress line).
function M.caller(mt, rec, opts)
  opts = opts or {}
  local sup = mt.supervisor or { provider = "mock" }
  local provider = require(PROVIDERS[sup.provider] or PROVIDERS.mock)
  local decide = provider.new(sup, { rec = rec, env = opts.env })
  -- A supervisor of our own that cannot hang (the mock) is called without guard.call's time
  -- limit: under its count hook every Lua instruction of the call costs several.
  local C = { rec = rec, decide = decide, max_turns = mt.max_turns or 8, on_turn = opts.on_turn, turn_of = rec.turn,
    guarded = not provider.BOUNDED }
  return function(timeout_ms, agent, input, ctx) return converse(C, timeout_ms, agent, input, ctx) end
end

-- call_of(cfg, rec) -> S.call for fluxloop.run's state: guard.call for single-turn runs,
-- a conversation when multi_turn.enabled. The progress line shows the turn in the main
-- process's serial runs (fluxloop.progress.current).
function M.call_of(cfg, rec)
  local mt = cfg.multi_turn
  if not (mt and mt.enabled) then return guard.call end
  return M.caller(mt, rec, { env = cfg.runner and cfg.runner.env, on_turn = require("fluxloop.progress").turn_hook() })
end

return M
