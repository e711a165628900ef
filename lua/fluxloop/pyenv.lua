-- pyenv.lua - the interpreter a pyenv shim would run, found without running the shim.
-- `python3` on PATH is often pyenv's shim, a bash script that takes ~250 ms to pick the
-- version: more than the rest of a Python worker's start. This follows pyenv's own rules
-- (PYENV_VERSION, then .python-version from the worker's folder up, then the global version
-- file; "system" is the next python3 on PATH) and gives up, keeping the shim, whenever the
-- answer is not plain (a version prefix, a plugin's hook, a missing version).
local fs = require("fluxloop.fs")

local M = {}

-- which(name, path, skip) -> the first executable name in the PATH string path, skipping
-- the folder skip | nil.
function M.which(name, path, skip)
  for dir in (path or ""):gmatch("[^:]+") do
    if dir ~= skip and fs.executable(dir .. "/" .. name) then return dir .. "/" .. name end
  end
  return nil
end

local function read_head(file, bytes)
  local f = io.open(file, "rb")
  if not f then return nil end
  local text = f:read(bytes)
  f:close()
  return text
end

-- The versions a version file names, in order (words; '#' lines are comments).
local function versions_in(file)
  local f = io.open(file, "r")
  if not f then return nil end
  local list = {}
  for line in f:lines() do
    if not line:match("^%s*#") then
      for word in line:gmatch("%S+") do
        if word ~= ".." and not word:find("/", 1, true) then list[#list + 1] = word end
      end
    end
  end
  f:close()
  return #list > 0 and list or nil
end

-- The versions pyenv would use in folder dir.
local function versions(root, dir, getenv)
  local env = getenv("PYENV_VERSION")
  if env and env ~= "" then
    local list = {}
    for v in env:gmatch("[^:]+") do list[#list + 1] = v end
    return list
  end
  local d = dir
  while d and d ~= "" do
    local list = versions_in(d .. "/.python-version")
    if list then return list end
    if d == "/" then break end
    d = d:match("^(.*)/[^/]*$")
    if d == "" then d = "/" end
  end
  return versions_in(root .. "/version") or { "system" }
end

-- resolve(name, dir [, getenv]) -> the interpreter `name` (e.g. "python3") on PATH runs when
-- started in folder dir: its path past a pyenv shim, the shim's path when that cannot be
-- told for sure, or name itself when it is not on PATH.
function M.resolve(name, dir, getenv)
  getenv = getenv or os.getenv
  local path = getenv("PATH")
  local found = M.which(name, path)
  if not found then return name end
  local head = read_head(found, 1024) or ""
  if not (head:match("^#!") and head:find("pyenv\"? exec", 1, false)) then return found end
  -- A shim: PYENV_ROOT as the shim exports it, else the environment's, else its parent.
  local shims = found:match("^(.*)/[^/]+$")
  local root = head:match('export PYENV_ROOT="([^"]+)"') or getenv("PYENV_ROOT") or shims:match("^(.*)/[^/]+$")
  if getenv("PYENV_DIR") then dir = getenv("PYENV_DIR") end
  for _, v in ipairs(versions(root, dir, getenv)) do
    if v == "system" then
      local system = M.which(name, path, shims)
      if system then return system end
    else
      local exe = ("%s/versions/%s/bin/%s"):format(root, v, name)
      if fs.executable(exe) then return exe end
      if not fs.isdir(("%s/versions/%s"):format(root, v)) then return found end -- a prefix: pyenv's to work out
    end
  end
  return found
end

return M
