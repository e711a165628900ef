-- runner.isolation: process / --isolate: crashes and hangs fail one run; the rest go on.
local P = require("support.project")

local LIB = FLUXLOOP_BUILD .. "/spec/crash_agent.so"

local function project(inputs_list, iterations)
  local lines = { "generated_inputs:" }
  for _, v in ipairs(inputs_list) do lines[#lines + 1] = ("  - input: %q"):format(v) end
  return P.project({ iterations = iterations or 1, inputs = table.concat(lines, "\n") .. "\n",
    config = ("runner:\n  target: %q\n  iterations: %d\n"):format(LIB .. ":crash_agent", iterations or 1) })
end

describe("process isolation", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("an agent that segfaults on one input of 100: 99 succeed, the crash is a failed trace", function()
    local list = {}
    for i = 1, 100 do list[i] = i == 37 and "segv" or ("ok" .. i) end
    dir = project(list)
    local code, _, err = P.run(dir, "run experiment --quiet --isolate --parallel 2")
    assert.are.equal(1, code, err)
    local exp = P.experiments(dir)[1]
    local rows = P.read_jsonl(exp .. "/traces.jsonl")
    assert.are.equal(100, #rows)
    for k, t in ipairs(rows) do
      assert.are.equal(("trace_%03d"):format(k), t.trace_id)
      if k == 37 then
        assert.are.equal(false, t.success)
        assert.are.equal("crash", t.error.type)
        assert.truthy(t.error.message:find("SIGSEGV", 1, true), t.error.message)
      else
        assert.are.equal(true, t.success, t.trace_id)
      end
    end
    local s = P.read_json(exp .. "/summary.json")
    assert.are.equal(99, s.successful)
    assert.are.equal(1, s.failed)
  end)

  it("abort, exit() and a hang past the time limit each fail their run only", function()
    dir = project({ "a", "abort", "b", "exit", "c", "hang", "d" })
    local code, _, err = P.run(dir, "run experiment --quiet --isolate --timeout 300")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(7, #rows)
    assert.truthy(rows[2].error.message:find("SIGABRT", 1, true), rows[2].error.message)
    assert.truthy(rows[4].error.message:find("exited with status 7", 1, true), rows[4].error.message)
    assert.are.equal("timeout", rows[6].error.type)
    assert.truthy(rows[6].error.message:find("300 ms", 1, true))
    for _, i in ipairs({ 1, 3, 5, 7 }) do assert.are.equal(true, rows[i].success) end
  end)

  it("Lua agents run isolated too, and give the same files as in-process runs", function()
    dir = P.project({ iterations = 3, agent = [[
return { run = function(input, ctx) ctx:observe{ name = "x", input = input } return { a = input } end }]] })
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir plain")))
    assert.are.equal(0, (P.run(dir, "run experiment --quiet --output-dir iso --isolate --parallel 3")))
    local function strip(path)
      return (P.read(path):gsub('"duration_ms":[%d.e+-]+', ""):gsub('"%w+_at":"[^"]*"', ""))
    end
    for _, f in ipairs({ "trace_summary.jsonl", "traces.jsonl", "observations.jsonl" }) do
      assert.are.equal(strip(P.experiments(dir, "plain")[1] .. "/" .. f), strip(P.experiments(dir, "iso")[1] .. "/" .. f), f)
    end
  end)

  it("runner.isolation: process in the config works like --isolate; os.exit fails one run", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n- input: quit\n- input: b\n",
      config = "runner:\n  target: agents.agent:run\n  iterations: 1\n  isolation: process\n",
      agent = "return { run = function(i) if i == 'quit' then os.exit(3) end return i end }" })
    local code, _, err = P.run(dir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/trace_summary.jsonl")
    assert.are.same({ true, false, true }, { rows[1].success, rows[2].success, rows[3].success })
  end)

  it("worker processes do not outlive a runner killed with kill -9", function()
    dir = P.project({ iterations = 50, agent = "return { run = function(i) while true do end end }" })
    -- Start, list the runner's children once they run, kill -9 the runner, then see who is left
    -- (a zombie is dead: a container's pid 1 may never reap it).
    local script = ([[cd %s && { %s run experiment --quiet --isolate --parallel 2 </dev/null >/dev/null 2>&1 & pid=$!;
      sleep 1; kids=$(pgrep -P $pid); kill -9 $pid; sleep 0.5; left=""
      for k in $kids; do st=$(ps -o stat= -p $k); case "$st" in ""|Z*) ;; *) left="$left $k";; esac; done
      echo "kids:$kids"; echo "left:$left"; for k in $left; do kill -9 $k; done; }]]):format(P.quote(dir), P.quote(P.bin()))
    local h = io.popen("sh -c " .. P.quote(script) .. " 2>/dev/null")
    local out = h:read("a")
    h:close()
    local kids = out:match("kids:([^\n]*)")
    assert.truthy(kids and kids:find("%d"), "no worker processes were seen: " .. out)
    assert.are.equal("", out:match("left:([^\n]*)"), "workers left running: " .. out)
  end)
  it("nor does what their agents started (the worker's process group ends with the runner)", function()
    local marker = ("sleep 300.%d"):format(math.random(1e8)) -- a unique command line
    dir = P.project({ iterations = 50, agent = ([[
return { run = function(i) os.execute("%s &") while true do end end }]]):format(marker) })
    local script = ([[cd %s && { %s run experiment --quiet --isolate --parallel 2 </dev/null >/dev/null 2>&1 & pid=$!;
      sleep 1; kill -9 $pid; }]]):format(P.quote(dir), P.quote(P.bin()))
    os.execute("sh -c " .. P.quote(script) .. " 2>/dev/null")
    local pattern = "[s]" .. marker:sub(2) -- matches the sleeps, not the shell that looks for them
    local left
    for _ = 1, 30 do
      left = os.execute(("pgrep -f %q >/dev/null"):format(pattern))
      if not left then break end
      os.execute("sleep 0.1")
    end
    os.execute(("pkill -f %q"):format(pattern))
    assert.is_falsy(left, "the agents' children outlived the runner")
  end)

  it("Ctrl-C still reaches a busy worker, whose run gets the grace period and is written", function()
    dir = P.project({ iterations = 1, inputs = "- input: a\n",
      agent = "return { run = function(i) local t = os.clock() while os.clock() - t < 1 do end return i end }" })
    local code, _, err = P.run_signalled(dir, "run experiment --quiet --isolate", { 0.3 })
    assert.are.equal(130, code, err)
    local rows = P.read_jsonl(P.experiments(dir)[1] .. "/traces.jsonl")
    assert.are.equal(1, #rows)
    assert.is_true(rows[1].success)
  end)
end)
