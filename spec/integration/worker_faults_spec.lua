-- Workers that break the protocol or misbehave as processes: each fault fails its own run
-- only, never the next one, and never hangs fluxloop (issue 22: answers matched to their
-- request, hangs on held pipes and full pipes, bad observations, orphans, charges to the
-- wrong run, big integers, messages).
local P = require("support.project")
local json = require("fluxloop.json")

local function traces(dir) return P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl") end

-- A sh worker: `on_hello` runs when the request's input is "hello" (else the run answers
-- its input). $id is the request's id.
local function sh_worker(on_hello, opts)
  opts = opts or {}
  local dir = P.project({ iterations = opts.iterations or 1, inputs = opts.inputs,
    config = ("runner:\n  command: [\"sh\", \"worker.sh\"]\n  target: \"w:run\"\n  iterations: %d\n%s")
      :format(opts.iterations or 1, opts.extra or "") })
  P.write(dir, "worker.sh", ([[
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/')
  input=$(echo "$req" | sed 's/.*"input":\("[^"]*"\),.*/\1/')
  case "$req" in *'"input":"hello"'*) %s ;; *) echo "{\"type\":\"result\",\"id\":$id,\"output\":$input}" ;; esac
done
]]):format(on_hello))
  return dir
end

local function py_project(source, opts)
  opts = opts or {}
  local dir = P.project({ iterations = opts.iterations or 1, inputs = opts.inputs,
    config = ("runner:\n  target: agents.pyagent:run\n  iterations: %d\n%s"):format(opts.iterations or 1, opts.extra or "") })
  os.remove(dir .. "/agents/agent.lua")
  P.write(dir, "agents/pyagent.py", source)
  return dir
end

-- Runs fluxloop under a hard limit; returns code, stderr and the seconds it took.
local function timed_run(dir, args)
  local t0 = os.time()
  local code, _, err = P.run(dir, args, "timeout -s KILL 30")
  return code, err, os.time() - t0
end

