-- init_project_spec.lua - `fluxloop init project`: a project that runs at once, refusal of an
-- existing one, --force, and templates from files (embedded, or on the Lua path).
local P = require("support.project")
local init = require("fluxloop.init_project")

local function files_of(dir)
  local h = io.popen("cd " .. P.quote(dir) .. " && find . -type f | sort")
  local list = {}
  for line in h:lines() do list[#list + 1] = line:sub(3) end
  h:close()
  return list
end

describe("fluxloop init project", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("writes a Lua project that `run experiment` runs with no edit", function()
    local code, _, err = P.run(dir, "init project demo")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("Next: cd demo && fluxloop run experiment", 1, true), err)
    assert.are.same({ ".env", ".gitignore", "configs/input.yaml", "configs/project.yaml", "configs/simulation.yaml",
      "examples/my_agent.lua", "inputs/generated.yaml" }, files_of(dir .. "/demo"))
    local env = P.read(dir .. "/demo/.env")
    assert.truthy(env:find("# OPENAI_API_KEY=", 1, true), env)
    for line in env:gmatch("[^\n]+") do assert.truthy(line:match("^#"), "an uncommented line in .env: " .. line) end
    assert.truthy(P.read(dir .. "/demo/.gitignore"):find("experiments/\n", 1, true))
    code, _, err = P.run(dir .. "/demo", "run experiment")
    assert.are.equal(0, code, err)
    local exp = P.experiments(dir .. "/demo")
    assert.are.equal(1, #exp)
    assert.truthy(exp[1]:match("/demo_%d+_%d+$"), exp[1]) -- configs/project.yaml names it
    local summary = P.read_json(exp[1] .. "/summary.json")
    assert.are.equal(9, summary.total_traces)
    assert.are.equal(9, summary.successful)
    local rows = P.read_jsonl(exp[1] .. "/traces.jsonl")
    assert.are.equal("lookup", rows[1].observations[1].name)
  end)

  it("--python writes a Python agent (@fluxloop.agent) that runs with no edit", function()
    local code, _, err = P.run(dir, "init project --python --quiet")
    assert.are.equal(0, code, err)
    assert.are.equal("", err)
    local agent = P.read(dir .. "/examples/my_agent.py")
    assert.truthy(agent:find("@fluxloop.agent()", 1, true), agent)
    assert.is_nil(P.read(dir .. "/examples/my_agent.lua"))
    code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(9, #rows)
    assert.are.equal("Run `fluxloop run experiment` in the project folder.", rows[1].output)
    local names = {}
    for _, o in ipairs(rows[1].observations) do names[#names + 1] = o.name end
    assert.truthy(table.concat(names, ","):find("lookup", 1, true), table.concat(names, ","))
  end)

  it("refuses an existing project (exit 2) and changes nothing", function()
    assert.are.equal(0, (P.run(dir, "init project --quiet")))
    P.write(dir, "configs/simulation.yaml", "# mine\nrunner:\n  target: examples.my_agent:run\n")
    P.write(dir, "examples/my_agent.lua", "return { run = function() return 'mine' end }\n")
    local before = {}
    for _, f in ipairs(files_of(dir)) do before[f] = P.read(dir .. "/" .. f) end
    local code, _, err = P.run(dir, "init project .")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("already holds a project", 1, true), err)
    assert.truthy(err:find("configs/simulation.yaml", 1, true), err)
    assert.truthy(err:find("--force", 1, true), err)
    local after = {}
    for _, f in ipairs(files_of(dir)) do after[f] = P.read(dir .. "/" .. f) end
    assert.are.same(before, after)
  end)

  it("--force writes over the project's files, keeps .env and adds what .gitignore lacks", function()
    P.write(dir, "configs/simulation.yaml", "runner:\n  target: broken\n")
    P.write(dir, ".env", "OPENAI_API_KEY=sk-mine\n")
    P.write(dir, ".gitignore", "node_modules/\nexperiments/")
    local code, _, err = P.run(dir, "init project --force")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("overwritten configs/simulation.yaml", 1, true), err)
    assert.are.equal("OPENAI_API_KEY=sk-mine\n", P.read(dir .. "/.env"))
    assert.are.equal("node_modules/\nexperiments/\n.env\n__pycache__/\n", P.read(dir .. "/.gitignore"))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
  end)

  it("a folder with only a .gitignore is no project: init adds its lines", function()
    P.write(dir, ".gitignore", "*.o\n")
    local code, _, err = P.run(dir, "init project")
    assert.are.equal(0, code, err)
    assert.are.equal("*.o\nexperiments/\n.env\n__pycache__/\n", P.read(dir .. "/.gitignore"))
  end)

  it("a template on the Lua path wins over the embedded one", function()
    P.write(dir, "mine/fluxloop/templates/project/lua/examples/my_agent.lua",
      "return { run = function(input) return 'custom: ' .. input end }\n")
    local code, _, err = P.run(dir, "init project p --quiet", "FLUXLOOP_LUA_PATH=" .. P.quote(dir .. "/mine"))
    assert.are.equal(0, code, err)
    assert.truthy(P.read(dir .. "/p/examples/my_agent.lua"):find("custom: ", 1, true))
    assert.are.equal(0, (P.run(dir .. "/p", "run experiment --quiet")))
    local rows = P.read_jsonl(P.experiments(dir .. "/p")[1] .. "/trace_summary.jsonl")
    assert.are.equal("custom: How do I get started?", rows[1].output)
  end)

  it("usage errors exit 2 and say what to type", function()
    local cases = {
      { "init", "missing 'project' after 'init'" },
      { "init projet", "unknown command 'init projet'" },
      { "init project a b", "takes one folder" },
      { "init project --pyton", "did you mean '--python'" },
      { "init project --force=yes", "--force takes no value" },
    }
    for _, c in ipairs(cases) do
      local code, _, err = P.run(dir, c[1])
      assert.are.equal(2, code, c[1] .. ": " .. err)
      assert.truthy(err:find(c[2], 1, true), c[1] .. ": " .. err)
    end
    P.write(dir, "afile", "x")
    local code, _, err = P.run(dir, "init project afile")
    assert.are.equal(2, code, err)
    assert.truthy(err:find("not a folder", 1, true), err)
    local hcode, out = P.run(dir, "init project --help")
    assert.are.equal(0, hcode)
    assert.truthy(out:find("Usage: fluxloop init project", 1, true))
  end)

  it("names the project after its folder, as a results folder name can be", function()
    assert.are.equal("my_project", init.name_of("/tmp/my project"))
    assert.are.equal("project_2024", init.name_of("/x/2024"))
    assert.are.equal("demo-1.x", init.name_of("/x/demo-1.x"))
  end)

  it("templates are files, not modules: --version -v does not list them", function()
    local code, out = P.run(dir, "--version -v")
    assert.are.equal(0, code)
    assert.is_nil(out:find("templates", 1, true), out)
    assert.truthy(out:find("fluxloop.init_project", 1, true), out)
  end)
end)
