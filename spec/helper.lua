-- helper.lua - shared spec set-up: where the build put the binary and fixtures (absolute,
-- since integration specs run the binary from temporary project folders).
local fs = require("fluxloop.fs")
local build = os.getenv("FLUXLOOP_BUILD") or fs.realpath("build") or "build"
FLUXLOOP_BUILD = build
FLUXLOOP_BIN = os.getenv("FLUXLOOP_BIN") or (build .. "/fluxloop")
