-- statistics_spec.lua - fluxloop.statistics against published values (R's fisher.test and
-- wilcox.test examples, scipy's documented examples) and exact rational computations.
local st = require("fluxloop.statistics")

local function near(expected, got, tol)
  assert(math.abs(expected - got) <= tol, ("expected %.10g, got %.10g"):format(expected, got))
end

describe("fluxloop.statistics.fisher", function()
  it("gives R's tea-tasting p-value (fisher.test(matrix(c(3,1,1,3),2)): 0.4857)", function()
    near(34 / 70, st.fisher(3, 1, 1, 3), 1e-12)
  end)

  it("gives scipy's documented example (fisher_exact([[6, 2], [1, 4]]): 0.10256410256410257)", function()
    near(0.10256410256410257, st.fisher(6, 2, 1, 4), 1e-12)
  end)

  it("matches exact hypergeometric sums (computed with rational arithmetic)", function()
    near(0.00576838675046995, st.fisher(7, 17, 15, 5), 1e-12)
    near(0.08179467495499858, st.fisher(74, 31, 43, 32), 1e-12)
    near(0.0027594561852200836, st.fisher(1, 9, 11, 3), 1e-12)
    near(1.082508822446903e-05, st.fisher(0, 10, 10, 0), 1e-15)
    near(2 / 252, st.fisher(5, 0, 0, 5), 1e-14)
  end)

  it("is 1 for identical rows and for empty tables", function()
    near(1, st.fisher(5, 5, 5, 5), 1e-12)
    assert.are.equal(1, st.fisher(0, 0, 0, 0))
  end)

  it("handles a million runs", function()
    local p = st.fisher(499000, 1000, 498800, 1200)
    assert.is_true(p > 0 and p < 1)
    assert.is_true(st.fisher(990000, 10000, 985000, 15000) < 1e-20)
  end)
end)

describe("fluxloop.statistics.mannwhitney", function()
  -- R: x <- c(0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46)
  --    y <- c(1.15, 0.88, 0.90, 0.74, 1.21); wilcox.test(x, y, alternative = "g"): W = 35, p = 0.1272
  local x = { 0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46 }
  local y = { 1.15, 0.88, 0.90, 0.74, 1.21 }

  it("gives R's wilcox.test example exactly (W = 35, two-sided p = 2 x 0.1272)", function()
    local r = st.mannwhitney(x, y)
    assert.are.equal(35, r.u)
    assert.is_true(r.exact)
    near(0.2544, r.p, 1e-4)
    near(0.2544, st.mannwhitney(y, x).p, 1e-4)
    assert.are.equal(15, st.mannwhitney(y, x).u)
  end)

  it("gives scipy's documented example (U = 17, exact p = 1/9, asymptotic 0.11134688653)", function()
    local males, females = { 19, 22, 16, 29, 24 }, { 20, 11, 17, 12 }
    local r = st.mannwhitney(males, females)
    assert.are.equal(17, r.u)
    near(1 / 9, r.p, 1e-12)
    near(0.11134688653314041, st.mannwhitney(males, females, "asymptotic").p, 1e-9)
  end)

  it("uses the tie-corrected normal approximation when values tie", function()
    -- By hand: ranks of {1,2,2,3} among {2,3,4,4}: 1, 3, 3, 5.5, so U = 12.5 - 10 = 2.5;
    -- ties (three 2s: 24, two 3s: 6, two 4s: 6), sigma^2 = 16/12 * (9 - 36/56), z = (2.5 - 8 + 0.5) / sigma
    local r = st.mannwhitney({ 1, 2, 2, 3 }, { 2, 3, 4, 4 })
    assert.is_false(r.exact)
    assert.are.equal(2.5, r.u)
    local sigma = math.sqrt(16 / 12 * (9 - 36 / 56))
    near((2.5 - 8 + 0.5) / sigma, r.z, 1e-12)
  end)

  it("finds a shift between two large samples and none between equal ones", function()
    local a, b, c = st.sample(), st.sample(), st.sample()
    for i = 1, 5000 do
      a:add(i % 97)
      b:add(i % 97 + 5)
      c:add((i * 7) % 97)
    end
    assert.is_true(st.mannwhitney(a, b).p < 1e-10)
    assert.is_true(st.mannwhitney(a, c).p > 0.5)
  end)

  it("refuses an exact test with ties", function()
    assert.has_error(function() st.mannwhitney({ 1, 1 }, { 1, 2 }, "exact") end)
  end)
end)

describe("fluxloop.statistics.wilson", function()
  it("gives the Wilson score interval (5 of 10: 0.2366 to 0.7634)", function()
    local lo, hi = st.wilson(5, 10)
    near(0.236593090512564, lo, 1e-12)
    near(0.7634069094874361, hi, 1e-12)
    lo, hi = st.wilson(0, 10)
    assert.are.equal(0, lo)
    near(0.2775327998628892, hi, 1e-12)
    lo, hi = st.wilson(0, 0)
    assert.are.equal(0, lo)
    assert.are.equal(1, hi)
  end)
end)

describe("fluxloop.statistics.sample", function()
  it("gives exact percentiles the way summary.json does", function()
    local s = st.sample()
    for _, v in ipairs({ 5, 1, 4, 2, 3 }) do s:add(v) end
    assert.are.equal(5, s:count())
    assert.are.equal(3, s:percentile(50))
    near(4.8, s:percentile(95), 1e-12)
    assert.are.equal(1, s:percentile(0))
    s:add(10)
    assert.are.equal(3.5, s:percentile(50))
    assert.are.same({ 4, 1, 1 }, s:histogram(0, 15, 3))
    assert.is_nil(st.sample():percentile(50))
  end)

  it("merges samples", function()
    local a, b = st.sample(), st.sample()
    a:add(1); a:add(3); b:add(2)
    local m = st.merge({ a, b })
    assert.are.equal(3, m:count())
    assert.are.equal(2, m:percentile(50))
  end)
end)

describe("fluxloop.statistics.groups", function()
  it("keeps counts, exact percentiles and distinct outputs per group", function()
    local gs = st.groups(2)
    gs:add(1, 5, true, 11)
    gs:add(1, 1, true, 11)
    gs:add(2, 7, false)
    gs:add(1, 3, true, 22)
    gs:add(1, 9, true, 33) -- a third distinct output: past max_outputs, not counted
    gs:add(1, 2, false)
    assert.are.equal(2, gs:count())
    assert.are.same({ 5, 4, 2, 2, 1 }, { gs:get(1) })
    assert.are.same({ 1, 0, 0, 0, 0 }, { gs:get(2) })
    assert.are.equal(3, gs:percentile(1, 50))
    assert.are.equal(7, gs:percentile(2, 95))
    assert.has_error(function() gs:add(4, 1, true) end)
    assert.has_error(function() gs:get(3) end)
  end)

  it("tests one group against another (R's wilcox.test example again)", function()
    local a, b = st.groups(), st.groups()
    for _, v in ipairs({ 0.80, 0.83, 1.89, 1.04, 1.45, 1.38, 1.91, 1.64, 0.73, 1.46 }) do a:add(1, v, true) end
    for _, v in ipairs({ 1.15, 0.88, 0.90, 0.74, 1.21 }) do b:add(1, v, true) end
    local r = a:mannwhitney(1, b, 1)
    assert.are.equal(35, r.u)
    near(0.2544, r.p, 1e-4)
  end)
end)

describe("fluxloop.statistics bounded samples and p-values", function()
  local statistics = require("fluxloop.statistics")

  it("keeps values exactly up to its limit, then bins them (percentiles within 0.3%)", function()
    local small, exact = statistics.sample(100), statistics.sample()
    for i = 1, 5000 do small:add(i) exact:add(i) end
    assert.is_false(small:exact())
    assert.is_true(exact:exact())
    assert.are.equal(5000, small:count())
    for _, p in ipairs({ 50, 90, 95, 99 }) do
      local a, b = small:percentile(p), exact:percentile(p)
      assert.is_true(math.abs(a - b) / b < 0.003, ("p%d %s vs %s"):format(p, a, b))
    end
    assert.are.same({ 1, 5000 }, { small:percentile(0), small:percentile(100) })
    local s = small:summary()
    assert.are.same({ 5000, 1, 5000, 2500.5 }, { s.count, s.min, s.max, s.mean })
    local h = small:histogram(0, 5000, 10)
    local total = 0
    for _, c in ipairs(h) do total = total + c end
    assert.are.equal(5000, total)
    small:reset()
    assert.are.same({ 0, true }, { small:count(), small:exact() })
  end)

  it("tests binned samples with Mann-Whitney close to the exact test", function()
    local a, b, ea, eb = statistics.sample(10), statistics.sample(10), statistics.sample(), statistics.sample()
    for i = 1, 3000 do
      -- values 2% apart: each in a bin of its own, so the bins lose nothing
      local x, y = 10 * 1.02 ^ (i % 97), 10.3 * 1.02 ^ (i % 89)
      a:add(x) ea:add(x)
      b:add(y) eb:add(y)
    end
    local binned, exact = statistics.mannwhitney(a, b), statistics.mannwhitney(ea, eb)
    assert.is_false(binned.exact)
    assert.is_true(math.abs(binned.z - exact.z) < 1e-9, ("%s vs %s"):format(binned.z, exact.z))
  end)

  it("Holm-adjusts a packed list of p-values, nil for no test", function()
    local pv = statistics.pvalues()
    for _, p in ipairs({ 0.01, 0.04, false, 0.03, 0.5 }) do pv:add(p or nil) end
    pv:holm()
    local got = {}
    for i = 1, pv:count() do got[i] = pv:get(i) or "none" end
    -- m = 4: 0.01 * 4, max(0.03 * 3, 0.04), max(0.04 * 2, 0.09), 0.5
    for i, want in ipairs({ 0.04, 0.09, "none", 0.09, 0.5 }) do
      if want == "none" then assert.are.equal("none", got[i]) else assert.is_true(math.abs(got[i] - want) < 1e-12) end
    end
  end)
end)

-- python(script) -> the numbers a short Python program prints (an independent computation:
-- its own arithmetic, and the standard library's NormalDist for the normal quantiles).
local function python(script)
  local path = os.tmpname()
  local f = assert(io.open(path, "w"))
  f:write(script)
  f:close()
  local h = assert(io.popen("python3 " .. path))
  local out = h:read("a")
  h:close()
  os.remove(path)
  local nums = {}
  for x in out:gmatch("%S+") do nums[#nums + 1] = assert(tonumber(x), out) end
  return nums
end

describe("fluxloop.statistics.cmh", function()
  -- R: mantelhaen.test(UCBAdmissions): Mantel-Haenszel X-squared = 1.4269, df = 1,
  -- p-value = 0.2323, common odds ratio 0.9046968 (gender x admission, stratified by department).
  local UCB = { { 512, 313, 89, 19 }, { 353, 207, 17, 8 }, { 120, 205, 202, 391 }, { 138, 279, 131, 244 },
    { 53, 138, 94, 299 }, { 22, 351, 24, 317 } }

  it("gives R's mantelhaen.test example (UCBAdmissions)", function()
    local r = st.cmh(UCB)
    near(1.4269, r.chi2, 5e-5)
    near(0.2323, r.p, 5e-5)
    near(0.9046968, r.odds_ratio, 5e-8)
    assert.are.equal(6, r.strata)
  end)

  it("adds strata one at a time to the same result", function()
    local s = st.strata()
    for _, t in ipairs(UCB) do s:add(t[1], t[2], t[3], t[4]) end
    local a, b = s:cmh(), st.cmh(UCB)
    near(b.chi2, a.chi2, 1e-12)
    near(b.p, a.p, 1e-12)
  end)

  it("works by hand on one stratum (2 of 4 against 4 of 4)", function()
    -- n = 8, E[a] = 4 * 6 / 8 = 3, V = 4*4*6*2 / (64 * 7) = 3/7; (|2 - 3| - 0.5)^2 / (3/7) = 7/12
    local r = st.cmh({ { 2, 2, 4, 0 } })
    near(7 / 12, r.chi2, 1e-12)
    assert.are.same({ 2, 3 }, { r.observed, r.expected })
  end)

  it("is 1 with no informative stratum, and skips strata of fewer than 2 runs", function()
    local r = st.cmh({ { 1, 0, 0, 0 }, { 3, 0, 2, 0 } })
    assert.are.same({ 0, 1, 0 }, { r.chi2, r.p, r.strata })
    assert.has_error(function() st.cmh({ { 1, -1, 0, 0 } }) end)
  end)

  it("agrees with an independent Python computation on random strata", function()
    local strata, rows = {}, {}
    math.randomseed(7)
    for i = 1, 40 do
      local t = { math.random(0, 30), math.random(0, 30), math.random(0, 30), math.random(0, 30) }
      strata[i] = t
      rows[i] = ("(%d,%d,%d,%d)"):format(t[1], t[2], t[3], t[4])
    end
    local want = python(([[
import math
T = [%s]
sa = se = sv = 0.0
for a, b, c, d in T:
    n = a + b + c + d
    if n < 2: continue
    sa += a; se += (a + b) * (a + c) / n; sv += (a + b) * (c + d) * (a + c) * (b + d) / (n * n * (n - 1))
delta = abs(sa - se)
x = (delta - min(0.5, delta)) ** 2 / sv
print(repr(x), repr(math.erfc(math.sqrt(x / 2))))
]]):format(table.concat(rows, ",")))
    local r = st.cmh(strata)
    near(want[1], r.chi2, 1e-9 * want[1])
    near(want[2], r.p, 1e-12)
  end)
end)

describe("fluxloop.statistics.two_prop_n and norm_isf", function()
  it("inverts the normal tail", function()
    near(1.959963984540054, st.norm_isf(0.025), 1e-12)
    near(0.8416212335729143, st.norm_isf(0.2), 1e-12)
    near(-1.2815515655446004, st.norm_isf(0.9), 1e-12)
    local ps, zs = { 1e-12, 1e-6, 0.3, 0.5, 0.77 }, {}
    for i, p in ipairs(ps) do zs[i] = ("%.17g"):format(st.norm_isf(p)) end
    local back = python(("import math\nfor z in [%s]: print(repr(0.5 * math.erfc(z / math.sqrt(2))))\n")
      :format(table.concat(zs, ",")))
    for i, p in ipairs(ps) do near(p, back[i], 1e-12 * p) end
  end)

  it("gives the runs a side the normal approximation needs, as an independent Python computation", function()
    local pairs_ = { { 0.9, 0.7, 0.05 }, { 1, 0, 0.05 }, { 0.95, 0.9, 0.05 }, { 0.5, 0.4, 0.01 }, { 0.99, 0.98, 0.05 },
      { 0.2, 0.6, 0.0125 } }
    local rows = {}
    for i, c in ipairs(pairs_) do rows[i] = ("(%s,%s,%s)"):format(c[1], c[2], c[3]) end
    local want = python(([[
import math
from statistics import NormalDist
N = NormalDist()
for p1, p2, a in [%s]:
    d = abs(p1 - p2); pb = (p1 + p2) / 2
    n = (N.inv_cdf(1 - a / 2) * math.sqrt(2 * pb * (1 - pb)) + N.inv_cdf(0.8) * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))) ** 2 / d ** 2
    print(math.ceil(n / 4 * (1 + math.sqrt(1 + 4 / (n * d))) ** 2))
]]):format(table.concat(rows, ",")))
    for i, c in ipairs(pairs_) do assert.are.equal(want[i], st.two_prop_n(c[1], c[2], c[3]), table.concat(c, " ")) end
    -- by hand: 100% against 0% at alpha .05: n = 1.96^2 * 0.5 / 1 = 1.92, n' = 0.48 (1 + sqrt(1 + 4/1.92))^2 = 3.64
    assert.are.equal(4, st.two_prop_n(1, 0))
    assert.is_nil(st.two_prop_n(0.5, 0.5))
    assert.has_error(function() st.two_prop_n(1.5, 0) end)
  end)
end)
