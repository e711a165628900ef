-- dotenv_spec.lua - .env files as the Python fluxloop reads them (python-dotenv's lines; the
-- folder above, then the project; the environment wins), and a run that uses them.
local dotenv = require("fluxloop.dotenv")
local P = require("support.project")

local function env_of(t) return function(n) return t[n] end end

describe("fluxloop.dotenv", function()
  describe("parse", function()
    it("reads NAME=value lines, export, quotes, escapes and comments as python-dotenv does", function()
      local entries, warnings = dotenv.parse(table.concat({
        "# a comment", "", "PLAIN=value  # trailing comment", "export EXPORTED=yes", "SPACED = x y ",
        "HASH=a#b", "SINGLE='lit\\n ${X}'", 'DOUBLE="one\\ntwo \\"q\\""', 'MULTI="line1', 'line2"',
        "EMPTY=", "ALONE", "'QUOTED_KEY'=q",
      }, "\n"), ".env")
      assert.are.same({}, warnings)
      local got = {}
      for _, e in ipairs(entries) do got[e.name] = e.value end
      assert.are.same({ PLAIN = "value", EXPORTED = "yes", SPACED = "x y", HASH = "a#b", SINGLE = "lit\\n ${X}",
        DOUBLE = 'one\ntwo "q"', MULTI = "line1\nline2", EMPTY = "", QUOTED_KEY = "q" }, got)
      assert.are.equal(13, entries[#entries].line)
    end)

    it("skips a line that is not NAME=value with a warning naming file and line", function()
      local entries, warnings = dotenv.parse("GOOD=1\nthis is not a line\nBAD=\"open\nLATER=2\n", "proj/.env")
      assert.are.equal("GOOD", entries[1].name)
      assert.are.equal(2, #warnings)
      assert.truthy(warnings[1]:find("proj/.env:2: warning: expected NAME=value, got 'this is not a line'", 1, true),
        warnings[1])
      assert.truthy(warnings[2]:find("proj/.env:3: warning: the value's closing \" is missing", 1, true), warnings[2])
    end)

    it("handles CRLF line ends and a byte order mark", function()
      local entries = dotenv.parse("\239\187\191A=1\r\nB=2\r\n", ".env")
      assert.are.same({ "A", "1", "B", "2" }, { entries[1].name, entries[1].value, entries[2].name, entries[2].value })
    end)
  end)

  describe("read and apply", function()
    local dir
    before_each(function() dir = P.new() end)
    after_each(function() P.remove(dir) end)

    it("reads the folder above's .env, then the project's (which wins); the environment wins over both", function()
      P.write(dir, ".env", "SHARED=parent\nONLY_PARENT=p\nFROM_ENV=file\n")
      P.write(dir, "proj/.env", "SHARED=project\nREF=${ONLY_PARENT}-${FROM_ENV}-${MISSING:-dflt}\n")
      local files = dotenv.files(dir .. "/proj")
      assert.are.same({ dir .. "/.env", dir .. "/proj/.env" }, files)
      local r = assert(dotenv.read(files, env_of({ FROM_ENV = "env" })))
      local got = {}
      for _, e in ipairs(r.set) do got[e.name] = e.value end
      assert.are.same({ SHARED = "project", ONLY_PARENT = "p", REF = "p-env-dflt" }, got)
      assert.are.same({ "FROM_ENV" }, r.kept)
    end)

    it("apply sets the variables and says in one notice what it read and what it kept", function()
      P.write(dir, ".env", "A_NAME=1\nKEPT=2\n")
      local set = {}
      local r = assert(dotenv.apply(dir, function(n, v) set[n] = v return true end, env_of({ KEPT = "mine" })))
      assert.are.same({ A_NAME = "1" }, set)
      assert.are.same({ A_NAME = "1" }, r.values)
      local last = r.warnings[#r.warnings]
      assert.truthy(last:find("^notice: read " .. dir:gsub("%p", "%%%0") .. "/%.env: set A_NAME"), last)
      assert.truthy(last:find("already in the environment, so kept as they are: KEPT", 1, true), last)
    end)

    it("no .env: nothing set, no notice", function()
      local r = assert(dotenv.apply(dir, function() error("set nothing") end, env_of({})))
      assert.are.same({}, r.warnings)
    end)
  end)

  describe("a run", function()
    local dir
    after_each(function() P.remove(dir) end)

    it("the agent sees the project's .env; a secret from it is masked in the traces", function()
      dir = P.project({ iterations = 1, agent = [[
return { run = function(input) return os.getenv("SUPPORT_MODEL") .. " " .. os.getenv("SUPPORT_API_KEY") end }]] })
      P.write(dir, ".env", "SUPPORT_MODEL=small-1\nSUPPORT_API_KEY=Zq81xKs0pLw7\n")
      local code, _, err = P.run(dir, "run experiment")
      assert.are.equal(0, code, err)
      assert.truthy(err:find("notice: read " .. dir .. "/.env: set SUPPORT_MODEL, SUPPORT_API_KEY", 1, true), err)
      local exp = P.experiments(dir)[1]
      local traces = P.read(exp .. "/traces.jsonl")
      assert.truthy(traces:find("small-1 ***", 1, true), traces)
      assert.falsy(traces:find("Zq81xKs0pLw7", 1, true), traces)
    end)

    it("a variable set in the environment wins over the .env", function()
      dir = P.project({ iterations = 1, agent = [[
return { run = function() return os.getenv("SUPPORT_MODEL") end }]] })
      P.write(dir, ".env", "SUPPORT_MODEL=from-file\n")
      local code, _, err = P.run(dir, "run experiment --quiet", "SUPPORT_MODEL=from-env")
      assert.are.equal(0, code, err)
      assert.are.equal("", err)
      local row = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")[1]
      assert.are.equal("from-env", row.output)
    end)
  end)
end)
