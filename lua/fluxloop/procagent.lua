-- procagent.lua - agents that are programs: a long-lived worker process per worker slot,
-- spoken to in JSON lines (docs/agent-protocol.md). The worker is started once, reused run
-- after run, and started again after it crashed, hung past --timeout or broke the protocol:
-- between runs, so that the new one's start is no run's time.
local json = require("fluxloop.json")
local proc = require("fluxloop.proc")
local guard = require("fluxloop.guard")
local context = require("fluxloop.context")

local M = {}

M.PROTOCOL = 1
M.HELLO_MS = 60000        -- a worker that has not said hello by then is not coming
                          -- (runner.start_timeout_ms: loading a local model takes a while)
M.MAX_LOG_LINES = 200     -- stderr lines kept with a run (its `logs`)
M.MAX_LOG_LINE = 2000     -- bytes of each

local function quote200(line)
  local s = line:sub(1, 200):gsub("[%c]", " ")
  return '"' .. s .. (#line > 200 and '..."' or '"')
end

-- The last lines of text (a worker's stderr) for a message, indented.
local function last_lines(text, n)
  local lines = {}
  for line in (text or ""):gmatch("[^\n]+") do lines[#lines + 1] = line end
  local from = math.max(1, #lines - n + 1)
  local out = {}
  for i = from, #lines do out[#out + 1] = "  | " .. lines[i]:sub(1, 300) end
  return #out > 0 and ("\nits last stderr lines:\n" .. table.concat(out, "\n")) or " (it wrote nothing on stderr)"
end

-- stderr text -> the run's logs: a list of lines, bounded.
local function log_lines(text)
  if text == nil or text == "" then return nil end
  local lines = {}
  for line in text:gmatch("[^\n]+") do
    if #lines >= M.MAX_LOG_LINES then
      lines[#lines + 1] = "(more lines left out)"
      break
    end
    lines[#lines + 1] = #line > M.MAX_LOG_LINE and line:sub(1, M.MAX_LOG_LINE) .. "..." or line
  end
  return json.array(lines)
end

-- On replay, ctx.args holds capture functions (fluxloop.replay) where the recording had a
-- callback; JSON carries each as its recorded placeholder ("<builtin:collector.send>").
-- captures(args) -> { placeholder = capture function } | nil, and the placeholders as a list
-- for the request, so that the worker can put callables in their place.
local function captures(args)
  if type(args) ~= "table" then return nil end
  local placeholder_of = require("fluxloop.replay").placeholder
  local found, list = nil, nil
  local function walk(t, depth)
    if depth > 64 then return end
    for _, v in pairs(t) do
      if type(v) == "function" then
        local p = placeholder_of(v)
        if p and not (found and found[p]) then
          found, list = found or {}, list or json.array({})
          found[p] = v
          list[#list + 1] = p
        end
      elseif type(v) == "table" then
        walk(v, depth + 1)
      end
    end
  end
  walk(args, 1)
  return found, list
end

-- request(id, input, ctx, callbacks) -> the run request's line: the one place a request
-- is made (docs/agent-protocol.md, "The exchange", step 4). ctx as the worker sees it is
-- plain data (the recorder's methods stay here).
function M.request(id, input, ctx, callbacks)
  return json.encode({ type = "run", id = id, input = input, ctx = {
    iteration = ctx.iteration, persona = ctx.persona, persona_info = ctx.persona_info, metadata = ctx.metadata,
    entry = ctx.entry, trace_id = ctx.trace_id, args = ctx.args, callbacks = callbacks, bind = ctx.bind },
    conversation = ctx.conversation }) .. "\n" -- conversation: a turn of one (fluxloop.conversation)
end

local Agent = {}
Agent.__index = Agent

-- How the worker ended, for a message: "exited with status 3", "was killed by SIGSEGV".
function Agent:ended()
  local how, what = self.w:status(200)
  if how == "signal" then return "was killed by " .. what end
  if how == "exited" then return "exited with status " .. tostring(what) end
  return "closed its output"
end

function Agent:stop()
  if self.w then self.w:kill() end
  self.w, self.busy = nil, false
end

-- Why a started worker gave no hello. Returns the problem and its kind: "refused" (the
-- worker said why: the agent's own error), "exited" (it ended first: the interpreter or
-- the bridge could not start), "timeout", "interrupted" or "protocol".
function Agent:no_hello(line, why, msg)
  if type(msg) == "table" and msg.type == "error" then
    return ("refused the target: %s"):format(tostring(msg.message)), "refused"
  elseif line then
    return ("answered the hello with %s, which is not the protocol (docs/agent-protocol.md)"):format(quote200(line)),
      "protocol"
  elseif why == "timeout" then
    return ("did not say hello within %d ms (runner.start_timeout_ms)"):format(self.hello_ms), "timeout"
  elseif why == "interrupted" then
    return "was stopped by Ctrl-C before saying hello", "interrupted"
  end
  return self:ended() .. " before saying hello", "exited"
end

-- Starts the worker and exchanges hellos. Returns true | nil, message, kind (see no_hello;
-- "exited" too when the command could not be started).
function Agent:start()
  local w, err = proc.spawn(self.command, { cwd = self.cwd, env = self.env })
  if not w then return nil, err, "exited" end
  self.w, self.busy = w, false
  local ok = w:send(json.encode({ type = "hello", protocol = M.PROTOCOL, target = self.target }) .. "\n", self.hello_ms)
  -- A worker that died at once refused the hello: reading still collects its last words.
  local line, why = w:read_line(ok and self.hello_ms or 2000)
  local msg = line and json.decode(line)
  if type(msg) == "table" and msg.type == "hello" then
    self.hello = msg
    return true
  end
  local problem, kind = self:no_hello(line, why, msg)
  local stderr = w:take_stderr()
  self:stop()
  return nil, problem .. last_lines(stderr, 12), kind
end

-- Between runs (the run loop calls it before a run's clock starts): a worker that was
-- killed at a time limit, found dead, left a run unanswered, or is a forked --isolate
-- copy's is replaced now. One that cannot start fails the next run.
-- After Ctrl-C no run is handed out: none is started for one that may never come.
function Agent:prepare(for_a_run)
  if self.busy then self:stop() end -- its last run ended without its result
  if self.w and not self.w:usable() then self.w = nil end
  if not self.w and not self.start_error and (for_a_run or not guard.interrupted()) then
    local ok, err = self:start()
    if not ok then self.start_error = err end
  end
end

-- A worker ready for a run: the prepared one, else one started now (inside the run).
function Agent:ready()
  self:prepare(true)
  local err = self.start_error
  if err then
    self.start_error = nil
    error({ type = "crash", message = "the agent's worker " .. err }, 0)
  end
end

-- Fails the run after the worker went wrong: it is stopped, and the next run starts a new one.
function Agent:fail(kind, message)
  local stderr = self.w and self.w:take_stderr() or ""
  self:stop()
  error({ type = kind, message = message .. last_lines(stderr, 8) }, 0)
end

-- A span id: a number or a string the worker chose.
local function span_id(v) return type(v) == "number" or type(v) == "string" end

-- The field of an observation message the protocol does not allow, as a message, or nil.
local function bad_observation(msg)
  local t = msg.type
  if t == "observation" then
    local o = msg.observation
    if type(o) ~= "table" then return 'an observation whose "observation" is not an object' end
    if o.type ~= nil and not context.TYPES[o.type] then
      return ('an observation whose "type" is %s, which is not an observation type (%s)')
        :format(quote200(tostring(o.type)), M.TYPE_LIST)
    end
    if o.name ~= nil and type(o.name) ~= "string" then return 'an observation whose "name" is not a string' end
  elseif t == "span_start" or t == "span_end" then
    if not span_id(msg.span) then return ('a %s without "span" (a number or a string)'):format(t) end
    if t == "span_start" and msg.kind ~= nil and not context.TYPES[msg.kind] then
      return ('a span_start whose "kind" is %s, which is not an observation type (%s)')
        :format(quote200(tostring(msg.kind)), M.TYPE_LIST)
    end
    if t == "span_start" and msg.name ~= nil and type(msg.name) ~= "string" then
      return 'a span_start whose "name" is not a string'
    end
  end
  return nil
end

do
  local names = {}
  for k in pairs(context.TYPES) do names[#names + 1] = k end
  table.sort(names)
  M.TYPE_LIST = table.concat(names, ", ")
end

-- The result of the running request: done, output, error (the agent's own failure).
local function result_of(msg)
  if msg.error ~= nil and msg.error ~= json.null then
    local e = type(msg.error) == "table" and msg.error or { message = tostring(msg.error) }
    local text_of = require("fluxloop.util").text_of -- {"type": {"x": 1}} reads as JSON, not "table: 0x..."
    return true, nil, { type = text_of(e.type or "error"), message = text_of(e.message or "the agent failed"),
      traceback = type(e.traceback) == "string" and e.traceback or false }
  end
  -- null (Python's None) is no output, as nil is for a Lua agent: the run fails with
  -- no_output, or takes the last message sent through a replayed callback.
  if msg.output == json.null then return true, nil end
  return true, msg.output
end

-- What each observation message records (after bad_observation passed it); a problem
-- message when it cannot.
local RECORD = {
  observation = function(msg, ctx)
    local o = msg.observation
    ctx:observe{ type = o.type or "event", name = o.name, input = o.input, output = o.output,
      metadata = o.metadata, duration_ms = o.duration_ms, model = o.model, usage = o.usage }
  end,
  span_start = function(msg, ctx, spans)
    spans[msg.span] = ctx:span_open(msg.kind or "span", msg.name, msg.input)
  end,
  span_end = function(msg, ctx, spans)
    local slot = spans[msg.span]
    if slot then
      ctx:span_close(slot, msg.output, msg.error ~= nil and msg.error ~= json.null and tostring(msg.error) or nil,
        msg.model, msg.usage)
      spans[msg.span] = nil
    end
  end,
  -- A replayed callback called by the agent: what it was called with joins the trace's
  -- callback_messages (the last "send" is the output of a run that returns nothing).
  callback = function(msg, _, _, capture)
    local fn = capture and capture[msg.placeholder]
    if not fn then return "a callback for " .. quote200(tostring(msg.placeholder)) .. ", which this run's args do not hold" end
    local a = type(msg.args) == "table" and msg.args or {}
    fn(table.unpack(a, 1, #a))
  end,
}

-- The worker asks for a token of the experiment's shared request rate (--rate-limit)
-- before it calls a model; the answer lets it go. A run that times out waiting leaves the
-- worker busy, and prepare() replaces it: it would read the next request as this answer.
function Agent:rate_limit(msg)
  local waited = require("fluxloop.ratelimit").acquire()
  if not self.w:send(json.encode({ type = "rate_limit", id = msg.id, waited_ms = waited }) .. "\n") then
    self:fail("crash", "the agent's worker " .. self:ended() .. " while waiting for the rate limit")
  end
end

-- One protocol line of the running request: returns done, output, error (the agent's
-- own failure); or nil and what was wrong with the line (the run fails as protocol).
function Agent:handle(msg, ctx, spans, capture)
  local t = msg.type
  if t == "result" then return result_of(msg) end
  if t == "rate_limit" then
    self:rate_limit(msg)
    return false
  end
  local record = RECORD[t]
  if not record then return nil, "an unknown message type " .. quote200(tostring(t)) end
  local bad = bad_observation(msg)
  if bad then return nil, bad end
  local ok, problem = pcall(record, msg, ctx, spans, capture)
  if not ok then
    return nil, ("a %s that fluxloop cannot record: %s"):format(t, tostring(type(problem) == "table"
      and problem.message or problem))
  end
  if problem then return nil, problem end
  return false
end

-- Whether line belongs to an earlier request of this agent (an extra result, a late
-- observation): such lines are dropped, never charged to the running request.
function Agent:stale(msg)
  local id = msg.id
  return math.type(id) == "integer" and id >= 1 and id < self.id
end

-- The id check of a decoded line: nil when it is the running request's, else the problem.
function Agent:wrong_id(msg)
  if msg.id == self.id then return nil end
  if msg.id == nil then
    return msg.type == "result" and "sent a result without the request's id" or nil
  end
  return ("answered request %s during request %d"):format(quote200(json.encode(msg.id)), self.id)
end

-- Sends the request; a worker found to have ended since its last run (it would not take
-- the request, or it never read it) is replaced, and the new one takes the run.
function Agent:send_request(request)
  self.busy = true
  if self.w:send(request) then return end
  self:stop()
  self:ready()
  self.busy = true
  if not self.w:send(request) then self:fail("crash", "the agent's worker " .. self:ended() .. " before the run") end
end

-- The next line of the running request, decoded; a worker that ended before reading the
-- request at all is replaced once (it ended after its last run, not in this one).
function Agent:next_message(request, retried)
  local line, why = self.w:read_line()
  if not line then
    if why == "too_long" then self:fail("protocol", "the agent's worker wrote a line over 64 MB") end
    if not retried and not self.answered_any and self.w:unread() == #request then
      self:stop()
      self:ready()
      self:send_request(request)
      return self:next_message(request, true)
    end
    self:fail("crash", "the agent's worker " .. self:ended() .. " during the run")
  end
  self.answered_any = true
  local msg = json.decode(line)
  if type(msg) ~= "table" or type(msg.type) ~= "string" then
    self:fail("protocol", "the agent's worker wrote a line that is not protocol (print to stderr, not "
      .. "stdout): " .. quote200(line))
  end
  return msg
end

-- agent(input, ctx): one run through the worker.
function Agent:call(input, ctx)
  self:ready()
  self.id = self.id + 1
  local capture, placeholders = captures(ctx.args)
  local request = M.request(self.id, input, ctx, placeholders)
  self.answered_any = false
  self:send_request(request)
  local spans = {}
  while true do
    local msg = self:next_message(request)
    if not self:stale(msg) then
      local wrong = self:wrong_id(msg)
      if wrong then self:fail("protocol", "the agent's worker " .. wrong) end
      local done, out, err = self:handle(msg, ctx, spans, capture)
      if done == nil then self:fail("protocol", "the agent's worker sent " .. out) end
      if done then
        self.busy = false
        ctx.logs = log_lines(self.w:take_stderr())
        if err then error(err, 0) end
        return out
      end
    end
  end
end

-- The agent objects this module made, for between_runs (weak: an agent may be dropped).
local agents = setmetatable({}, { __mode = "k" })

-- between_runs(agent) -> the function the run loop calls before each run's clock starts,
-- or nil when agent is not a process agent.
function M.between_runs(agent)
  local self = agents[agent]
  return self and function() self:prepare() end or nil
end

-- new{command = {...}, target =, cwd =, env = {}, hello_ms =} -> agent (callable as agent(input, ctx))
-- | nil, message, kind (see Agent:start). The worker is started at once, so a broken one
-- stops the experiment before any run.
function M.new(spec)
  local self = setmetatable({ command = spec.command, target = spec.target, cwd = spec.cwd, env = spec.env,
    id = 0, hello_ms = spec.hello_ms or M.HELLO_MS }, Agent)
  local ok, err, kind = self:start()
  if not ok then return nil, err, kind end
  local agent = setmetatable({}, { __call = function(_, input, ctx) return self:call(input, ctx) end,
    __index = { stop = function() self:stop() end, hello = self.hello } })
  agents[agent] = self
  return agent
end

return M
