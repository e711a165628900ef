-- report_browser.lua - `make test-browser`: the HTML report opened in headless Chromium (Debian's
-- chromium, no network): the DOM holds the figures computed here from the JSONL, the page logs
-- nothing to the console, and a screenshot is saved (build/report.png; docs/report.png is a copy).
local P = require("support.project")
local F = require("support.results_fixture")

local CHROMIUM = os.getenv("CHROMIUM") or "/usr/bin/chromium"

-- chromium(url, flags) -> exit code, stdout, stderr. Root needs --no-sandbox; a fresh profile each
-- time, so nothing from an earlier run (or the network) is used.
local function chromium(url, flags)
  local profile = P.new()
  local out, err = os.tmpname(), os.tmpname()
  local cmd = ("timeout 180 %s --headless --no-sandbox --disable-gpu --no-first-run --disable-extensions "
    .. "--disable-background-networking --user-data-dir=%s --enable-logging=stderr --v=0 %s %s >%s 2>%s")
    :format(P.quote(CHROMIUM), P.quote(profile), flags, P.quote(url), P.quote(out), P.quote(err))
  local _, _, code = os.execute(cmd)
  local o, e = P.read(out), P.read(err)
  os.remove(out)
  os.remove(err)
  P.remove(profile)
  return code, o or "", e or ""
end

