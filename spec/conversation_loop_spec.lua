-- fluxloop.conversation: how the loop calls a supervisor. The mock (BOUNDED: no user code,
-- a few table reads) is called without guard.call's time limit and count hook; it must still
-- fail only its run, with what guard.call would have said. (The loop's other behaviour is in
-- spec/conversation_spec.lua.)
local P = require("support.project")
local conversation = require("fluxloop.conversation")
local recorder = require("fluxloop.recorder")
local context = require("fluxloop.context")

describe("fluxloop.conversation: the supervisor's call", function()
  local dir, rec
  before_each(function()
    dir = P.new()
    rec = assert(recorder.open(dir))
  end)
  after_each(function()
    rec:close()
    P.remove(dir)
  end)

  local function run(call, entry)
    local ctx = setmetatable({ metadata = {}, entry = entry }, context.class(rec))
    rec:begin("trace_001")
    local ok, out, why = call(0, function(input) return input end, entry.input, ctx)
    rec:stop()
    return ok, out, why, ctx
  end

  it("the mock is bounded; the openai and lua supervisors are not", function()
    assert.is_true(require("fluxloop.conversation.mock").BOUNDED)
    assert.is_nil(require("fluxloop.conversation.openai").BOUNDED)
    assert.is_nil(require("fluxloop.conversation.lua").BOUNDED)
  end)

  it("an unexpected error in the mock fails the run as supervisor, with a traceback", function()
    local call = conversation.caller({ max_turns = 3, supervisor = { provider = "mock", scripted_questions = { "b" } } },
      rec)
    local boom = setmetatable({}, { __index = function() error("metadata exploded") end })
    local ok, err, why, ctx = run(call, { input = "a", metadata = boom })
    assert.is_false(ok)
    assert.is_nil(why)
    assert.are.equal("supervisor", err.type)
    assert.truthy(err.message:find("^supervisor: .*metadata exploded"), err.message)
    assert.are.equal("string", type(err.traceback))
    assert.truthy(err.traceback:find("stack traceback:", 1, true))
    assert.are.same({ "supervisor_error", 1 }, { ctx.shared.termination_reason, ctx.shared.turn_count })
  end)

  it("the mock's own failure keeps its message and no traceback", function()
    local call = conversation.caller({ max_turns = 3, supervisor = { provider = "mock" } }, rec)
    local ok, err = run(call, { input = "a", scripted_questions = "not a list" })
    assert.is_false(ok)
    assert.are.same({ type = "supervisor", message = "the input's scripted_questions must be a list of strings" },
      { type = err.type, message = err.message })
    assert.is_falsy(err.traceback)
  end)
end)
