-- helper.lua - shared spec set-up: where the build put the binary and fixtures.
local build = os.getenv("FLUXLOOP_BUILD") or "build"
FLUXLOOP_BUILD = build
FLUXLOOP_BIN = os.getenv("FLUXLOOP_BIN") or (build .. "/fluxloop")
