-- Replay of recorded arguments, through the real binary.
local P = require("support.project")
local fs = require("fluxloop.fs")

local ROOT = assert(fs.realpath("."))

local RECORDING = table.concat({
  [[{"_version":"1","iteration":0,"target":"agents.agent:run","kwargs":{"data":{"content":"old 1","user":{"id":1}},"messages":[{"content":"m"}],"send_message_callback":"<builtin:collector.send>","token":"***"},"timestamp":"2026-11-25T10:00:00.000000Z"}]],
  [[{"_version":"1","iteration":1,"target":"agents.agent:run","kwargs":{"data":{"content":"old 2","user":{"id":2}},"messages":[],"send_message_callback":"<builtin:collector.send>","token":"***"},"timestamp":"2026-11-25T10:00:01.000000Z"}]],
}, "\n") .. "\n"

local AGENT = [[
return { run = function(args, ctx)
  assert(ctx.args == args)
  if args.data.user.id == 2 then
    args.send_message_callback({ to = args.data.user.id, text = "re: " .. args.data.content })
    return nil -- the sent message becomes the output
  end
  return { user = args.data.user.id, content = args.data.content, token = args.token }
end }
]]

local function project(opts)
  opts = opts or {}
  local dir = P.project({ iterations = opts.iterations or 2, agent = AGENT, inputs = "- input: hello\n- input: bye\n",
    config = ([[
runner: {target: "agents.agent:run", iterations: %d}
replay_args:
  enabled: true
  recording_file: recordings/args.jsonl
  override_param_path: %s
  select: %s
]]):format(opts.iterations or 2, opts.path or "data.content", opts.select or "cycle") })
  P.write(dir, "recordings/args.jsonl", opts.recording or RECORDING)
  return dir
end

