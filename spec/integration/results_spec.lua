-- results_spec.lua - `parse experiment`, `report` and `compare` on real experiment folders, and
-- each bad input: a clear message, exit 2, never a traceback.
local P = require("support.project")
local F = require("support.results_fixture")
local json = require("fluxloop.json")

local function q(s) return P.quote(s) end

local function no_traceback(err)
  assert.is_nil(err:find("stack traceback", 1, true), err)
  assert.is_nil(err:find("%.lua:%d+: "), err)
end

describe("fluxloop parse experiment", function()
  local dir, exp
  setup(function() dir, exp = F.experiment() end)
  teardown(function() P.remove(dir) end)

  it("writes one markdown file per trace and per_trace.jsonl, as the Python tool lays them out", function()
    local code, _, err = P.run(dir, "parse experiment " .. q(exp))
    assert.are.equal(0, code, err)
    local out = exp .. "/per_trace_analysis"
    local rows = P.read_jsonl(out .. "/per_trace.jsonl")
    assert.are.equal(18, #rows)
    for _, r in ipairs(rows) do
      local md = assert(P.read(("%s/%02d_%s.md"):format(out, r.iteration, r.trace_id)), r.trace_id)
      assert.truthy(md:find(("^%%-%%-%%-\ntrace_id: \"%s\"\niteration: %d\n"):format(r.trace_id, r.iteration)), md)
      assert.truthy(md:find("\nduration_ms: %d+%.%d%d\nsuccess: " .. tostring(r.success) .. "\n%-%-%-\n"), md)
      assert.truthy(md:find("# Trace Analysis", 1, true))
      assert.truthy(md:find("### Step 3: [tool] search", 1, true), md)
      assert.are.equal(r.output, r.final_output)
      assert.are.equal(3, r.metrics.observation_count) -- plan, draft (in plan), search (in plan)
      assert.are.equal(#r.timeline, r.metrics.observation_count)
      assert.are.equal(r.trace_id, r.summary.trace_id)
      assert.are.same({ turn_index = 1, role = "user", content = r.input, source = "input", metadata = {} },
        r.conversation[1])
      assert.are.equal(r.success and 2 or 1, #r.conversation)
      assert.truthy(md:find("## Conversation\n\n- **User**: " .. r.input .. " _(source=input)_", 1, true), md)
    end
    local failed = P.read(out .. "/00_trace_013.md")
    assert.truthy(failed:find("success: false", 1, true))
    assert.truthy(failed:find("## Error\n\n- **Type**: error\n- **Message**: ", 1, true), failed)
    assert.truthy(failed:find("gamma broke\nstack traceback:", 1, true), failed)
    assert.truthy(failed:find("Level: DEFAULT (nested 1 deep, in trace_013.1)", 1, true), failed)
    assert.are.equal("trace_013", rows[13].trace_id)
    assert.are.equal(false, rows[13].success)
    assert.are.equal("error", rows[13].error.type)
    -- end_time = start_time + duration
    local step = rows[1].timeline[1]
    assert.truthy(step.start_time:match("Z$") and step.end_time:match("Z$"))
    assert.is_true(step.end_time >= step.start_time)
  end)

  it("refuses an existing output folder without --overwrite (exit 2), and writes over it with it", function()
    local code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --output again")
    assert.are.equal(0, code, err)
    code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --output again")
    assert.are.equal(2, code)
    assert.truthy(err:find("again already exists; add --overwrite", 1, true), err)
    code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --output again --overwrite")
    assert.are.equal(0, code, err)
  end)

  it("without traces.jsonl reads trace_summary.jsonl and observations.jsonl, as the Python tool", function()
    local code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --output full --format jsonl")
    assert.are.equal(0, code, err)
    local py = P.new()
    for _, f in ipairs({ "trace_summary.jsonl", "observations.jsonl", "summary.json" }) do
      P.write(py, f, P.read(exp .. "/" .. f))
    end
    code, _, err = P.run(dir, "parse experiment " .. q(py))
    assert.are.equal(0, code, err)
    local full, part = P.read_jsonl(exp .. "/full/per_trace.jsonl"), P.read_jsonl(py .. "/per_trace_analysis/per_trace.jsonl")
    assert.are.equal(#full, #part)
    for i = 1, #full do
      assert.are.same(full[i].timeline, part[i].timeline)
      assert.are.equal(full[i].trace_id, part[i].trace_id)
    end
    assert.truthy(P.read(py .. "/per_trace_analysis/00_trace_013.md"):find("### Step 3: [tool] search", 1, true))
    P.remove(py)
  end)

  it("writes a trace with a 6 MB output whole, reading its line as it streams by (issue 22.9)", function()
    local big = P.new()
    for _, f in ipairs({ "traces.jsonl", "summary.json", "config.yaml" }) do P.write(big, f, P.read(exp .. "/" .. f) or "") end
    local text = ("line \"one\"\n\u{e9} ``` \xc3\xa9 "):rep(250000) -- about 6 MB, over the 4 MB a line is held whole
    local line = P.read(exp .. "/traces.jsonl"):match("^[^\n]+"):gsub('"output":', function() return '"output":' .. json.encode(text) .. ',"was":' end)
    local f = assert(io.open(big .. "/traces.jsonl", "ab"))
    f:write((line:gsub('"trace_id":"trace_001"', '"trace_id":"trace_big"')), "\n")
    f:close()
    local code, _, err = P.run(dir, "parse experiment " .. q(big))
    assert.are.equal(0, code, err)
    local rows = P.read_jsonl(big .. "/per_trace_analysis/per_trace.jsonl")
    assert.are.equal(19, #rows)
    assert.is_true(rows[19].output == text and rows[19].final_output == text and rows[19].summary.output == text)
    local md = P.read(big .. "/per_trace_analysis/00_trace_big.md")
    assert.truthy(md:find("\n````json\n" .. json.encode(text) .. "\n````\n", 1, true))
    assert.truthy(md:find("- **Assistant**: " .. text:gsub("\n", " ") .. " _(source=agent)_\n", 1, true))
    P.remove(big)
  end)

  it("--format jsonl writes per_trace.jsonl only", function()
    local code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --output only_jsonl --format jsonl")
    assert.are.equal(0, code, err)
    assert.are.equal(18, #P.read_jsonl(exp .. "/only_jsonl/per_trace.jsonl"))
    assert.is_nil(P.read(exp .. "/only_jsonl/00_trace_001.md"))
  end)
end)

describe("fluxloop report", function()
  local dir, exp
  setup(function() dir, exp = F.experiment() end)
  teardown(function() P.remove(dir) end)

  it("writes one self-contained HTML file with the figures of the JSONL", function()
    local code, _, err = P.run(dir, "report " .. q(exp))
    assert.are.equal(0, code, err)
    local html = assert(P.read(exp .. "/report.html"))
    assert.is_nil(html:find("<script", 1, true))
    assert.is_nil(html:find("src=", 1, true))
    assert.is_nil(html:find("href=\"http", 1, true))
    assert.is_nil(html:find("@import", 1, true))
    local f = F.figures(exp)
    assert.truthy(html:find('data-figure="total">' .. f.total .. "<", 1, true))
    assert.truthy(html:find('data-figure="failed">' .. f.failed .. "<", 1, true))
    -- the input with markup in it is escaped, and its row carries its own counts
    assert.truthy(html:find('data-input="beta &lt;b&gt;question&lt;/b&gt; &amp; more" data-runs="6" data-successful="6"',
      1, true), html)
    local g = f.inputs["gamma question"]
    assert.truthy(html:find(('data-input="gamma question" data-runs="%d" data-successful="%d"'):format(g.n, g.ok), 1, true))
    assert.truthy(html:find('class="worst" data-input="gamma question"', 1, true))
    assert.truthy(html:find('data-failure-type="error" data-count="3"', 1, true))
    assert.truthy(html:find('data-chart="histogram"', 1, true))
    assert.truthy(html:find('data-chart="latency-by-input"', 1, true))
    assert.truthy(html:find('data-chart="timeline"', 1, true))
    assert.truthy(html:find('data-depth="1"', 1, true), "nested spans are drawn indented")
    assert.truthy(html:find("runner:", 1, true), "config snapshot")
  end)

  it("shows what a failing Python agent wrote on stderr under its failure, escaped", function()
    local pdir = P.project({ iterations = 1, config = 'runner:\n  target: "agents.noisy:run"\n  iterations: 1\n' })
    P.write(pdir, "agents/noisy.py", [[
def run(input):
    for i in range(30):
        print("step %d of <%s>" % (i, input))
    raise RuntimeError("gave up")
]])
    local code, _, err = P.run(pdir, "run experiment --quiet")
    assert.are.equal(1, code, err)
    local pexp = P.experiments(pdir)[1]
    code, _, err = P.run(pdir, "report " .. q(pexp))
    assert.are.equal(0, code, err)
    local html = assert(P.read(pexp .. "/report.html"))
    assert.truthy(html:find("(last 20 of 30 lines)", 1, true), html)
    assert.truthy(html:find("step 29 of &lt;hello&gt;", 1, true))
    assert.is_nil(html:find("step 9 of", 1, true), "only the last 20 lines")
    P.remove(pdir)
  end)

  it("--output names the file", function()
    local code, _, err = P.run(dir, "report " .. q(exp) .. " --output r/x.html")
    assert.are.equal(2, code, "a missing parent folder is an error")
    no_traceback(err)
    os.execute("mkdir -p " .. q(dir .. "/r"))
    code, _, err = P.run(dir, "report " .. q(exp) .. " --output r/x.html")
    assert.are.equal(0, code, err)
    assert.truthy(P.read(dir .. "/r/x.html"):find("<!DOCTYPE html>", 1, true))
  end)
end)

describe("fluxloop compare of grades", function()
  -- NEW answers alpha "alpha answer 1" every time: even_alpha drops from 50% to 0% on alpha,
  -- while every run still succeeds as before.
  local ONES = F.BASE_AGENT:gsub('"alpha answer " %.%. %(ctx%.iteration %% 2%)', '"alpha answer 1"')
  local base_dir, base, new_dir, new
  setup(function()
    base_dir, base = F.graded_experiment(nil, 20)
    new_dir, new = F.graded_experiment(ONES, 20)
  end)
  teardown(function() P.remove(base_dir); P.remove(new_dir) end)

  it("compares each grader per input and overall; --fail-on regression exits 1 naming the grader", function()
    assert.are_not.equal(F.BASE_AGENT, ONES)
    local code, out, err = P.run(base_dir, ("compare %s %s"):format(q(base), q(new)))
    assert.are.equal(0, code, err)
    for line in out:gmatch("[^\n]+") do assert.is_true(utf8.len(line) <= 100, line) end
    assert.truthy(out:find("\nalpha question[^\n]*100%%>100%%"), out) -- success did not move
    assert.truthy(out:find("\n  grade even_alpha%s+50%%>0%%[^\n]*! passes less"), out)
    assert.truthy(out:find("\n  grade says_answer%s+100%%>100%%[^\n]*no change"), out)
    assert.truthy(out:find("grades overall: Cochran%-Mantel%-Haenszel"), out)
    assert.truthy(out:find("graders that pass less: even_alpha (overall, 1 input)", 1, true), out)
    code, _, err = P.run(base_dir, ("compare %s %s --fail-on regression"):format(q(base), q(new)))
    assert.are.equal(1, code)
    assert.truthy(err:find("graders that pass less: even_alpha", 1, true), err)
    code = P.run(base_dir, ("compare %s %s --fail-on regression"):format(q(base), q(base)))
    assert.are.equal(0, code)
    -- report --compare: the graders overall, and the input whose grader dropped listed as a regression
    code, _, err = P.run(new_dir, ("report %s --compare %s"):format(q(new), q(base)))
    assert.are.equal(0, code, err)
    local html = P.read(new .. "/report.html")
    assert.truthy(html:find('data-compare-grader="even_alpha" data-verdict="regression"', 1, true), html)
    assert.truthy(html:find('data-compare-grader="says_answer" data-verdict="same"', 1, true))
    assert.truthy(html:find('data-compare-input="alpha question" data-verdict="regression"', 1, true))
    assert.truthy(html:find("grader even_alpha passes less", 1, true))
  end)

  it("says a drop is too small for the runs when it is", function()
    -- 2 iterations: gamma fails 1 of 2 in BASE; a NEW gamma failing both is not enough to tell
    local b_dir, b = F.graded_experiment(nil, 2)
    local n_dir, n = F.graded_experiment(F.BASE_AGENT:gsub("ctx%.iteration %% 2 == 0 then", "true then"), 2)
    local code, out, err = P.run(b_dir, ("compare %s %s --fail-on regression"):format(q(b), q(n)))
    P.remove(b_dir)
    P.remove(n_dir)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("\ngamma question[^\n]*too few runs\n  success: too few runs to tell; about %d+ iterations would"), out)
    assert.truthy(out:find("\n  grade says_answer%s+50%%>0%%[^\n]* too few runs to tell; about %d+ iterations would"), out)
  end)
end)

describe("fluxloop compare", function()
  local base_dir, base, new_dir, new
  setup(function()
    base_dir, base = F.experiment()
    new_dir, new = F.experiment(F.CHANGED_AGENT)
  end)
  teardown(function() P.remove(base_dir); P.remove(new_dir) end)

  it("flags the changed input, and only it; --fail-on regression exits 1", function()
    local code, out, err = P.run(base_dir, ("compare %s %s"):format(q(base), q(new)))
    assert.are.equal(0, code, err)
    for line in out:gmatch("[^\n]+") do assert.is_true(utf8.len(line) <= 100, line) end
    assert.truthy(out:find("\nbeta <b>question</b>[^\n]*100%%>0%%[^\n]*! fails more"), out)
    assert.truthy(out:find("\nalpha question[^\n]*no change"), out)
    assert.truthy(out:find("\ngamma question[^\n]*no change"), out)
    assert.truthy(out:find("1 significant regression", 1, true), out)
    code = P.run(base_dir, ("compare %s %s --fail-on regression"):format(q(base), q(new)))
    assert.are.equal(1, code)
    code, out = P.run(base_dir, ("compare %s %s --fail-on regression"):format(q(base), q(base)))
    assert.are.equal(0, code)
    assert.truthy(out:find("no significant regression", 1, true), out)
  end)

  it("adds a section to the report with --compare", function()
    local code, _, err = P.run(new_dir, ("report %s --compare %s"):format(q(new), q(base)))
    assert.are.equal(0, code, err)
    local html = P.read(new .. "/report.html")
    assert.truthy(html:find('data-compare-input="beta &lt;b&gt;question&lt;/b&gt; &amp; more" data-verdict="regression"',
      1, true), html)
    assert.truthy(html:find('data-compare-input="alpha question" data-verdict="same"', 1, true))
  end)

  it("lists inputs present in one run only, and refuses runs with no input in common", function()
    local other = P.project({ agent = F.BASE_AGENT, iterations = 2,
      inputs = 'generated_inputs:\n  - input: "alpha question"\n  - input: "delta"\n' })
    local code, _, err = P.run(other, "run experiment --quiet")
    assert.are.equal(0, code, err)
    local o = P.experiments(other)[1]
    local out
    code, out, err = P.run(base_dir, ("compare %s %s"):format(q(base), q(o)))
    assert.are.equal(0, code, err)
    assert.truthy(out:find("only in BASE: gamma question", 1, true), out)
    assert.truthy(out:find("only in NEW:  delta", 1, true), out)
    assert.truthy(err:find("inputs differ: 2 only in BASE, 1 only in NEW", 1, true), err)
    local none = P.project({ agent = F.BASE_AGENT, iterations = 1, inputs = 'generated_inputs:\n  - input: "zeta"\n' })
    P.run(none, "run experiment --quiet")
    code, _, err = P.run(base_dir, ("compare %s %s"):format(q(base), q(P.experiments(none)[1])))
    assert.are.equal(2, code)
    assert.truthy(err:find("no input in common", 1, true), err)
    no_traceback(err)
    P.remove(other)
    P.remove(none)
  end)
end)

describe("reading bad experiment folders", function()
  local dir, exp
  before_each(function() dir, exp = F.experiment(nil, 2) end)
  after_each(function() P.remove(dir) end)

  local COMMANDS = { "parse experiment %s", "report %s", "compare %s %s" }

  local function each_command(path, fn)
    for _, c in ipairs(COMMANDS) do
      local args = c:format(q(path), q(path))
      local code, out, err = P.run(dir, args)
      fn(code, out, err, args)
    end
  end

  it("a folder that is not an experiment", function()
    each_command(dir, function(code, _, err, args)
      assert.are.equal(2, code, args)
      assert.truthy(err:find("is not an experiment folder: it has no traces.jsonl", 1, true), err)
      no_traceback(err)
    end)
    each_command(dir .. "/nope", function(code, _, err)
      assert.are.equal(2, code)
      assert.truthy(err:find("nope: no such folder", 1, true), err)
    end)
  end)

  it("an empty experiment", function()
    for _, f in ipairs({ "traces.jsonl", "trace_summary.jsonl", "observations.jsonl" }) do
      P.write(exp, f, "")
    end
    each_command(exp, function(code, _, err, args)
      assert.are.equal(2, code, args)
      assert.truthy(err:find("holds no traces yet: traces.jsonl is empty", 1, true), err)
      no_traceback(err)
    end)
  end)

  it("damaged lines mid-file: skipped, counted and named", function()
    local text = P.read(exp .. "/traces.jsonl")
    local lines = {}
    for l in text:gmatch("[^\n]+") do lines[#lines + 1] = l end
    lines[3] = lines[3]:sub(1, 40)
    lines[5] = "garbage"
    P.write(exp, "traces.jsonl", table.concat(lines, "\n") .. "\n")
    each_command(exp, function(code, _, err, args)
      assert.are.equal(0, code, args .. "\n" .. err)
      assert.truthy(err:find("/traces.jsonl:3: damaged line skipped (", 1, true), err)
      assert.truthy(err:find("/traces.jsonl:5: damaged line skipped (not a JSON object at byte 1)", 1, true), err)
      no_traceback(err)
    end)
    assert.are.equal(4, #P.read_jsonl(exp .. "/per_trace_analysis/per_trace.jsonl"))
    local html = P.read(exp .. "/report.html")
    assert.truthy(html:find('data-figure="total">4<', 1, true))
    assert.truthy(html:find('data-notice="damaged"', 1, true))
  end)

  it("a run in progress (no summary.json, a line half written): reports what is there and says so", function()
    os.remove(exp .. "/summary.json")
    local text = P.read(exp .. "/traces.jsonl")
    P.write(exp, "traces.jsonl", text .. '{"trace_id":"trace_007","inp')
    local code, _, err = P.run(dir, "report " .. q(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("no summary.json: it is still running, or it stopped before it could finish. "
      .. "Shown: the 6 traces on disk of 6 planned", 1, true), err)
    assert.truthy(err:find("traces.jsonl:7: damaged line skipped (the file ends inside this line", 1, true), err)
    assert.truthy(P.read(exp .. "/report.html"):find('data-notice="incomplete"', 1, true))
  end)

  it("an interrupted run says so", function()
    local s = P.read_json(exp .. "/summary.json")
    s.interrupted = true
    s.planned_traces = 10
    P.write(exp, "summary.json", json.encode(s))
    local code, _, err = P.run(dir, "report " .. q(exp))
    assert.are.equal(0, code, err)
    assert.truthy(err:find("was interrupted (summary.json says so): 6 traces of 10 planned finished", 1, true), err)
  end)

  it("usage errors name the command's help", function()
    local code, _, err = P.run(dir, "compare " .. q(exp))
    assert.are.equal(2, code)
    assert.truthy(err:find("compare needs BASE NEW (got 1 argument); see 'fluxloop compare --help'", 1, true), err)
    code, _, err = P.run(dir, "report " .. q(exp) .. " --colour red")
    assert.are.equal(2, code)
    assert.truthy(err:find("unknown option '--colour'", 1, true), err)
    code, _, err = P.run(dir, "compare " .. q(exp) .. " " .. q(exp) .. " --alpha 5")
    assert.are.equal(2, code)
    assert.truthy(err:find("--alpha: expected a number between 0 and 1, got '5'", 1, true), err)
    code, _, err = P.run(dir, "parse experiment " .. q(exp) .. " --format html")
    assert.are.equal(2, code)
    assert.truthy(err:find("--format: expected md or jsonl", 1, true), err)
  end)
end)
