-- textstats_agent.lua - a Lua agent around a plain C library (examples/native/textstats.c)
-- called through fluxloop.ffi; `make` builds the library into build/examples/.
local ffi = require("fluxloop.ffi")

local M = {}

-- The library sits at build/examples/ under the project folder (the parent of examples/).
local here = debug.getinfo(1, "S").source:match("^@(.*)/[^/]*$") or "."
local path = here .. "/../build/examples/libtextstats.so"
local lib, err = ffi.load(path)
if not lib then error(err .. "\n(run `make` in the fluxloop folder to build the examples)", 0) end

-- Declared once, at load time: a wrong name or type fails here, not in every run.
local words = assert(lib:fn("size_t ts_words(const char *text)"))
local sentences = assert(lib:fn("ts_sentences", "size_t", { "string" }))
local avg_len = assert(lib:fn("double ts_avg_word_length(const char *text)"))
local level = assert(lib:fn("const char *ts_level(double avg)"))

function M.run(input, ctx)
  if type(input) ~= "string" then error({ type = "bad_input", message = "textstats needs a text input" }) end
  local stats = ctx:span({ name = "textstats", type = "tool" }, function(text)
    local avg = avg_len(text)
    return { words = words(text), sentences = sentences(text), avg_word_length = avg, level = level(avg) }
  end, input)
  ctx:observe{ type = "evaluation", name = "readability", output = stats.level }
  return stats
end

return M
