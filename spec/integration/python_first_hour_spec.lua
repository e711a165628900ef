-- What a Python fluxloop user trips over in the first hour (issue 26): the slips of the
-- messages and the README, through the real binary.
local P = require("support.project")

local function rows_in_order(text)
  local keys = {}
  for k in text:gmatch('\n  "([%w_]+)":') do keys[#keys + 1] = k end
  return keys
end

describe("the Python user's first hour", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("says 1 input, 1 iteration, 1 total run and 1 run (not '1 iterations')", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n" })
    local code, _, err = P.run(dir, "run experiment --no-progress")
    assert.are.equal(0, code, err)
    assert.truthy(err:find("[INFO] Loaded 1 input\n", 1, true), err)
    assert.truthy(err:find("[INFO] Running 1 iteration per input (1 total run)", 1, true), err)
    assert.truthy(err:find("[INFO] Done: 1 run, 1 succeeded", 1, true), err)
    code, _, err = P.run(dir, "run experiment --no-progress --iterations 2")
    assert.truthy(err:find("[INFO] Running 2 iterations per input (2 total runs)", 1, true), err)
  end)

  it("summary.json's fields come in the order the README's table gives", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n" })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet")))
    local written = rows_in_order(P.read(P.experiments(dir)[1] .. "/summary.json"))
    local row = P.read("README.md"):match("\n| `summary.json` | ([^\n]*)")
    local at = {}
    for name in row:gsub("`{[^}]*}`", ""):gmatch("`([%w_]+)`") do
      if not at[name] then at[name] = #at + 1 at[#at + 1] = name end
    end
    local last = 0
    for _, k in ipairs(written) do
      assert.is_not_nil(at[k], "summary.json has " .. k .. ", which the README's table does not name")
      assert.is_true(at[k] > last, "the README's table puts " .. k .. " elsewhere: " .. table.concat(written, ", "))
      last = at[k]
    end
  end)

  it("the comments of examples/python's configs name the file of their target", function()
    for _, name in ipairs({ "simulation.yaml", "support.yaml" }) do
      local text = P.read("examples/python/configs/" .. name)
      local module, file = text:match('target: "([%w_.]+):[%w_]+"%s*# (%S+%.py)')
      assert.are.equal(module:gsub("%.", "/") .. ".py", file, name)
    end
  end)
end)

-- The README's walkthrough: the blocks after `<!-- walkthrough: PATH -->` are the project's
-- files, the one after `<!-- walkthrough: run -->` the commands, run from the project.
local function walkthrough()
  local files, commands = {}, nil
  local text = assert(P.read("README.md"))
  for target, body in text:gmatch("<!%-%- walkthrough: (%S+) %-%->\n```%w*\n(.-\n)```\n") do
    if target == "run" then commands = body else files[target] = body end
  end
  return files, commands
end

-- sh_run(dir, script, path_first) -> exit code, stdout, stderr of `sh script` run in dir with
-- path_first at the head of PATH.
local function sh_run(dir, script, path_first)
  local out, err = os.tmpname(), os.tmpname()
  local _, _, code = os.execute(("cd %s && PATH=%s:\"$PATH\" sh %s </dev/null >%s 2>%s"):format(P.quote(dir),
    P.quote(path_first), P.quote(script), P.quote(out), P.quote(err)))
  local o, e = P.read(out), P.read(err)
  os.remove(out)
  os.remove(err)
  return code, o, e
end

