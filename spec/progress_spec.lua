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

  it("prints about ten lines on a pipe, not one per run", function()
    local out = capture()
    local p = progress.new({ stream = out, tty = false })
    p:start(10000)
    for i = 1, 10000 do p:update(i) end
    p:finish()
    local lines = select(2, out.text:gsub("\n", ""))
    assert.is_true(lines >= 10 and lines <= 11, tostring(lines))
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
