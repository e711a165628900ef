-- progress.lua - the [INFO] lines and the progress bar on stderr.
-- On a terminal the bar is redrawn in place (at most ten times a second); on a pipe
-- or file a plain line is printed at each tenth of the work (at most one a second, at least
-- every 30 s, and one at the end), never once per run.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")

local M = {}
local Progress = {}
Progress.__index = Progress

local BAR_WIDTH = 10
local REDRAW_NS = 100 * 1000000
local PIPE_MIN_NS = 1000000000 -- a line per tenth of the work, but not more than one a second
local PIPE_EVERY_NS = 30 * 1000000000

-- new{ quiet = bool, bar = bool (false for --no-progress), stream = file (default io.stderr),
--      tty = bool (default: whether stderr is a terminal), now = clock function (for tests) }
function M.new(opts)
  opts = opts or {}
  local self = setmetatable({}, Progress)
  self.stream = opts.stream or io.stderr
  self.quiet = opts.quiet or false
  self.bar = opts.bar ~= false and not self.quiet
  if opts.tty == nil then self.tty = fs.isatty(2) else self.tty = opts.tty end
  self.now = opts.now or clock.now_ns
  self.total, self.done = 0, 0
  self.drawn = false
  return self
end

function M.format_duration(seconds)
  seconds = math.max(0, math.floor(seconds + 0.5))
  if seconds < 60 then return ("%ds"):format(seconds) end
  if seconds < 3600 then return ("%dm %ds"):format(seconds // 60, seconds % 60) end
  return ("%dh %dm"):format(seconds // 3600, seconds % 3600 // 60)
end

-- bar_line(done, total, elapsed_s [, in_flight [, turn]]): turn is a conversation's "turn 2/8".
function M.bar_line(done, total, elapsed_s, in_flight, turn)
  local frac = total > 0 and done / total or 1
  local filled = math.floor(frac * BAR_WIDTH + 1e-9)
  local eta = "--"
  if done > 0 and done < total then
    eta = M.format_duration(elapsed_s / done * (total - done))
  elseif done >= total then
    eta = "0s"
  end
  return ("[%s%s] %d/%d (%d%%) - ETA: %s%s%s"):format(("▓"):rep(filled), ("░"):rep(BAR_WIDTH - filled),
    done, total, math.floor(frac * 100 + 1e-9), eta,
    in_flight and in_flight > 0 and (" - %d running"):format(in_flight) or "", turn and (" - " .. turn) or "")
end

-- A stream that stopped taking writes (the reader of a pipe went away: `| head -n 1`) is
-- left alone from then on; the experiment goes on and its files are complete.
function Progress:write(line)
  if self.gone then return end
  if self.drawn then self.stream:write("\r\27[K") self.drawn = false end
  local ok, err = self.stream:write(require("fluxloop.secrets").scrub(line), "\n")
  if ok == nil and err ~= nil then self.gone = true return end
  ok, err = self.stream:flush()
  if ok == nil and err ~= nil then self.gone = true end
end

-- info(msg): an [INFO] line (hidden by --quiet).
function Progress:info(msg)
  if not self.quiet then self:write("[INFO] " .. msg) end
end

-- warn(msg): always shown, even with --quiet.
function Progress:warn(msg)
  self:write(msg)
end

-- start(total [, workers]): with several workers the bar also shows the runs in flight.
function Progress:start(total, workers)
  self.total = total
  self.workers = workers or 1
  self.started = self.now()
  self.last_draw = 0
  self.next_tenth = 1
  self.last_line = self.started
  self.pid = fs.realpath("/proc/self") -- a forked worker (--isolate) must not draw
  M.current = self
end

-- turn(turn, max_turns): the conversation in progress is at this turn (shown on the line).
function Progress:turn(turn, max_turns)
  self.turn_at, self.turn_max = turn, max_turns
  if self.tty then self:update(self.done) end
end

-- The turn for the line: formatted only when a line is drawn.
function Progress:turn_text()
  return self.turn_at and ("turn %d/%d"):format(self.turn_at, self.turn_max) or nil
end

-- turn_hook() -> function(turn, max_turns) | nil: the started progress line of this
-- process, for fluxloop.conversation (nil when no bar is drawn, in a worker thread's state
-- or in a forked worker).
function M.turn_hook()
  local p = M.current
  if not p or not p.bar or p.pid ~= fs.realpath("/proc/self") then return nil end
  return function(turn, max_turns) p:turn(turn, max_turns) end
end

-- update(done [, in_flight]): called after every run (or ten times a second by the pool);
-- cheap unless it is time to draw.
function Progress:update(done, in_flight)
  self.done = done
  in_flight = self.workers > 1 and in_flight or nil
  if not self.bar or self.gone then return end
  local now = self.now()
  if self.tty then
    if now - self.last_draw < REDRAW_NS and done < self.total then return end
    self.last_draw = now
    self.stream:write("\r", M.bar_line(done, self.total, (now - self.started) / 1e9, in_flight, self:turn_text()),
      "\27[K")
    self.stream:flush()
    self.drawn = true
  else
    local tenth = self.total > 0 and done * 10 // self.total or 10
    local since = now - self.last_line
    if done == self.printed then return end -- never the same line twice
    if (tenth >= self.next_tenth and since >= PIPE_MIN_NS) or since >= PIPE_EVERY_NS or done == self.total then
      self.printed = done
      self.next_tenth = math.max(self.next_tenth, tenth + 1)
      self.last_line = now
      self:write(M.bar_line(done, self.total, (now - self.started) / 1e9, in_flight, self:turn_text()))
    end
  end
end

-- finish(): ends the bar line on a terminal.
function Progress:finish()
  if self.drawn then self.stream:write("\n") self.stream:flush() self.drawn = false end
end

return M
