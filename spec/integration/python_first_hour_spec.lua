-- What a Python fluxloop user trips over in the first hour (issue 26): the slips of the
-- messages and the README, through the real binary.
local P = require("support.project")

local function rows_in_order(text)
  local keys = {}
  for k in text:gmatch('\n  "([%w_]+)":') do keys[#keys + 1] = k end
  return keys
end

describe("the Python user's first hour", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("says 1 input, 1 iteration, 1 total run and 1 run (not '1 iterations')", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n" })
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("[INFO] Loaded 1 input\n", 1, true), err)
    assert.truthy(err:find("[INFO] Running 1 iteration per input (1 total run)", 1, true), err)
    assert.truthy(err:find("[INFO] Done: 1 run, 1 succeeded", 1, true), err)
    code, _, err = P.run(dir, "run experiment --no-progress --iterations 2")
    assert.truthy(err:find("[INFO] Running 2 iterations per input (2 total runs)", 1, true), err)
  end)

  it("summary.json's fields come in the order the README's table gives", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n" })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local written = rows_in_order(P.read(P.experiments(dir)[1] .. "/summary.json"))
    local row = P.read("README.md"):match("\n| `summary.json` | ([^\n]*)")
    local at = {}
    for name in row:gsub("`{[^}]*}`", ""):gmatch("`([%w_]+)`") do
      if not at[name] then at[name] = #at + 1 at[#at + 1] = name end
    end
    local last = 0
    for _, k in ipairs(written) do
      assert.is_not_nil(at[k], "summary.json has " .. k .. ", which the README's table does not name")
      assert.is_true(at[k] > last, "the README's table puts " .. k .. " elsewhere: " .. table.concat(written, ", "))
      last = at[k]
    end
  end)

  it("the comments of examples/python's configs name the file of their target", function()
    for _, name in ipairs({ "simulation.yaml", "support.yaml" }) do
      local text = P.read("examples/python/configs/" .. name)
      local module, file = text:match('target: "([%w_.]+):[%w_]+"%s*# (%S+%.py)')
      assert.are.equal(module:gsub("%.", "/") .. ".py", file, name)
    end
  end)
end)
