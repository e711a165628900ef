-- The README's "Starting a project: init and generate" section runs as written: its shell
-- blocks, in order, in one shell (`set -e`), in an empty folder, with `fluxloop` on PATH and
-- OPENAI_BASE_URL at the local mock, from `init project` to a report.
local mock = require("support.mock_server")
local P = require("support.project")

local readme = require("support.readme")

describe("README: Starting a project", function()
  it("its shell blocks run as written, from init project to a report", function()
    local blocks = readme.sh_blocks("Starting a project: init and generate")
    assert.is_true(#blocks >= 2, #blocks)
    local server = mock.start()
    local ok, err, dir = readme.run(blocks, ("OPENAI_BASE_URL=%s/v1 FLUXLOOP_LLM_API_KEY="):format(server.base))
    local requests = server:stats().requests
    server:stop()
    local project = dir .. "/work/support-bot"
    local folders = P.experiments(project)
    local batch = folders[1] or "" -- batch1_... sorts before support-bot_...
    local report = P.read(batch .. "/report.html")
    local rows = P.read(project .. "/inputs/batch1.yaml")
    P.remove(dir)
    assert.is_true(ok, err)
    assert.are.equal(12, requests)
    assert.truthy(rows and rows:find("generation_mode: llm", 1, true), rows)
    assert.are.equal(2, #folders)
    assert.truthy(batch:match("/batch1_%d+_%d+$"), batch)
    assert.truthy(report and report:find("<html", 1, true), "no report.html")
  end)
end)
