local target = require("fluxloop.target")
local P = require("support.project")

describe("fluxloop.target", function()
  local dir, saved_path
  before_each(function()
    dir = P.new()
    saved_path = package.path
    package.path = dir .. "/?.lua;" .. package.path
  end)
  after_each(function()
    package.path = saved_path
    for k in pairs(package.loaded) do if k:match("^tgt_") then package.loaded[k] = nil end end
    P.remove(dir)
  end)

  it("resolves module:function", function()
    P.write(dir, "tgt_a.lua", "return { run = function(i) return i .. '!' end }")
    local fn, info = assert(target.resolve("tgt_a:run"))
    assert.are.equal("x!", fn("x"))
    assert.are.equal("tgt_a", info.name)
  end)

  it("resolves nested modules and Table.method as a method call", function()
    P.write(dir, "tgt_pkg/bot.lua", "local B = {n = 2}\nfunction B:go(i) return i * self.n end\nreturn {B = B}")
    local fn, info = assert(target.resolve("tgt_pkg.bot:B.go"))
    assert.are.equal(10, fn(5))
    assert.are.equal("bot", info.name)
  end)

  it("explains each failure", function()
    P.write(dir, "tgt_b.lua", "return { run = 1, helper = function() end }")
    P.write(dir, "tgt_c.lua", "return 5")
    local cases = {
      { "", "runner.target is missing" },
      { "nocolon", "expected \"module.path:function\"" },
      { "tgt_missing:run", "Lua module 'tgt_missing' not found" },
      { "tgt_b:nope", "has no field 'nope'; it has: helper(), run" },
      { "tgt_b:run", "tgt_b:run is a number, not a function" },
      { "tgt_c:run", "returned a number, not a table" },
      { "lib/agent.so:run", "target 'lib/agent.so:run': cannot load the native agent: ./lib/agent.so: no such file" },
    }
    for _, c in ipairs(cases) do
      local fn, msg = target.resolve(c[1])
      assert.is_nil(fn, c[1])
      assert.truthy(msg:find(c[2], 1, true), c[1] .. " -> " .. msg)
    end
  end)

  describe("native agents", function()
    local so = FLUXLOOP_BUILD .. "/spec/native_agents.so"

    it("a path with '/' or a .so/.dylib suffix is a shared library; relative paths start at project_dir", function()
      assert.is_true(target.is_native("lib/agent"))
      assert.is_true(target.is_native("agent.so"))
      assert.is_true(target.is_native("agent.dylib"))
      assert.is_false(target.is_native("examples.my_agent"))
      os.execute(("mkdir -p %s/lib && cp %s %s/lib/"):format(P.quote(dir), P.quote(so), P.quote(dir)))
      local agent, info = assert(target.resolve("lib/native_agents.so:echo", { project_dir = dir }))
      assert.are.equal("hi", agent("hi", {}))
      assert.are.same({ spec = "lib/native_agents.so:echo", module = "lib/native_agents.so", symbol = "echo",
        path = dir .. "/lib/native_agents.so", native = true, name = "echo" }, info)
      agent = assert(target.resolve(so .. ":echo", { project_dir = "/nowhere" })) -- absolute stays absolute
      assert.are.equal("x", agent("x", {}))
    end)

    it("init receives opts.runner as JSON", function()
      local ffi = require("fluxloop.ffi")
      local last = assert(ffi.load(so)):fn("const char *fixture_last_config(void)")
      assert(target.resolve(so .. ":lifecycle", { runner = { iterations = 2, target = so .. ":lifecycle" } }))
      assert.are.equal(('{"iterations":2,"target":"%s:lifecycle"}'):format(so), last())
    end)

    it("a failure is a message naming the path, the symbol and the dlerror text", function()
      local fn, msg, code = target.resolve("lib/missing.so:agent", { project_dir = dir })
      assert.is_nil(fn)
      assert.are.equal("ENOENT", code)
      assert.truthy(msg:find("target 'lib/missing.so:agent': cannot load the native agent: " .. dir
        .. "/lib/missing.so: no such file (dlopen: ", 1, true), msg)
      fn, msg, code = target.resolve(so .. ":nope")
      assert.are.equal("ENOSYM", code)
      assert.truthy(msg:find("has no symbol 'nope' (dlsym: ", 1, true), msg)
      assert.truthy(msg:find("undefined symbol: nope", 1, true), msg)
    end)
  end)
end)
