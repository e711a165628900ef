-- plan_spec.lua - fluxloop.plan: inputs held as JSON texts, read like a list.
local plan_mod = require("fluxloop.plan")
local json = require("fluxloop.json")
local stats = require("fluxloop.stats")

describe("fluxloop.plan", function()
  local entries = {
    { input = "hello", persona = "novice", metadata = { strategy = "rephrase", n = 2 } },
    { input = "bye" },
    { input = { role = "user", content = "a table input" }, tags = json.array({ "x", "y" }) },
  }

  local function filled()
    local p = plan_mod.new()
    for _, e in ipairs(entries) do p:add(e) end
    return p
  end

  it("reads like a list: #, [i], ipairs; each entry decoded afresh", function()
    local p = filled()
    assert.are.equal(3, #p)
    assert.are.same(entries[1], p[1])
    assert.are.same(entries[3].input, p[3].input)
    assert.is_nil(p[4])
    assert.is_nil(p[0])
    local seen = 0
    for i, e in ipairs(p) do
      seen = i
      assert.are.same(entries[i].input, e.input)
    end
    assert.are.equal(3, seen)
    assert.are_not.equal(p[1], p[1]) -- a new table each time: nothing is kept per entry
  end)

  it("keeps each entry as its JSON text", function()
    local p = filled()
    assert.are.equal(json.encode(entries[2]), p:json(2))
    assert.are.equal(json.encode(entries[1]), p:json(1))
  end)

  it("hashes like fluxloop.stats.hash of the whole JSON text, without building it", function()
    local p = filled()
    local text = json.encode({ entries = json.array(entries), iterations = 3, target = "a.b:run" })
    local prefix, suffix = '{"entries":[', '],"iterations":3,"target":"a.b:run"}'
    assert.are.equal(prefix .. p:json(1) .. "," .. p:json(2) .. "," .. p:json(3) .. suffix, text)
    assert.are.equal(stats.hash(text), p:hash(prefix, suffix))
  end)

  it("is shared with another state through a handle that holds its own reference", function()
    local p = filled()
    local other = plan_mod.attach(p:share())
    assert.are.equal(3, #other)
    assert.are.same(entries[2], other[2])
    p = nil
    collectgarbage()
    collectgarbage()
    assert.are.same(entries[1], other[1]) -- still alive: attach holds a reference
  end)

  it("refuses an entry JSON cannot hold", function()
    local p = plan_mod.new()
    local t = {}
    t.self = t
    assert.has_error(function() p:add(t) end)
    assert.are.equal(0, #p)
  end)
end)
