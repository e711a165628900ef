-- mock_server.lua - spec support: starts spec/support/mock_llm.py (an OpenAI-compatible mock)
-- on 127.0.0.1 and a port the OS picks, and stops it by pid. Proxies are switched off for
-- this process and the programs it starts, so no request leaves the machine.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local http = require("fluxloop.http")
local json = require("fluxloop.json")
local P = require("support.project")

local M = {}

-- Whatever proxy the environment names, nothing here may use it.
for _, name in ipairs({ "http_proxy", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY", "HTTP_PROXY" }) do
  fs.setenv(name, "")
end
fs.setenv("no_proxy", "*")
fs.setenv("NO_PROXY", "*")

local Server = {}
Server.__index = Server

-- start([args [, script]]) -> server: args are extra command-line words (--latency-ms 20,
-- --quota 10, --api-key KEY); script another server of spec/support (mock_judge.py). The
-- server exits by itself after 10 minutes at the latest.
function M.start(args, script_name)
  local dir = P.new()
  local rel = "spec/support/" .. (script_name or "mock_llm.py")
  local script = (os.getenv("PWD") or ".") .. "/" .. rel
  local f = io.open(script, "r")
  if f then f:close() else script = rel end
  local h = io.popen(("python3 %s --port-file %s/port --lifetime 600 %s >%s/log 2>&1 & echo $!")
    :format(P.quote(script), P.quote(dir), args or "", P.quote(dir)))
  local pid = h:read("l")
  h:close()
  local port
  for _ = 1, 400 do -- up to 20 s on a loaded machine
    local text = P.read(dir .. "/port")
    port = text and tonumber(text:match("%d+"))
    if port then break end
    clock.sleep(50)
  end
  local self = setmetatable({ pid = tonumber(pid), dir = dir, port = port }, Server)
  if not port then
    local log = P.read(dir .. "/log") or ""
    self:stop()
    error("the mock server did not start: " .. log)
  end
  self.base = "http://127.0.0.1:" .. port
  return self
end

function Server:url(path) return self.base .. (path or "") end

function Server:stop()
  if self.pid then os.execute("kill " .. self.pid .. " 2>/dev/null") end
  self.pid = nil
  P.remove(self.dir)
end

local function call(self, method, path, value)
  local res, err = http.request({ method = method, url = self.base .. path, json = value, retries = 0, observe = false })
  assert(res, err)
  return assert(res:json())
end

-- control{latency_ms=, quota=, quota_burst=, stream_delay_ms=}: changes the server's behaviour.
function Server:control(settings) return call(self, "POST", "/_control", settings) end
-- stats() -> { requests, counted, statuses = {["200"] = n}, max_in_flight, rate, auth_failures }
function Server:stats() return call(self, "GET", "/_stats") end
function Server:reset() return call(self, "POST", "/_reset", json.null) end

return M
