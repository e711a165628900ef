-- procagent.lua - agents that are programs: a long-lived worker process per worker slot,
-- spoken to in JSON lines (docs/agent-protocol.md). The worker is started once, reused run
-- after run, and started again after it crashed, hung past --timeout or broke the protocol.
local json = require("fluxloop.json")
local proc = require("fluxloop.proc")

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
  self.w = nil
end

-- Starts the worker and exchanges hellos. Returns true | nil, message.
function Agent:start()
  local w, err = proc.spawn(self.command, { cwd = self.cwd, env = self.env })
  if not w then return nil, err end
  self.w = w
  local ok = w:send(json.encode({ type = "hello", protocol = M.PROTOCOL, target = self.target }) .. "\n")
  -- A worker that died at once refused the hello: reading still collects its last words.
  local line, why = w:read_line(ok and self.hello_ms or 2000)
  local msg = line and json.decode(line)
  if type(msg) == "table" and msg.type == "hello" then
    self.hello = msg
    return true
  end
  local problem
  if type(msg) == "table" and msg.type == "error" then
    problem = ("refused the target: %s"):format(tostring(msg.message))
  elseif line then
    problem = ("answered the hello with %s, which is not the protocol (docs/agent-protocol.md)"):format(quote200(line))
  elseif why == "timeout" then
    problem = ("did not say hello within %d ms (runner.start_timeout_ms)"):format(self.hello_ms)
  else
    problem = self:ended() .. " before saying hello"
  end
  local stderr = w:take_stderr()
  self:stop()
  return nil, problem .. last_lines(stderr, 12)
end

-- Fails the run after the worker went wrong: it is stopped, and the next run starts a new one.
function Agent:fail(kind, message)
  local stderr = self.w and self.w:take_stderr() or ""
  self:stop()
  error({ type = kind, message = message .. last_lines(stderr, 8) }, 0)
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

-- ctx as the worker sees it: plain data (the recorder's methods stay here).
local function ctx_data(ctx, callbacks)
  return { iteration = ctx.iteration, persona = ctx.persona, persona_info = ctx.persona_info,
    metadata = ctx.metadata, entry = ctx.entry, trace_id = ctx.trace_id, args = ctx.args, callbacks = callbacks }
end

-- One protocol line of the running request: returns done, output.
function Agent:handle(msg, ctx, spans, capture)
  local t = msg.type
  if t == "result" then
    if msg.error ~= nil and msg.error ~= json.null then
      local e = type(msg.error) == "table" and msg.error or { message = tostring(msg.error) }
      local text_of = require("fluxloop.util").text_of -- {"type": {"x": 1}} reads as JSON, not "table: 0x..."
      error({ type = text_of(e.type or "error"), message = text_of(e.message or "the agent failed"),
        traceback = type(e.traceback) == "string" and e.traceback or false }, 0)
    end
    -- null (Python's None) is no output, as nil is for a Lua agent: the run fails with
    -- no_output, or takes the last message sent through a replayed callback.
    if msg.output == json.null then return true, nil end
    return true, msg.output
  elseif t == "observation" then
    local o = type(msg.observation) == "table" and msg.observation or {}
    ctx:observe{ type = o.type or "event", name = o.name, input = o.input, output = o.output,
      metadata = o.metadata, duration_ms = o.duration_ms, model = o.model, usage = o.usage }
  elseif t == "callback" then
    -- A replayed callback called by the agent: what it was called with joins the trace's
    -- callback_messages (the last "send" is the output of a run that returns nothing).
    local fn = capture and capture[msg.placeholder]
    if not fn then return nil, "callback for " .. quote200(tostring(msg.placeholder)) .. ", which this run's args do not hold" end
    local a = type(msg.args) == "table" and msg.args or {}
    fn(table.unpack(a, 1, #a))
  elseif t == "rate_limit" then
    -- The worker asks for a token of the experiment's shared request rate (--rate-limit)
    -- before it calls a model; the answer lets it go. A run that times out waiting ends the
    -- worker, which would otherwise read the next request as this answer.
    local ok, waited = pcall(require("fluxloop.ratelimit").acquire)
    if not ok then
      self:stop()
      error(waited, 0)
    end
    if not self.w:send(json.encode({ type = "rate_limit", id = msg.id, waited_ms = waited }) .. "\n") then
      self:fail("crash", "the agent's worker " .. self:ended() .. " while waiting for the rate limit")
    end
  elseif t == "span_start" then
    spans[msg.span] = ctx:span_open(msg.kind or "span", msg.name, msg.input)
  elseif t == "span_end" then
    local slot = spans[msg.span]
    if slot then
      ctx:span_close(slot, msg.output, msg.error ~= nil and msg.error ~= json.null and tostring(msg.error) or nil,
        msg.model, msg.usage)
      spans[msg.span] = nil
    end
  else
    return nil, "unknown message type " .. quote200(tostring(t))
  end
  return false
end

-- A worker ready for a run: the one in hand unless it was killed at a time limit, found
-- dead, or is a forked --isolate copy's (which starts its own); else a new one.
function Agent:ready()
  if self.w and not self.w:usable() then self.w = nil end
  if not self.w then
    local ok, err = self:start()
    if not ok then error({ type = "crash", message = "the agent's worker " .. err }, 0) end
  end
end

-- agent(input, ctx): one run through the worker.
function Agent:call(input, ctx)
  self:ready()
  self.id = self.id + 1
  local capture, placeholders = captures(ctx.args)
  local request = json.encode({ type = "run", id = self.id, input = input, ctx = ctx_data(ctx, placeholders) }) .. "\n"
  if not self.w:send(request) then
    -- It died since its last run (no system call a run looks sooner): a new one takes the run.
    self:stop()
    self:ready()
    if not self.w:send(request) then self:fail("crash", "the agent's worker " .. self:ended() .. " before the run") end
  end
  local spans = {}
  while true do
    local line, why = self.w:read_line()
    if not line then
      if why == "too_long" then self:fail("protocol", "the agent's worker wrote a line over 64 MB") end
      self:fail("crash", "the agent's worker " .. self:ended() .. " during the run")
    end
    local msg = json.decode(line)
    if type(msg) ~= "table" or type(msg.type) ~= "string" then
      self:fail("protocol", "the agent's worker wrote a line that is not protocol (print to stderr, not "
        .. "stdout): " .. quote200(line))
    end
    if msg.id ~= nil and msg.id ~= self.id then
      self:fail("protocol", ("the agent's worker answered request %s during request %d"):format(tostring(msg.id), self.id))
    end
    local ok, done, out = pcall(self.handle, self, msg, ctx, spans, capture)
    if not ok then
      ctx.logs = log_lines(self.w:take_stderr())
      error(done, 0)
    end
    if done == nil then self:fail("protocol", "the agent's worker sent an " .. out) end
    if done then
      ctx.logs = log_lines(self.w:take_stderr())
      return out
    end
  end
end

-- new{command = {...}, target =, cwd =, env = {}, hello_ms =} -> agent (callable as agent(input, ctx))
-- | nil, message. The worker is started at once, so a broken one stops the experiment
-- before any run.
function M.new(spec)
  local self = setmetatable({ command = spec.command, target = spec.target, cwd = spec.cwd, env = spec.env,
    id = 0, hello_ms = spec.hello_ms or M.HELLO_MS }, Agent)
  local ok, err = self:start()
  if not ok then return nil, err end
  return setmetatable({}, { __call = function(_, input, ctx) return self:call(input, ctx) end,
    __index = { stop = function() self:stop() end, hello = self.hello } })
end

return M
