-- compare_spec.lua - fluxloop.compare.diff on made-up aggregates: what is flagged, Holm's
-- correction, inputs of one run only, and the width of the table.
local compare = require("fluxloop.compare")
local statistics = require("fluxloop.statistics")

-- group(key, n, ok, durations_fn, outputs, grades) -> an aggregate as fluxloop.analysis makes them;
-- grades: list of { grader, passed, failed [, errors] } (fluxloop.grades' row.grades)
local function group(key, n, ok, dur, outputs, grades)
  local g = { key = key, n = n, ok = ok, sample = statistics.sample(), outputs = outputs or { [1] = ok } }
  if grades then
    g.grades, g.grade_names = {}, {}
    for i, e in ipairs(grades) do
      g.grades[e[1]] = { passed = e[2], failed = e[3], errors = e[4] or 0 }
      g.grade_names[i] = e[1]
    end
  end
  g.top = 0
  for _, c in pairs(g.outputs) do g.top = math.max(g.top, c) end
  for i = 1, n do g.sample:add(dur(i)) end
  return g
end

local function run(groups)
  local an = { inputs = groups, by_input = {}, total = 0, ok = 0, sample = statistics.sample() }
  for _, g in ipairs(groups) do
    an.by_input[g.key] = g
    an.total, an.ok = an.total + g.n, an.ok + g.ok
  end
  local all = {}
  for _, g in ipairs(groups) do all[#all + 1] = g.sample end
  an.sample = statistics.merge(all)
  return an
end

local function steady(i) return 10 + (i % 7) end

describe("fluxloop.compare.diff", function()
  it("flags a drop in success, a slowdown and a loss of consistency, and only those", function()
    local base = run({
      group("same", 30, 30, steady), group("fails", 30, 30, steady), group("slow", 30, 30, steady),
      group("varied", 30, 30, steady, { [1] = 30 }),
    })
    local new = run({
      group("same", 30, 30, steady), group("fails", 30, 10, steady), group("slow", 30, 30, function(i) return steady(i) * 3 end),
      group("varied", 30, 30, steady, { [1] = 10, [2] = 10, [3] = 10 }),
    })
    local d = compare.diff(base, new, 0.05)
    local by = {}
    for _, r in ipairs(d.rows) do by[r.key] = r end
    assert.are.equal("no change", by.same.verdict_text)
    assert.are.equal("fails more", by.fails.verdict_text)
    assert.are.equal("slower", by.slow.verdict_text)
    assert.are.equal("less consistent", by.varied.verdict_text)
    assert.is_true(by.fails.regression and by.slow.regression and by.varied.regression)
    assert.is_false(by.same.regression)
    assert.is_true(d.regressions >= 3)
    for line in compare.text(d, "base", "new"):gmatch("[^\n]+") do assert.is_true(#line <= 100, line) end
  end)

  it("calls an improvement an improvement, not a regression", function()
    local base = run({ group("a", 20, 5, steady) })
    local new = run({ group("a", 20, 20, steady) })
    local r = compare.diff(base, new, 0.05).rows[1]
    assert.are.equal("fails less", r.verdict_text)
    assert.is_false(r.regression)
    assert.is_true(r.improvement)
  end)

  it("Holm-adjusts p-values across inputs", function()
    local base = run({ group("a", 12, 12, steady), group("b", 12, 12, steady), group("c", 12, 12, steady) })
    local new = run({ group("a", 12, 7, steady), group("b", 12, 12, steady), group("c", 12, 12, steady) })
    local r = compare.diff(base, new, 0.05).rows[1]
    -- Fisher on 12/12 vs 7/12 is 0.0373; times 3 inputs is 0.112: not significant, and too few
    -- runs to tell (at alpha / 3: 24 a side)
    assert.is_true(math.abs(r.p_success - 0.03727) < 1e-4, tostring(r.p_success))
    assert.is_true(math.abs(r.p_success_adj - 3 * r.p_success) < 1e-12)
    assert.are.equal("too few runs", r.verdict_text)
    assert.are.equal(statistics.two_prop_n(1, 7 / 12, 0.05 / 3), r.too_few)
    assert.is_false(r.regression)
  end)

  it("says when the runs are too few to tell a drop in success, with the iterations that would", function()
    local d = compare.diff(run({ group("a", 10, 9, steady), group("b", 10, 10, steady) }),
      run({ group("a", 10, 8, steady), group("b", 10, 10, steady) }), 0.05)
    local a, b = d.rows[1], d.rows[2]
    -- 90% > 80% at alpha .05 / 2 inputs: 261 runs a side
    assert.are.same({ "too few runs", 261 }, { a.verdict_text, a.too_few })
    assert.are.same({ "no change" }, { b.verdict_text }) -- no drop: nothing to tell
    -- overall 95% > 90% over 2 inputs: the runs a side over the inputs
    assert.are.equal(math.ceil(statistics.two_prop_n(0.95, 0.9, 0.05) / 2), d.overall.too_few)
    local text = compare.text(d, "base", "new")
    assert.truthy(text:find("  success: too few runs to tell; about 261 iterations would", 1, true), text)
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 100, line) end
    -- an improvement, or enough runs, is no such thing
    local up = compare.diff(run({ group("a", 10, 8, steady) }), run({ group("a", 10, 9, steady) }), 0.05).rows[1]
    assert.are.same({ "no change" }, { up.verdict_text })
    assert.is_nil(compare.too_few(0.9, 0.8, 300, 0.05))
    assert.are.equal(219, compare.too_few(0.9, 0.8, 100, 0.05))
    assert.are.equal(22, compare.too_few(0.9, 0.8, 100, 0.05, 10))
  end)

  it("ignores a latency change below 10% or 0.5 ms however significant", function()
    local base = run({ group("a", 2000, 2000, function(i) return 1 + (i % 10) * 0.001 end) })
    local new = run({ group("a", 2000, 2000, function(i) return 1.05 + (i % 10) * 0.001 end) })
    local r = compare.diff(base, new, 0.05).rows[1]
    assert.is_true(r.p_latency < 1e-10)
    assert.are.equal("no change", r.verdict_text)
  end)

  it("lists the inputs of one run only, and refuses runs with none in common", function()
    local d = compare.diff(run({ group("a", 5, 5, steady), group("b", 5, 5, steady) }),
      run({ group("a", 5, 5, steady), group("c", 5, 5, steady) }), 0.05)
    assert.are.same({ "b" }, d.only_base)
    assert.are.same({ "c" }, d.only_new)
    local none, err = compare.diff(run({ group("a", 5, 5, steady) }), run({ group("z", 5, 5, steady) }), 0.05)
    assert.is_nil(none)
    assert.matches("no input in common", err)
  end)
end)

describe("fluxloop.compare.diff of grades", function()
  -- Two inputs; grader "g" drops on both (18/20 > 10/20 and 20/20 > 16/20), "h" does not move.
  local function pair(g_new)
    local base = run({ group("a", 20, 20, steady, nil, { { "g", 18, 2 }, { "h", 10, 10 } }),
      group("b", 20, 20, steady, nil, { { "g", 20, 0 }, { "h", 10, 10, 3 } }) })
    local new = run({ group("a", 20, 20, steady, nil, { { "g", g_new[1], 20 - g_new[1] }, { "h", 10, 10 } }),
      group("b", 20, 20, steady, nil, { { "g", g_new[2], 20 - g_new[2] }, { "h", 10, 10 } }) })
    return compare.diff(base, new, 0.05)
  end

  it("tests each grader per input (Fisher, Holm-adjusted) and overall (Cochran-Mantel-Haenszel)", function()
    local d = pair({ 10, 16 })
    local a = d.rows[1].grades
    assert.are.same({ "g", "h" }, { a[1].name, a[2].name })
    assert.is_true(math.abs(a[1].p - statistics.fisher(18, 2, 10, 10)) < 1e-12)
    assert.is_true(math.abs(a[1].p_adj - 2 * a[1].p) < 1e-12) -- Holm over 2 inputs, the smaller p
    local g = d.grades.rows[1]
    local want = statistics.cmh({ { 18, 2, 10, 10 }, { 20, 0, 16, 4 } })
    assert.are.same({ "g", 2 }, { g.name, g.inputs })
    assert.is_true(math.abs(g.p - want.p) < 1e-12)
    assert.are.same({ 38 / 40, 26 / 40 }, { g.base_rate, g.new_rate })
    assert.is_true(g.regression)
    assert.are.equal("passes less", g.verdict_text)
    assert.are.same({ "h", "no change" }, { d.grades.rows[2].name, d.grades.rows[2].verdict_text })
    -- each input's drop alone: a significant at .0276 (Holm), b not (.106)
    assert.are.same({ true, false }, { a[1].regression, d.rows[2].grades[1].regression })
    assert.are.same({ "g (overall, 1 input)" }, compare.dropped(d))
    assert.are.equal(2, d.regressions)
    local text = compare.text(d, "base", "new")
    assert.truthy(text:find("grades overall: Cochran-Mantel-Haenszel", 1, true), text)
    assert.truthy(text:find("  grade g                   95%>65%   .0017  ! passes less", 1, true), text)
    assert.truthy(text:find("graders that pass less: g (overall, 1 input)", 1, true), text)
    for line in text:gmatch("[^\n]+") do assert.is_true(#line <= 100, line) end
  end)

  it("says when a grader's drop is too small for the runs, overall and per input", function()
    local d = pair({ 17, 19 })
    local g = d.grades.rows[1]
    assert.is_false(g.regression)
    -- 95% > 90% pooled over 2 inputs: the runs a side the normal approximation needs, per input
    assert.are.equal(math.ceil(statistics.two_prop_n(0.95, 0.9, 0.05) / 2), g.too_few)
    assert.are.equal(("too few runs to tell; about %d iterations would"):format(g.too_few), g.verdict_text)
    local a = d.rows[1].grades[1]
    assert.are.equal(statistics.two_prop_n(0.9, 0.85, 0.025), a.too_few)
    assert.are.equal(0, d.regressions)
  end)

  it("names graders of one side only, and compares nothing of them", function()
    local base = run({ group("a", 5, 5, steady, nil, { { "old", 5, 0 } }) })
    local new = run({ group("a", 5, 5, steady, nil, { { "new", 0, 5 } }) })
    local d = compare.diff(base, new, 0.05)
    assert.are.same({ {}, { "old" }, { "new" } }, { d.grades.rows, d.grades.only_base, d.grades.only_new })
    assert.are.same({}, d.rows[1].grades)
    assert.truthy(compare.text(d, "b", "n"):find("grade old: only in BASE, not compared", 1, true))
    -- folders without grades: no grade line at all
    local plain = compare.diff(run({ group("a", 5, 5, steady) }), run({ group("a", 5, 5, steady) }), 0.05)
    assert.is_nil(compare.text(plain, "b", "n"):find("grade", 1, true))
  end)
end)

describe("fluxloop.compare.stream", function()
  local P = require("support.project")
  local json = require("fluxloop.json")
  local results = require("fluxloop.results")
  local dirs = {}
  after_each(function() for _, d in ipairs(dirs) do P.remove(d) end end)

  -- folder(spec) -> an experiment folder; spec: list of { input, runs, ok, ms(i) }
  local function folder(spec)
    local dir, lines, k = P.new(), {}, 0
    dirs[#dirs + 1] = dir
    for _, s in ipairs(spec) do
      for i = 1, s[2] do
        k = k + 1
        local good = i <= s[3]
        lines[#lines + 1] = json.encode({ trace_id = ("trace_%03d"):format(k), input = s[1], output = good and "o" or json.null,
          duration_ms = s[4](i), success = good, persona = json.null, iteration = i - 1,
          error = good and json.null or { type = "error", message = "e" } })
      end
    end
    P.write(dir, "traces.jsonl", table.concat(lines, "\n") .. "\n")
    return assert(results.open(dir))
  end

  local function stream(b, n)
    local rows = {}
    local d = assert(compare.stream(b, n, 0.05, { row = function(row) rows[#rows + 1] = row end }))
    return d, rows
  end

  it("gives the rows of diff, in NEW's order, with inputs added, dropped and out of order", function()
    local slow = function(i) return steady(i) * 3 end
    local b = folder({ { "a", 20, 20, steady }, { "b", 20, 20, steady }, { "gone", 5, 5, steady }, { "c", 20, 20, steady },
      { "d", 20, 20, steady } })
    local n = folder({ { "a", 20, 20, steady }, { "new", 5, 5, steady }, { "b", 20, 8, steady }, { "d", 20, 20, slow },
      { "c", 20, 20, steady } })
    local d, rows = stream(b, n)
    local keys = {}
    for i, r in ipairs(rows) do keys[i] = r.key .. ":" .. r.verdict_text end
    assert.are.same({ "a:no change", "b:fails more", "d:slower", "c:no change" }, keys)
    assert.are.same({ { "gone" }, 1, { "new" }, 1 }, { d.only_base, d.only_base_count, d.only_new, d.only_new_count })
    assert.are.equal(4, d.count)
    assert.are.equal(3, d.regressions) -- b, d and the overall latency
    -- the same figures as diff over the whole aggregates
    local mem = compare.diff(
      run({ group("a", 20, 20, steady), group("b", 20, 20, steady), group("gone", 5, 5, steady), group("c", 20, 20, steady),
        group("d", 20, 20, steady) }),
      run({ group("a", 20, 20, steady), group("new", 5, 5, steady), group("b", 20, 8, steady), group("d", 20, 20, slow),
        group("c", 20, 20, steady) }), 0.05)
    for i, r in ipairs(mem.rows) do
      assert.are.equal(r.key, rows[i].key)
      assert.is_true(math.abs(r.p_success_adj - rows[i].p_success_adj) < 1e-12)
      assert.is_true(math.abs(r.p_latency_adj - rows[i].p_latency_adj) < 1e-12)
    end
  end)

  it("refuses two folders with no input in common", function()
    local d, err = compare.stream(folder({ { "a", 3, 3, steady } }), folder({ { "z", 3, 3, steady } }), 0.05,
      { row = function() end })
    assert.is_nil(d)
    assert.matches("no input in common", err)
  end)
end)
