-- report_grades_spec.lua - the report's Grades section (fluxloop.report.grades) on a graded
-- experiment run by the real binary: the figures of scores.jsonl, counted here line by line.
local F = require("support.results_fixture")
local P = require("support.project")

local function q(s) return P.quote(s) end

-- The element of html whose opening tag has attr (up to its closing tag).
local function element(html, tag, attr)
  return html:match("<" .. tag .. "[^>]-" .. attr:gsub("%p", "%%%0") .. ".-</" .. tag .. ">")
end

describe("report: Grades", function()
  local dir, exp, html
  setup(function()
    dir, exp = F.graded_experiment()
    local code, _, err = P.run(dir, "report " .. q(exp))
    assert(code == 0, err)
    html = assert(P.read(exp .. "/report.html"))
  end)
  teardown(function() P.remove(dir) end)

  it("lists each grader with the counts of scores.jsonl, its pass rate and interval", function()
    assert.truthy(html:find('<h2 id="grades">Grades</h2>', 1, true))
    assert.truthy(html:find('<a href="#grades">Grades</a>', 1, true))
    for name, g in pairs(F.grade_figures(exp)) do
      local row = element(html, "tr", ('data-grader="%s" data-graded="%d" data-passed="%d" data-failed="%d" data-errors="%d"')
        :format(name, g.passed + g.failed + g.errors, g.passed, g.failed, g.errors))
      assert.truthy(row, name)
      local rate = math.floor(g.passed / (g.passed + g.failed) * 100 + 0.5)
      assert.truthy(row:find('data-field="pass-rate">' .. rate .. "%<", 1, true), row)
    end
    -- 6 of 18 under a threshold of 90%: marked
    assert.truthy(element(html, "tr", 'data-grader="short" '):find("90% (under)", 1, true))
  end)

  it("draws pass^k per grader at the values of summary.json", function()
    local svg = assert(element(html, "svg", 'data-chart="pass-hat-k"'))
    local summary = P.read_json(exp .. "/summary.json")
    for name, s in pairs(summary.scores) do
      assert.truthy(svg:find('<polyline[^>]-data%-grader="' .. name .. '"'), name)
      for k = 1, 6 do
        local v = svg:match('data%-grader="' .. name .. '" data%-k="' .. k .. '" data%-value="([%d.]+)"')
        assert.truthy(v, name .. " k=" .. k)
        assert.is_true(math.abs(tonumber(v) - s.pass_hat_k[tostring(k)]) < 1e-6, name .. " k=" .. k)
      end
    end
  end)

  it("shows the input x grader matrix, worst first, and failed grades' reasons escaped", function()
    local matrix = assert(element(html, "table", 'id="grades-matrix"'))
    local order = {}
    for input in matrix:gmatch('data%-grade%-input="([^"]*)"') do order[#order + 1] = input end
    -- mean pass rates over the 4 graders: gamma (half its runs fail, short fails the rest) 9/24,
    -- beta (fails short and picky) 12/24, alpha (fails even_alpha half the time) 21/24
    assert.are.same({ "gamma question", "beta &lt;b&gt;question&lt;/b&gt; &amp; more", "alpha question" }, order)
    local figures = F.grade_figures(exp)
    local alpha = element(matrix, "tr", 'data-grade-input="alpha question"')
    local ea = figures.even_alpha.inputs["alpha question"]
    assert.truthy(alpha:find(('data-grader="even_alpha" data-passed="%d" data-graded="%d"'):format(ea.passed,
      ea.passed + ea.failed), 1, true), alpha)
    assert.truthy(html:find("no &lt;b&gt;beta&lt;/b&gt; &amp; co", 1, true))
    assert.is_nil(html:find("no <b>beta", 1, true))
    assert.truthy(html:find('output contains "1" at character 14', 1, true) or html:find("output contains &quot;1&quot;", 1, true))
  end)

  it("says so when runs have no grade", function()
    -- scores.jsonl of the first half of the traces only
    local lines = P.read(exp .. "/scores.jsonl")
    local keep = {}
    for line in lines:gmatch("[^\n]+") do
      if line:find('"trace_00[1-9]"') then keep[#keep + 1] = line end
    end
    local copy = P.new()
    os.execute(("cp %s/traces.jsonl %s/summary.json %s/"):format(q(exp), q(exp), q(copy)))
    P.write(copy, "scores.jsonl", table.concat(keep, "\n") .. "\n")
    local code, _, err = P.run(copy, "report " .. q(copy))
    local out = P.read(copy .. "/report.html")
    P.remove(copy)
    assert.are.equal(0, code, err)
    assert.truthy(out:find("9 of 18 runs have no grade in scores.jsonl", 1, true))
  end)

  it("has no Grades section without scores.jsonl", function()
    local pdir, pexp = F.experiment(nil, 2)
    local code, _, err = P.run(pdir, "report " .. q(pexp))
    local out = P.read(pexp .. "/report.html")
    P.remove(pdir)
    assert.are.equal(0, code, err)
    assert.is_nil(out:find('id="grades"', 1, true))
    assert.is_nil(out:find("#grades", 1, true))
  end)
end)
