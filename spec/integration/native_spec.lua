-- Native targets end to end: the real binary loads fixture agents and the examples, and writes the five files.
local P = require("support.project")
local json = require("fluxloop.json")
local fs = require("fluxloop.fs")

local SO = FLUXLOOP_BUILD .. "/spec/native_agents.so"
local ROOT = assert(fs.getcwd()) -- spec/run.sh runs from the repository root

-- A project whose target is lib/native_agents.so:<symbol>, relative to the project folder.
local function native_project(symbol, opts)
  opts = opts or {}
  local dir = P.project({ inputs = opts.inputs, config = ([[
name: native
runner:
  target: "lib/native_agents.so:%s"
  iterations: %d
personas:
  - name: novice_user
    description: new here
]]):format(symbol, opts.iterations or 2) })
  os.execute(("mkdir -p %s/lib && cp %s %s/lib/"):format(P.quote(dir), P.quote(SO), P.quote(dir)))
  return dir
end

-- Runs from another folder, so relative library paths must start at the project folder.
local function run(dir, extra)
  return P.run("/tmp", "run experiment --no-progress --config " .. P.quote(dir .. "/configs/simulation.yaml")
    .. " " .. (extra or ""))
end

describe("native targets", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("runs a native agent and writes the five files, observations nested", function()
    dir = native_project("observer")
    local code, _, err = run(dir)
    assert.are.equal(0, code, err)
    local exps = P.experiments(dir)
    assert.are.equal(1, #exps)
    assert.truthy(exps[1]:match("/native_%d+_%d+$"), exps[1])

    local s = P.read_json(exps[1] .. "/summary.json")
    assert.are.equal(4, s.total_traces)
    assert.are.equal(4, s.successful)
    assert.are.equal(0, s.failed)
    assert.are.equal("lib/native_agents.so:observer", s.target)

    local rows = P.read_jsonl(exps[1] .. "/trace_summary.jsonl")
    assert.are.equal(4, #rows)
    for k, row in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(k), row.trace_id)
      assert.are.equal(true, row.success)
      assert.are.equal(1, row.output.outer) -- a JSON output is stored as a value
      assert.are.equal(-1, row.output.bad_json)
    end

    local traces = P.read_jsonl(exps[1] .. "/traces.jsonl")
    assert.are.equal(4, #traces)
    assert.are.equal(5, #traces[1].observations)
    assert.are.same({ strategy = "rephrase" }, traces[1].metadata)
    assert.are.equal("trace_001.1", traces[1].observations[2].parent_id)

    local obs = P.read_jsonl(exps[1] .. "/observations.jsonl")
    assert.are.equal(20, #obs)
    assert.are.equal("trace_004.5", obs[20].id)
    assert.are.equal("trace_004.3", obs[19].parent_id)
    assert.are.equal("outer failed", obs[1].error)

    local yaml = assert(P.read(exps[1] .. "/config.yaml"))
    assert.truthy(yaml:find("lib/native_agents.so:observer", 1, true), yaml)
  end)

  it("passes persona, iteration, trace id and metadata of each run", function()
    dir = native_project("request")
    local code, _, err = run(dir)
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.same({ input = "hello", input_len = 5, input_json = false, terminated = true, persona = "novice_user",
      iteration = 1, trace_id = "trace_002", metadata = { strategy = "rephrase" }, args = "none" }, rows[2].output)
    assert.are.equal(json.null, rows[3].output.persona)
    assert.are.equal("bye", rows[3].output.input)
  end)

  it("failed runs: an agent error, a typed error, no output, invalid JSON; the rest go on", function()
    local cases = {
      { "fails", "agent_error", "the model said no" },
      { "nothing", "no_output", "native agent returned no output: set res->output" },
      { "bad_json", "invalid_output", "not valid JSON" },
    }
    for _, c in ipairs(cases) do
      dir = native_project(c[1], { iterations = 1 })
      local code, _, err = run(dir, "--quiet")
      assert.are.equal(1, code, c[1] .. ": " .. err)
      local t = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
      assert.are.equal(false, t.success)
      assert.are.equal(json.null, t.output)
      assert.are.equal(c[2], t.error.type, c[1])
      assert.truthy(t.error.message:find(c[3], 1, true), t.error.message)
      assert.are.equal(json.null, t.error.traceback, c[1]) -- fluxloop's Lua frames would only mislead
      local row = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")[1]
      assert.truthy(row.error:find(c[3], 1, true), row.error)
      P.remove(dir)
    end
    dir = native_project("fails", { iterations = 1, inputs = "- input: typed\n" })
    local code, _, err = run(dir, "--quiet")
    assert.are.equal(1, code, err)
    local t = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
    assert.are.equal("rate_limit", t.error.type)
  end)

  it("output with invalid UTF-8 and an embedded NUL is stored whole, as valid JSON", function()
    dir = native_project("binary", { iterations = 1 })
    local code, _, err = run(dir, "--quiet")
    assert.are.equal(0, code, err)
    local rows, text = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")
    assert.is_true(utf8.len(text) ~= nil)
    assert.are.equal("caf\u{FFFD}\0nul\u{FFFD}", rows[1].output)
  end)

  it("a target that cannot be loaded is a critical error naming path, symbol and dlerror; nothing runs", function()
    local cases = {
      { "lib/missing.so:agent", "lib/missing.so: no such file (dlopen: ", "cannot open shared object file" },
      { "lib/fake.so:agent", "lib/fake.so is not a shared library (dlopen: ", "cc -shared -fPIC" },
      { "lib/native_agents.so:nope", "has no symbol 'nope' (dlsym: ", "undefined symbol: nope" },
      { "lib/native_agents.so:bad_abi", "'bad_abi' has agent ABI version 999", "rebuild the agent" },
      { "lib/native_agents.so:init_fails", "'init_fails' init failed: OPENAI_API_KEY is not set", "init_fails" },
    }
    for _, c in ipairs(cases) do
      dir = native_project("echo")
      P.write(dir, "lib/fake.so", "not a library\n")
      P.write(dir, "configs/simulation.yaml", ("runner:\n  target: \"%s\"\n"):format(c[1]))
      local code, _, err = run(dir)
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.truthy(err:find(("fluxloop: error: target '%s': cannot load the native agent: "):format(c[1]), 1, true), err)
      assert.truthy(err:find(c[2], 1, true), err)
      assert.truthy(err:find(c[3], 1, true), err)
      assert.are.equal(0, #P.experiments(dir))
      P.remove(dir)
    end
    dir = nil
  end)

  describe("--parallel", function()
    local function most_at_once(dir)
      local most = 0
      for _, row in ipairs(P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")) do
        assert.are.equal(true, row.success)
        most = math.max(most, row.output)
      end
      return most
    end
    local INPUTS = "- input: a\n- input: b\n- input: c\n- input: d\n"

    it("a thread-safe agent runs in every worker at once", function()
      dir = native_project("probe_parallel", { iterations = 10, inputs = INPUTS })
      local code, _, err = run(dir, "--quiet --parallel 4")
      assert.are.equal(0, code, err)
      assert.is_true(most_at_once(dir) > 1)
    end)

    it("an agent without FLUXLOOP_AGENT_THREAD_SAFE never runs on two threads at once", function()
      dir = native_project("probe_serial", { iterations = 10, inputs = INPUTS })
      local code, _, err = run(dir, "--quiet --parallel 4")
      assert.are.equal(0, code, err)
      assert.are.equal(1, most_at_once(dir))
    end)

    it("callbacks record into each worker's traces, in trace order", function()
      dir = native_project("observer", { iterations = 6 })
      local code, _, err = run(dir, "--quiet --parallel 3")
      assert.are.equal(0, code, err)
      local obs = P.read_jsonl(P.experiments(dir)[1] .. "/observations.jsonl")
      assert.are.equal(60, #obs)
      for i, o in ipairs(obs) do
        local k = (i - 1) // 5 + 1
        assert.are.equal(("trace_%03d.%d"):format(k, (i - 1) % 5 + 1), o.id)
      end
    end)
  end)

  describe("the examples", function()
    local out
    before_each(function() out = P.new() end)
    after_each(function() P.remove(out) end)

    it("configs/native.yaml runs the C echo agent from the repository root", function()
      local code, _, err = P.run(ROOT, "run experiment --quiet --config configs/native.yaml --output-dir " .. P.quote(out))
      assert.are.equal(0, code, err)
      local exp = P.experiments(out, ".")[1]
      local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
      assert.are.equal(12, #rows)
      assert.are.equal("echo: HOW DO I START?", rows[1].output)
      local obs = P.read_jsonl(exp .. "/observations.jsonl")
      assert.are.equal(36, #obs)
      assert.are.same({ "received", "shout", "uppercase" }, { obs[1].name, obs[2].name, obs[3].name })
      assert.are.equal(obs[2].id, obs[3].parent_id)

      local inputs = P.write(out, "fail.yaml", "- input: please fail\n- input: fine\n")
      code, _, err = P.run(ROOT, "run experiment --quiet --iterations 1 --config configs/native.yaml --inputs "
        .. P.quote(inputs) .. " --output-dir " .. P.quote(out .. "/f"))
      assert.are.equal(1, code, err)
      rows = P.read_jsonl(P.experiments(out, "f")[1] .. "/traces.jsonl")
      assert.are.equal("agent_error", rows[1].error.type)
      assert.are.equal("the input asked the echo agent to fail", rows[1].error.message)
      assert.are.equal("echo: FINE", rows[2].output)
    end)

    it("configs/ffi.yaml runs the Lua agent that wraps a C library through fluxloop.ffi", function()
      local code, _, err = P.run(ROOT, "run experiment --quiet --config configs/ffi.yaml --output-dir " .. P.quote(out))
      assert.are.equal(0, code, err)
      local exp = P.experiments(out, ".")[1]
      local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
      assert.are.equal(8, #rows)
      assert.are.same({ words = 4, sentences = 1, avg_word_length = 2.75, level = "easy" }, rows[1].output)
      local obs = P.read_jsonl(exp .. "/observations.jsonl")
      assert.are.equal("textstats", obs[1].name)
      assert.are.equal("readability", obs[2].name)
    end)
  end)
end)
