-- Conversations (multi_turn): the real binary on real projects, with the mock, lua and
-- openai supervisors (the last against spec/support/mock_llm.py on 127.0.0.1), Lua, Python
-- and process agents, every execution mode, resume, and the bad input that stops a run.
local P = require("support.project")
local json = require("fluxloop.json")

-- An agent that says how much of the conversation it was given, and records one
-- observation per turn.
local COUNTING = [[
local M = {}
function M.run(input, ctx)
  local c = ctx.conversation
  if not c then return "one turn: " .. input end
  assert(c[#c].role == "user" and c[#c].content == input, "the transcript ends with this turn's message")
  ctx:observe{ name = "turn", input = ctx.turn_index }
  return ("reply %d to %s (%d before)"):format(ctx.turn_index, input, #c - 1)
end
return M
]]

local function config(multi_turn, extra)
  return ("name: conv\nrunner:\n  target: \"agents.agent:run\"\n  iterations: 1\n%s%s"):format(extra or "",
    multi_turn or "")
end

local MOCK_SCRIPT = [[
multi_turn:
  enabled: true
  max_turns: 8
  supervisor:
    provider: mock
    metadata:
      scripted_questions: ["And the fee?", "Can I do it online?"]
      mock_closing: "Thanks, bye."
]]

-- The error message of a failed row, for an assertion's message.
local function why(r) return type(r.error) == "table" and r.error.message or nil end

local function rows_of(dir, file)
  return P.read_jsonl(P.experiments(dir)[1] .. "/" .. (file or "traces.jsonl"))
end

local function roles(conv)
  local out = {}
  for i, e in ipairs(conv) do out[i] = ("%d:%s:%s"):format(e.turn_index, e.role, e.source) end
  return table.concat(out, " ")
end

-- What must not differ between two runs of the same experiment: everything but timings.
local function conversations(dir)
  local out = {}
  for i, r in ipairs(rows_of(dir, "trace_summary.jsonl")) do
    out[i] = json.encode({ r.trace_id, r.output, r.success, r.conversation, r.turn_count, r.termination_reason })
  end
  return out
end

describe("conversations (multi_turn)", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("mock script: one run is one conversation, with its transcript, turns and the closing turn", function()
    dir = P.project({ config = config(MOCK_SCRIPT), agent = COUNTING, inputs = "- input: How do I open an account?\n" })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    for _, file in ipairs({ "traces.jsonl", "trace_summary.jsonl" }) do
      local r = rows_of(dir, file)[1]
      assert.are.equal(3, r.turn_count, file)
      assert.are.equal("script_complete", r.termination_reason, file)
      assert.are.equal("reply 3 to Can I do it online? (4 before)", r.output, file)
      assert.are.equal("1:user:input 1:assistant:agent 2:user:supervisor 2:assistant:agent 3:user:supervisor "
        .. "3:assistant:agent 4:user:supervisor", roles(r.conversation), file)
      assert.are.equal("How do I open an account?", r.conversation[1].content)
      assert.are.equal("And the fee?", r.conversation[3].content)
      assert.are.equal("Thanks, bye.", r.conversation[7].content)
      assert.are.same({ closing = true }, r.conversation[7].metadata)
      assert.are.same({}, r.conversation[2].metadata)
    end
    local row = rows_of(dir)[1]
    assert.is_nil(row.supervisor_response) -- only a model's decision is kept (openai)
    -- observations keep their turn
    local obs = rows_of(dir, "observations.jsonl")
    assert.are.equal(3, #obs)
    for i, o in ipairs(obs) do
      assert.are.equal(i, o.turn_index)
      assert.are.equal(i, o.input)
    end
  end)

  it("an input's own scripted_questions replace the config's; no script follows mock_decision", function()
    dir = P.project({ config = config(MOCK_SCRIPT), agent = COUNTING, inputs = [[
- input: a
  scripted_questions: ["only this"]
- input: b
  metadata: {scripted_questions: []}
]] })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local rows = rows_of(dir, "trace_summary.jsonl")
    assert.are.equal(2, rows[1].turn_count)
    assert.are.equal("only this", rows[1].conversation[3].content)
    assert.are.equal(1, rows[2].turn_count)
    assert.are.equal("script_complete", rows[2].termination_reason)

    -- without a script: mock_decision continue (the default) runs to max_turns ...
    P.write(dir, "configs/simulation.yaml", config([[
multi_turn:
  enabled: true
  max_turns: 3
  supervisor:
    metadata: {mock_next_user_message: "More?"}
]]))
    os.execute("rm -rf " .. P.quote(dir .. "/experiments"))
    P.write(dir, "inputs/generated.yaml", "- input: a\n")
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local r = rows_of(dir, "trace_summary.jsonl")[1]
    assert.are.equal(3, r.turn_count)
    assert.are.equal("max_turns_reached", r.termination_reason)
    assert.are.equal("More?", r.conversation[5].content)
    assert.are.equal(6, #r.conversation)

    -- ... and terminate ends after the first reply, with mock_reason and mock_closing
    P.write(dir, "configs/simulation.yaml", config([[
multi_turn:
  enabled: true
  supervisor:
    provider: mock
    metadata: {mock_decision: terminate, mock_reason: satisfied, mock_closing: "Bye."}
]]))
    os.execute("rm -rf " .. P.quote(dir .. "/experiments"))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    r = rows_of(dir, "trace_summary.jsonl")[1]
    assert.are.equal(1, r.turn_count)
    assert.are.equal("satisfied", r.termination_reason)
    assert.are.equal("1:user:input 1:assistant:agent 2:user:supervisor", roles(r.conversation))
  end)

  it("the flags: --no-multi-turn runs one turn, --multi-turn and --max-turns without the section", function()
    dir = P.project({ config = config(MOCK_SCRIPT), agent = COUNTING, inputs = "- input: a\n" })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --no-multi-turn")))
    local r = rows_of(dir, "trace_summary.jsonl")[1]
    assert.are.equal("one turn: a", r.output)
    assert.is_nil(r.conversation)
    assert.is_nil(r.turn_count)
    P.remove(dir)
    dir = P.project({ config = config(nil), agent = COUNTING, inputs = "- input: a\n" })
    local code, _, err = P.run(dir, "run experiment --quiet --multi-turn --max-turns 2")
    assert.are.equal(0, code, err)
    r = rows_of(dir, "trace_summary.jsonl")[1]
    assert.are.equal(2, r.turn_count)
    assert.are.equal("max_turns_reached", r.termination_reason)
    local snapshot = P.read(P.experiments(dir)[1] .. "/config.yaml")
    assert.truthy(snapshot:find("multi_turn:", 1, true), snapshot)
    assert.truthy(snapshot:find("max_turns: 2", 1, true), snapshot)
  end)

  it("a grader sees the whole conversation (ctx.conversation of a lua grader)", function()
    dir = P.project({ config = config(MOCK_SCRIPT .. [[
evaluation:
  graders:
    - {name: whole, type: lua, target: "graders.g:check"}
]]), agent = COUNTING, inputs = "- input: a\n" })
    P.write(dir, "graders/g.lua", [[
return { check = function(output, ctx)
  return #ctx.conversation == 7 and ctx.conversation[7].metadata.closing == true, "entries: " .. #ctx.conversation
end }
]])
    P.run(dir, "run experiment --quiet")
    local score = rows_of(dir, "scores.jsonl")[1]
    assert.is_true(score.pass, tostring(score.reason) .. " " .. tostring(score.error))
  end)

  it("parse writes the conversation; report shows transcripts and the turns and reasons", function()
    dir = P.project({ config = config(MOCK_SCRIPT), inputs = "- input: ok\n- input: boom\n", agent = [[
return { run = function(input, ctx)
  if ctx.conversation[1].content == "boom" and ctx.turn_index == 2 then error("broken <now>") end
  return "r" .. ctx.turn_index
end }
]] })
    assert.are.equal(1, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    local code, _, err = P.run(dir, "parse experiment " .. P.quote(exp) .. " --quiet")
    assert.are.equal(0, code, err)
    local md = P.read(exp .. "/per_trace_analysis/00_trace_001.md")
    assert.truthy(md:find("## Conversation\n\n- **User**: ok _(source=input)_\n- **Assistant**: r1 _(source=agent)_\n"
      .. "- **User**: And the fee? _(source=supervisor)_\n", 1, true), md)
    assert.truthy(md:find("- **User**: Thanks, bye. _(source=supervisor; closing=true)_\n\n_3 turn(s); ended: "
      .. "script_complete_", 1, true), md)
    local rec = P.read_jsonl(exp .. "/per_trace_analysis/per_trace.jsonl")
    assert.are.equal(7, #rec[1].conversation)
    assert.are.equal(3, rec[1].turn_count)
    assert.are.equal("agent_error", rec[2].termination_reason)
    code, _, err = P.run(dir, "report " .. P.quote(exp) .. " --quiet")
    assert.are.equal(0, code, err)
    local html = P.read(exp .. "/report.html")
    assert.truthy(html:find('data-figure="conversations">2 conversations', 1, true))
    assert.truthy(html:find('<tr data-turns="3" data-count="1">', 1, true))
    assert.truthy(html:find('<tr data-turns="1" data-count="1">', 1, true))
    assert.truthy(html:find('<tr data-reason="agent_error" data-count="1">', 1, true))
    -- the failed conversation's transcript, escaped, up to the turn that failed
    assert.truthy(html:find('<div class="transcript" data-turns="1" data-ended="agent_error">', 1, true), html)
    assert.truthy(html:find('(turn 2, supervisor)</span>: And the fee?</li></ol>', 1, true))
    assert.falsy(html:find("broken <now>", 1, true))
  end)

  it("the progress line shows the turn", function()
    dir = P.project({ config = config(MOCK_SCRIPT), agent = COUNTING, inputs = "- input: a\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("1/1 (100%) - ETA: 0s - turn 3/8", 1, true), err)
  end)

  it("lua supervisor: next(conversation, ctx) continues and terminates; one that raises or answers nonsense "
    .. "fails its run only, as supervisor", function()
    dir = P.project({ config = config([[
multi_turn:
  enabled: true
  max_turns: 10
  supervisor:
    provider: lua
    target: "supervisors.mine:next"
]]), agent = COUNTING, inputs = "- input: ok\n- input: raise\n- input: nonsense\n- input: wordy\n" })
    P.write(dir, "supervisors/mine.lua", [[
local M = {}
function M.next(conversation, ctx, state)
  local first = conversation[1].content
  if first == "raise" then error("the supervisor broke") end
  if first == "nonsense" then return { decision = "perhaps" } end
  local last = conversation[#conversation]
  assert(last.role == "assistant" and ctx.max_turns == 10)
  state.n = (state.n or 0) + 1
  if last.turn_index < 3 then return { decision = "continue", message = "q" .. state.n } end
  if first == "wordy" then return { decision = "terminate", reason = "enough", closing = "bye" } end
  return { decision = "terminate" }
end
return M
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = rows_of(dir)
    assert.is_true(rows[1].success)
    assert.are.equal(3, rows[1].turn_count)
    assert.are.equal("supervisor_terminate", rows[1].termination_reason)
    assert.are.equal("q2", rows[1].conversation[5].content)
    assert.are.equal(6, #rows[1].conversation)
    assert.are.equal("supervisor", rows[2].error.type)
    assert.truthy(rows[2].error.message:find("the supervisor broke", 1, true), rows[2].error.message)
    assert.are.equal(1, rows[2].turn_count)
    assert.are.equal("supervisor_error", rows[2].termination_reason)
    assert.are.equal("supervisor", rows[3].error.type)
    assert.truthy(rows[3].error.message:find("decision 'perhaps'", 1, true), rows[3].error.message)
    assert.are.equal("enough", rows[4].termination_reason)
    assert.are.same({ closing = true }, rows[4].conversation[7].metadata)
  end)

  it("an agent error in turn k fails the run and keeps the transcript up to it; --timeout is per call", function()
    dir = P.project({ config = config(MOCK_SCRIPT), inputs = "- input: boom\n- input: slow\n- input: hang\n", agent = [[
local clock = require("fluxloop.clock")
return { run = function(input, ctx)
  if ctx.turn_index == 2 and ctx.conversation[1].content == "boom" then error("broken in turn 2") end
  if ctx.conversation[1].content == "slow" then clock.sleep(250) end
  if ctx.conversation[1].content == "hang" and ctx.turn_index == 3 then clock.sleep(5000) end
  return "r" .. ctx.turn_index
end }
]] })
    local code, _, err = P.run(dir, "run experiment --quiet --timeout 600")
    assert.are.equal(1, code, err)
    local rows = rows_of(dir)
    assert.is_false(rows[1].success)
    assert.truthy(rows[1].error.message:find("broken in turn 2", 1, true))
    assert.are.equal(1, rows[1].turn_count)
    assert.are.equal("agent_error", rows[1].termination_reason)
    assert.are.equal("1:user:input 1:assistant:agent 2:user:supervisor", roles(rows[1].conversation))
    -- three turns of 250 ms each pass a 600 ms limit on each call
    assert.is_true(rows[2].success, why(rows[2]))
    assert.are.equal(3, rows[2].turn_count)
    assert.is_true(rows[2].duration_ms > 600)
    assert.are.equal("timeout", rows[3].error.type)
    assert.are.equal(2, rows[3].turn_count)
  end)

  for _, mode in ipairs({ "--parallel 3", "--isolate --parallel 2", "--isolate" }) do
    it(mode .. " gives the same conversations as a serial run", function()
      local inputs = {}
      for i = 1, 6 do inputs[#inputs + 1] = ("- input: q%d\n%s"):format(i, i % 2 == 0 and "  scripted_questions: [x]\n" or "") end
      dir = P.project({ config = config(MOCK_SCRIPT):gsub("iterations: 1", "iterations: 2"), agent = COUNTING,
        inputs = table.concat(inputs) })
      assert.are.equal(0, (P.run(dir, "run experiment --quiet --name serial")))
      local serial = conversations(dir)
      os.execute("rm -rf " .. P.quote(dir .. "/experiments"))
      local code, _, err = P.run(dir, "run experiment --quiet " .. mode)
      assert.are.equal(0, code, err)
      assert.are.equal(12, #serial)
      assert.are.same(serial, conversations(dir))
      local obs = rows_of(dir, "observations.jsonl")
      assert.are.equal(3, obs[3].turn_index)
    end)
  end

  it("resume in the middle of an experiment of conversations runs the missing ones whole", function()
    local inputs = {}
    for i = 1, 4 do inputs[#inputs + 1] = ("- input: q%d\n"):format(i) end
    dir = P.project({ config = config(MOCK_SCRIPT):gsub("iterations: 1", "iterations: 10"), inputs = table.concat(inputs),
      agent = [[
local clock = require("fluxloop.clock")
return { run = function(input, ctx) clock.sleep(20) return ctx.turn_index .. ":" .. input end }
]] })
    P.run_signalled(dir, "run experiment --quiet", { 0.8 }, "KILL")
    local exp = P.experiments(dir)[1]
    local before = #P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.is_true(before > 0 and before < 40, before)
    local code, _, err = P.run(dir, "run experiment --quiet --resume " .. P.quote(exp))
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(exp .. "/trace_summary.jsonl")
    assert.are.equal(40, #rows)
    for k, r in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(k), r.trace_id)
      assert.are.equal(3, r.turn_count)
      assert.are.equal("script_complete", r.termination_reason)
      assert.are.equal("3:Can I do it online?", r.output)
    end
    assert.are.equal(40 - before, P.read_json(exp .. "/summary.json").resumed_runs)
  end)
end)

describe("conversations with Python and process agents", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a Python agent gets messages, conversation_state and history by name", function()
    dir = P.project({ config = config(MOCK_SCRIPT):gsub("agents.agent:run", "agents.pyagent:run"),
      inputs = "- input: hi\n" })
    os.remove(dir .. "/agents/agent.lua")
    P.write(dir, "agents/pyagent.py", [[
def run(message, messages, conversation_state, iteration=None):
    assert conversation_state["turns"] == messages
    assert messages[-1] == {"role": "user", "content": message}
    return "%d: %s" % (len(messages), " | ".join(m["role"][0] + "=" + m["content"] for m in messages))
]])
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local r = rows_of(dir)[1]
    assert.is_true(r.success, why(r))
    assert.are.equal(3, r.turn_count)
    assert.are.equal("5: u=hi | a=1: u=hi | u=And the fee? | a=3: u=hi | a=1: u=hi | u=And the fee? | u=Can I do it online?",
      r.output)
  end)

  it("a process agent (runner.command) gets conversation in its request", function()
    dir = P.project({ config = ([[
name: conv
runner:
  command: ["python3", "worker.py"]
  target: "w:run"
  iterations: 1
]]) .. MOCK_SCRIPT, inputs = "- input: hi\n" })
    P.write(dir, "worker.py", [[
import json, sys
for line in sys.stdin:
    req = json.loads(line)
    if req["type"] == "hello":
        print(json.dumps({"type": "hello", "protocol": 1}), flush=True)
    elif req["type"] == "run":
        conv = req["conversation"]
        out = "%d turns seen, last %s" % (len(conv), conv[-1]["content"])
        print(json.dumps({"type": "result", "id": req["id"], "output": out}), flush=True)
]])
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 2")
    assert.are.equal(0, code, err)
    local r = rows_of(dir)[1]
    assert.are.equal("5 turns seen, last Can I do it online?", r.output)
    assert.are.equal("1 turns seen, last hi", r.conversation[2].content)
  end)
end)

describe("conversations with the openai supervisor (local mock server)", function()
  local mock = require("support.mock_server")
  local server, dir
  setup(function() server = mock.start("--api-key sk-conv-0123456789abcdef") end)
  teardown(function() if server then server:stop() end end)
  after_each(function() P.remove(dir) end)

  local function openai_project(model, extra)
    return P.project({ agent = COUNTING, inputs = "- input: hi\n- input: there\n", config = config(([[
multi_turn:
  enabled: true
  max_turns: 6
  supervisor:
    provider: openai
    model: %s
    base_url: %s
    api_key: ${CONV_KEY}
    system_prompt: "You play the customer."
%s]]):format(model, server:url("/v1"), extra or ""), "personas:\n  - name: p\n    description: A busy parent\n") })
  end
  local ENV = "CONV_KEY=sk-conv-0123456789abcdef"

  it("continues and terminates as the model decides (the first JSON object of its reply); the key is masked", function()
    dir = openai_project("supervisor-2")
    local code, _, err = P.run(dir, "run experiment --quiet", ENV)
    assert.are.equal(0, code, err)
    local rows = rows_of(dir)
    for _, r in ipairs(rows) do
      assert.is_true(r.success, why(r))
      assert.are.equal(2, r.turn_count)
      assert.are.equal("goal_met", r.termination_reason)
      assert.are.equal("follow-up 1", r.conversation[3].content)
      assert.are.equal("Thanks!", r.conversation[5].content)
      assert.are.same({ closing = true }, r.conversation[5].metadata)
      assert.are.equal("terminate", r.supervisor_response.decision)
    end
    -- each supervisor request is a generation observation of its turn
    local gens = {}
    for _, o in ipairs(rows[1].observations) do
      if o.type == "generation" then gens[#gens + 1] = o.turn_index end
    end
    assert.are.same({ 1, 2 }, gens)
    local exp = P.experiments(dir)[1]
    for _, f in ipairs({ "traces.jsonl", "trace_summary.jsonl", "observations.jsonl", "config.yaml" }) do
      assert.falsy(P.read(exp .. "/" .. f):find("0123456789abcdef", 1, true), f)
    end
    local last = server:stats().last_supervisor
    assert.are.equal("system", last[1].role)
    assert.are.equal("You play the customer.", last[1].content)
    assert.truthy(last[2].content:find("1. User: there\n2. Assistant: reply 1 to there (0 before)", 1, true),
      last[2].content)
    assert.truthy(last[2].content:find('"decision"', 1, true))
  end)

  it("a 429 is retried; one that lasts, a reply with no JSON, or no decision fails that run as supervisor", function()
    dir = openai_project("supervisor-flaky429")
    local code, _, err = P.run(dir, "run experiment --quiet", ENV)
    assert.are.equal(0, code, err)
    assert.are.equal("goal_met", rows_of(dir)[1].termination_reason)
    local retried = 0
    for _, o in ipairs(rows_of(dir)[1].observations) do
      if o.type == "generation" and o.metadata and (o.metadata.attempts or 1) > 1 then retried = retried + 1 end
    end
    assert.is_true(retried >= 1)
    for model, says in pairs({ ["supervisor-429"] = "HTTP 429", ["supervisor-garbage"] = "holds no JSON object",
        ["supervisor-nodecision"] = "has no decision" }) do
      P.remove(dir)
      dir = openai_project(model)
      code, _, err = P.run(dir, "run experiment --quiet", ENV)
      assert.are.equal(1, code, err)
      for _, r in ipairs(rows_of(dir)) do
        assert.are.equal("supervisor", r.error.type, model)
        assert.truthy(r.error.message:find(says, 1, true), r.error.message)
        assert.are.equal(1, r.turn_count)
        assert.are.equal("supervisor_error", r.termination_reason)
      end
    end
  end)
end)

describe("bad multi_turn input stops the experiment before any run (exit 2, file:line)", function()
  local dir
  after_each(function() P.remove(dir) end)

  local cases = {
    { "max_turns: 0", "multi_turn:\n  enabled: true\n  max_turns: 0\n",
      "configs/simulation.yaml:7:14: multi_turn.max_turns: expected an integer from 1 to 100" },
    { "max_turns: 101", "multi_turn:\n  enabled: true\n  max_turns: 101\n",
      "configs/simulation.yaml:7:14: multi_turn.max_turns: expected an integer from 1 to 100" },
    { "an unknown provider", "multi_turn:\n  enabled: true\n  supervisor:\n    provider: mokc\n",
      "configs/simulation.yaml:8:15: multi_turn.supervisor.provider: expected mock or openai or lua, got 'mokc' "
      .. "(did you mean 'mock'?)" },
    { "a lua target that cannot be found", "multi_turn:\n  enabled: true\n  supervisor:\n    provider: lua\n"
      .. "    target: \"supervisors.nothere:next\"\n",
      "configs/simulation.yaml:9:13: multi_turn.supervisor.target: Lua module 'supervisors.nothere' not found" },
    { "a lua target without the function", "multi_turn:\n  enabled: true\n  supervisor:\n    provider: lua\n"
      .. "    target: \"agents.agent:next\"\n", "multi_turn.supervisor.target: ", "has no function 'next'" },
    { "openai without a model", "multi_turn:\n  enabled: true\n  supervisor:\n    provider: openai\n",
      "configs/simulation.yaml:7:3: multi_turn.supervisor.model: missing: the openai supervisor needs a model" },
    { "scripted_questions not a list", "multi_turn:\n  supervisor:\n    metadata:\n      scripted_questions: hi\n",
      "configs/simulation.yaml:8:27: multi_turn.supervisor.metadata.scripted_questions: expected a list of strings" },
    { "replay with a conversation", "multi_turn:\n  enabled: true\nreplay_args:\n  enabled: true\n"
      .. "  recording_file: rec.jsonl\n", "multi_turn.enabled: a conversation cannot replay recorded arguments" },
  }
  for _, case in ipairs(cases) do
    it(case[1], function()
      dir = P.project({ config = config(case[2]) })
      local code, out, err = P.run(dir, "run experiment --quiet")
      assert.are.equal(2, code, err)
      assert.are.equal("", out)
      for i = 3, #case do assert.truthy(err:find(case[i], 1, true), err) end
      assert.are.equal(0, #P.experiments(dir))
    end)
  end

  it("--max-turns out of range, and --multi-turn with replay", function()
    dir = P.project({ config = config(nil) })
    local code, _, err = P.run(dir, "run experiment --max-turns 0")
    assert.are.equal(2, code)
    assert.truthy(err:find("--max-turns: expected an integer from 1 to 100, got '0'", 1, true), err)
    code, _, err = P.run(dir, "run experiment --max-turns 101")
    assert.are.equal(2, code)
    assert.are.equal(0, #P.experiments(dir))
  end)
end)
