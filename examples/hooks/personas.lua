-- personas.lua - keep only the inputs of some personas.
--   fluxloop run experiment --hooks examples/hooks/personas.lua
-- KEEP_PERSONAS=a,b picks others (default: novice_user).
local keep = {}
for name in (os.getenv("KEEP_PERSONAS") or "novice_user"):gmatch("[^,%s]+") do keep[name] = true end

return {
  filter_input = function(entry)
    return keep[entry.persona] == true
  end,
}