describe("the README's Python walkthrough", function()
  local dir, server
  after_each(function()
    if server then server:stop() end
    P.remove(dir)
  end)

  it("runs as written: configs, .env, venv, a tool and a urllib model call, to a report", function()
    local files, commands = walkthrough()
    assert.is_not_nil(commands, "the README has no walkthrough commands")
    for _, f in ipairs({ "support-bot/.env", "support-bot/configs/simulation.yaml", "support-bot/app/support.py" }) do
      assert.is_not_nil(files[f], f)
    end
    server = require("support.mock_server").start()
    dir = P.new()
    for path, body in pairs(files) do
      -- The one change: the local model server is the spec's, on the port the OS gave it.
      if path:match("%.env$") then body = body:gsub("127%.0%.0%.1:8000", "127.0.0.1:" .. server.port) end
      P.write(dir, path, body)
    end
    local project = dir .. "/support-bot"
    assert(os.execute(("python3 -m venv --without-pip %s/.venv"):format(P.quote(project))))
    local bindir = P.bin():match("^(.*)/[^/]*$")
    local script = P.write(dir, "walkthrough.sh", "set -e\n" .. commands)
    local code, out, err = sh_run(project, script, bindir)
    assert.are.equal(0, code, err)
    local exp = P.experiments(project)[1]
    assert.is_not_nil(exp, err .. out)
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(4, #rows, err)
    local tokens = 0
    for _, row in ipairs(rows) do
      assert.is_true(row.success, type(row.error) == "table" and row.error.message or "")
      assert.truthy(tostring(row.output):find("^echo: "), row.output)
      local kinds, gen = {}, nil
      for _, o in ipairs(row.observations) do
        kinds[#kinds + 1] = o.type .. ":" .. tostring(o.name)
        if o.type == "generation" then gen = o end
      end
      assert.are.same({ "agent:support", "tool:lookup_order", "generation:answer" }, kinds)
      assert.are.equal("small-chat", gen.model)
      assert.is_true(gen.total_tokens > 0 and gen.total_tokens == gen.prompt_tokens + gen.completion_tokens)
      tokens = tokens + gen.total_tokens
    end
    assert.are.equal("frustrated_customer", rows[3].persona)
    for _, f in ipairs({ "traces.jsonl", "observations.jsonl", "config.yaml", "summary.json" }) do
      assert.falsy(P.read(exp .. "/" .. f):find("4f8a9c2e7b1d6a3f5e0c9b8a", 1, true), f .. " holds the API key")
    end
    assert.are.equal(4, server:stats().requests)
    assert.truthy(err:find("notice: read " .. project .. "/.env: set SUPPORT_MODEL, SUPPORT_BASE_URL, SUPPORT_API_KEY",
      1, true), err)
    assert.truthy(err:find("runner.max_retries has no effect", 1, true), err)
    local report = assert(P.read(exp .. "/report.html"), "no report.html")
    assert.truthy(report:find('data-figure="tokens-total">' .. tokens .. "<", 1, true), "the report's token total")
    assert.truthy(report:find("in 4 of 4 runs", 1, true))
  end)
end)

-- The README's "Recording call arguments from Python": blocks after `<!-- recording: PATH -->`.
local function recording_blocks()
  local files, commands = {}, nil
  for target, body in assert(P.read("README.md")):gmatch("<!%-%- recording: (%S+) %-%->\n```%w*\n(.-\n)```\n") do
    if target == "run" then commands = body else files[target] = body end
  end
  return files, commands
end

describe("recording call arguments from Python, as the README says", function()
  local dir
  after_each(function() P.remove(dir) end)
  local bindir = P.bin():match("^(.*)/[^/]*$")

  it("fluxloop python-path prints the folder that holds the SDK", function()
    dir = P.new()
    local code, out, err = P.run(dir, "python-path")
    assert.are.equal(0, code, err)
    local path = out:match("^(/[^\n]+)\n$")
    assert.is_not_nil(path, out)
    assert.truthy(P.read(path .. "/fluxloop/__init__.py"), path)
  end)

  it("records with the README's commands, then replays the recording into a Python agent", function()
    local files, commands = recording_blocks()
    assert.is_not_nil(commands, "the README has no recording commands")
    dir = P.new()
    for path, body in pairs(files) do P.write(dir, path, body) end
    P.write(dir, "inputs/generated.yaml", "- input: where is my refund?\n- input: cancel my plan\n")
    local code, out, err = sh_run(dir, P.write(dir, "record.sh", "set -e\n" .. commands), bindir)
    assert.are.equal(0, code, err)
    assert.are.equal("Looking into it, Dana.\n", out)
    assert.are.equal("", err)
    local line = P.read_jsonl(dir .. "/recordings/args.jsonl")[1]
    assert.are.same({ "1", 0, "app.bot:handle_message" }, { line._version, line.iteration, line.target })
    assert.are.same({ content = "hi", api_key = "***" }, line.kwargs.data)
    assert.are.equal("<callable:send>", line.kwargs.send)

    code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(2, #rows)
    assert.are.equal("where is my refund?", rows[1].args.data.content)
    assert.are.equal("C042", rows[1].args.channel)
    assert.are.equal("Looking into it, Dana.", rows[2].output)
    assert.are.same({ "Looking into it, Dana." }, rows[1].callback_messages.send)
    assert.are.equal(0, #(P.read(dir .. "/recordings/args.jsonl"):gsub("[^\n]", "")) - 1, "a replayed call recorded")
  end)

  it("outside a run and without FLUXLOOP_RECORD_ARGS, record_call_args says why it recorded nothing", function()
    dir = P.new()
    local code, out, err = sh_run(dir, P.write(dir, "r.sh", [[
export PYTHONPATH="$(fluxloop python-path)"
python3 -c 'import fluxloop; print(fluxloop.record_call_args("a:b", {"x": 1}))'
FLUXLOOP_RECORD_ARGS=0 python3 -c 'import fluxloop; print(fluxloop.record_call_args("a:b", {"x": 1}))' 2>&1
]]), bindir)
    assert.are.equal(0, code, err)
    assert.are.equal("False\nFalse\n", out)
    assert.truthy(err:find("RuntimeWarning: fluxloop.record_call_args recorded nothing: FLUXLOOP_RECORD_ARGS is not set",
      1, true), err)
  end)
end)
