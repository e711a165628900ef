-- replay_spec.lua - fluxloop.replay: loading recordings, choosing lines, overriding the input, captures.
local json = require("fluxloop.json")
local replay = require("fluxloop.replay")
local P = require("support.project")

local dir
local function recording(text)
  return P.write(dir, "recordings/args.jsonl", text)
end

local function line(kwargs, iteration)
  return json.encode({ _version = "1", iteration = iteration or 0, target = "agents.a:run",
    kwargs = kwargs, timestamp = "2026-11-25T16:56:05.130355Z" }) .. "\n"
end

local CHAT = line({
  data = { content = "recorded text", user = { id = 42 }, api_key = "***" },
  messages = json.array({ { role = "user", content = "first" }, { role = "assistant", content = "second" } }),
  channel = "general",
  count = 3,
  send_message_callback = "<builtin:collector.send>",
  send_error_callback = "<builtin:collector.error>",
  on_done = "<callable:done>",
  nested = { reply = "<builtin:collector.send>" },
  when = "<repr:<object object at 0x7f86>>",
  auth_token = "***",
})

local function load(text, opts)
  opts = opts or {}
  local file = text and recording(text) or (dir .. "/recordings/none.jsonl")
  return replay.load({ enabled = true, recording_file = file,
    override_param_path = opts.path == nil and "data.content" or opts.path, select = opts.select })
end

local function must_load(text, opts)
  local r, err = load(text, opts)
  assert.is_nil(err)
  return r
end

before_each(function() dir = P.new() end)
after_each(function() P.remove(dir) end)

describe("replay.load: bad recordings", function()
  it("a missing file names the file", function()
    local r, err = load(nil)
    assert.is_nil(r)
    assert.truthy(err:find(dir .. "/recordings/none.jsonl", 1, true), err)
    assert.truthy(err:find("replay_args.recording_file", 1, true), err)
  end)

  it("an empty file, or one of blank lines, is an error", function()
    for _, text in ipairs({ "", "\n\n  \n" }) do
      local r, err = load(text)
      assert.is_nil(r)
      assert.truthy(err:find("recording is empty", 1, true), err)
      assert.truthy(err:find(dir .. "/recordings/args.jsonl", 1, true), err)
    end
  end)

  it("a line that is not JSON names the file, line and column", function()
    local r, err = load(CHAT .. "\n" .. '{"kwargs": {"a": 1},\n')
    assert.is_nil(r)
    assert.truthy(err:find("^" .. dir:gsub("%p", "%%%0") .. "/recordings/args%.jsonl:3:%d+: not JSON: "), err)
  end)

  it("a line without kwargs", function()
    local r, err = load(CHAT .. '{"_version": "1", "target": "x"}\n')
    assert.is_nil(r)
    assert.truthy(err:find("args.jsonl:2: no \"kwargs\"", 1, true), err)
  end)

  it("kwargs that is not a mapping", function()
    for _, bad in ipairs({ '[1, 2]', '[]', '"text"', '3', 'null' }) do
      local r, err = load('{"kwargs": ' .. bad .. '}\n')
      assert.is_nil(r)
      assert.truthy(err:find("args.jsonl:1: \"kwargs\" is ", 1, true), err)
      assert.truthy(err:find("expected a mapping", 1, true), err)
    end
  end)

  it("a line that is JSON but not an object", function()
    local r, err = load('[{"kwargs": {}}]\n')
    assert.is_nil(r)
    assert.truthy(err:find("args.jsonl:1: expected a JSON object", 1, true), err)
  end)

  it("an override path with an empty segment", function()
    local r, err = load(CHAT, { path = "data..content" })
    assert.is_nil(r)
    assert.truthy(err:find("override_param_path 'data..content': empty segment", 1, true), err)
  end)

  it("misuse raises", function()
    assert.has_error(function() replay.load(nil) end)
    assert.has_error(function() replay.load({ recording_file = 3 }) end)
    assert.has_error(function() replay.load({ recording_file = "x", select = "random" }) end)
  end)

  it("blank lines and CRLF endings are fine; lines are counted as in the file", function()
    local r = must_load("\n" .. CHAT:gsub("\n", "\r\n") .. "\n  \n" .. line({ data = { content = "b" } }))
    assert.are.equal(2, r.count)
    assert.are.equal(2, r.entries[1].line)
    assert.are.equal(5, r:select_line(1))
  end)
end)

