-- The README's "Grading" section runs as written: its shell blocks, in order, in one shell
-- (`set -e`), in an empty folder, with `fluxloop` on PATH and OPENAI_BASE_URL at a local judge
-- (spec/support/mock_judge.py); the grades it prints are the ones the section shows.
local mock = require("support.mock_server")
local P = require("support.project")

local readme = require("support.readme")

local function section()
  local blocks, body = readme.sh_blocks("Grading")
  local shown = body:match("```\n(%[INFO%] Done:.-)```")
  return blocks, assert(shown, "the section shows no output")
end

describe("README: Grading", function()
  it("its shell blocks run as written, and print the grades the section shows", function()
    local blocks, shown = section()
    assert.is_true(#blocks >= 2, #blocks)
    local server = mock.start(nil, "mock_judge.py")
    local ok, err, dir = readme.run(blocks, ("OPENAI_BASE_URL=%s/v1 OPENAI_API_KEY=sk-readme-spec-000 "
      .. "FLUXLOOP_LLM_API_KEY="):format(server.base))
    local requests = server:stats().requests
    server:stop()
    local report = P.read(select(1, (io.popen("ls -d " .. P.quote(dir) .. "/work/graded/experiments/*/"):read("l")))
      .. "report.html")
    P.remove(dir)
    assert.is_true(ok, err)
    for line in shown:gmatch("[^\n]+") do
      if line:find("^  ") then assert.truthy(err:find(line, 1, true), "not printed: " .. line .. "\n" .. err) end
    end
    -- 3 distinct answers (3 inputs, 3 iterations each): judged once each, but workers of
    -- --parallel 8 that ask at the same moment each ask
    assert.is_true(requests >= 3 and requests <= 9, requests)
    assert.truthy(report and report:find("<html", 1, true), "no report.html")
  end)
end)
