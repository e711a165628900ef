-- pricing_spec.lua - fluxloop.pricing: the `pricing:` section checked when the config loads,
-- read back from an experiment's config.yaml, and a model's price found by name.
local P = require("support.project")
local pricing = require("fluxloop.pricing")

local RUNNER = "runner: {target: agents.agent:run}\n"

describe("fluxloop.pricing in a config", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  it("loads a price per million tokens per model, model names with dots included, with no warning", function()
    local cfg, warnings = P.load_config(dir, RUNNER .. [[
pricing:
  gpt-4o-mini: {input_per_1m: 0.15, output_per_1m: 0.60}
  gpt-4.1: {input_per_1m: 2, output_per_1m: 8}
]])
    assert.is_not_nil(cfg, warnings)
    assert.are.same({ input_per_1m = 0.15, output_per_1m = 0.6 }, cfg.pricing["gpt-4o-mini"])
    assert.are.same({ input_per_1m = 2, output_per_1m = 8 }, cfg.pricing["gpt-4.1"])
    assert.are.same({}, warnings)
  end)

  it("refuses a missing or negative price and a non-mapping, naming FILE:LINE:COL", function()
    local cfg, err = P.load_config(dir, RUNNER .. "pricing:\n  m: {input_per_1m: 1}\n")
    assert.is_nil(cfg)
    assert.matches("configs/simulation.yaml:3:6: pricing.m: missing 'output_per_1m'", err, 1, true)
    cfg, err = P.load_config(dir, RUNNER .. "pricing:\n  gpt-4.1: {input_per_1m: -2, output_per_1m: 1}\n")
    assert.is_nil(cfg)
    assert.matches("configs/simulation.yaml:3:27: pricing.gpt-4.1.input_per_1m: expected a price >= 0", err, 1, true)
    cfg, err = P.load_config(dir, RUNNER .. "pricing: [1]\n")
    assert.is_nil(cfg)
    assert.matches("pricing: expected a mapping (gpt-4o-mini: {input_per_1m", err, 1, true)
    cfg, err = P.load_config(dir, RUNNER .. "pricing:\n  m: 3\n")
    assert.is_nil(cfg)
    assert.matches("pricing.m: expected a mapping {input_per_1m", err, 1, true)
  end)

  it("warns of an unknown key with the closest one", function()
    local _, err = P.load_config(dir, RUNNER .. "pricing:\n  m: {input_per_1m: 1, output_per_1m: 2, outptu_per_1m: 3}\n")
    assert.is_table(err)
    assert.matches("warning: unknown key 'outptu_per_1m' (did you mean 'output_per_1m'?)", err[1], 1, true)
  end)
end)

describe("fluxloop.pricing reading back", function()
  it("reads the prices of a config snapshot, and says which it cannot use", function()
    local p, problems = pricing.of_config_text("name: x\npricing:\n  a: {input_per_1m: 1, output_per_1m: 2}\n  b: {input_per_1m: x}\n")
    assert.are.same({ a = { input_per_1m = 1, output_per_1m = 2 } }, p)
    assert.matches("pricing.b.input_per_1m: expected a price >= 0", problems[1], 1, true)
    assert.is_nil((pricing.of_config_text("name: x\n")))
    assert.is_nil((pricing.of_config_text(nil)))
  end)

  it("finds a dated model's price under its base name, the longest that fits", function()
    local p = { ["gpt-4o"] = { input_per_1m = 2.5, output_per_1m = 10 }, ["gpt-4o-mini"] = { input_per_1m = 0.15,
      output_per_1m = 0.6 } }
    assert.are.equal(p["gpt-4o-mini"], pricing.price(p, "gpt-4o-mini-2024-07-18"))
    assert.are.equal(p["gpt-4o"], pricing.price(p, "gpt-4o-2024-08-06"))
    assert.are.equal(p["gpt-4o"], pricing.price(p, "gpt-4o"))
    assert.is_nil(pricing.price(p, "gpt-4"))
    assert.is_nil(pricing.price(p, "gpt-4omega"))
  end)

  it("costs tokens and writes a cost without an exponent", function()
    assert.is_true(math.abs(pricing.cost({ input_per_1m = 0.15, output_per_1m = 0.6 }, 1e6, 5e5) - 0.45) < 1e-12)
    assert.are.same({ "0.0123", "1.5", "0.000045", "123.46", "0" },
      { pricing.text(0.0123), pricing.text(1.5), pricing.text(0.000045), pricing.text(123.456), pricing.text(0) })
  end)
end)