describe("replayer:select_line", function()
  local three
  before_each(function()
    three = line({ data = { content = "1" } }) .. line({ data = { content = "2" } }) .. line({ data = { content = "3" } })
  end)

  it("uses the last line by default, as the Python tool", function()
    local r = must_load(three)
    assert.are.equal(3, r.count)
    for k = 1, 5 do assert.are.equal(3, r:select_line(k)) end
  end)

  it("first", function()
    local r = must_load(three, { select = "first" })
    for k = 1, 5 do assert.are.equal(1, r:select_line(k)) end
  end)

  it("cycle: trace k uses line ((k-1) mod n) + 1", function()
    local r = must_load(three, { select = "cycle" })
    local got = {}
    for k = 1, 7 do got[k] = r:select_line(k) end
    assert.are.same({ 1, 2, 3, 1, 2, 3, 1 }, got)
  end)

  it("args_for follows the selection and reports the line", function()
    local r = must_load(three, { select = "cycle", path = "" })
    for k = 1, 4 do
      local args, info = r:args_for(k, "in")
      assert.are.equal(tostring((k - 1) % 3 + 1), args.data.content)
      assert.are.equal((k - 1) % 3 + 1, info.line)
    end
  end)

  it("a trace number that is not an integer >= 1 raises", function()
    local r = must_load(three)
    assert.has_error(function() r:select_line(0) end)
    assert.has_error(function() r:select_line(1.5) end)
    assert.has_error(function() r:args_for(nil, "x") end)
  end)
end)

describe("replayer:args_for: the override path", function()
  it("puts the input at a dotted path and keeps the rest", function()
    local args, info = must_load(CHAT):args_for(1, "new text")
    assert.are.equal("new text", args.data.content)
    assert.are.equal(42, args.data.user.id)
    assert.are.equal("general", args.channel)
    assert.are.equal("***", args.data.api_key)
    assert.are.equal("***", args.auth_token)
    assert.are.equal("<repr:<object object at 0x7f86>>", args.when)
    assert.are.equal(1, info.line)
  end)

  it("integer segments index lists from 0", function()
    local args = must_load(CHAT, { path = "messages.0.content" }):args_for(1, "hi")
    assert.are.equal("hi", args.messages[1].content)
    assert.are.equal("second", args.messages[2].content)
    args = must_load(CHAT, { path = "messages.1" }):args_for(1, "whole")
    assert.are.equal("whole", args.messages[2])
  end)

  it("an empty path uses the recording as is", function()
    local args = must_load(CHAT, { path = "" }):args_for(1, "ignored")
    assert.are.equal("recorded text", args.data.content)
  end)

  it("a table input is copied in, not shared", function()
    local input = { text = "t" }
    local args = must_load(CHAT):args_for(1, input)
    assert.are.same(input, args.data.content)
    assert.are_not.equal(input, args.data.content)
  end)

  local function fails(path, text, ...)
    local args, err = must_load(text or CHAT, { path = path }):args_for(1, "x")
    assert.is_nil(args)
    assert.truthy(err:find(dir .. "/recordings/args.jsonl:1: override_param_path '" .. path .. "': ", 1, true), err)
    for _, want in ipairs({ ... }) do assert.truthy(err:find(want, 1, true), err) end
    return err
  end

  it("a missing key names the path, the line, the segment and what is there", function()
    fails("data.contnet", nil, "segment 'contnet'", "data has no key 'contnet'", "it has: api_key, content, user")
    fails("payload.content", nil, "segment 'payload'", "kwargs has no key 'payload'")
  end)

  it("a missing key on the last line of several names that line", function()
    local r = must_load(line({ data = { content = "a" } }) .. line({ other = 1 }))
    local args, err = r:args_for(1, "x")
    assert.is_nil(args)
    assert.truthy(err:find("args.jsonl:2: override_param_path 'data.content': segment 'data'", 1, true), err)
  end)

  it("a path that runs through a string or a number", function()
    fails("data.content.text", nil, "segment 'text'", "data.content is a string")
    fails("count.x", nil, "segment 'x'", "count is a number")
    fails("channel.0", nil, "segment '0'", "channel is a string")
  end)

  it("a path past a list's end", function()
    fails("messages.2.content", nil, "segment '2'", "past the end of messages (a list of 2, indexes 0..1)")
    fails("data.list.0", line({ data = { list = json.array({}) } }), "past the end of data.list (a list of 0")
  end)

  it("a word where a list needs an index", function()
    fails("messages.first.content", nil, "segment 'first'", "messages is a list; index it with a 0-based number")
    fails("messages.-1", nil, "segment '-1'")
  end)

  it("a path through null", function()
    fails("data.user.name", line({ data = { user = json.null } }), "data.user is null")
  end)
end)

