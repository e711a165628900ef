-- readme.lua - spec support: a README section's shell blocks, run as written: in order, in one
-- shell (`set -e`), in an empty folder, with `fluxloop` on PATH.
local P = require("support.project")

local M = {}

-- sh_blocks(title) -> the ```sh blocks of the README section "## title"
function M.sh_blocks(title)
  local text = assert(P.read("README.md"))
  local body = text:match("\n## " .. title:gsub("%p", "%%%0") .. "\n(.-)\n## ")
  assert(body, "README.md has no section '" .. title .. "'")
  local blocks = {}
  for code in body:gmatch("```sh\n(.-)```") do blocks[#blocks + 1] = code end
  return blocks, body
end

-- run(blocks, env) -> ok, stderr, dir: runs them in DIR/work (env: VAR=value words); the
-- caller removes dir (P.remove) once it has looked at what they made.
function M.run(blocks, env)
  local dir = P.new()
  os.execute(("mkdir -p %s/bin && ln -s %s %s/bin/fluxloop"):format(P.quote(dir), P.quote(P.bin()), P.quote(dir)))
  P.write(dir, "work/script.sh", "set -e\n" .. table.concat(blocks, "\n"))
  local ok = os.execute(("cd %s/work && PATH=%s/bin:$PATH %s sh script.sh >out 2>err"):format(P.quote(dir),
    P.quote(dir), env or ""))
  return ok == true, P.read(dir .. "/work/err") or "", dir
end

return M
