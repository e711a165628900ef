-- python_bridge_spec.lua - runs the Python bridge's own tests (python/tests, stdlib unittest)
-- with the python3 fluxloop runs agents with; each unittest case is reported here by name.
local P = require("support.project")

describe("the Python bridge (python/tests)", function()
  local out = os.tmpname()
  local ok = os.execute(("python3 -m unittest discover -s python/tests -v >%s 2>&1"):format(P.quote(out)))
  local text = P.read(out) or ""
  os.remove(out)

  it("its tests run", function()
    assert.truthy(text:find("\nRan %d+ tests?"), text)
    assert.is_true(ok, text)
  end)

  for name, verdict in text:gmatch("(test_[%w_]+) %b() %.%.%. (%a+)") do
    it(name, function() assert.are.equal("ok", verdict, text) end)
  end
end)
