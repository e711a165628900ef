-- readme_spec.lua - every Lua and YAML block of README.md works as written (a doc test).
-- YAML blocks must parse, and a whole config must load clean; Lua blocks must compile, and
-- then run: an agent (a table with `run`) in a project of its own, a hooks file (a table of
-- hooks) around an echo agent, anything else as a script. A block that is not meant to run
-- as it stands has `<!-- doc-test: skip -->` on the line before it.
local P = require("support.project")
local yaml = require("fluxloop.yaml")

local function readme_blocks()
  local blocks, lines = {}, {}
  for line in (assert(P.read("README.md")) .. "\n"):gmatch("([^\n]*)\n") do lines[#lines + 1] = line end
  local i = 1
  while i <= #lines do
    local lang = lines[i]:match("^```(%w+)%s*$")
    if lang == "lua" or lang == "yaml" then
      local skip = i > 1 and lines[i - 1]:find("<!-- doc-test: skip -->", 1, true) ~= nil
      local body, j = {}, i + 1
      while j <= #lines and not lines[j]:match("^```%s*$") do body[#body + 1] = lines[j] j = j + 1 end
      if not skip then blocks[#blocks + 1] = { lang = lang, line = i, text = table.concat(body, "\n") .. "\n" } end
      i = j
    end
    i = i + 1
  end
  return blocks
end

local HOOKS = { filter_input = true, filter_inputs = true, transform_input = true, before_experiment = true,
  after_experiment = true, before_run = true, after_run = true, replay_args = true }

local function kind_of(chunk)
  local ok, v = pcall(chunk)
  if not ok or type(v) ~= "table" then return "script" end
  if type(v.run) == "function" then return "agent" end
  for k in pairs(v) do if HOOKS[k] then return "hooks" end end
  return "script"
end

describe("README.md", function()
  local blocks = readme_blocks()

  it("has Lua and YAML blocks to check", function()
    assert.is_true(#blocks >= 5, #blocks)
  end)

  for _, b in ipairs(blocks) do
    it(("README.md:%d: the %s block works as written"):format(b.line, b.lang), function()
      if b.lang == "yaml" then
        local doc, err = yaml.decode(b.text, "README.md:" .. b.line)
        assert.is_not_nil(doc, err)
        if type(doc) == "table" and doc.runner and doc.output then -- a whole config: it runs
          local dir = P.project({ config = b.text })
          P.write(dir, "examples/my_agent.lua", "return { run = function(input) return input end }\n")
          if doc.hooks then P.write(dir, doc.hooks, "return { filter_input = function() return true end }\n") end
          local code, _, out = P.run(dir, "run experiment --quiet --iterations 1")
          P.remove(dir)
          assert.are.equal(0, code, out)
          assert.are.equal("", out)
        end
        return
      end
      local chunk, cerr = load(b.text, "=README.md:" .. b.line)
      assert.is_not_nil(chunk, cerr)
      local kind = kind_of(chunk)
      if kind == "agent" then
        local dir = P.project({ iterations = 1, agent = b.text })
        local code, _, err = P.run(dir, "run experiment --quiet")
        local why = err or ""
        for _, row in ipairs(P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")) do
          if not row.success then why = why .. "\n" .. row.trace_id .. ": " .. tostring(row.error.message) end
        end
        P.remove(dir)
        assert.are.equal(0, code, why)
      elseif kind == "hooks" then
        local dir = P.project({ iterations = 1 })
        P.write(dir, "hooks.lua", b.text)
        local code, _, err = P.run(dir, "run experiment --quiet --hooks hooks.lua")
        P.remove(dir)
        assert.is_true(code == 0 or code == 1, err) -- a check may fail runs; the hooks must run
      else
        local path = os.tmpname()
        local f = assert(io.open(path, "wb"))
        f:write(b.text)
        f:close()
        local ok = os.execute(("%s %s >/dev/null"):format(P.quote(arg[-1] or "build/fluxloop-lua"), P.quote(path)))
        os.remove(path)
        assert.is_true(ok, "the script failed")
      end
    end)
  end
end)
