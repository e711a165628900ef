-- fluxloop.conversation and its parts: the multi_turn section's checks, the mock's and the
-- openai supervisor's decisions, and the loop itself with a recorder (the real binary's
-- runs are in spec/integration/conversation_spec.lua).
local P = require("support.project")
local json = require("fluxloop.json")
local conversation = require("fluxloop.conversation")
local mock = require("fluxloop.conversation.mock")
local openai = require("fluxloop.conversation.openai")
local recorder = require("fluxloop.recorder")
local context = require("fluxloop.context")

local HEAD = "runner:\n  target: \"agents.agent:run\"\n"

describe("fluxloop.conversation.config (multi_turn:)", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("reads the Python keys, with their defaults", function()
    local cfg = assert(P.load_config(dir, HEAD .. [[
multi_turn:
  enabled: true
  supervisor:
    metadata:
      scripted_questions: ["a", "b"]
      mock_closing: bye
]]))
    assert.is_true(cfg.multi_turn.enabled)
    assert.are.equal(8, cfg.multi_turn.max_turns)
    local sup = cfg.multi_turn.supervisor
    assert.are.equal("mock", sup.provider)
    assert.are.same({ "a", "b" }, sup.scripted_questions)
    assert.are.equal("bye", sup.mock_closing)
  end)

  it("a supervisor with a model and no provider is openai (the Python default); its keys are read", function()
    local cfg, warnings = P.load_config(dir, HEAD .. [[
multi_turn:
  enabled: false
  max_turns: 3
  auto_approve_tools: true
  supervisor:
    model: gpt-4o-mini
    base_url: http://127.0.0.1:9/v1
    temperature: 0.2
    system_prompt: You are a customer.
metadata:
  service_context: Bank support
]])
    assert.is_table(cfg, warnings)
    local sup = cfg.multi_turn.supervisor
    assert.are.same({ "openai", "gpt-4o-mini", "http://127.0.0.1:9/v1", 0.2, "Bank support", 60000 },
      { sup.provider, sup.model, sup.base_url, sup.temperature, sup.service_context, sup.timeout_ms })
    assert.are.equal(3, cfg.multi_turn.max_turns)
    assert.truthy(warnings[#warnings]:find("multi_turn.auto_approve_tools", 1, true), warnings[#warnings])
  end)

  local bad = {
    { "max_turns: 0\n", "multi_turn.max_turns: expected an integer from 1 to 100 (turns of a conversation), got 0" },
    { "max_turns: ten\n", "got 'ten'" },
    { "enabled: yes please\n", "multi_turn.enabled: expected true or false" },
    { "supervisor:\n    provider: opnai\n", "(did you mean 'openai'?)" },
    { "supervisor:\n    provider: anthropic\n", "anthropic is not a supervisor here" },
    { "supervisor:\n    provider: openai\n    model: m\n    base_url: ftp://x\n", "multi_turn.supervisor.base_url: invalid URL" },
    { "supervisor:\n    provider: openai\n    model: m\n    temperature: 3\n", "expected a number from 0 to 2" },
    { "supervisor:\n    provider: lua\n", "multi_turn.supervisor.target: missing" },
    { "supervisor:\n    provider: lua\n    target: nocolon\n", "expected \"module.path:function\"" },
    { "supervisor:\n    metadata:\n      mock_decision: stop\n", "expected continue or terminate, got 'stop'" },
    { "supervisor:\n    metadata:\n      scripted_questions: [a, {b: 1}]\n", "item 2 is a mapping" },
    { "enabled: true\n  supervisor:\n    model: m\n    api_key: ${FLUXLOOP_SPEC_UNSET_KEY}\n",
      "${FLUXLOOP_SPEC_UNSET_KEY} is not set" },
    { "supervisor: [1]\n", "multi_turn.supervisor: expected a mapping" },
  }
  for _, case in ipairs(bad) do
    it("refuses " .. case[1]:gsub("\n%s*", " "), function()
      local cfg, err = P.load_config(dir, HEAD .. "multi_turn:\n  " .. case[1])
      assert.is_nil(cfg)
      assert.truthy(err:find("^configs/simulation.yaml:%d+:%d+: multi_turn"), err)
      assert.truthy(err:find(case[2], 1, true), err)
    end)
  end

  it("an unknown key is a warning that names the closest", function()
    local cfg, warnings = P.load_config(dir, HEAD .. "multi_turn:\n  max_turn: 3\n")
    assert.is_table(cfg)
    assert.truthy(warnings[1]:find("did you mean 'multi_turn.max_turns'", 1, true), warnings[1])
  end)

  it("apply: the flags turn it on or off and set max_turns, in cfg and in the snapshot's doc", function()
    local mtc = require("fluxloop.conversation.config")
    local cfg = { doc = {} }
    assert.is_true(mtc.apply(cfg, { multi_turn = true, max_turns = 4 }))
    assert.are.same({ true, 4, "mock" }, { cfg.multi_turn.enabled, cfg.multi_turn.max_turns,
      cfg.multi_turn.supervisor.provider })
    assert.are.same({ enabled = true, max_turns = 4 }, cfg.doc.multi_turn)
    assert.is_true(mtc.apply(cfg, { multi_turn = false }))
    assert.is_false(cfg.multi_turn.enabled)
    local replaying = { doc = {}, replay_args = { enabled = true } }
    local ok, err = mtc.apply(replaying, { multi_turn = true })
    assert.is_nil(ok)
    assert.truthy(err:find("cannot replay", 1, true))
  end)
end)

describe("fluxloop.conversation.mock", function()
  local function ctx(entry) return { entry = entry or {} } end

  it("asks the script's questions in order, then ends with mock_reason and mock_closing", function()
    local decide = mock.new({ scripted_questions = { "a", "b" }, mock_closing = "bye" })
    local c, state = ctx(), {}
    assert.are.equal("a", decide({}, c, state).message)
    assert.are.equal("b", decide({}, c, state).message)
    local d = decide({}, c, state)
    assert.are.same({ "terminate", "script_complete", "bye" }, { d.decision, d.reason, d.closing })
  end)

  it("an input's scripted_questions win; a bad one fails the run as supervisor", function()
    local decide = mock.new({ scripted_questions = { "a" } })
    assert.are.equal("mine", decide({}, ctx({ metadata = { scripted_questions = { "mine" } } }), {}).message)
    local ok, err = pcall(decide, {}, ctx({ scripted_questions = "not a list" }), {})
    assert.is_false(ok)
    assert.are.equal("supervisor", err.type)
  end)

  it("without a script: mock_decision, continue by default", function()
    assert.are.equal(mock.DEFAULT_NEXT, mock.new({})({}, ctx(), {}).message)
    local d = mock.new({ mock_decision = "terminate" })({}, ctx(), {})
    assert.are.same({ "terminate", "supervisor_terminate" }, { d.decision, d.reason })
  end)
end)

describe("fluxloop.conversation.openai", function()
  it("takes the first JSON object of a reply, past prose and braces inside strings", function()
    assert.are.same({ decision = "terminate" }, openai.first_object('{"decision": "terminate"}'))
    assert.are.same({ a = "x}{" }, openai.first_object('Sure: {"a": "x}{"} and {"b": 2}'))
    assert.are.same({ b = 2 }, openai.first_object('{not json} then {"b": 2}'))
    assert.is_nil(openai.first_object("no json here {"))
  end)

  it("a decision needs continue with a message, or terminate", function()
    local d = openai.decision('{"decision": "continue", "next_user_message": "next?"}')
    assert.are.same({ "continue", "next?" }, { d.decision, d.message })
    d = openai.decision('x {"decision": "terminate", "termination_reason": "done", "closing_user_message": ""}')
    assert.are.same({ "terminate", "done" }, { d.decision, d.reason })
    assert.is_nil(d.closing)
    for _, text in ipairs({ "I would continue.", '{"decision": "continue"}', '{"decision": "stop"}' }) do
      local ok, err = pcall(openai.decision, text)
      assert.is_false(ok)
      assert.are.equal("supervisor", err.type)
    end
  end)

  it("the prompt holds the service context, the persona and the numbered transcript", function()
    local text = openai.prompt({ { role = "user", content = "hi" }, { role = "assistant", content = "hello" } },
      { metadata = { service_context = "Bank" }, persona_info = { description = "A busy parent" } }, {})
    assert.truthy(text:find("Service Context: Bank\nPersona: A busy parent\n", 1, true), text)
    assert.truthy(text:find("1. User: hi\n2. Assistant: hello\n", 1, true), text)
    assert.truthy(text:find(openai.ANSWER, 1, true))
  end)
end)

describe("fluxloop.conversation (the loop)", function()
  local dir, rec
  before_each(function()
    dir = P.new()
    rec = assert(recorder.open(dir))
  end)
  after_each(function()
    rec:close()
    P.remove(dir)
  end)

  local function run(call, agent, input)
    local ctx = setmetatable({ metadata = {}, entry = { input = input } }, context.class(rec))
    rec:begin("trace_001")
    local ok, out, why = call(0, agent, input, ctx)
    rec:stop()
    return ok, out, why, ctx
  end

  it("call_of is guard.call itself for single-turn runs", function()
    assert.are.equal(require("fluxloop.guard").call, conversation.call_of({ runner = {} }, rec))
    assert.are.equal(require("fluxloop.guard").call,
      conversation.call_of({ runner = {}, multi_turn = { enabled = false } }, rec))
  end)

  it("the agent reads the transcript so far; a table reply is JSON text in it", function()
    local call = conversation.caller({ max_turns = 2, supervisor = { provider = "mock", scripted_questions = { "b" } } },
      rec)
    local seen = {}
    local ok, out, _, ctx = run(call, function(input, c)
      seen[#seen + 1] = #c.conversation .. ":" .. c.conversation[#c.conversation].content
      return { said = input }
    end, "a")
    assert.is_true(ok)
    assert.are.same({ said = "b" }, out)
    assert.are.same({ "1:a", "3:b" }, seen)
    assert.are.equal("a", ctx.shared.conversation[1].content)
    assert.are.equal('{"said":"a"}', ctx.shared.conversation[2].content, "a table reply is JSON text")
    assert.are.equal("max_turns_reached", ctx.shared.termination_reason)
    assert.is_nil(ctx.conversation)
    local ok2, err = pcall(function() ctx.shared.conversation[2].metadata.x = 1 end)
    assert.is_false(ok2)
    assert.truthy(tostring(err):find("read-only", 1, true))
  end)

  it("a reply of nil ends the conversation; the run fails in fluxloop.run (no_output)", function()
    local call = conversation.caller({ max_turns = 3, supervisor = { provider = "mock" } }, rec)
    local ok, out, _, ctx = run(call, function() return nil end, "a")
    assert.is_true(ok)
    assert.is_nil(out)
    assert.are.same({ 0, "agent_error" }, { ctx.shared.turn_count, ctx.shared.termination_reason })
    assert.are.equal(1, #ctx.shared.conversation)
    assert.are.equal(json.array_mt, getmetatable(ctx.shared.conversation))
  end)
end)
