-- project.lua - spec support: temporary fluxloop projects, running the real binary, reading its files.
local json = require("fluxloop.json")

local P = {}

local function sh_quote(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end
P.quote = sh_quote

function P.bin()
  return os.getenv("FLUXLOOP_BIN") or (FLUXLOOP_BIN or "build/fluxloop")
end

-- new() -> absolute path of a fresh empty folder.
function P.new()
  local h = io.popen("mktemp -d /tmp/fluxloop-spec.XXXXXX")
  local dir = h:read("l")
  h:close()
  return dir
end

function P.remove(dir)
  if dir and dir:match("^/tmp/fluxloop%-spec%.") then os.execute("rm -rf " .. sh_quote(dir)) end
end

-- write(dir, rel, text): creates parent folders as needed.
function P.write(dir, rel, text)
  local path = dir .. "/" .. rel
  os.execute("mkdir -p " .. sh_quote(path:match("^(.*)/[^/]*$")))
  local f = assert(io.open(path, "wb"))
  f:write(text)
  f:close()
  return path
end

function P.read(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

-- run(dir, args [, env]) -> exit_code, stdout, stderr. args is a string of shell words.
function P.run(dir, args, env)
  local out, err = os.tmpname(), os.tmpname()
  local cmd = ("cd %s && %s %s %s </dev/null >%s 2>%s"):format(sh_quote(dir), env or "", sh_quote(P.bin()),
    args or "", sh_quote(out), sh_quote(err))
  local _, _, code = os.execute(cmd)
  local o, e = P.read(out), P.read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- run_signalled(dir, args, times [, signal [, env]]) -> exit_code, stdout, stderr: starts the
-- binary (env: VAR=value words before it), sends SIGINT (or `signal`, e.g. "KILL") at each of
-- the given times (seconds after the start), then waits for it.
function P.run_signalled(dir, args, times, signal, env)
  local out, err = os.tmpname(), os.tmpname()
  local kills = {}
  local last = 0
  for _, t in ipairs(times) do
    kills[#kills + 1] = ("sleep %.3f; kill -%s $pid 2>/dev/null"):format(t - last, signal or "INT")
    last = t
  end
  local script = ("cd %s && { %s %s %s </dev/null >%s 2>%s & pid=$!; %s; wait $pid; }"):format(sh_quote(dir),
    env and ("env " .. env) or "", sh_quote(P.bin()), args, sh_quote(out), sh_quote(err), table.concat(kills, "; "))
  local _, _, code = os.execute("sh -c " .. sh_quote(script) .. " 2>/dev/null") -- no "Killed" notes
  local o, e = P.read(out), P.read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

-- read_jsonl(path) -> list of decoded lines (fails the spec on a line that is not JSON).
function P.read_jsonl(path)
  local text = assert(P.read(path), "missing file " .. path)
  local rows = {}
  for line in text:gmatch("([^\n]*)\n") do
    local v, err = json.decode(line)
    assert(v ~= nil, ("%s line %d is not JSON: %s"):format(path, #rows + 1, tostring(err)))
    rows[#rows + 1] = v
  end
  return rows, text
end

function P.read_json(path)
  return assert(json.decode(assert(P.read(path), "missing file " .. path)))
end

-- experiments(dir [, sub]) -> sorted list of experiment folder paths under dir/sub.
function P.experiments(dir, sub)
  local base = dir .. "/" .. (sub or "experiments")
  local h = io.popen("ls -1 " .. sh_quote(base) .. " 2>/dev/null")
  local list = {}
  for name in h:lines() do list[#list + 1] = base .. "/" .. name end
  h:close()
  table.sort(list)
  return list
end

-- load_config(dir, yaml) -> cfg | nil, message: yaml written as dir's
-- configs/simulation.yaml, loaded by fluxloop.config as a run would load it.
function P.load_config(dir, yaml)
  local path = P.write(dir, "configs/simulation.yaml", yaml)
  return require("fluxloop.config").load(path, dir, "configs/simulation.yaml")
end

-- A project with the given agent source, inputs and config (defaults for what is left out).
function P.project(opts)
  opts = opts or {}
  local dir = P.new()
  P.write(dir, "configs/simulation.yaml", opts.config or ([[
name: %s
runner:
  target: "agents.agent:run"
  iterations: %d
]]):format(opts.name or "spec", opts.iterations or 2))
  P.write(dir, "inputs/generated.yaml", opts.inputs or [[
generated_inputs:
  - input: "hello"
    persona: novice_user
    metadata: {strategy: rephrase}
  - input: "bye"
]])
  P.write(dir, "agents/agent.lua", opts.agent or [[
local M = {}
function M.run(input, ctx) return "echo: " .. input end
return M
]])
  return dir
end

return P
