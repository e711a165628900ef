local clock = require("fluxloop.clock")

describe("fluxloop.clock", function()
  it("now_ns is a monotonic integer", function()
    local a = clock.now_ns()
    local b = clock.now_ns()
    assert.is_true(math.type(a) == "integer" and b >= a)
  end)

  it("utc_iso agrees with the C library's calendar, leap days and centuries included", function()
    local fixed = { 951782400, 951868800, 4107542400, 4107456000, 1709164800, 9183110399, 86399 }
    math.randomseed(7)
    for _ = 1, 2000 do fixed[#fixed + 1] = math.random(0, 9183110399) end
    for _, secs in ipairs(fixed) do
      assert.are.equal(os.date("!%Y-%m-%dT%H:%M:%S", secs) .. ".000007Z", clock.utc_iso(secs * 1000000000 + 7000))
    end
  end)

  it("utc_iso formats with microseconds and Z", function()
    assert.are.equal("1970-01-01T00:00:00.000000Z", clock.utc_iso(0))
    assert.are.equal("2026-11-25T17:00:00.000012Z", clock.utc_iso(1795626000 * 1000000000 + 12345))
    assert.truthy(clock.utc_iso():match("^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"))
  end)

  it("local_stamp is YYYYMMDD_HHMMSS", function()
    assert.truthy(clock.local_stamp():match("^%d%d%d%d%d%d%d%d_%d%d%d%d%d%d$"))
  end)

  it("sleep waits at least the time asked and rejects negative values", function()
    local t0 = clock.now_ns()
    clock.sleep(5)
    assert.is_true(clock.now_ns() - t0 >= 5 * 1000000)
    assert.has_error(function() clock.sleep(-1) end)
  end)
end)
