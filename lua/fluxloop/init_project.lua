-- init_project.lua - `fluxloop init project [DIR]`: writes a project that runs at once, from
-- the template files under lua/fluxloop/templates/project/ (embedded in the binary; a file
-- of the same path on the Lua path wins).
local args_mod = require("fluxloop.args")
local fs = require("fluxloop.fs")
local host = require("fluxloop.host")
local util = require("fluxloop.util")

local M = {}

M.USAGE = [[
Usage: fluxloop init project [DIR] [--python] [--force]

Writes a fluxloop project into DIR (default: the current folder; made if missing) that
runs at once: `cd DIR && fluxloop run experiment`.

  configs/project.yaml      the project's name (names the results folders)
  configs/input.yaml        base inputs, personas, strategies: what
                            `fluxloop generate inputs` reads
  configs/simulation.yaml   runner.target, iterations, parallel, timeout
  inputs/generated.yaml     three inputs to start with
  examples/my_agent.lua     the agent (examples/my_agent.py with --python)
  .gitignore                experiments/ and .env (lines added to an existing one)
  .env                      commented API keys (an existing one is kept)

Options:
  --python    A Python agent (@fluxloop.agent) instead of a Lua one.
  --force     Write over the files of an existing project.
  --quiet     Print only errors.
  -h, --help  This text.

Exit codes: 0 written; 2 usage error, DIR already holds a project (nothing written)
or cannot be written.
]]

local SPEC = { ["--python"] = "bool", ["--force"] = "bool", ["--quiet"] = "bool", ["--help"] = "bool" }
local SEE = "; see 'fluxloop init project --help'"
local TEMPLATES = "lua/fluxloop/templates/project/"

-- Files the user may already have for other reasons: merged or kept, never refused.
local MERGED = { [".gitignore"] = "lines", [".env"] = "keep" }

-- A template's text: a file on the Lua path (DIR/fluxloop/templates/...) wins.
local function template_text(path)
  return (assert(require("fluxloop.template").source(path), "no embedded template " .. path))
end

-- The files of a project: { rel = "configs/input.yaml", template = path } in build order.
function M.files(python)
  local out = {}
  for _, variant in ipairs({ "common", python and "python" or "lua" }) do
    local prefix = TEMPLATES .. variant .. "/"
    for _, path in ipairs(host.embedded_files(prefix)) do
      local rel = path:sub(#prefix + 1):gsub("^dot%-", "."):gsub("/dot%-", "/.")
      out[#out + 1] = { rel = rel, template = path }
    end
  end
  return out
end

-- The project's name from its folder: letters, digits, '_', '.', '-' (a results folder name).
function M.name_of(dir)
  local name = util.basename(dir):gsub("[^%w_.-]", "_")
  if not name:match("^%a") then name = "project_" .. name end
  return name
end

local function render(text, name)
  return (text:gsub("{{name}}", name))
end

local function write(path, text)
  local ok, err = fs.mkdirs(util.dirname(path))
  if not ok then return nil, err end
  local f, ferr = io.open(path, "wb")
  if not f then return nil, ferr end
  local wok, werr = f:write(text)
  local cok, cerr = f:close()
  if not wok or not cok then return nil, ("%s: %s"):format(path, tostring(werr or cerr)) end
  return true
end

-- The lines of text missing from the existing file's lines, appended after them.
local function merge_lines(existing, text)
  local have = {}
  for line in existing:gmatch("[^\n]+") do have[line] = true end
  local add = {}
  for line in text:gmatch("[^\n]+") do
    if not have[line] and not line:match("^#") then add[#add + 1] = line end
  end
  if #add == 0 then return nil end
  local sep = existing == "" or existing:sub(-1) == "\n" and "" or "\n"
  return existing .. sep .. table.concat(add, "\n") .. "\n"
end

-- plan(dir, files, force) -> actions | nil, message: what each file becomes, decided
-- before anything is written, so a refusal changes nothing.
local function plan(dir, files, force, name)
  local actions, existing = {}, {}
  for _, f in ipairs(files) do
    local path = dir .. "/" .. f.rel
    local text = render(template_text(f.template), name)
    local old = fs.exists(path) and util.read_file(path)
    if fs.isdir(path) then return nil, ("%s is a folder; it must be free for the file %s"):format(path, f.rel) end
    if old and MERGED[f.rel] == "keep" then
      actions[#actions + 1] = { rel = f.rel, what = "kept" }
    elseif old and MERGED[f.rel] == "lines" then
      local merged = merge_lines(old, text)
      actions[#actions + 1] = { rel = f.rel, path = path, text = merged, what = merged and "added to" or "kept" }
    else
      if old then existing[#existing + 1] = f.rel end
      actions[#actions + 1] = { rel = f.rel, path = path, text = text, what = old and "overwritten" or "written" }
    end
  end
  if #existing > 0 and not force then
    return nil, ("%s already holds a project (%s exist%s); nothing was written. --force writes over them")
      :format(dir, table.concat(existing, ", "), #existing == 1 and "s" or "")
  end
  return actions
end

-- init(dir, opts) -> actions | nil, message. opts: python, force.
function M.init(dir, opts)
  opts = opts or {}
  if fs.exists(dir) and not fs.isdir(dir) then return nil, dir .. " exists and is not a folder" end
  local abs = util.abspath(dir)
  local actions, err = plan(abs, M.files(opts.python), opts.force, M.name_of(fs.realpath(abs) or abs))
  if not actions then return nil, err end
  for _, a in ipairs(actions) do
    if a.text then
      local ok, werr = write(a.path, a.text)
      if not ok then return nil, ("cannot write %s: %s"):format(a.path, tostring(werr)) end
    end
  end
  return actions
end

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

-- main(args) -> exit status; args are the words after `init`.
function M.main(args)
  local opts, positional = args_mod.parse(args, SPEC, SEE)
  if not opts then say("fluxloop: error: ", positional) return 2 end
  if opts.help then io.stdout:write(M.USAGE) return 0 end
  if positional[1] ~= "project" then
    say("fluxloop: error: ", positional[1] and ("unknown command 'init " .. positional[1] .. "'") or "missing "
      .. "'project' after 'init'", ": try 'fluxloop init project [DIR]'", SEE)
    return 2
  end
  if #positional > 2 then
    say("fluxloop: error: init project takes one folder, got ", #positional - 1, " arguments", SEE)
    return 2
  end
  local dir = positional[2] or "."
  local actions, err = M.init(dir, opts)
  if not actions then say("fluxloop: error: ", err) return 2 end
  if not opts.quiet then
    for _, a in ipairs(actions) do say(("  %-11s %s"):format(a.what, a.rel)) end
    local cd = dir == "." and "" or ("cd " .. dir .. " && ")
    say(("[INFO] Project %s is ready. Next: %sfluxloop run experiment"):format(M.name_of(fs.realpath(dir) or dir), cd))
  end
  return 0
end

return M