describe("replayer:args_for: isolation", function()
  it("each run gets a deep copy; changing it never changes the recording", function()
    local r = must_load(CHAT)
    local a1 = r:args_for(1, "one")
    a1.data.user.id = 0
    a1.messages[1].content = "changed"
    a1.messages[3] = "added"
    a1.channel = nil
    local a2 = r:args_for(2, "two")
    assert.are.equal(42, a2.data.user.id)
    assert.are.equal("first", a2.messages[1].content)
    assert.is_nil(a2.messages[3])
    assert.are.equal("general", a2.channel)
    assert.are.equal("two", a2.data.content)
    assert.are.equal("one", a1.data.content)
    assert.are.equal("recorded text", r.entries[1].kwargs.data.content)
  end)

  it("lists stay lists (empty ones too) when encoded", function()
    local args = must_load(line({ data = { content = "" }, empty = json.array({}), obj = {} })):args_for(1, "x")
    assert.are.equal('{"data":{"content":"x"},"empty":[],"obj":{}}', json.encode(args))
  end)
end)

describe("replayer:args_for: compiled and plain copies", function()
  local ODD = '{"kwargs": {"data": {"content": ""}, "f": 0.1, "g": -0.0, "h": 1e300, "i": 9223372036854775807, '
    .. '"j": -9223372036854775808, "s": "quote \\" back \\\\ nl \\n cr \\r nul \\u0000 tab \\t \\u00e9 \\ud83d\\ude00", '
    .. '"t": true, "u": false, "n": null, "e": {}, "l": [], "ll": [[1, [2.5, "x"]], {"k": [null]}], '
    .. '"]]=": "keys [[too]]", "cb": ["<callable:done>"]}}\n'

  it("a compiled copy has every value exactly as recorded", function()
    local r = must_load(ODD, { path = "" })
    local args = r:args_for(1, "x")
    assert.are.equal(json.encode(r.entries[1].kwargs), json.encode(replay.args_for_trace(args)))
    assert.are.equal("float", math.type(args.f))
    assert.are.equal("integer", math.type(args.i))
    assert.are.equal(json.null, args.n)
    assert.are.equal(json.array_mt, getmetatable(args.l))
    assert.are.equal("function", type(args.cb[1]))
    assert.truthy(r.entries[1].make, "compiled")
  end)

  it("a recording too deep to compile is copied all the same", function()
    local deep = string.rep('{"a": ', 60) .. '"<builtin:collector.send>"' .. string.rep("}", 60)
    local r = must_load('{"kwargs": {"data": {"content": "c"}, "deep": ' .. deep .. '}}\n')
    local args, info = r:args_for(1, "x")
    assert.is_false(r.entries[1].make)
    local node = args.deep
    for _ = 1, 59 do node = node.a end
    node.a("sent")
    assert.are.same({ "sent" }, info.callbacks.send)
    assert.are.equal("x", args.data.content)
    node.a = nil
    local again, info2 = r:args_for(2, "y")
    node = again.deep
    for _ = 1, 59 do node = node.a end
    assert.are.equal("function", type(node.a))
    local want = json.encode(r.entries[1].kwargs):gsub('"c"', '"y"')
    assert.are.equal(want, json.encode(replay.args_for_trace(again, info2)))
  end)
end)