-- Console messages of the page, as Chromium logs them with --enable-logging ("CONSOLE(line)").
local function console_lines(log)
  local lines = {}
  for line in log:gmatch("[^\n]+") do
    if line:find("CONSOLE", 1, true) then lines[#lines + 1] = line end
  end
  return lines
end

local function ms(x)
  if x >= 100 then return ("%.0f"):format(x) elseif x >= 1 then return ("%.1f"):format(x) end
  return ("%.3f"):format(x)
end

describe("the HTML report in Chromium", function()
  local dir, exp
  setup(function()
    dir, exp = F.experiment(F.TIMED_AGENT, 8)
    local code, _, err = P.run(dir, "report " .. P.quote(exp))
    assert(code == 0, err)
  end)
  teardown(function() P.remove(dir) end)

  it("notices console errors (the check itself can fail)", function()
    local page = P.write(dir, "bad.html", "<!DOCTYPE html><p>x</p><script>console.error('boom')</script>")
    local code, _, log = chromium("file://" .. page, "--dump-dom")
    assert.are.equal(0, code, log)
    assert.are.equal(1, #console_lines(log), log)
  end)

  it("shows the figures of the JSONL, with no console message", function()
    local code, dom, log = chromium("file://" .. exp .. "/report.html", "--dump-dom")
    assert.are.equal(0, code, log)
    assert.are.same({}, console_lines(log))
    local f = F.figures(exp)
    assert.truthy(dom:find('data-figure="total">' .. f.total .. "<", 1, true), dom)
    assert.truthy(dom:find('data-figure="successful">' .. f.ok .. "<", 1, true))
    assert.truthy(dom:find('data-figure="failed">' .. f.failed .. "<", 1, true))
    assert.truthy(dom:find('data-figure="success-rate">' .. math.floor(f.ok / f.total * 100 + 0.5) .. "%<", 1, true))
    for input, g in pairs(f.inputs) do
      local esc = input:gsub("&", "&amp;"):gsub("<", "&lt;"):gsub(">", "&gt;")
      local row = dom:match('<tr[^>]-data%-input="' .. esc:gsub("%p", "%%%0") .. '".-</tr>')
      assert.truthy(row, "no row for " .. input)
      assert.truthy(row:find(('data-runs="%d" data-successful="%d"'):format(g.n, g.ok), 1, true), row)
      assert.truthy(row:find('data-field="p50">' .. ms(g.p50) .. "<", 1, true), row)
      assert.truthy(row:find('data-field="distinct">' .. g.distinct .. "<", 1, true), row)
    end
    -- every run is in one bar of the histogram
    local hist = assert(dom:match('<svg[^>]-data%-chart="histogram".-</svg>'))
    local sum = 0
    for c in hist:gmatch('data%-count="(%d+)"') do sum = sum + tonumber(c) end
    assert.are.equal(f.total, sum)
    assert.truthy(dom:find('<tr class="worst" data-input="gamma question"', 1, true))
    assert.truthy(dom:find('data-chart="timeline"', 1, true))
  end)

  it("shows the comparison with another run (report --compare)", function()
    local new_dir, new = F.experiment(F.TIMED_CHANGED_AGENT, 8)
    local code, _, err = P.run(new_dir, ("report %s --compare %s"):format(P.quote(new), P.quote(exp)))
    assert.are.equal(0, code, err)
    local dom, log
    code, dom, log = chromium("file://" .. new .. "/report.html", "--dump-dom")
    P.remove(new_dir)
    assert.are.equal(0, code, log)
    assert.are.same({}, console_lines(log))
    assert.truthy(dom:find('id="compare"', 1, true))
    assert.truthy(dom:find('data-compare-input="beta &lt;b&gt;question&lt;/b&gt; &amp; more" data-verdict="regression"',
      1, true), dom)
    assert.truthy(dom:find('data-compare-input="alpha question" data-verdict="same"', 1, true))
    assert.truthy(dom:find('data-notice="regressions"', 1, true))
  end)

  it("renders the Grades section of a graded experiment, with no console message", function()
    local gdir, gexp = F.graded_experiment(F.TIMED_AGENT, 4)
    local code, _, err = P.run(gdir, "report " .. P.quote(gexp))
    assert.are.equal(0, code, err)
    local dom, log
    code, dom, log = chromium("file://" .. gexp .. "/report.html", "--dump-dom")
    local figures = F.grade_figures(gexp)
    P.remove(gdir)
    assert.are.equal(0, code, log)
    assert.are.same({}, console_lines(log))
    assert.truthy(dom:find('id="grades"', 1, true))
    for name, g in pairs(figures) do
      assert.truthy(dom:find(('data-grader="%s" data-graded="%d" data-passed="%d" data-failed="%d"')
        :format(name, g.passed + g.failed + g.errors, g.passed, g.failed), 1, true), name)
    end
    -- the curve is an SVG element in the DOM, a line per grader and a dot per k
    local svg = assert(dom:match('<svg[^>]-data%-chart="pass%-hat%-k".-</svg>'), "no pass^k chart")
    local lines, dots = 0, 0
    for _ in svg:gmatch("<polyline") do lines = lines + 1 end
    for _ in svg:gmatch("<circle") do dots = dots + 1 end
    assert.are.same({ 4, 16 }, { lines, dots })
    assert.truthy(dom:find('data-grade-input="gamma question"', 1, true))
    assert.truthy(dom:find("no &lt;b&gt;beta&lt;/b&gt; &amp; co", 1, true), "the reason, escaped")
  end)

  it("saves a screenshot", function()
    local shot = (os.getenv("FLUXLOOP_BUILD") or "build") .. "/report.png"
    os.remove(shot)
    local code, _, log = chromium("file://" .. exp .. "/report.html",
      "--hide-scrollbars --window-size=1280,2000 --screenshot=" .. P.quote(shot))
    assert.are.equal(0, code, log)
    assert.are.same({}, console_lines(log))
    local png = assert(P.read(shot), "no screenshot at " .. shot)
    assert.are.equal("\137PNG", png:sub(1, 4))
    assert.is_true(#png > 20000)
  end)

  it("shows every section for the repository's demo experiment", function()
    local demo = P.new()
    local root = os.getenv("PWD") or "."
    os.execute(("cp -r %s/configs %s/inputs %s/examples %s/"):format(P.quote(root), P.quote(root), P.quote(root),
      P.quote(demo)))
    local code, _, err = P.run(demo, "run experiment --iterations 2 --quiet")
    assert.are.equal(0, code, err)
    local exp = P.experiments(demo)[1]
    code, _, err = P.run(demo, "report " .. P.quote(exp))
    assert.are.equal(0, code, err)
    local dom, log
    code, dom, log = chromium("file://" .. exp .. "/report.html", "--dump-dom")
    P.remove(demo)
    assert.are.equal(0, code, log)
    assert.are.same({}, console_lines(log))
    for _, id in ipairs({ "summary", "charts", "inputs", "personas", "failures", "slowest", "config" }) do
      assert.truthy(dom:find('id="' .. id .. '"', 1, true), id)
    end
    assert.truthy(dom:find('data-figure="total">8<', 1, true))
    assert.truthy(dom:find('data-figure="no-failures"', 1, true))
    assert.truthy(dom:find('data-input="How do I start?" data-runs="2" data-successful="2"', 1, true))
  end)
end)
