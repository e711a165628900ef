-- fluxloop.merge: the arguments of `fluxloop merge` (the merging itself: spec/integration/merge_spec.lua).
local merge = require("fluxloop.merge")

describe("fluxloop.merge.parse", function()
  it("takes folders and the options in any order", function()
    assert.are.same({ dirs = { "a", "b" }, partial = true, output = "out", quiet = true },
      merge.parse({ "a", "--partial", "--output", "out", "b", "--quiet" }))
    assert.are.same({ dirs = { "x" }, output = "o" }, merge.parse({ "--output=o", "x" }))
    assert.are.same({ dirs = {}, help = true }, merge.parse({ "-h" }))
  end)

  it("refuses no folder, an unknown option and --output without a value", function()
    local cases = {
      { {}, "merge: name the experiment folder (or its shard folders); see 'fluxloop merge --help'" },
      { { "--parital", "x" }, "merge: unknown option '--parital' (did you mean '--partial'?)" },
      { { "x", "--output" }, "--output needs a folder" },
      { { "x", "--output=" }, "--output needs a folder" },
    }
    for _, c in ipairs(cases) do
      local opts, err = merge.parse(c[1])
      assert.is_nil(opts)
      assert.truthy(err:find(c[2], 1, true), err)
    end
  end)
end)

describe("the merge command line", function()
  it("is dispatched by fluxloop.cli with its arguments untouched", function()
    local cmd = assert(require("fluxloop.cli").parse({ "merge", "--partial", "exp" }))
    assert.are.equal("merge", cmd.command)
    assert.are.same({ "--partial", "exp" }, cmd.args)
    assert.truthy(require("fluxloop.cli").help():find("fluxloop merge EXPERIMENT_DIR", 1, true))
  end)
end)