describe("recorded placeholders", function()
  it("become functions that capture what the agent sends", function()
    local args, info = must_load(CHAT):args_for(1, "x")
    assert.are.equal("function", type(args.send_message_callback))
    assert.are.equal("function", type(args.send_error_callback))
    assert.are.equal("function", type(args.on_done))
    assert.are.equal("function", type(args.nested.reply))
    args.send_message_callback("hello")
    args.send_message_callback({ text = "table message" })
    args.nested.reply("a", 2)
    args.send_error_callback("oops")
    args.on_done()
    assert.are.same({ "hello", { text = "table message" }, { "a", 2 } }, info.callbacks.send)
    assert.are.same({ "oops" }, info.callbacks.error)
    assert.are.same({ {} }, info.callbacks.done)
    assert.are.equal('{"done":[[]],"error":["oops"],"send":["hello",{"text":"table message"},["a",2]]}',
      json.encode(info.callbacks))
  end)

  it("nil arguments are captured as null", function()
    local args, info = must_load(CHAT):args_for(1, "x")
    args.send_message_callback(nil)
    args.send_message_callback(1, nil, 3)
    assert.are.equal("[null,[1,null,3]]", json.encode(info.callbacks.send))
  end)

  it("capture lists are fresh for every run and start empty", function()
    local r = must_load(CHAT)
    local a1, i1 = r:args_for(1, "x")
    a1.send_message_callback("run 1")
    local _, i2 = r:args_for(2, "y")
    assert.are.same({ "run 1" }, i1.callbacks.send)
    assert.are.same({}, i2.callbacks.send)
    assert.are.equal("[]", json.encode(i2.callbacks.send))
  end)

  it("a line with more capture names than the compiled copy takes is copied by walking it", function()
    local kwargs = { data = { content = "" } }
    for i = 1, 150 do kwargs["cb" .. i] = ("<callable:name%d>"):format(i) end
    local r = must_load(line(kwargs))
    for k = 1, 2 do
      local args, info = r:args_for(k, "in " .. k)
      assert.are.equal("in " .. k, args.data.content)
      args.cb1(k)
      args.cb150("last")
      assert.are.same({ k }, info.callbacks.name1)
      assert.are.same({ "last" }, info.callbacks.name150)
      assert.are.same({}, info.callbacks.name75)
      assert.are.equal("<callable:name75>", replay.placeholder(args.cb75))
    end
  end)

  it("the same capture name twice shares one list", function()
    local args, info = must_load(line({ data = { content = "" }, a = "<callable:reply>",
      nested = { b = "<callable:reply>" } })):args_for(1, "x")
    args.a(1)
    args.nested.b(2)
    assert.are.same({ 1, 2 }, info.callbacks.reply)
  end)

  it("Python's default providers: send_message_callback is a sender whatever its marker", function()
    local args, info = must_load(line({ data = { content = "" },
      send_message_callback = "<callable:handler>", send_error_callback = "<callable:err>" })):args_for(1, "x")
    args.send_message_callback("m")
    args.send_error_callback("e")
    assert.are.same({ "m" }, info.callbacks.send)
    assert.are.same({ "e" }, info.callbacks.error)
  end)

  it("async markers and other builtins are named after their last part", function()
    local args, info = must_load(line({ data = { content = "" }, a = "<builtin:collector.send:async>",
      b = "<builtin:my.notify>" })):args_for(1, "x")
    args.a(1)
    args.b(2)
    assert.are.same({ 1 }, info.callbacks.send)
    assert.are.same({ 2 }, info.callbacks.notify)
  end)

  it("text that only looks a little like a placeholder stays text", function()
    local args = must_load(line({ data = { content = "" }, a = "<b>bold</b>", b = "<callable:>",
      c = "<repr:x>", d = "***" })):args_for(1, "x")
    assert.are.equal("<b>bold</b>", args.a)
    assert.are.equal("<callable:>", args.b)
    assert.are.equal("<repr:x>", args.c)
    assert.are.equal("***", args.d)
  end)
end)