describe("replay_args", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("calls the agent with the recorded args, the input in place, cycling through lines", function()
    dir = project()
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local traces = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(4, #traces)
    assert.are.same({ user = 1, content = "hello", token = "***" }, traces[1].output)
    assert.are.same({ to = 2, text = "re: hello" }, traces[2].output)
    assert.are.same({ 1, 2, 1, 2 }, { traces[1].replay_line, traces[2].replay_line, traces[3].replay_line, traces[4].replay_line })
    assert.are.equal("bye", traces[3].args.data.content)
    assert.are.equal("<builtin:collector.send>", traces[3].args.send_message_callback)
    assert.are.same({ send = { { to = 2, text = "re: hello" } } }, traces[2].callback_messages)
  end)

  it("writes the args the agent was called with, whatever it does to them afterwards", function()
    dir = project({ path = "messages.0.content", select = "first", iterations = 1 })
    P.write(dir, "agents/agent.lua", [[
return { run = function(args)
  local got = args.messages[1].content
  args.messages[1].content, args.added, args.data = "changed", true, nil
  return got
end }
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local traces = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal("hello", traces[1].output)
    assert.are.same({ data = { content = "old 1", user = { id = 1 } }, messages = { { content = "hello" } },
      send_message_callback = "<builtin:collector.send>", token = "***" }, traces[1].args)
    assert.are.equal("bye", traces[2].args.messages[1].content)
  end)

  it("a replay_args hook gets the whole run, and its failure fails that run only", function()
    dir = project({ iterations = 2 })
    P.write(dir, "hooks/h.lua", [[
return { replay_args = function(args, input, run)
  if run.k == 3 then error("no thread for this one") end
  args.data.content = ("%s/%d/%s"):format(input, run.iteration, type(run.metadata))
  run.metadata.replayed = true
end }]])
    local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks/h.lua")
    assert.are.equal(1, code, err)
    local traces = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal("hello/0/table", traces[1].output.content)
    assert.are.equal("hello/0/table", traces[1].args.data.content)
    assert.are.equal(true, traces[1].metadata.replayed)
    assert.are.equal("hook", traces[3].error.type)
    assert.truthy(traces[3].error.message:find("h.lua:2: no thread for this one", 1, true), traces[3].error.message)
    assert.truthy(traces[3].error.traceback:find("h.lua:2", 1, true))
    assert.are.equal(true, traces[4].success)
  end)

  it("uses the last line by default, as the Python tool does", function()
    dir = project({ select = "last" })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    for _, t in ipairs(P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")) do
      assert.are.equal(2, t.replay_line)
    end
  end)

  it("gives the same files with --parallel 4", function()
    dir = project({ iterations = 10 })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir a")))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir b --parallel 4")))
    local function strip(path)
      return (P.read(path):gsub('"duration_ms":[%d.e+-]+', ""):gsub('"%w+_at":"[^"]*"', ""))
    end
    assert.are.equal(strip(P.experiments(dir, "a")[1] .. "/traces.jsonl"), strip(P.experiments(dir, "b")[1] .. "/traces.jsonl"))
  end)

  it("a path missing from the recording fails those runs, naming path and line", function()
    dir = project({ path = "messages.0.content" })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(true, rows[1].success)
    assert.are.equal("replay", rows[2].error.type)
    assert.truthy(rows[2].error.message:find("args.jsonl:2", 1, true), rows[2].error.message)
    assert.are.equal(2, rows[2].replay_line)
    assert.truthy(rows[2].error.message:find("messages.0.content", 1, true), rows[2].error.message)
  end)

  it("a path through a string fails the run", function()
    dir = project({ path = "data.content.text" })
    assert.are.equal(1, (P.run(dir, "run experiment --quiet")))
    local row = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
    assert.are.equal("replay", row.error.type)
  end)

  local function expect_critical(recording, needle)
    dir = project({ recording = recording })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find(needle, 1, true), err)
    assert.are.equal(0, #P.experiments(dir))
  end

  it("bad recordings stop before anything runs", function()
    expect_critical("", "the recording is empty")
    P.remove(dir)
    expect_critical('{"_version":"1","kwargs":{}}\nnot json\n', "args.jsonl:2:1: not JSON")
    P.remove(dir)
    expect_critical('{"_version":"1","target":"x"}\n', "args.jsonl:1:")
    P.remove(dir)
    dir = project()
    os.remove(dir .. "/recordings/args.jsonl")
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code)
    assert.truthy(err:find("configs/simulation.yaml:%d+:%d+: replay_args%.recording_file: cannot open .*recordings/args%.jsonl"), err)
    assert.truthy(err:find("FLUXLOOP_RECORD_ARGS=1", 1, true), err)
    P.remove(dir)
    dir = project({ path = "data..content" })
    code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code)
    assert.truthy(err:find("configs/simulation.yaml:%d+:%d+: replay_args%.override_param_path 'data%.%.content': empty segment"), err)
  end)

  it("records from Lua in the same format, and that recording replays", function()
    dir = project()
    P.write(dir, "record.lua", [[
local fluxloop = require("fluxloop")
assert(fluxloop.record("agents.agent:run", { data = { content = "x", user = { id = 1 } }, password = "hunter2" }))
]])
    local rec = dir .. "/recordings/new.jsonl"
    local _, _, code = os.execute(("cd %s && FLUXLOOP_RECORD_ARGS=1 FLUXLOOP_RECORDING_FILE=%s %s record.lua")
      :format(P.quote(dir), P.quote(rec), P.quote(FLUXLOOP_BUILD .. "/fluxloop-lua")))
    assert.are.equal(0, code)
    local line = P.read_jsonl(rec)[1]
    assert.are.equal("***", line.kwargs.password)
    assert.truthy(line.timestamp:match("^%d+%-%d+%-%d+T%d+:%d+:%d+%.%d%d%d%d%d%dZ$"))
    P.write(dir, "configs/simulation.yaml", [[
runner: {target: "agents.agent:run", iterations: 1}
replay_args: {enabled: true, recording_file: recordings/new.jsonl, override_param_path: data.content}
]])
    local code2, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code2, err)
    assert.are.equal("hello", P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")[1].output.content)
  end)

  it("the example in examples/replay runs, with its hooks file rewriting args", function()
    dir = P.new()
    local code, _, err = P.run(ROOT .. "/examples/replay", "run experiment --quiet --hooks hooks/replay.lua --output-dir " .. P.quote(dir))
    assert.are.equal(0, code, err)
    local t = P.read_jsonl(P.experiments(dir, ".")[1] .. "/traces.jsonl")[1]
    assert.are.equal("th-replay-0001", t.args.data.thread_id)
    assert.is_table(t.output)
  end)
end)
