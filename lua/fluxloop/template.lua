-- template.lua - the report's HTML/SVG templates: files of named blocks, {{name}} (escaped) and
-- {{{name}}} (already HTML) placeholders. A file on the Lua path (lua/fluxloop/report/NAME.html in
-- the project) wins over the copy embedded in the binary.
local host = require("fluxloop.host")

local M = {}

local Template = {}
Template.__index = Template

local read = require("fluxloop.util").read_file

-- source(path) -> text, where | nil: a file of the source tree ("lua/fluxloop/report/page.html",
-- "lua/fluxloop/templates/..."): the same file under a folder of package.path (a project's
-- lua/, --lua-path) wins over the copy embedded in the binary.
function M.source(path)
  local rel = path:gsub("^lua/", "")
  for entry in package.path:gmatch("[^;]+") do
    if entry:sub(-5) == "?.lua" then
      local file = entry:sub(1, -6) .. rel
      local text = read(file)
      if text then return text, file end
    end
  end
  local text = host.embedded_source(path)
  if text then return text, "(embedded)" end
  return nil
end

-- find(name) -> text, where: name like "report/page" (lua/fluxloop/report/page.html).
local function find(name)
  return M.source("lua/fluxloop/" .. name .. ".html")
end

-- load(name) -> template | raises when there is no such template (a broken install).
function M.load(name)
  local text, where = find(name)
  if not text then error("no template " .. name .. ".html") end
  local blocks = {}
  for block, body in text:gmatch("<!%-%-block ([%w_]+)%-%->(.-)<!%-%-end %1%-%->") do
    blocks[block] = body:gsub("\n$", "")
  end
  return setmetatable({ blocks = blocks, where = where }, Template)
end

local ESC = { ["&"] = "&amp;", ["<"] = "&lt;", [">"] = "&gt;", ['"'] = "&quot;", ["'"] = "&#39;" }

function M.escape(s)
  return (tostring(s):gsub("[&<>\"']", ESC))
end

-- t:render(block, vars) -> text. A missing variable is an error: a template and its code disagree.
function Template:render(block, vars)
  local body = self.blocks[block]
  if not body then error("template has no block '" .. block .. "' (" .. self.where .. ")") end
  return (body:gsub("{{({?)([%w_]+)}?}}", function(raw, name)
    local v = vars[name]
    if v == nil then error(("template block '%s' needs '%s'"):format(block, name)) end
    if raw == "{" then return tostring(v) end
    return M.escape(v)
  end))
end

return M
