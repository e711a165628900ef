local native = require("fluxloop.native")
local ffi = require("fluxloop.ffi")
local recorder = require("fluxloop.recorder")
local context = require("fluxloop.context")
local json = require("fluxloop.json")
local P = require("support.project")

local SO = FLUXLOOP_BUILD .. "/spec/native_agents.so"

-- Counters the lifecycle fixture keeps, read through fluxloop.ffi.
local fixture = assert(ffi.load(SO))
local inits = assert(fixture:fn("int fixture_inits(void)"))
local finishes = assert(fixture:fn("int fixture_finishes(void)"))
local last_config = assert(fixture:fn("const char *fixture_last_config(void)"))

local function load(symbol, config)
  return assert(native.load(SO, symbol, config))
end

describe("fluxloop.native", function()
  describe("load failures return nil, message, code", function()
    local dir
    before_each(function() dir = P.new() end)
    after_each(function() P.remove(dir) end)

    it("path not found", function()
      local a, msg, code = native.load(dir .. "/missing/libagent.so", "agent")
      assert.is_nil(a)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find(dir .. "/missing/libagent.so: no such file", 1, true), msg)
      assert.truthy(msg:find("cannot open shared object file", 1, true), msg) -- dlerror's text
      assert.truthy(msg:find("build the library first", 1, true), msg)
    end)

    it("a file that is not a shared library", function()
      local path = P.write(dir, "libagent.so", "this is text, not ELF\n")
      local a, msg, code = native.load(path, "agent")
      assert.is_nil(a)
      assert.are.equal("ENOEXEC", code)
      assert.truthy(msg:find(path .. " is not a shared library (dlopen: ", 1, true), msg)
      assert.truthy(msg:find("cc -shared -fPIC", 1, true), msg)
      local _, dmsg, dcode = native.load(dir, "agent")
      assert.are.equal("ENOEXEC", dcode, dmsg)
    end)

    it("symbol missing", function()
      local a, msg, code = native.load(SO, "no_such_agent")
      assert.is_nil(a)
      assert.are.equal("ENOSYM", code)
      assert.truthy(msg:find(SO .. " has no symbol 'no_such_agent' (dlsym: ", 1, true), msg)
      assert.truthy(msg:find("undefined symbol", 1, true), msg)
      assert.truthy(msg:find("FLUXLOOP_EXPORT const fluxloop_agent no_such_agent", 1, true), msg)
    end)

    it("ABI version mismatch", function()
      local a, msg, code = native.load(SO, "bad_abi")
      assert.is_nil(a)
      assert.are.equal("EABI", code)
      assert.truthy(msg:find("'bad_abi' has agent ABI version 999, but this fluxloop implements version "
        .. native.ABI_VERSION, 1, true), msg)
      assert.truthy(msg:find("rebuild the agent", 1, true), msg)
    end)

    it("a descriptor without run", function()
      local a, msg, code = native.load(SO, "no_run")
      assert.is_nil(a)
      assert.are.equal("EABI", code)
      assert.truthy(msg:find("'no_run' has no run function", 1, true), msg)
    end)

    it("init that fails gives its reason, and finish is not called", function()
      local before = finishes()
      local a, msg, code = native.load(SO, "init_fails")
      assert.is_nil(a)
      assert.are.equal("EINIT", code)
      assert.truthy(msg:find("'init_fails' init failed: OPENAI_API_KEY is not set", 1, true), msg)
      collectgarbage()
      assert.are.equal(before, finishes())
    end)

    it("misuse raises", function()
      assert.has_error(function() native.load(nil, "x") end)
      assert.has_error(function() native.load(SO, {}) end)
    end)
  end)

  describe("runs", function()
    it("an agent is callable as agent(input, ctx) and returns its output", function()
      local echo = load("echo")
      assert.are.equal("hello", echo("hello", {}))
      assert.are.equal("", echo(""))
      local info = echo:info()
      assert.are.same({ path = SO, symbol = "echo", name = "echo", abi_version = native.ABI_VERSION,
        thread_safe = true, open = true }, info)
      assert.truthy(tostring(echo):find("NativeAgent", 1, true))
    end)

    it("passes every field of the request", function()
      local request = load("request")
      local ctx = { persona = "novice_user", iteration = 7, trace_id = "trace_042",
        metadata = { strategy = "rephrase" }, args = { data = { content = "q" } } }
      local r = request("How do I start?", ctx)
      assert.are.same({ input = "How do I start?", input_len = 15, input_json = false, terminated = true,
        persona = "novice_user", iteration = 7, trace_id = "trace_042", metadata = { strategy = "rephrase" },
        args = { data = { content = "q" } } }, r)
      r = request({ question = "q", n = 2 }, {})
      assert.are.equal('{"n":2,"question":"q"}', r.input)
      assert.is_true(r.input_json)
      assert.are.equal(json.null, r.persona)
      assert.are.equal("none", r.args) -- args_json is NULL when there are none
      assert.are.same({}, r.metadata)
      assert.are.equal(0, r.iteration)
      -- Replay's call: ctx.args is the input itself, and both carry its JSON.
      local args = { data = { content = "q" }, n = 1 }
      r = request(args, { args = args })
      assert.are.equal('{"data":{"content":"q"},"n":1}', r.input)
      assert.are.same(args, r.args)
    end)

    it("an input with NUL bytes is passed whole; a table input as its JSON text", function()
      local echo = load("echo")
      assert.are.equal("a\0b\0", echo("a\0b\0"))
      assert.are.equal('{"a":[1,2]}', echo({ a = json.array({ 1, 2 }) }))
      local big = { text = ("x"):rep(3 * 1024 * 1024) } -- more than the scratch buffer keeps
      assert.are.equal(3 * 1024 * 1024 + 11, #echo(big))
      assert.are.equal("42", echo(42))
    end)

    it("an agent that returns NULL without an error raises a no_output error", function()
      local nothing = load("nothing")
      local ok, err = pcall(nothing, "x", {})
      assert.is_false(ok)
      assert.are.same({ type = "no_output", traceback = false,
        message = "native agent returned no output: set res->output (and output_len), or res->error to fail the run" }, err)
    end)

    it("an agent error raises { type = 'agent_error', message = ... }", function()
      local fails = load("fails")
      local ok, err = pcall(fails, "x", {})
      assert.is_false(ok)
      assert.are.same({ type = "agent_error", message = "the model said no", traceback = false }, err)
      ok, err = pcall(fails, "typed", {})
      assert.are.same({ type = "rate_limit", message = "the model said no", traceback = false }, err)
    end)

    it("output with invalid UTF-8 and embedded NUL is kept byte for byte", function()
      assert.are.equal("caf\xe9\0nul\xff", load("binary")("x", {}))
    end)

    it("output flagged JSON is decoded; invalid JSON is an invalid_output error", function()
      assert.are.equal(1, load("lifecycle")("x"))
      local ok, err = pcall(load("bad_json"), "x")
      assert.is_false(ok)
      assert.are.equal("invalid_output", err.type)
      assert.truthy(err.message:find("not valid JSON: agent output:1:9:", 1, true), err.message)
    end)
  end)

  describe("host callbacks", function()
    local dir
    before_each(function() dir = P.new() end)
    after_each(function() P.remove(dir) end)

    -- Runs the agent once with a real ctx; returns its output and the observations written.
    local function run_recorded(agent)
      local rec = assert(recorder.open(dir))
      local ctx = setmetatable({ trace_id = "trace_001", iteration = 0, metadata = {} }, context.class(rec))
      rec:begin("trace_001")
      local out = agent("in", ctx)
      rec:stop()
      assert(rec:write({ trace_id = "trace_001", input = "in", output = out, success = true, iteration = 0 }))
      assert(rec:close())
      return out, P.read_jsonl(dir .. "/observations.jsonl")
    end

    it("observations and nested spans reach the recorder; bad calls return codes", function()
      local out, obs = run_recorded(load("observer"))
      assert.are.equal(1, out.outer)
      assert.are.equal(3, out.inner)
      assert.are.equal(-1, out.bad_json) -- FLUXLOOP_ERR_JSON
      assert.truthy(out.json_error:find("observe input_json:1:2:", 1, true), out.json_error)
      assert.are.equal(-2, out.bad_type) -- FLUXLOOP_ERR_REJECTED
      assert.truthy(out.type_error:find("unknown observation type 'llm'", 1, true), out.type_error)
      assert.are.equal(-1, out.bad_span)
      assert.are.equal(-2, out.bad_end)
      assert.truthy(out.end_error:find("no such span", 1, true), out.end_error)

      local names = {}
      for i, o in ipairs(obs) do names[i] = o.name end
      assert.are.same({ "outer", "search", "inner", json.null, "last" }, names)
      assert.are.equal("agent", obs[1].type)
      assert.are.same({ q = { 1, 2 } }, obs[1].input)
      assert.are.equal("outer failed", obs[1].error)
      assert.are.equal(json.null, obs[1].parent_id)
      assert.are.equal("tool", obs[2].type)
      assert.are.equal("trace_001.1", obs[2].parent_id)
      assert.are.equal("query", obs[2].input)
      assert.are.same({ hits = 2 }, obs[2].output)
      assert.are.same({ model = "local" }, obs[2].metadata)
      assert.are.equal("span", obs[3].type)
      assert.are.equal("trace_001.1", obs[3].parent_id)
      assert.are.same({ 1, 2, 3 }, obs[3].output)
      assert.are.equal("event", obs[4].type)
      assert.are.equal("trace_001.3", obs[4].parent_id)
      assert.are.equal(json.null, obs[5].parent_id)
      assert.are.equal("caf\u{e9}", obs[5].output)
    end)

    it("a span left open is closed by the host when the run ends", function()
      local out, obs = run_recorded(load("open_span"))
      assert.are.equal("done", out)
      assert.are.equal("left_open", obs[1].name)
      assert.truthy(obs[1].error:find("not closed", 1, true))
    end)

    it("without a ctx the callbacks are refused, and the run still completes", function()
      local out = load("observer")("x")
      assert.are.equal(-2, out.outer)
      assert.truthy(out.end_error:find("no ctx", 1, true), out.end_error)
    end)
  end)

  describe("lifecycle", function()
    it("init gets the config JSON; finish runs once, on close or when collected", function()
      collectgarbage() -- agents of earlier specs finish now, not in the middle of this one
      collectgarbage()
      local i0, f0 = inits(), finishes()
      local a = load("lifecycle", '{"target":"x.so:lifecycle","iterations":3}')
      assert.are.equal(i0 + 1, inits())
      assert.are.equal('{"target":"x.so:lifecycle","iterations":3}', last_config())
      assert.are.equal(1, a("x"))
      assert.are.equal(2, a("y")) -- the state init made is passed to every run
      assert.is_true(a:close())
      assert.are.equal(f0 + 1, finishes())
      assert.is_true(a:close())
      assert.are.equal(f0 + 1, finishes())
      assert.is_false(a:info().open)
      local ok, err = pcall(a, "z")
      assert.is_false(ok)
      assert.truthy(err:find("native agent " .. SO .. ":lifecycle is closed", 1, true), err)

      load("lifecycle")
      assert.are.equal("{}", last_config())
      collectgarbage()
      collectgarbage()
      assert.are.equal(f0 + 2, finishes())
    end)

    it("an agent keeps its library loaded after everything else is collected", function()
      local a = native.load(SO, "echo")
      local b = native.load(SO, "lifecycle")
      b = nil -- luacheck: ignore
      collectgarbage()
      collectgarbage()
      assert.are.equal("still here", a("still here"))
    end)

    it("to-be-closed agents finish at the end of the block", function()
      local f0 = finishes()
      do
        local a <close> = load("lifecycle")
        a("x")
      end
      assert.are.equal(f0 + 1, finishes())
    end)
  end)
end)
