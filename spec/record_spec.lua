-- record_spec.lua - fluxloop.record: argument recordings in the Python fluxloop format, read back by replay.
local fluxloop = require("fluxloop")
local json = require("fluxloop.json")
local replay = require("fluxloop.replay")
local P = require("support.project")

local dir, file
before_each(function()
  dir = P.new()
  file = dir .. "/recordings/args.jsonl"
end)
after_each(function() P.remove(dir) end)

local function lines()
  return P.read_jsonl(file)
end

local ON = function() return { FLUXLOOP_RECORD_ARGS = "1", FLUXLOOP_RECORDING_FILE = file } end

describe("fluxloop package", function()
  it("re-exports clock, json and yaml", function()
    assert.are.equal(require("fluxloop.clock"), fluxloop.clock)
    assert.are.equal(json, fluxloop.json)
    assert.are.equal(require("fluxloop.yaml"), fluxloop.yaml)
    assert.are.equal("function", type(fluxloop.record))
  end)
end)

describe("fluxloop.record: when it records", function()
  it("is off by default", function()
    if os.getenv("FLUXLOOP_RECORD_ARGS") == nil then
      assert.is_false(fluxloop.record("agents.a:run", { x = 1 }))
    end
    assert.is_false(fluxloop._record_with({}, "agents.a:run", { x = 1 }))
    assert.is_false(fluxloop._record_with({ FLUXLOOP_RECORD_ARGS = "0", FLUXLOOP_RECORDING_FILE = file },
      "agents.a:run", { x = 1 }))
    assert.is_nil(P.read(file))
  end)

  it("is on with FLUXLOOP_RECORD_ARGS=1, true or TRUE", function()
    for _, v in ipairs({ "1", "true", "TRUE" }) do
      assert.is_true(fluxloop._record_with({ FLUXLOOP_RECORD_ARGS = v, FLUXLOOP_RECORDING_FILE = file },
        "agents.a:run", { x = v }))
    end
    assert.are.equal(3, #lines())
  end)

  it("takes a getenv-like function too", function()
    local env = ON()
    assert.is_true(fluxloop._record_with(function(k) return env[k] end, "t", {}))
    assert.are.equal(1, #lines())
  end)

  it("on without a file is an error that says what to set", function()
    local ok, err = fluxloop._record_with({ FLUXLOOP_RECORD_ARGS = "true" }, "t", {})
    assert.is_nil(ok)
    assert.truthy(err:find("FLUXLOOP_RECORDING_FILE is not set", 1, true), err)
  end)

  it("a file that cannot be written is nil, message", function()
    P.write(dir, "plain", "x")
    local ok, err = fluxloop._record_to(dir .. "/plain/args.jsonl", "t", {})
    assert.is_nil(ok)
    assert.truthy(err:find(dir .. "/plain", 1, true), err)
  end)

  it("the real environment switches it on (a separate process)", function()
    local script = P.write(dir, "rec.lua", [[
local ok, err = require("fluxloop").record("agents.a:run", { data = { content = "hi" } })
assert(ok == true, tostring(err))
]])
    local cmd = ("FLUXLOOP_RECORD_ARGS=1 FLUXLOOP_RECORDING_FILE=%s %s %s"):format(P.quote(file),
      P.quote(FLUXLOOP_BUILD .. "/fluxloop-lua"), P.quote(script))
    assert.is_true(os.execute(cmd))
    assert.are.equal("hi", lines()[1].kwargs.data.content)
  end)

  it("misuse raises", function()
    assert.has_error(function() fluxloop.record(nil, {}) end)
    assert.has_error(function() fluxloop.record("t", "not a table") end)
    assert.has_error(function() fluxloop.record("t", { 1, 2 }) end)
    assert.has_error(function() fluxloop.record("t", {}, -1) end)
    assert.has_error(function() fluxloop.record("t", {}, 1.5) end)
    assert.has_error(function() fluxloop._record_with(42, "t", {}) end)
  end)
end)

describe("fluxloop.record: the line", function()
  it("has the Python fields, a UTC timestamp with microseconds and Z", function()
    assert.is_true(fluxloop._record_to(file, "agents.a:run", { data = { content = "hello" } }))
    local rows, text = lines()
    assert.are.equal(1, #rows)
    assert.are.equal("\n", text:sub(-1))
    local r = rows[1]
    assert.are.equal("1", r._version)
    assert.are.equal(0, r.iteration)
    assert.are.equal("agents.a:run", r.target)
    assert.are.same({ data = { content = "hello" } }, r.kwargs)
    assert.truthy(r.timestamp:match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"), r.timestamp)
  end)

  it("appends, and iteration counts up per target unless given", function()
    local rec = function(t, it) assert.is_true(fluxloop._record_to(file, t, {}, it)) end
    rec("a") rec("a") rec("b") rec("a", 10) rec("a") rec("b")
    local its = {}
    for i, r in ipairs(lines()) do its[i] = r.target .. r.iteration end
    assert.are.same({ "a0", "a1", "b0", "a10", "a11", "b1" }, its)
  end)

  it("masks every key whose name contains a secret word, as the Python tool does", function()
    local names = { "dbPassword", "clientSecret", "authHeader", "secretValue", "passwordHash", "apiKeys",
      "tokens", "my_creds", "X-Auth", "PASSWD", "monkey", "keyword", "author", "Credential_file" }
    local kwargs = { content = "kept", user_id = 7, message = "kept" }
    for _, n in ipairs(names) do kwargs[n] = "s3cr3t" end
    assert.is_true(fluxloop._record_to(file, "t", kwargs))
    local k = lines()[1].kwargs
    for _, n in ipairs(names) do assert.are.equal("***", k[n], n) end
    assert.are.same({ "kept", 7, "kept" }, { k.content, k.user_id, k.message })
  end)

  it("masks secret-looking keys at any depth, in lists of mappings too", function()
    assert.is_true(fluxloop._record_to(file, "t", {
      api_key = "sk-1", auth_token = "t", password = "p",
      data = { content = "ok", user = { id = 1, OPENAI_API_KEY = "x", keyword = "kept", author = "kept" },
        credentials = { user = "u", pass = "p" } },
      messages = { { role = "user", token = "tk", content = "c" }, { role = "tool", secret = { a = 1 } } },
      empty = json.null, nothing_secret = json.null,
    }))
    local k = lines()[1].kwargs
    assert.are.equal("***", k.api_key)
    assert.are.equal("***", k.auth_token)
    assert.are.equal("***", k.password)
    assert.are.equal("ok", k.data.content)
    assert.are.equal(1, k.data.user.id)
    assert.are.equal("***", k.data.user.OPENAI_API_KEY)
    assert.are.equal("***", k.data.user.keyword) -- contains "key", as in the Python tool
    assert.are.equal("***", k.data.user.author)
    assert.are.equal("***", k.data.credentials)
    assert.are.same({ role = "user", token = "***", content = "c" }, k.messages[1])
    assert.are.same({ role = "tool", secret = "***" }, k.messages[2])
    assert.are.equal(json.null, k.empty)
  end)

  it("never changes the table it was given", function()
    local kwargs = { token = "t", nested = { password = "p" } }
    fluxloop._record_to(file, "t", kwargs)
    assert.are.same({ token = "t", nested = { password = "p" } }, kwargs)
  end)

  it("functions become <callable:KEY>, replay captures their placeholder", function()
    local r = assert(replay.load({ recording_file = P.write(dir, "in.jsonl",
      '{"kwargs": {"data": {"content": ""}, "send_message_callback": "<builtin:collector.send>", '
      .. '"cb": "<builtin:collector.error>"}}\n'), override_param_path = "data.content" }))
    local args = r:args_for(1, "x")
    args.reply = function() end
    args.data.on_auth = function() end
    assert.is_true(fluxloop._record_to(file, "t", args))
    local k = lines()[1].kwargs
    assert.are.equal("<builtin:collector.send>", k.send_message_callback)
    assert.are.equal("<builtin:collector.error>", k.cb)
    assert.are.equal("<callable:reply>", k.reply)
    assert.are.equal("<callable:on_auth>", k.data.on_auth)
  end)

  it("other values are made JSON-safe: lists stay lists, cycles and userdata as <repr:...>", function()
    local loop = { name = "loop" }
    loop.self = loop
    assert.is_true(fluxloop._record_to(file, "t", { list = json.array({}), seq = { 1, 2 }, loop = loop,
      co = coroutine.create(function() end), f = 1.5 }))
    local rows, text = lines()
    local k = rows[1].kwargs
    assert.truthy(text:find('"list":[]', 1, true), text)
    assert.are.same({ 1, 2 }, k.seq)
    assert.are.equal("<repr:cycle>", k.loop.self)
    assert.truthy(k.co:find("^<repr:thread: "), k.co)
    assert.are.equal(1.5, k.f)
  end)

  it("creates the recording's folder", function()
    local deep = dir .. "/a/b/c/args.jsonl"
    assert.is_true(fluxloop._record_to(deep, "t", {}))
    assert.truthy(P.read(deep))
  end)
end)

describe("fluxloop.record: round trip", function()
  it("what it writes replays with replay.load", function()
    for i = 1, 3 do
      assert.is_true(fluxloop._record_to(file, "agents.chat:run", {
        data = { content = "msg " .. i, user = { id = i } }, api_key = "secret",
        send_message_callback = function() end,
      }))
    end
    local r = assert(replay.load({ recording_file = file, override_param_path = "data.content", select = "cycle" }))
    assert.are.equal(3, r.count)
    local args, info = r:args_for(2, "new input")
    assert.are.equal("new input", args.data.content)
    assert.are.equal(2, args.data.user.id)
    assert.are.equal("***", args.api_key)
    assert.are.equal(2, info.line)
    args.send_message_callback("answer")
    assert.are.same({ "answer" }, info.callbacks.send)
  end)
end)
