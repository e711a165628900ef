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
      { "lib/agent.so:run", "native agents" },
    }
    for _, c in ipairs(cases) do
      local fn, msg = target.resolve(c[1])
      assert.is_nil(fn, c[1])
      assert.truthy(msg:find(c[2], 1, true), c[1] .. " -> " .. msg)
    end
  end)
end)
