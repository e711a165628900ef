-- util_spec.lua - specs for fluxloop.util (suggestions, path strings, tables).
local util = require("fluxloop.util")

describe("util.closest", function()
  local keys = { "iterations", "parallel", "timeout_ms", "isolation", "target" }

  it("suggests the nearest candidate for a typo", function()
    assert.equal("iterations", util.closest("iteratons", keys))
    assert.equal("target", util.closest("traget", keys))
    assert.equal("parallel", util.closest("paralel", keys))
  end)

  it("ignores case when comparing", function()
    assert.equal("timeout_ms", util.closest("Timeout_MS", keys))
  end)

  it("returns nil when nothing is close", function()
    assert.is_nil(util.closest("zebra", keys))
    assert.is_nil(util.closest("x", { "name" }))
    assert.is_nil(util.closest("word", {}))
  end)

  it("allows more edits for longer words", function()
    -- 3 edits on a 10+ letter word is still a typo
    assert.equal("override_param_path", util.closest("overide_parm_pth", { "override_param_path" }))
    assert.is_nil(util.closest("iterxxxx", { "iterations" }))
  end)

  it("measures Levenshtein distance", function()
    assert.equal(0, util.distance("abc", "abc"))
    assert.equal(3, util.distance("kitten", "sitting"))
    assert.equal(4, util.distance("", "four"))
  end)
end)

describe("util paths", function()
  it("splits and joins", function()
    assert.same({ "a", "b", "c" }, util.split_path("/a//b/c/"))
    assert.same({}, util.split_path("/"))
    assert.equal("a/b/c", util.join_path("a", "b/", "c"))
    assert.equal("/x/y", util.join_path("a", "/x", "y"))
    assert.equal("a", util.join_path("", "a"))
  end)

  it("takes dirname and basename", function()
    assert.equal("configs", util.dirname("configs/simulation.yaml"))
    assert.equal("/p", util.dirname("/p/configs/"))
    assert.equal(".", util.dirname("simulation.yaml"))
    assert.equal("/", util.dirname("/x"))
    assert.equal("simulation.yaml", util.basename("/p/configs/simulation.yaml"))
    assert.equal("configs", util.basename("/p/configs/"))
  end)

  it("normalises absolute paths", function()
    assert.equal("/p/inputs/a.yaml", util.abspath("inputs/./a.yaml", "/p"))
    assert.equal("/p/x", util.abspath("../x", "/p/configs"))
    assert.equal("/etc/x", util.abspath("/etc/./y/../x", "/p"))
    assert.equal("/", util.abspath("../../..", "/p"))
    assert.equal("/p", util.abspath(".", "/p/"))
  end)
end)

describe("util tables", function()
  it("tells lists from mappings", function()
    assert.is_true(util.is_array({ 1, 2, 3 }))
    assert.is_false(util.is_array({ a = 1 }))
    assert.is_false(util.is_array({ 1, 2, x = 3 }))
    assert.is_false(util.is_array({}))
    assert.is_false(util.is_array("s"))
    assert.is_true(util.is_mapping({}))
  end)

  it("copies deep and shallow", function()
    local inner = { 1, 2 }
    local t = { a = inner, b = { c = "d" } }
    local s = util.shallow_copy(t)
    assert.equal(inner, s.a)
    local d = util.deep_copy(t)
    assert.same(t, d)
    assert.are_not.equal(inner, d.a)
    d.b.c = "changed"
    assert.equal("d", t.b.c)
  end)

  it("keeps metatables in copies", function()
    local mt = {}
    local t = setmetatable({}, mt)
    assert.equal(mt, getmetatable(util.deep_copy(t)))
    assert.equal(mt, getmetatable(util.shallow_copy(t)))
  end)

  it("sorts keys", function()
    assert.same({ 1, 2, "a", "b" }, util.sorted_keys({ b = 1, a = 2, [2] = 0, [1] = 0 }))
  end)
end)

describe("util.n_of", function()
  it("says 1 run and 2 runs", function()
    assert.are.equal("1 run", util.n_of(1, "run"))
    assert.are.equal("0 runs", util.n_of(0, "run"))
    assert.are.equal("12 total runs", util.n_of(12, "total run"))
  end)
end)
