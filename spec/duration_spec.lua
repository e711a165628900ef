-- duration_spec.lua - time limits with units (--timeout, runner.timeout, runner.timeout_seconds).
local duration = require("fluxloop.duration")
local P = require("support.project")

describe("fluxloop.duration", function()
  it("reads ms, s, m and h, fractions of them, and bare numbers as milliseconds", function()
    local cases = { ["500ms"] = 500, ["30s"] = 30000, ["2m"] = 120000, ["1h"] = 3600000, ["1.5s"] = 1500,
      ["0.25s"] = 250, ["30S"] = 30000, [" 2 m "] = 120000, ["250"] = 250, ["0"] = 0 }
    for text, ms in pairs(cases) do
      local got, bare = duration.parse(text)
      assert.are.equal(ms, got, text)
      assert.are.equal(text:find("%a") == nil, bare, text)
    end
    assert.are.same({ 40, true }, { duration.parse(40) })
  end)

  it("refuses what is not a time, with the forms it takes", function()
    for _, bad in ipairs({ "", "-1", "30x", "s", "1.5", "thirty", "1e3" }) do
      local ms, err = duration.parse(bad)
      assert.is_nil(ms, bad)
      assert.truthy(err:find("500ms, 30s, 2m or 1h", 1, true) or err:find("whole number", 1, true), err)
    end
    local ms, err = duration.parse("25d", 2147483647)
    assert.is_nil(ms)
    assert.truthy(err:find("500ms", 1, true), err)
    ms, err = duration.parse("600h", 2147483647)
    assert.is_nil(ms)
    assert.truthy(err:find("up to 2147483647", 1, true), err)
  end)

  it("finds a bare number under 100 suspicious (not 0, not one with a unit)", function()
    assert.is_true(duration.suspicious(duration.parse("30")))
    assert.is_false(duration.suspicious(duration.parse("30ms")))
    assert.is_false(duration.suspicious(duration.parse("0")))
    assert.is_false(duration.suspicious(duration.parse("100")))
  end)

  describe("in a run", function()
    local dir
    after_each(function() P.remove(dir) end)
    local SLOW = [[return { run = function() require("fluxloop.clock").sleep(5000) return "late" end }]]

    for _, key in ipairs({ "timeout: 200ms", "timeout_seconds: 0.2" }) do
      it("runner." .. key .. " fails a slower run as timeout", function()
        dir = P.project({ iterations = 1, inputs = "- input: a\n", agent = SLOW,
          config = "runner:\n  target: agents.agent:run\n  iterations: 1\n  " .. key .. "\n" })
        local code, _, err = P.run(dir, "run experiment --quiet")
        assert.are.equal(1, code, err)
        local row = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
        assert.are.equal("timeout", row.error.type)
        assert.truthy(row.error.message:find("200 ms", 1, true), row.error.message)
      end)
    end

    it("--timeout 30 warns before the runs: did you mean 30s?", function()
      dir = P.project({ iterations = 1, inputs = "- input: a\n" })
      local code, _, err = P.run(dir, "run experiment --quiet --timeout 30")
      assert.are.equal(0, code, err)
      assert.truthy(err:find("fluxloop: warning: --timeout 30 is 30 milliseconds; did you mean 30s?", 1, true), err)
    end)
  end)
end)
