-- make install: the binary, the agent header and the Python bridge land under PREFIX, and the
-- installed binary finds its bridge there (a Python agent with @fluxloop.agent runs).
-- In make test only (not test-asan): it installs the build's own binary.
local P = require("support.project")

describe("make install", function()
  local prefix, dir
  after_each(function()
    P.remove(prefix)
    P.remove(dir)
  end)

  it("puts everything in PREFIX, and the installed fluxloop runs a Python agent with its bridge", function()
    prefix = P.new()
    local h = io.popen(("make -s install PREFIX=%s 2>&1"):format(P.quote(prefix)))
    local out = h:read("a")
    local ok = h:close()
    assert(ok, out)
    for _, f in ipairs({ "bin/fluxloop", "include/fluxloop/agent.h", "share/fluxloop/python/fluxloop_worker.py",
      "share/fluxloop/python/fluxloop/__init__.py", "share/fluxloop/python/fluxloop/_signature.py" }) do
      assert.truthy(P.read(prefix .. "/" .. f), f .. " is not installed")
    end
    dir = P.project({ iterations = 1, config = 'runner:\n  target: "agents.shout:run"\n  iterations: 1\n' })
    P.write(dir, "agents/shout.py", "import fluxloop\n\n@fluxloop.agent()\ndef run(input):\n    return input.upper()\n")
    local code, _, err = P.run(dir, "run experiment --quiet", nil)
    assert.are.equal(0, code, err)
    local cmd = ("cd %s && %s run experiment --quiet --output-dir installed 2>&1"):format(P.quote(dir),
      P.quote(prefix .. "/bin/fluxloop"))
    h = io.popen(cmd)
    out = h:read("a")
    assert(h:close(), out)
    local row = P.read_jsonl(P.experiments(dir, "installed")[1] .. "/traces.jsonl")[1]
    assert.are.equal("HELLO", row.output)
    assert.are.equal("agent", row.observations[1].type)
    -- Outside a run, the installed SDK is where python-path says.
    h = io.popen(P.quote(prefix .. "/bin/fluxloop") .. " python-path")
    out = h:read("a")
    assert(h:close(), out)
    assert.are.equal(prefix .. "/share/fluxloop/python\n", out)
  end)
end)
