-- The README's "Starting a project: init and generate" section runs as written: its shell
-- blocks, in order, in one shell (`set -e`), in an empty folder, with `fluxloop` on PATH and
-- OPENAI_BASE_URL at the local mock, from `init project` to a report.
local mock = require("support.mock_server")
local P = require("support.project")

local function section_blocks()
  local text = assert(P.read("README.md"))
  local body = text:match("\n## Starting a project: init and generate\n(.-)\n## ")
  assert(body, "README.md has no section 'Starting a project: init and generate'")
  local blocks = {}
  for code in body:gmatch("```sh\n(.-)```") do blocks[#blocks + 1] = code end
  return blocks
end

describe("README: Starting a project", function()
  it("its shell blocks run as written, from init project to a report", function()
    local blocks = section_blocks()
    assert.is_true(#blocks >= 2, #blocks)
    local server = mock.start()
    local dir = P.new()
    os.execute(("mkdir -p %s/bin && ln -s %s %s/bin/fluxloop"):format(P.quote(dir), P.quote(P.bin()), P.quote(dir)))
    P.write(dir, "work/script.sh", "set -e\n" .. table.concat(blocks, "\n"))
    local cmd = ("cd %s/work && PATH=%s/bin:$PATH OPENAI_BASE_URL=%s/v1 FLUXLOOP_LLM_API_KEY= sh script.sh "
      .. ">out 2>err"):format(P.quote(dir), P.quote(dir), server.base)
    local ok = os.execute(cmd)
    local err = P.read(dir .. "/work/err") or ""
    local requests = server:stats().requests
    server:stop()
    local project = dir .. "/work/support-bot"
    local folders = P.experiments(project)
    local batch = folders[1] or "" -- batch1_... sorts before support-bot_...
    local report = P.read(batch .. "/report.html")
    local rows = P.read(project .. "/inputs/batch1.yaml")
    P.remove(dir)
    assert.is_true(ok == true, err)
    assert.are.equal(12, requests)
    assert.truthy(rows and rows:find("generation_mode: llm", 1, true), rows)
    assert.are.equal(2, #folders)
    assert.truthy(batch:match("/batch1_%d+_%d+$"), batch)
    assert.truthy(report and report:find("<html", 1, true), "no report.html")
  end)
end)
