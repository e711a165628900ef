-- Agents that are programs (runner.command) and Python agents through the bridge: the worker
-- protocol end to end, and every way a worker can go wrong.
local P = require("support.project")
local json = require("fluxloop.json")

local function py_project(source, opts)
  opts = opts or {}
  local dir = P.project({ iterations = opts.iterations or 1, config = ("runner:\n  target: %q\n  iterations: %d\n%s")
    :format(opts.target or "agents.pyagent:run", opts.iterations or 1, opts.extra or "") })
  os.remove(dir .. "/agents/agent.lua")
  P.write(dir, "agents/pyagent.py", source)
  return dir
end

local function sh_project(script, extra)
  local dir = P.project({ iterations = 1, config = ("runner:\n  command: [\"sh\", \"worker.sh\"]\n"
    .. "  target: \"w:run\"\n  iterations: 1\n%s"):format(extra or "") })
  P.write(dir, "worker.sh", script)
  return dir
end

local function traces(dir) return P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl") end

describe("Python agents", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("the run page's agent runs unchanged, with an agent observation a run", function()
    dir = py_project([[
import fluxloop

def process(input_text: str) -> str:
    return "processed: " + input_text

@fluxloop.agent()
def run(input_text: str) -> str:
    return process(input_text)
]], { iterations = 2 })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.are.equal(4, #rows)
    assert.are.equal("processed: hello", rows[1].output)
    assert.are.equal("agent", rows[1].observations[1].type)
    assert.are.same({ input_text = "hello" }, rows[1].observations[1].input)
  end)

  for _, flags in ipairs({ "", " --parallel 2", " --isolate --parallel 2" }) do
    it("nested decorated calls, async, binding by name, and print() kept as logs" .. flags, function()
      dir = py_project([[
import asyncio, fluxloop

@fluxloop.tool(name="lookup")
def lookup(q):
    return [q.upper()]

@fluxloop.prompt(name="llm")
async def llm(prompt):
    await asyncio.sleep(0)
    return "answer to " + prompt

@fluxloop.agent()
async def run(message, persona=None, iteration=0):
    print("thinking about", message)
    docs = lookup(message)
    return {"text": await llm(docs[0]), "persona": persona, "iteration": iteration}
]], { iterations = 2 })
      local code, _, err = P.run(dir, "run experiment --quiet" .. flags)
      assert.are.equal(0, code, err)
      local rows = traces(dir)
      assert.are.equal(4, #rows)
      assert.are.same({ text = "answer to HELLO", persona = "novice_user", iteration = 1 }, rows[2].output)
      local obs = rows[1].observations
      assert.are.equal(3, #obs)
      assert.are.equal("agent", obs[1].type)
      assert.are.equal("tool", obs[2].type)
      assert.are.equal(obs[1].id, obs[2].parent_id)
      assert.are.equal("generation", obs[3].type)
      assert.are.same(json.array({ "thinking about hello" }), rows[1].logs)
    end)
  end

  it("runner.env reaches the agent's environment; runner.python_path and the project folder its imports", function()
    dir = py_project([[
import os
import helper          # src/helper.py, through runner.python_path
import pkg.shapes      # pkg/shapes.py, from the project folder

def run(input):
    return [os.environ.get("GREETING"), helper.NAME, pkg.shapes.SIDES]
]], { extra = "  env: {GREETING: bonjour}\n  python_path: [src]\n" })
    P.write(dir, "src/helper.py", "NAME = 'helper'\n")
    P.write(dir, "pkg/__init__.py", "")
    P.write(dir, "pkg/shapes.py", "SIDES = 4\n")
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    assert.are.same({ "bonjour", "helper", 4 }, traces(dir)[1].output)
  end)

  it("@fluxloop.prompt records its model and the answer's token counts, as the Python SDK does", function()
    dir = py_project([[
import fluxloop

class Usage:
    prompt_tokens, completion_tokens, total_tokens = 3, 4, 7

class Response:
    usage = Usage()

@fluxloop.prompt(name="chat", model="gpt-test")
def chat(q):
    return {"choices": [{"message": {"content": q}}], "usage": {"prompt_tokens": 11, "completion_tokens": 5}}

@fluxloop.prompt(model="sdk-model")
def sdk_call(q):
    return Response()

@fluxloop.prompt(name="quiet", capture_tokens=False)
def quiet(q):
    return {"usage": {"total_tokens": 99}}

@fluxloop.agent()
def run(input):
    chat(input)
    sdk_call(input)
    quiet(input)
    return "done"
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local obs = traces(dir)[1].observations
    assert.are.equal(4, #obs)
    assert.are.same({ "generation", "chat", "gpt-test", 11, 5, 16 },
      { obs[2].type, obs[2].name, obs[2].model, obs[2].prompt_tokens, obs[2].completion_tokens, obs[2].total_tokens })
    assert.are.same({ "sdk_call", "sdk-model", 3, 4, 7 },
      { obs[3].name, obs[3].model, obs[3].prompt_tokens, obs[3].completion_tokens, obs[3].total_tokens })
    assert.is_nil(obs[4].total_tokens)
  end)

  it("an exception fails the run with its type, message and Python traceback; the rest go on", function()
    dir = py_project([[
def run(input):
    if input == "hello":
        raise ValueError("bad input: " + input)
    return input
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.are.equal("ValueError", rows[1].error.type)
    assert.are.equal("bad input: hello", rows[1].error.message)
    assert.truthy(rows[1].error.traceback:find("pyagent.py", 1, true), rows[1].error.traceback)
    assert.are.equal(true, rows[2].success)
  end)

  it("an output JSON cannot hold fails the run (invalid_output); a NaN observed is null", function()
    dir = py_project([[
import fluxloop

@fluxloop.tool()
def score(x):
    return float("nan")

def run(input):
    score(input)
    return {'s': {1, 2}} if input == "hello" else float("inf")
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.are.equal("invalid_output", rows[1].error.type)
    assert.are.equal("invalid_output", rows[2].error.type)
    assert.truthy(rows[2].error.message:find("float", 1, true), rows[2].error.message)
    assert.are.equal(json.null, rows[1].observations[1].output)
  end)

  it("fluxloop.rate_limit() paces a Python agent's calls by the experiment's shared --rate-limit", function()
    dir = py_project([[
import time
import fluxloop

def run(input):
    waited = fluxloop.rate_limit()
    return {"at": time.time(), "waited_ms": waited}
]], { iterations = 10 })
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 4 --rate-limit 20")
    assert.are.equal(0, code, err)
    local at = {}
    for _, row in ipairs(traces(dir)) do at[#at + 1] = row.output.at end
    table.sort(at)
    assert.are.equal(20, #at)
    -- 20 tokens at 20/s with a burst of 1: the last call goes >= 0.95 s after the first
    -- (a lower bound: the bucket guarantees it, however slow the machine).
    assert.is_true(at[20] - at[1] >= 0.9, ("20 calls within %.3f s"):format(at[20] - at[1]))
    code, _, err = P.run(dir, "run experiment --quiet --output-dir free") -- no limit: returns 0 at once
    assert.are.equal(0, code, err)
    assert.are.equal(0, P.read_jsonl(P.experiments(dir, "free")[1] .. "/traces.jsonl")[1].output.waited_ms)
  end)

  it("a run whose wait for the rate limit passes --timeout fails as timeout; the next run goes on", function()
    dir = py_project("import fluxloop\n\ndef run(input):\n    fluxloop.rate_limit()\n    return input\n",
      { iterations = 3 })
    P.write(dir, "inputs/generated.yaml", "- input: a\n")
    local code, _, err = P.run(dir, "run experiment --quiet --rate-limit 0.5 --timeout 500")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.is_true(rows[1].success)
    for i = 2, 3 do assert.are.equal("timeout", rows[i].error.type, rows[i].error.message) end
  end)

  it("an agent that returns None fails the run as no_output, as a Lua agent returning nil", function()
    dir = py_project("def run(input):\n    return None\n")
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    assert.are.equal("no_output", traces(dir)[1].error.type)
  end)

  it("a syntax error, a missing function or a missing interpreter stop before any run (exit 2)", function()
    dir = py_project("def run(input)\n    return input\n")
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("SyntaxError", 1, true), err)
    assert.are.same({}, P.experiments(dir))
    P.remove(dir)
    dir = py_project("def other(input):\n    return input\n")
    code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("has no attribute 'run'", 1, true), err)
    P.remove(dir)
    dir = py_project("def run(input):\n    return input\n", { extra = "  python: no-such-python3\n" })
    code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("runner.python", 1, true), err)
    assert.truthy(err:find("No such file or directory", 1, true), err)
  end)

  it("python3 behind a pyenv shim: every worker starts the version's interpreter, never the shim", function()
    dir = py_project("import sys\n\ndef run(input):\n    return sys.executable\n", { iterations = 3 })
    -- The shim leaves a mark and would still work; versions/3.99.0/bin/python3 is this python3.
    local real = io.popen("python3 -c 'import sys; print(sys.executable)'"):read("l")
    P.write(dir, "pyenv/shims/python3", ('#!/usr/bin/env bash\nexport PYENV_ROOT="%s/pyenv"\n'
      .. 'touch "%s/shim-ran"; exec %s "$@" # stands for: exec "$PYENV_ROOT/libexec/pyenv" exec\n'):format(dir, dir, real))
    os.execute(("chmod +x %s/pyenv/shims/python3 && mkdir -p %s/pyenv/versions/3.99.0/bin && ln -s %s %s/pyenv/versions/3.99.0/bin/python3")
      :format(P.quote(dir), P.quote(dir), P.quote(real), P.quote(dir)))
    P.write(dir, ".python-version", "3.99.0\n")
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 2",
      ("PATH=%s/pyenv/shims:$PATH"):format(P.quote(dir)))
    assert.are.equal(0, code, err)
    for _, row in ipairs(traces(dir)) do
      assert.are.equal(dir .. "/pyenv/versions/3.99.0/bin/python3", row.output)
    end
    assert.is_nil(P.read(dir .. "/shim-ran"), "the shim was run")
  end)

  it("a .lua module of the same name wins; runner.language: python decides otherwise", function()
    dir = py_project("def run(input):\n    return 'python'\n")
    P.write(dir, "agents/pyagent.lua", "return { run = function() return 'lua' end }\n")
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    assert.are.equal("lua", traces(dir)[1].output)
    P.write(dir, "configs/simulation.yaml", "runner:\n  target: agents.pyagent:run\n  iterations: 1\n  language: python\n")
    os.execute("rm -rf " .. P.quote(dir .. "/experiments"))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    assert.are.equal("python", traces(dir)[1].output)
  end)
end)

describe("process agents (runner.command)", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("the sh example of examples/process runs", function()
    dir = P.new()
    os.execute(("cp -r examples/process/. %s/ && mkdir -p %s/inputs && cp inputs/generated.yaml %s/inputs/")
      :format(P.quote(dir), P.quote(dir), P.quote(dir)))
    P.write(dir, "configs/simulation.yaml", "runner:\n  command: [sh, agents/echo_worker.sh]\n  target: echo:run\n  iterations: 2\n")
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.is_true(#rows >= 2)
    assert.are.equal(rows[1].input, rows[1].output)
    assert.are.equal("tool", rows[1].observations[1].type)
  end)

  it("the Node example of examples/process runs, with its observation and log line", function()
    dir = P.new()
    os.execute(("cp -r examples/process/. %s/ && mkdir -p %s/inputs && cp inputs/generated.yaml %s/inputs/")
      :format(P.quote(dir), P.quote(dir), P.quote(dir)))
    P.write(dir, "configs/simulation.yaml", (P.read(dir .. "/configs/node.yaml"):gsub("\ninputs:.*", "\n")))
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.is_true(#rows >= 4)
    assert.are.same({ echo = rows[2].input, iteration = rows[2].iteration, persona = rows[2].persona or json.null },
      rows[2].output)
    assert.are.equal("tool", rows[2].observations[1].type)
    assert.are.equal(1, #rows[2].logs)
    assert.truthy(rows[2].logs[1]:match("^run %d+: trace_002$"), rows[2].logs[1]) -- ids count per worker
  end)

  it("the C example worker echoes inputs of every JSON shape", function()
    dir = P.project({ iterations = 2, config = ("runner:\n  command: [%q]\n  target: echo:run\n  iterations: 2\n")
      :format(FLUXLOOP_BUILD .. "/examples/echo_worker"), inputs = [==[
- input: 'a "quoted" }{ string'
- input: {id: 9, input: "the input's own id and input", list: [1, "]", {a: "}"}]}
- input: 12.5
- input: [x, [y]]
]==] })
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.are.equal(8, #rows)
    for _, row in ipairs(rows) do assert.are.same(row.input, row.output) end
    assert.are.same({ id = 9, input = "the input's own id and input", list = { 1, "]", { a = "}" } } }, rows[3].output)
  end)

  -- A worker that goes wrong on the input "hello" only, in the way `action` (sh) says.
  local function wrong_on_hello(action)
    return sh_project(([[
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  if echo "$req" | grep -q '"input":"hello"'; then %s; else
    id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/'); echo "{\"type\":\"result\",\"id\":$id,\"output\":\"ok\"}"; fi
done
]]):format(action))
  end

  for _, case in ipairs({
    { "writes garbage: that run fails quoting it", 'echo "Traceback: something printed on stdout"',
      '"Traceback: something printed on stdout"' },
    { "floods stdout with one endless line: that run fails at 64 MB", "head -c 80000000 /dev/zero | tr '\\0' a; echo",
      "over 64 MB" },
  }) do
    it("a worker that " .. case[1] .. "; a new worker takes the next run", function()
      dir = wrong_on_hello(case[2])
      local code, _, err = P.run(dir, "run experiment --quiet")
      assert.are.equal(1, code, err)
      local rows = traces(dir)
      assert.are.equal("protocol", rows[1].error.type)
      assert.truthy(rows[1].error.message:find(case[3], 1, true), rows[1].error.message)
      assert.are.equal(true, rows[2].success)
    end)
  end

  it("a worker that exits during a run fails it (crash, status named) and is started again", function()
    dir = sh_project([[
read hello
echo '{"type":"hello","protocol":1}'
read req
case "$req" in *'"input":"hello"'*) echo "going down" >&2; exit 3;; esac
id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/'); echo "{\"type\":\"result\",\"id\":$id,\"output\":\"ok\"}"
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.are.equal("crash", rows[1].error.type)
    assert.truthy(rows[1].error.message:find("exited with status 3", 1, true), rows[1].error.message)
    assert.truthy(rows[1].error.message:find("going down", 1, true), rows[1].error.message)
    assert.are.equal(true, rows[2].success)
  end)

  it("a run past --timeout kills the worker's process group (timeout) and the next run gets a new one", function()
    dir = sh_project([[
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  case "$req" in *'"input":"hello"'*) sleep 30;; esac
  id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/'); echo "{\"type\":\"result\",\"id\":$id,\"output\":\"ok\"}"
done
]])
    local code, _, err = P.run(dir, "run experiment --quiet --timeout 500", "timeout -s KILL 25")
    assert.are.equal(1, code, err)
    local rows = traces(dir)
    assert.are.equal("timeout", rows[1].error.type)
    assert.are.equal(true, rows[2].success, rows[2].error ~= json.null and rows[2].error.message or "")
  end)

  -- Processes whose command line holds marker, as "pid command" lines.
  local function alive(marker)
    local h = io.popen("pgrep -af " .. P.quote(marker) .. " | grep -v pgrep")
    local out = h:read("a")
    h:close()
    return out
  end

  for _, case in ipairs({ { "INT", "Ctrl-C ends every worker's process group (the agent's own children too)" },
    { "KILL", "kill -9 of fluxloop: its workers die with it, and what they started" } }) do
    it(case[2], function()
      local marker = ("fluxloop-spec-worker-%d-%s"):format(math.random(1e9), case[1])
      dir = sh_project(([[
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  python3 -c 'import time; time.sleep(300)' %s-child &
  wait
done
]]):format(marker))
      P.write(dir, "configs/simulation.yaml", ('runner:\n  command: ["sh", "worker.sh", %q]\n  target: "w:run"\n'
        .. "  iterations: 4\n"):format(marker))
      local code = P.run_signalled(dir, "run experiment --quiet --parallel 2", { 2.5 }, case[1])
      assert.are.equal(case[1] == "INT" and 130 or 137, code)
      local left
      for _ = 1, 40 do -- a worker's death signal arrives within moments of fluxloop's
        left = alive(marker)
        if left == "" then break end
        os.execute("sleep 0.1")
      end
      os.execute("pkill -f " .. P.quote(marker) .. " 2>/dev/null") -- whatever a failure left
      assert.are.equal("", left)
    end)
  end

  it("a worker that dies at start, or never says hello, stops before any run with its stderr", function()
    dir = sh_project("echo 'cannot import model weights' >&2\nexit 1\n")
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("exited with status 1 before saying hello", 1, true), err)
    assert.truthy(err:find("cannot import model weights", 1, true), err)
    assert.are.same({}, P.experiments(dir))
  end)

  it("a worker that never says hello stops before any run at runner.start_timeout_ms", function()
    dir = sh_project("echo 'loading weights...' >&2\nsleep 30\n", "  start_timeout_ms: 800\n")
    local code, _, err = P.run(dir, "run experiment", "timeout -s KILL 20")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("did not say hello within 800 ms (runner.start_timeout_ms)", 1, true), err)
    assert.truthy(err:find("loading weights", 1, true), err)
  end)
end)

describe("Python agents, more shapes", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a generator's chunks are joined; a floods-of-stderr agent keeps bounded logs", function()
    dir = py_project([[
import sys

def run(query):
    for i in range(5000):
        print("noise line", i, file=sys.stderr)
    for word in ("streamed ", "answer ", "to ", query):
        yield word
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = traces(dir)
    assert.are.equal("streamed answer to hello", rows[1].output)
    assert.is_true(#rows[1].logs <= 201, #rows[1].logs)
  end)

  it("replay gives a Python agent callables for the recorded callbacks; what it sends is kept", function()
    dir = py_project([[
import asyncio

def run(data, send_message_callback, send_error_callback, hooks=None):
    send_message_callback("thinking about " + data["content"])
    if hooks:
        asyncio.run(hooks["notify"]({"step": 1}, "two"))
    send_error_callback("a warning")
    send_message_callback({"answer": data["content"].upper()})
    return None
]])
    P.write(dir, "recordings/args.jsonl", '{"_version":"1","iteration":0,"target":"agents.pyagent:run","kwargs":'
      .. '{"data":{"content":"old"},"send_message_callback":"<builtin:collector.send>",'
      .. '"send_error_callback":"<builtin:collector.error>","hooks":{"notify":"<callable:notify:async>"}},'
      .. '"timestamp":"2026-11-25T10:00:00.000000Z"}\n')
    P.write(dir, "configs/simulation.yaml", "runner:\n  target: agents.pyagent:run\n  iterations: 1\n"
      .. "replay_args:\n  enabled: true\n  recording_file: recordings/args.jsonl\n  override_param_path: data.content\n")
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local row = traces(dir)[1]
    assert.are.same({ answer = "HELLO" }, row.output) -- the last message sent, as the run returned None
    assert.are.same({ send = { "thinking about hello", { answer = "HELLO" } }, error = { "a warning" },
      ["notify:async"] = { { { step = 1 }, "two" } } }, row.callback_messages)
    assert.are.equal("<builtin:collector.send>", row.args.send_message_callback)
  end)

  it("replay calls the function with the recorded kwargs, the input in place", function()
    dir = py_project([[
def run(data, user=None):
    return {"content": data["content"], "user": user}
]], { extra = "" })
    P.write(dir, "recordings/args.jsonl",
      '{"_version":"1","iteration":0,"target":"agents.pyagent:run","kwargs":{"data":{"content":"old"},"user":"ann"},"timestamp":"2026-11-25T10:00:00.000000Z"}\n')
    P.write(dir, "configs/simulation.yaml", "runner:\n  target: agents.pyagent:run\n  iterations: 1\n"
      .. "replay_args:\n  enabled: true\n  recording_file: recordings/args.jsonl\n  override_param_path: data.content\n")
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    assert.are.same({ content = "hello", user = "ann" }, traces(dir)[1].output)
  end)
end)
