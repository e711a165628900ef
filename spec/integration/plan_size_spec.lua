-- Large plans: inputs x iterations too large to count is refused; many inputs keep memory flat.
local P = require("support.project")
local fs = require("fluxloop.fs")

describe("the size of a plan", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("iterations x inputs past 2^53 stops before any run, naming both", function()
    dir = P.project({ iterations = 1 })
    local code, _, err = P.run(dir, "run experiment --iterations 9007199254740000")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("2 inputs x 9007199254740000 iterations is more than 9007199254740992 runs", 1, true), err)
    assert.are.same({}, P.experiments(dir))
  end)

  it("a config's iterations that would overflow 2^63 is refused too", function()
    dir = P.project({ config = "runner:\n  target: agents.agent:run\n  iterations: 4611686018427387904\n" })
    local code, _, err = P.run(dir, "run experiment")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("the plan is too large to run", 1, true), err)
  end)

  it("300,000 inputs are held compactly: peak memory stays far below one table per input", function()
    dir = P.project({ iterations = 1 })
    local f = assert(io.open(dir .. "/inputs/generated.yaml", "wb"))
    f:write("generated_inputs:\n")
    for i = 1, 300000 do f:write(("  - input: \"question %d\"\n    persona: p%d\n"):format(i, i % 7)) end
    f:close()
    local h = io.popen(("%s spec/bench/measure.lua %s"):format(P.quote(arg[-1] or "build/fluxloop-lua"),
      P.quote(("cd %s && %s run experiment --quiet --parallel 2"):format(P.quote(dir), P.quote(P.bin())))))
    local out = h:read("a")
    h:close()
    local rss, code = out:match("^[%d.]+ (%d+) (%d+)")
    assert.are.equal("0", code, out)
    local exp = P.experiments(dir)[1]
    assert.are.equal(300000, P.read_json(exp .. "/summary.json").total_traces)
    -- One Lua table per input (and a copy per worker) peaked near 400 MB here. (AddressSanitizer's
    -- shadow memory makes the figure meaningless under make test-asan.)
    if os.getenv("ASAN_OPTIONS") == nil then
      assert.is_true(tonumber(rss) < 80 * 1024, ("peak RSS %d KB"):format(tonumber(rss)))
    end
  end)
end)
