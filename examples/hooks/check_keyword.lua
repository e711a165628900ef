-- check_keyword.lua - a check after every run: the answer must mention a keyword.
-- A run that misses it fails with error type "check" and keeps its output.
--   KEYWORD=fluxloop fluxloop run experiment --hooks examples/hooks/check_keyword.lua
local keyword = os.getenv("KEYWORD") or "fluxloop"

return {
  after_run = function(run, trace)
    if not trace.success then return end
    local text = type(trace.output) == "string" and trace.output or require("fluxloop.json").encode(trace.output)
    trace.metadata.keyword = keyword
    if not text:lower():find(keyword:lower(), 1, true) then
      return false, ("output must mention %q"):format(keyword)
    end
  end,
}
