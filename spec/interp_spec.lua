-- interp_spec.lua - fluxloop-lua (src/interp.c), the interpreter the specs and tools run scripts with.
local P = require("support.project")

describe("fluxloop-lua", function()
  it("hands a script many arguments, in arg and in ...", function()
    local dir = P.new()
    local script = dir .. "/count.lua"
    P.write(dir, "count.lua", 'local n = select("#", ...)\nprint(n, #arg, (select(n, ...)), arg[n])\n')
    local args = {}
    for i = 1, 300 do args[i] = "a" .. i end
    local h = io.popen(("%s %s %s 2>&1"):format(P.quote(os.getenv("FLUXLOOP_BUILD") .. "/fluxloop-lua"),
      P.quote(script), table.concat(args, " ")))
    local out = h:read("a")
    local ok = h:close()
    P.remove(dir)
    assert.is_true(ok, out)
    assert.are.equal("300\t300\ta300\ta300\n", out)
  end)
end)
