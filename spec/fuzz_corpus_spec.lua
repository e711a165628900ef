-- fuzz_corpus_spec.lua - replays the fuzz corpus (spec/fuzz/corpus/<target>/ and seeds/<target>/)
-- through each harness of spec/fuzz/, built with the normal compiler (`make fuzz-bin`).
local TARGETS = { "json", "yaml", "config", "inputs", "recording", "jsonl" }

describe("fuzz corpus", function()
  for _, t in ipairs(TARGETS) do
    it("replays the " .. t .. " inputs without a failure", function()
      local bin = FLUXLOOP_BUILD .. "/fuzz/" .. t
      local p = assert(io.popen(string.format("'%s' spec/fuzz/corpus/%s spec/fuzz/seeds/%s 2>&1", bin, t, t)))
      local out = p:read("a")
      local ok = p:close()
      assert(ok, out)
      assert.matches(": %d+ inputs, no failures", out)
    end)
  end
end)
