-- sample.lua - a seeded random sample of N inputs, kept in file order, so the same seed
-- always runs the same inputs.
--   SAMPLE_N=2 SAMPLE_SEED=7 fluxloop run experiment --hooks examples/hooks/sample.lua
local n = tonumber(os.getenv("SAMPLE_N") or "2")
local seed = tonumber(os.getenv("SAMPLE_SEED") or "42")

return {
  filter_inputs = function(entries)
    math.randomseed(seed)
    local order = {}
    for i = 1, #entries do order[i] = i end
    for i = #order, 2, -1 do -- Fisher-Yates
      local j = math.random(i)
      order[i], order[j] = order[j], order[i]
    end
    local picked = {}
    for i = 1, math.min(n, #order) do picked[i] = order[i] end
    table.sort(picked)
    local sample = {}
    for i, index in ipairs(picked) do sample[i] = entries[index] end
    return sample
  end,
}
