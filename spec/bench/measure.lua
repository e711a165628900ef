-- measure.lua CMD... - runs one shell command and prints "wall_ms peak_rss_kb exit_code start_iso".
-- A process of its own per measurement, so the peak RSS of children is this command's alone.
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local started = clock.utc_iso()
local t0 = clock.now_ns()
local _, _, code = os.execute(table.concat(arg, " "))
local wall = (clock.now_ns() - t0) / 1e6
print(("%.3f %d %d %s"):format(wall, fs.peak_rss_kb("children"), code, started))
