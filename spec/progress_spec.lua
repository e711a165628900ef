local progress = require("fluxloop.progress")

local function capture()
  local s = { text = "" }
  function s:write(...) for _, v in ipairs({ ... }) do self.text = self.text .. v end end
  function s:flush() end
  return s
end

describe("fluxloop.progress", function()
  it("formats the bar as in the seed", function()
    assert.are.equal("[▓▓▓▓▓░░░░░] 250/500 (50%) - ETA: 2m 15s", progress.bar_line(250, 500, 135))
    assert.are.equal("[▓▓▓▓▓▓▓▓▓▓] 10/10 (100%) - ETA: 0s", progress.bar_line(10, 10, 3))
  end)

  local function fake_clock(step_ns)
    local t = 0
    return function() t = t + step_ns return t end
  end

  it("prints a line per tenth of a slow experiment on a pipe, not one per run", function()
    local out = capture()
    local p = progress.new({ stream = out, tty = false, now = fake_clock(200 * 1000000) })
    p:start(1000)
    for i = 1, 1000 do p:update(i) end
    p:finish()
    local lines = select(2, out.text:gsub("\n", ""))
    assert.are.equal(10, lines)
  end)

  it("prints only the final line for a fast experiment on a pipe", function()
    local out = capture()
    local p = progress.new({ stream = out, tty = false, now = fake_clock(1000) })
    p:start(10000)
    for i = 1, 10000 do p:update(i) end
    p:finish()
    assert.are.equal("[▓▓▓▓▓▓▓▓▓▓] 10000/10000 (100%) - ETA: 0s\n", out.text)
  end)

  it("prints a line every 30 s when a tenth takes longer", function()
    local out = capture()
    local p = progress.new({ stream = out, tty = false, now = fake_clock(10 * 1000000000) })
    p:start(100)
    for i = 1, 9 do p:update(i) end
    assert.are.equal(3, select(2, out.text:gsub("\n", "")))
  end)

  it("redraws in place on a terminal", function()
    local out = capture()
    local p = progress.new({ stream = out, tty = true })
    p:start(3)
    for i = 1, 3 do p:update(i) end
    p:finish()
    assert.truthy(out.text:find("\r", 1, true))
    assert.truthy(out.text:find("3/3 (100%)", 1, true))
  end)

  it("quiet hides info and the bar but not warnings", function()
    local out = capture()
    local p = progress.new({ stream = out, quiet = true, tty = false })
    p:info("hidden")
    p:start(1)
    p:update(1)
    p:warn("shown")
    assert.are.equal("shown\n", out.text)
  end)
end)
