-- messages_spec.lua - what fluxloop says about damaged folders and hostile text (issue 22.12):
-- a damaged summary.json is said to be damaged, with the parser's position; control characters
-- from errors never reach the terminal raw; an error whose type is an object reads as JSON;
-- a name with a control character is refused.
local P = require("support.project")

local function sh_project(script)
  local dir = P.project({ iterations = 1, config = "runner:\n  command: [\"sh\", \"worker.sh\"]\n"
    .. "  target: \"w:run\"\n  iterations: 1\n" })
  P.write(dir, "worker.sh", script)
  return dir
end

describe("messages", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("a damaged summary.json is called damaged, with the JSON error's position, by report, parse, compare", function()
    dir = P.project({ iterations = 1 })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    P.write(exp, "summary.json", '{"name": "x", "total')
    for _, args in ipairs({ "report " .. P.quote(exp), "parse experiment " .. P.quote(exp),
      "compare " .. P.quote(exp) .. " " .. P.quote(exp) }) do
      local code, _, err = P.run(dir, args)
      assert.are.equal(0, code, err)
      assert.truthy(err:find("summary.json is damaged (" .. exp .. "/summary.json:1:15: ", 1, true), err)
      assert.is_nil(err:find("has no summary.json", 1, true), err)
    end
  end)

  it("--resume of a folder whose plan.json is damaged says so, not that it has none", function()
    dir = P.project({ iterations = 1 })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local exp = P.experiments(dir)[1]
    P.write(exp, "plan.json", "{oops")
    local code, _, err = P.run(dir, "run experiment --resume " .. P.quote(exp))
    assert.are.equal(2, code, err)
    assert.truthy(err:find("plan.json is damaged (" .. exp .. "/plan.json:1:2", 1, true), err)
  end)

  it("escape sequences of an error message reach the closing summary escaped", function()
    dir = P.project({ iterations = 1, agent = 'return { run = function() error("\\27[2J\\27[31mred\\7 alert") end }\n' })
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(1, code, err)
    assert.truthy(err:find("Failed runs by error type", 1, true), err)
    assert.truthy(err:find("\\e[2J\\e[31mred\\x07 alert", 1, true), err)
    assert.is_nil(err:find("\27", 1, true), err)
    assert.is_nil(err:find("\7", 1, true), err)
  end)

  it("an error whose type and message are objects reads as JSON in the trace and the summary", function()
    dir = sh_project([[
read hello
echo '{"type":"hello","protocol":1}'
while read req; do
  id=$(echo "$req" | sed 's/.*"id":\([0-9]*\),.*/\1/')
  echo "{\"type\":\"result\",\"id\":$id,\"error\":{\"type\":{\"x\":1},\"message\":[\"a\",2]}}"
done
]])
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(1, code, err)
    local row = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
    assert.are.equal('{"x":1}', row.error.type)
    assert.are.equal('["a",2]', row.error.message)
    assert.truthy(err:find('{"x":1}', 1, true), err)
    assert.is_nil(err:find("table: 0x", 1, true), err)
    local rcode, _, rerr = P.run(dir, "report " .. P.quote(P.experiments(dir)[1]) .. " --quiet")
    assert.are.equal(0, rcode, rerr)
    local html = P.read(P.experiments(dir)[1] .. "/report.html")
    assert.is_nil(html:find("table: 0x", 1, true))
  end)

  it("--name with a newline (or any control character) is refused before anything runs", function()
    dir = P.project({ iterations = 1 })
    local code, _, err = P.run(dir, "run experiment --name \"$(printf 'a\\nb')\"")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("--name 'a\\x0ab'", 1, true), err)
    assert.truthy(err:find("control characters", 1, true), err)
    assert.are.same({}, P.experiments(dir))
    code, _, err = P.run(dir, "run experiment --name \"$(printf 'a\\033[31m')\"")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("'a\\e[31m'", 1, true), err)
  end)
end)
