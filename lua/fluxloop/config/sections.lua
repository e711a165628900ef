-- config/sections.lua - reads a config file, and merges the section files a Python fluxloop
-- project splits its config into (configs/project.yaml, input.yaml, simulation.yaml).
local fs = require("fluxloop.fs")
local util = require("fluxloop.util")
local checker = require("fluxloop.config.checker")

local M = {}

M.NOT_FOUND_HINT = "(run fluxloop from your project folder, which holds "
  .. "configs/simulation.yaml, or pass --config FILE)"
local NOT_FOUND_HINT = M.NOT_FOUND_HINT

local function null() return require("fluxloop.json").null end
local join_key, got = checker.join_key, checker.got

-- Joins a display folder and a file name without a leading "./".
function M.display_join(dir, name)
  if dir == "." then return name end
  return util.join_path(dir, name)
end
local display_join = M.display_join

local function tag_marks(marks, file)
  for _, m in pairs(marks) do m.file = file end
  return marks
end

local function has_prefix(p, prefix)
  return p == prefix or p:sub(1, #prefix + 1) == prefix .. "."
end

-- Deep-merges src into dst (both mappings at path): mappings merge, anything
-- else from src replaces; marks follow the value that won.
local function merge_into(dst, dmarks, src, smarks, path)
  local skeys = (smarks[path] and smarks[path].keys) or util.sorted_keys(src)
  local dmark = dmarks[path]
  if dmark == nil then
    dmark = { line = 1, col = 1, keys = {} }
    dmarks[path] = dmark
  end
  dmark.keys = dmark.keys or {}
  for _, k in ipairs(skeys) do
    local p = join_key(path, k)
    local dv, sv = dst[k], src[k]
    if util.is_mapping(dv) and util.is_mapping(sv) then
      merge_into(dv, dmarks, sv, smarks, p)
    else
      if dv == nil then dmark.keys[#dmark.keys + 1] = k end
      dst[k] = sv
      for mp in pairs(dmarks) do
        if has_prefix(mp, p) then dmarks[mp] = nil end
      end
      for mp, m in pairs(smarks) do
        if has_prefix(mp, p) then dmarks[mp] = m end
      end
    end
  end
end

-- Reads and decodes one file; returns doc, marks or nil, message.
local function decode_file(abs, display)
  local text, err = util.read_file(abs)
  if text == nil then
    if not fs.exists(abs) then
      return nil, "config file not found: " .. display .. " " .. NOT_FOUND_HINT
    end
    return nil, "cannot read " .. display .. ": " .. tostring(err)
  end
  local doc, marks = require("fluxloop.yaml").decode(text, display, true)
  if doc == nil then return nil, marks end
  return doc, tag_marks(marks or {}, display)
end

M.SECTION_FILES = { "project.yaml", "input.yaml" }

-- The sections a Python project splits its config into, merged in the order
-- project -> input -> the named file, when that file sits in configs/ beside them
-- (simulation.yaml, or another such as configs/support.yaml given to --config).
-- Returns doc, marks, merged (the display names of the section files merged in, when the
-- file is not simulation.yaml: the caller says so in a notice) or nil, message.
function M.load(abs, display)
  local sections = {}
  local dir = util.dirname(abs)
  local base = util.basename(abs)
  local is_section = base == M.SECTION_FILES[1] or base == M.SECTION_FILES[2]
  if not is_section and util.basename(dir) == "configs" then
    for _, name in ipairs(M.SECTION_FILES) do
      local p = util.join_path(dir, name)
      if fs.exists(p) then
        sections[#sections + 1] = { abs = p, display = display_join(util.dirname(display), name) }
      end
    end
  end
  sections[#sections + 1] = { abs = abs, display = display }
  local doc, marks
  local all_empty = true
  for _, s in ipairs(sections) do
    local d, m = decode_file(s.abs, s.display)
    if d == nil then return nil, m end
    if d ~= null() then
      all_empty = false
      if not util.is_mapping(d) then
        local mark = m[""] or { line = 1, col = 1 }
        return nil, string.format("%s:%d:%d: the config must be a mapping of keys "
          .. "(runner:, output:, ...), got %s", s.display, mark.line, mark.col, got(d))
      end
      if doc == nil then
        doc, marks = d, m
      else
        merge_into(doc, marks, d, m, "")
      end
    end
  end
  if all_empty then
    return nil, display .. ": the config is empty; it needs at least runner.target"
  end
  local merged
  if base ~= "simulation.yaml" and #sections > 1 then
    merged = {}
    for i = 1, #sections - 1 do merged[i] = sections[i].display end
  end
  return doc, marks, merged
end

-- merged_notice(display, merged) -> the notice line that says which section files a config
-- other than simulation.yaml was merged with.
function M.merged_notice(display, merged)
  return ("notice: %s is merged over %s, the Python section files beside it (its own keys win)")
    :format(display, table.concat(merged, " and "))
end

return M
