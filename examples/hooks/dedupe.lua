-- dedupe.lua - drop inputs whose text repeats an earlier one (ignoring case and spacing).
--   fluxloop run experiment --hooks examples/hooks/dedupe.lua
local function normal(text)
  return tostring(text):lower():gsub("%s+", " "):gsub("^ ", ""):gsub(" $", "")
end

return {
  filter_inputs = function(entries)
    local seen, kept = {}, {}
    for _, entry in ipairs(entries) do
      local key = normal(entry.input)
      if not seen[key] then
        seen[key] = true
        kept[#kept + 1] = entry
      end
    end
    return kept
  end,
}
