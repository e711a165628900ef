local output = require("fluxloop.output")
local P = require("support.project")

describe("fluxloop.output", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("never reuses an experiment folder", function()
    local wall = 1795626000 * 1000000000
    local a = assert(output.create_dir(dir .. "/exp", "x", wall))
    local b = assert(output.create_dir(dir .. "/exp", "x", wall))
    assert.are_not.equal(a, b)
    assert.are.equal(a .. "_2", b)
  end)

  it("writes files whole", function()
    assert.is_true(output.write_json(dir .. "/s.json", { a = 1 }))
    assert.are.equal("{\n  \"a\": 1\n}\n", P.read(dir .. "/s.json"))
  end)
end)
