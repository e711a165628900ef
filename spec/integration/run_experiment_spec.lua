-- The main path end to end: the real binary on a temporary project, every file it wrote read back.
local P = require("support.project")

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"

describe("fluxloop run experiment", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("writes the five files with every trace in order", function()
    dir = P.project({ iterations = 3, agent = [[
local M = {}
function M.run(input, ctx)
  ctx:span({ name = "think", type = "agent" }, function(q)
    ctx:observe{ type = "tool", name = "search", input = q, output = { hits = 2 } }
  end, input)
  ctx.metadata.seen = true
  return "echo: " .. input
end
return M
]] })
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(0, code, err)
    local exps = P.experiments(dir)
    assert.are.equal(1, #exps)
    assert.truthy(exps[1]:match("/spec_%d%d%d%d%d%d%d%d_%d%d%d%d%d%d$"), exps[1])
    for _, f in ipairs({ "summary.json", "trace_summary.jsonl", "traces.jsonl", "observations.jsonl", "config.yaml" }) do
      assert.truthy(P.read(exps[1] .. "/" .. f), f .. " missing")
    end

    local rows = P.read_jsonl(exps[1] .. "/trace_summary.jsonl")
    assert.are.equal(6, #rows)
    for k, row in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(k), row.trace_id)
      assert.are.equal((k - 1) % 3, row.iteration)
      assert.are.equal(true, row.success)
      assert.are.equal(require("fluxloop.json").null, row.error)
      assert.are.equal("number", type(row.duration_ms))
    end
    assert.are.equal("hello", rows[1].input)
    assert.are.equal("echo: hello", rows[1].output)
    assert.are.equal("novice_user", rows[1].persona)
    assert.are.equal("bye", rows[4].input)
    assert.are.equal(require("fluxloop.json").null, rows[4].persona)

    local traces = P.read_jsonl(exps[1] .. "/traces.jsonl")
    assert.are.equal(6, #traces)
    local t = traces[1]
    assert.truthy(t.started_at:match(ISO), t.started_at)
    assert.truthy(t.completed_at:match(ISO), t.completed_at)
    assert.are.same({ strategy = "rephrase", seen = true }, t.metadata)
    assert.are.equal(2, #t.observations)
    assert.are.equal("trace_001.1", t.observations[1].id)
    assert.are.equal("agent", t.observations[1].type)
    assert.are.equal("trace_001.1", t.observations[2].parent_id)
    assert.are.same({ hits = 2 }, t.observations[2].output)

    local obs = P.read_jsonl(exps[1] .. "/observations.jsonl")
    assert.are.equal(12, #obs)
    assert.are.equal("trace_001", obs[1].trace_id)
    assert.are.equal("trace_006.2", obs[12].id)
    for _, o in ipairs(obs) do
      assert.truthy(o.started_at:match(ISO))
      assert.are.equal("number", type(o.duration_ms))
    end

    local s = P.read_json(exps[1] .. "/summary.json")
    assert.are.equal(6, s.total_traces)
    assert.are.equal(6, s.successful)
    assert.are.equal(0, s.failed)
    assert.are.equal(6, s.planned_traces)
    assert.are.equal(3, s.iterations)
    assert.are.equal(2, s.inputs)
    assert.are.equal(false, s.interrupted)
    assert.are.equal(dir .. "/inputs/generated.yaml", s.inputs_file)
    assert.are.equal(dir .. "/configs/simulation.yaml", s.config_file)
    assert.truthy(s.started_at:match(ISO))
    assert.truthy(s.completed_at:match(ISO))
    for _, key in ipairs({ "min", "mean", "p50", "p90", "p95", "p99", "max", "stddev" }) do
      assert.are.equal("number", type(s.duration_ms[key]), key)
    end
    assert.is_true(s.duration_ms.min <= s.duration_ms.p50 and s.duration_ms.p50 <= s.duration_ms.max)

    local snap = require("fluxloop.yaml").decode(P.read(exps[1] .. "/config.yaml"))
    assert.are.equal("agents.agent:run", snap.runner.target)
  end)

  it("lets flags override the config and never reuses a folder", function()
    dir = P.project({ iterations = 5 })
    P.write(dir, "other.yaml", "- input: one\n")
    local code, _, err = P.run(dir, "run experiment --iterations 1 --name base --inputs other.yaml --output-dir out --quiet")
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local code2 = P.run(dir, "run experiment --iterations 1 --name base --inputs other.yaml --output-dir out --quiet")
    assert.are.equal(0, code2)
    local exps = P.experiments(dir, "out")
    assert.are.equal(2, #exps)
    assert.truthy(exps[1]:match("/base_%d+_%d+$") or exps[1]:match("/base_%d+_%d+_%d+$"))
    local rows = P.read_jsonl(exps[1] .. "/trace_summary.jsonl")
    assert.are.equal(1, #rows)
    assert.are.equal("one", rows[1].input)
    local snap = require("fluxloop.yaml").decode(P.read(exps[1] .. "/config.yaml"))
    assert.are.equal(1, snap.runner.iterations)
  end)

  it("gives the same files on a second run, apart from timing fields", function()
    dir = P.project({ iterations = 3, agent = [[
local M = {}
function M.run(input, ctx)
  ctx:observe{ name = "n", input = { a = 1, b = { 2, 3 }, c = "x" }, metadata = { z = 1, y = 2 } }
  ctx.metadata.k1, ctx.metadata.k2, ctx.metadata.k3 = 1, 2, 3
  return { answer = input, list = { 1, 2 }, nested = { q = true } }
end
return M
]] })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir a")))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir b")))
    local a, b = P.experiments(dir, "a")[1], P.experiments(dir, "b")[1]
    local function strip(path)
      local text = P.read(path)
      text = text:gsub('"duration_ms":[%d.e+-]+', ""):gsub('"%w+_at":"[^"]*"', "")
      return text
    end
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
      assert.are.equal(strip(a .. "/" .. f), strip(b .. "/" .. f), f)
    end
  end)

  it("stores a table output as JSON and calls Table.method targets as methods", function()
    dir = P.project({
      config = "runner:\n  target: agents.agent:Bot.reply\n  iterations: 1\n",
      agent = [[
local Bot = { prefix = ">> " }
function Bot:reply(input, ctx) return { text = self.prefix .. input, n = ctx.iteration } end
return { Bot = Bot }
]] })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local exps = P.experiments(dir)
    assert.truthy(exps[1]:match("/agent_%d+_%d+$"), "name falls back to the target module")
    local rows = P.read_jsonl(exps[1] .. "/trace_summary.jsonl")
    assert.are.same({ text = ">> hello", n = 0 }, rows[1].output)
  end)

  it("gives the agent persona_info, metadata and the whole entry", function()
    dir = P.project({
      config = [[
runner: {target: "agents.agent:run", iterations: 1}
personas:
  - name: novice_user
    description: new here
]],
      inputs = [[
inputs:
  - input: q1
    persona: novice_user
    channel: web
    metadata: {channel: app, tier: 2}
]],
      agent = [[
local json = require("fluxloop.json")
return { run = function(input, ctx)
  return { info = ctx.persona_info.description, meta = ctx.metadata, entry_keys = ctx.entry.channel,
    it = ctx.iteration, id = ctx.trace_id }
end }
]] })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")
    assert.are.same({ info = "new here", meta = { channel = "app", tier = 2 }, entry_keys = "web", it = 0,
      id = "trace_001" }, rows[1].output)
  end)

  it("gives the agent runner.env and masks its secrets in config.yaml and the traces", function()
    dir = P.project({
      config = "runner:\n  target: agents.agent:run\n  iterations: 1\n  env: {OPENAI_API_KEY: sk-live-123, MODE: fast}\n",
      agent = "return { run = function() local k = os.getenv('OPENAI_API_KEY') "
        .. "return #k .. '/' .. k:sub(1, 3) .. '/' .. os.getenv('MODE') .. '/' .. k end }",
    })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir)[1]
    -- The agent sees the real key; where it echoes it whole, the trace holds the mask.
    assert.are.equal("11/sk-/fast/***", P.read_jsonl(exp .. "/trace_summary.jsonl")[1].output)
    local snap = P.read(exp .. "/config.yaml")
    assert.is_nil(snap:find("sk-live-123", 1, true))
    assert.are.equal("***", require("fluxloop.yaml").decode(snap).runner.env.OPENAI_API_KEY)
    assert.are.equal("fast", require("fluxloop.yaml").decode(snap).runner.env.MODE)
  end)

  it("prints the three [INFO] lines, a few progress lines on a pipe, and a final line", function()
    dir = P.project({ iterations = 500 })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("[INFO] Starting experiment...", 1, true))
    assert.truthy(err:find("[INFO] Loaded 2 inputs", 1, true))
    assert.truthy(err:find("[INFO] Running 500 iterations per input (1000 total runs)", 1, true))
    assert.truthy(err:find("1000/1000 (100%)", 1, true))
    assert.truthy(err:find("Done: 1000 runs, 1000 succeeded, 0 failed", 1, true))
    local bars = select(2, err:gsub("%] %d+/1000", ""))
    assert.is_true(bars >= 1 and bars <= 12, "progress lines: " .. bars)
    assert.is_nil(err:find("\r", 1, true), "no carriage returns on a pipe")
  end)

  it("runs the repository's own example project", function()
    local root = assert(require("fluxloop.fs").realpath("."))
    dir = P.new()
    local code, _, err = P.run(root, "run experiment --iterations 1 --quiet --output-dir " .. P.quote(dir))
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir, ".")[1] .. "/traces.jsonl")
    assert.are.equal(4, #rows)
    assert.are.equal("tool", rows[1].observations[1].type)
  end)
end)