describe("replay.output_from_callbacks", function()
  it("is the last message sent", function()
    local args, info = must_load(CHAT):args_for(1, "x")
    assert.is_nil(replay.output_from_callbacks(info.callbacks))
    args.send_message_callback("first")
    args.send_message_callback({ text = "last" })
    assert.are.same({ text = "last" }, replay.output_from_callbacks(info.callbacks))
  end)

  it("ignores errors and other captures, and is nil without a send capture", function()
    local args, info = must_load(CHAT):args_for(1, "x")
    args.send_error_callback("bad")
    args.on_done("done")
    assert.is_nil(replay.output_from_callbacks(info.callbacks))
    assert.is_nil(replay.output_from_callbacks({}))
    assert.is_nil(replay.output_from_callbacks(nil))
  end)

  it("a last message of nil is no output", function()
    local args, info = must_load(CHAT):args_for(1, "x")
    args.send_message_callback(nil)
    assert.is_nil(replay.output_from_callbacks(info.callbacks))
  end)
end)

describe("replay.args_for_trace", function()
  it("writes capture functions back as their recorded placeholders", function()
    local r = must_load(CHAT)
    local args = r:args_for(1, "the input")
    local expected = json.decode(CHAT).kwargs
    expected.data.content = "the input"
    local traced = replay.args_for_trace(args)
    assert.are.equal(json.encode(expected), json.encode(traced))
    assert.are.equal("function", type(args.send_message_callback), "args themselves unchanged")
  end)

  it("keeps the Python marker that was recorded for a provider key", function()
    local args = must_load(line({ data = { content = "" }, send_message_callback = "<callable:h>" })):args_for(1, "x")
    assert.are.equal("<callable:h>", replay.args_for_trace(args).send_message_callback)
  end)

  it("other functions become <callable:KEY>", function()
    local traced = replay.args_for_trace({ cb = function() end, list = json.array({ function() end }) })
    assert.are.equal('{"cb":"<callable:cb>","list":["<callable:function>"]}', json.encode(traced))
  end)

  it("shares what has no function in it", function()
    local args = must_load(CHAT):args_for(1, "x")
    local traced = replay.args_for_trace(args)
    assert.are.equal(args.data, traced.data)
    assert.are_not.equal(args.nested, traced.nested)
    local plain = { a = { b = 1 } }
    assert.are.equal(plain, replay.args_for_trace(plain))
  end)

  it("writes the same JSON as encoding the args directly (what traces do)", function()
    local r = must_load(CHAT)
    local args = r:args_for(1, "in")
    assert.are.equal(json.encode(replay.args_for_trace(args)), json.encode(args))
    assert.truthy(json.encode(args):find('"<builtin:collector.send>"', 1, true))
    assert.are.equal("function", type(args.nested.reply))
  end)

  it("follows a placeholder the agent moved, and names a function it added by its key", function()
    local r = must_load(CHAT)
    local args = r:args_for(1, "in")
    args.nested = { moved = args.send_message_callback, mine = function() end }
    args.send_message_callback = "gone"
    local traced = replay.args_for_trace(args)
    assert.are.equal("<builtin:collector.send>", traced.nested.moved)
    assert.are.equal("<callable:mine>", traced.nested.mine)
    assert.are.equal("gone", traced.send_message_callback)
    assert.are.equal(json.encode(traced), json.encode(args))
  end)

  it("placeholder(fn) tells a capture function's placeholder", function()
    local args = must_load(CHAT):args_for(1, "x")
    assert.are.equal("<builtin:collector.send>", replay.placeholder(args.send_message_callback))
    assert.is_nil(replay.placeholder(print))
  end)
end)

describe("examples/replay", function()
  it("its recording replays through its agent, which answers via the send callback", function()
    local r = assert(replay.load({ recording_file = "examples/replay/recordings/args.jsonl",
      override_param_path = "data.content", select = "cycle" }))
    assert.are.equal(3, r.count)
    local agent = dofile("examples/replay/agents/chat_agent.lua")
    local ctx = { metadata = {} }
    function ctx:span(_, fn, ...) return fn(...) end
    local args, info = r:args_for(2, "I was charged twice")
    assert.are.equal(2, info.line)
    assert.is_nil(agent.run(args, ctx))
    local out = replay.output_from_callbacks(info.callbacks)
    assert.are.equal(97, out.user_id)
    assert.truthy(out.text:find("billing", 1, true))
    assert.are.equal(97, ctx.metadata.user_id)
    assert.are.equal("***", replay.args_for_trace(args).auth_token)
  end)
end)