describe("a worker's answer is matched to its request", function()
  local dir
  after_each(function() P.remove(dir) end)

  for _, case in ipairs({
    { "a result without id", [[echo '{"type":"result","output":"hello"}']], "without the request's id" },
    { "a result with another id", [[echo "{\"type\":\"result\",\"id\":$((id + 7)),\"output\":\"hello\"}"]],
      "answered request" },
  }) do
    it(case[1] .. " fails that run (protocol) and no later run takes another's answer", function()
      dir = sh_worker(case[2], { inputs = "- input: hello\n- input: b\n- input: c\n" })
      local code, err = timed_run(dir, "run experiment --quiet")
      assert.are.equal(1, code, err)
      local rows = traces(dir)
      assert.are.equal("protocol", rows[1].error.type)
      assert.truthy(rows[1].error.message:find(case[3], 1, true), rows[1].error.message)
      assert.are.same({ true, "b", true, "c" }, { rows[2].success, rows[2].output, rows[3].success, rows[3].output })
    end)
  end

  it("a result sent twice: the extra one is dropped and never fails or answers the next run", function()
    dir = sh_worker([[echo "{\"type\":\"result\",\"id\":$id,\"output\":\"hello\"}"; ]]
      .. [[echo "{\"type\":\"result\",\"id\":$id,\"output\":\"hello again\"}"]],
      { inputs = "- input: hello\n- input: b\n- input: c\n", iterations = 2 })
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local outputs = {}
    for _, row in ipairs(traces(dir)) do outputs[#outputs + 1] = row.output end
    assert.are.same({ "hello", "hello", "b", "b", "c", "c" }, outputs)
  end)
end)

describe("a bad observation", function()
  local dir
  after_each(function() P.remove(dir) end)

  for _, case in ipairs({
    { "span_start without span", [[{\"type\":\"span_start\",\"id\":$id,\"name\":\"s\"}]], '"span"' },
    { "an observation of an unknown type", [[{\"type\":\"observation\",\"id\":$id,\"observation\":{\"type\":\"thought\"}}]],
      '"type"' },
    { "an observation that is not an object", [[{\"type\":\"observation\",\"id\":$id,\"observation\":7}]],
      '"observation"' },
  }) do
    it(case[1] .. " fails that run (protocol, naming the field), not the next", function()
      dir = sh_worker(('echo "%s"; echo "{\\"type\\":\\"result\\",\\"id\\":$id,\\"output\\":\\"late\\"}"'):format(case[2]),
        { inputs = "- input: hello\n- input: b\n" })
      local code, err = timed_run(dir, "run experiment --quiet")
      assert.are.equal(1, code, err)
      local rows = traces(dir)
      assert.are.equal("protocol", rows[1].error.type)
      assert.truthy(rows[1].error.message:find(case[3], 1, true), rows[1].error.message)
      assert.falsy(rows[1].error.message:find("table index is nil", 1, true))
      assert.are.same({ true, "b" }, { rows[2].success, rows[2].output })
    end)
  end
end)

describe("a worker that misbehaves as a process", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("exits during a run while its child holds its pipes: a crash naming the status, in moments", function()
    dir = sh_worker("sleep 60 & exit 3", { inputs = "- input: hello\n- input: b\n" })
    local code, err, took = timed_run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    assert.is_true(took <= 5, ("took %d s"):format(took))
    local rows = traces(dir)
    assert.are.equal("crash", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("exited with status 3", 1, true), rows[1].error.message)
    assert.are.same({ true, "b" }, { rows[2].success, rows[2].output })
  end)

  it("stopped reading, and the request is larger than the pipe buffer: the run times out", function()
    dir = sh_worker("", { inputs = "- input: hello\n- input: " .. string.rep("x", 1024 * 1024) .. "\n- input: b\n" })
    P.write(dir, "worker.sh", "read hello\necho '{\"type\":\"hello\",\"protocol\":1}'\nsleep 60\n")
    local code, err, took = timed_run(dir, "run experiment --quiet --timeout 500")
    assert.are.equal(1, code, err)
    assert.is_true(took <= 10, ("took %d s"):format(took))
    for _, row in ipairs(traces(dir)) do assert.are.equal("timeout", row.error.type, row.error.message) end
  end)

  it("exits right after answering: the next run gets a new worker and succeeds", function()
    dir = P.project({ iterations = 10, config = "runner:\n  command: [\"sh\", \"worker.sh\"]\n  target: \"w:run\"\n"
      .. "  iterations: 10\n" })
    P.write(dir, "worker.sh", [[
read hello
echo '{"type":"hello","protocol":1}'
read req
id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/')
echo "{\"type\":\"result\",\"id\":$id,\"output\":\"once\"}"
exit 0
]])
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    for _, row in ipairs(traces(dir)) do assert.are.equal("once", row.output) end
  end)

  it("a slot whose worker does not start at --parallel 2: said, and the other slot does every run", function()
    dir = P.project({ iterations = 3, config = "runner:\n  command: [\"sh\", \"worker.sh\"]\n  target: \"w:run\"\n"
      .. "  iterations: 3\n" })
    -- The first two workers start (the check before any run, and slot 1); later ones fail.
    P.write(dir, "worker.sh", [[
n=1; while ! mkdir "started.$n" 2>/dev/null; do n=$((n + 1)); done
if [ "$n" -gt 2 ]; then echo "no licence left for worker $n" >&2; exit 1; fi
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/')
  echo "{\"type\":\"result\",\"id\":$id,\"output\":\"ok\"}"
done
]])
    local code, err = timed_run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("worker %d did not start %(the others do its runs%): target 'w:run'"), err)
    assert.truthy(err:find("no licence left", 1, true), err)
    assert.falsy(err:find("writing results failed", 1, true), err)
    assert.are.equal(6, #traces(dir))
    local summary = P.read_json(P.experiments(dir)[1] .. "/summary.json")
    assert.are.same({ 6, false }, { summary.total_traces, summary.interrupted })
  end)

  it("no slot's worker starts at --parallel 2 (the check's did): said as such, not as a write failure", function()
    dir = P.project({ iterations = 3, config = "runner:\n  command: [\"sh\", \"worker.sh\"]\n  target: \"w:run\"\n"
      .. "  iterations: 3\n" })
    -- Only the first worker started in the folder (the check before any run) says hello.
    P.write(dir, "worker.sh", [[
if ! mkdir started 2>/dev/null; then echo "no licence left" >&2; exit 1; fi
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/')
  echo "{\"type\":\"result\",\"id\":$id,\"output\":\"ok\"}"
done
]])
    local code, err = timed_run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("fluxloop: error: no worker started, so no run ran: worker %d did not start: "), err)
    assert.truthy(err:find("no licence left", 1, true), err)
    assert.falsy(err:find("writing results failed", 1, true), err)
    assert.falsy(err:find("the others do its runs", 1, true), err)
    assert.are.equal(0, #traces(dir))
  end)
end)

describe("Python agents that misbehave", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("input() gets end of file (stdin is /dev/null), and later requests still reach the worker", function()
    dir = py_project([[
import subprocess

def run(message):
    if message == "hello":
        return input()
    return [message, subprocess.run(["cat"], capture_output=True).stdout.decode()]
]], { inputs = "- input: hello\n- input: b\n" })
    local code, err, took = timed_run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    assert.is_true(took <= 10, ("took %d s"):format(took))
    local rows = traces(dir)
    assert.are.equal("EOFError", rows[1].error.type)
    assert.are.same({ "b", "" }, rows[2].output)
  end)

  it("a subprocess holding stderr, then os._exit: a crash naming the status within moments", function()
    dir = py_project([[
import os, subprocess

def run(input):
    if input == "hello":
        subprocess.Popen(["sleep", "60"])
        os._exit(3)
    return input
]], { inputs = "- input: hello\n- input: b\n" })
    local code, err, took = timed_run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    assert.is_true(took <= 5, ("took %d s"):format(took))
    local rows = traces(dir)
    assert.are.equal("crash", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("exited with status 3", 1, true), rows[1].error.message)
    assert.are.same({ true, "b" }, { rows[2].success, rows[2].output })
  end)

  it("a background thread that records after its run returned adds nothing to later traces", function()
    dir = py_project([[
import threading, time
import fluxloop

@fluxloop.tool()
def late(n):
    return n

def background():
    time.sleep(0.2)
    late("from the first run's thread")

def run(input):
    if input == "hello":
        threading.Thread(target=background).start()
        return input
    time.sleep(0.5)
    late(input)
    return input
]], { inputs = "- input: hello\n- input: b\n" })
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.are.equal(0, #rows[1].observations)
    assert.are.equal(1, #rows[2].observations)
    assert.are.equal("b", rows[2].observations[1].input.n)
  end)

  it("threads of a run (a pool, asyncio.to_thread) record into that run", function()
    dir = py_project([[
import asyncio
from concurrent.futures import ThreadPoolExecutor
import fluxloop

POOL = ThreadPoolExecutor(2)

@fluxloop.tool()
def work(n):
    return n

async def run(input):
    await asyncio.to_thread(work, "thread")
    return POOL.submit(work, input).result()
]], { inputs = "- input: a\n- input: b\n" })
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    for _, row in ipairs(traces(dir)) do
      assert.are.equal(2, #row.observations, json.encode(row.observations))
    end
  end)

  it("a run after a timeout does not pay for the replacement worker's start", function()
    dir = py_project([[
import time
time.sleep(0.6)  # a slow import: loading a model

def run(input):
    if input == "hello":
        time.sleep(30)
    return input
]], { inputs = "- input: hello\n- input: b\n" })
    local code, err = timed_run(dir, "run experiment --quiet --timeout 300")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.are.equal("timeout", rows[1].error.type)
    assert.is_true(rows[2].success)
    assert.is_true(rows[2].duration_ms < 300, ("the run after the timeout took %s ms"):format(rows[2].duration_ms))
  end)

  it("integers past 64 bits stay exact (as strings of their digits), 10**400 too", function()
    dir = py_project([[
import fluxloop

@fluxloop.tool()
def count(n):
    return n * 2

def run(input):
    count(2**70)
    return {"big": 2**64 + 1, "huge": 10**400, "low": -2**63 - 1, "fits": 2**63 - 1, "list": [2**80]}
]], { inputs = "- input: a\n" })
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local row = traces(dir)[1]
    assert.are.same({ big = "18446744073709551617", huge = "1" .. string.rep("0", 400), low = "-9223372036854775809",
      fits = math.maxinteger, list = { "1208925819614629174706176" } }, row.output)
    assert.are.equal("1180591620717411303424", row.observations[1].input.n)
    assert.are.equal("2361183241434822606848", row.observations[1].output)
  end)

  it("a traceback starts in the agent's code, not in the bridge", function()
    dir = py_project("def helper():\n    raise KeyError('missing')\n\ndef run(input):\n    return helper()\n",
      { inputs = "- input: a\n" })
    local code, err = timed_run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local tb = traces(dir)[1].error.traceback
    assert.falsy(tb:find("fluxloop_worker", 1, true), tb)
    assert.truthy(tb:match("^Traceback %(most recent call last%):\n  File \"[^\"]*pyagent%.py\", line 5, in run\n"), tb)
  end)

  for _, case in ipairs({
    { "a SyntaxError", "def run(input)\n    return input\n", "SyntaxError" },
    { "a KeyError", "import os\nMODEL = os.environ['NO_SUCH_VARIABLE_SET']\n\ndef run(input):\n    return input\n", "KeyError" },
    { "an AttributeError", "def other(input):\n    return input\n", "has no attribute 'run'" },
  }) do
    it(case[1] .. " of the agent's own is shown without blaming runner.python", function()
      dir = py_project(case[2])
      local code, err = timed_run(dir, "run experiment")
      assert.are.equal(2, code, err)
      assert.truthy(err:find(case[3], 1, true), err)
      assert.falsy(err:find("runner.python", 1, true), err)
    end)
  end
end)
