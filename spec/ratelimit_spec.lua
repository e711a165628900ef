-- fluxloop.ratelimit: the shared request-rate bucket and in-flight cap, the --rate-limit flag,
-- and the config keys runner.rate_limit and runner.max_concurrent_requests.
local clock = require("fluxloop.clock")
local cli = require("fluxloop.cli")
local config = require("fluxloop.config")
local ratelimit = require("fluxloop.ratelimit")
local P = require("support.project")

describe("fluxloop.ratelimit", function()
  after_each(function() ratelimit.configure(nil) end)

  it("has no limit until configured, and none after configure(nil)", function()
    assert.is_nil(ratelimit.settings())
    assert.are.equal(0, ratelimit.acquire())
    ratelimit.configure({ requests_per_second = 5, burst = 2, max_concurrent = 3 })
    assert.are.same({ requests_per_second = 5, burst = 2, max_concurrent = 3 }, ratelimit.settings())
    ratelimit.configure(nil)
    assert.is_nil(ratelimit.settings())
  end)

  it("lets a burst through at once, then one request per interval", function()
    ratelimit.configure({ requests_per_second = 20, burst = 3 })
    local t0 = clock.now_ns()
    for _ = 1, 3 do ratelimit.acquire() end
    local burst_ms = (clock.now_ns() - t0) / 1e6
    for _ = 1, 4 do ratelimit.acquire() end
    local total_ms = (clock.now_ns() - t0) / 1e6
    -- 4 more at 20/s need at least 150 ms after the burst (the first may go 50 ms in)
    assert.is_true(total_ms >= 190, "7 requests took " .. total_ms .. " ms")
    assert.is_true(burst_ms < total_ms)
    local s = ratelimit.stats()
    assert.are.equal(7, s.requests)
    assert.is_true(s.waited_ms > 100)
  end)

  it("never lets more than the rate into one second, burst or not", function()
    -- 10/s with a burst of 10: ten at once, then the eleventh a second after the first
    -- (a bucket alone would let it go 100 ms in).
    ratelimit.configure({ requests_per_second = 10, burst = 10 })
    local t0, at = clock.now_ns(), {}
    for i = 1, 13 do
      ratelimit.acquire()
      at[i] = (clock.now_ns() - t0) / 1e6
    end
    assert.is_true(at[10] < 100, "the burst took " .. at[10] .. " ms")
    for i = 1, 3 do
      assert.is_true(at[i + 10] - at[i] >= 1000, ("requests %d and %d went %.1f ms apart")
        :format(i, i + 10, at[i + 10] - at[i]))
    end
    assert.are.equal(13, ratelimit.stats().requests)
  end)

  it("refuses a rate of 0 or less, a burst below 1 and a cap out of range", function()
    assert.has_error(function() ratelimit.configure({ requests_per_second = 0 }) end)
    assert.has_error(function() ratelimit.configure({ requests_per_second = -1 }) end)
    assert.has_error(function() ratelimit.configure({ requests_per_second = 1, burst = 0 }) end)
    assert.has_error(function() ratelimit.configure({ max_concurrent = 0 }) end)
    assert.has_error(function() ratelimit.configure({ max_concurrent = 5000 }) end)
  end)
end)

describe("--rate-limit", function()
  it("takes a number of requests per second > 0", function()
    local cmd = assert(cli.parse({ "run", "experiment", "--rate-limit", "2.5" }))
    assert.are.equal(2.5, cmd.flags.rate_limit)
    assert.are.equal(10, cli.parse({ "run", "experiment", "--rate-limit=10" }).flags.rate_limit)
    for _, bad in ipairs({ "0", "-3", "abc", "0.0" }) do
      local c, err = cli.parse({ "run", "experiment", "--rate-limit", bad })
      assert.is_nil(c)
      assert.matches("%-%-rate%-limit: expected a number > 0", err)
    end
  end)
end)

describe("config: runner.rate_limit and runner.max_concurrent_requests", function()
  local dir
  before_each(function() dir = P.new() end)
  after_each(function() P.remove(dir) end)

  local function load(yaml) return P.load_config(dir, yaml) end

  it("reads a mapping or a plain number; burst defaults to 1", function()
    local cfg = assert(load('runner:\n  target: "a:run"\n  rate_limit: {requests_per_second: 10, burst: 5}\n'
      .. "  max_concurrent_requests: 8\n"))
    assert.are.same({ requests_per_second = 10, burst = 5 }, cfg.runner.rate_limit)
    assert.are.equal(8, cfg.runner.max_concurrent_requests)
    cfg = assert(load('runner:\n  target: "a:run"\n  rate_limit: 0.5\n'))
    assert.are.same({ requests_per_second = 0.5, burst = 1 }, cfg.runner.rate_limit)
  end)

  it("names the line and column of a rate of 0 or less, and of a bad burst or cap", function()
    local cfg, err = load('runner:\n  target: "a:run"\n  rate_limit: {requests_per_second: 0, burst: 0}\n'
      .. "  max_concurrent_requests: -2\n")
    assert.is_nil(cfg)
    assert.matches("configs/simulation.yaml:3:37: runner.rate_limit.requests_per_second: expected a number > 0", err)
    assert.matches("configs/simulation.yaml:3:47: runner.rate_limit.burst: expected an integer from 1", err)
    assert.matches("configs/simulation.yaml:4:28: runner.max_concurrent_requests: expected an integer from 1 to 4096",
      err)
    _, err = load('runner:\n  target: "a:run"\n  rate_limit: -1\n')
    assert.matches("configs/simulation.yaml:3:15: runner.rate_limit: expected a number > 0", err)
    _, err = load('runner:\n  target: "a:run"\n  rate_limit: {burst: 2}\n')
    assert.matches("runner.rate_limit: missing requests_per_second", err)
  end)

  it("--rate-limit overrides the rate and keeps the config's burst, in config.yaml too", function()
    local cfg = assert(load('runner:\n  target: "a:run"\n  rate_limit: {requests_per_second: 10, burst: 4}\n'))
    config.apply_overrides(cfg, { rate_limit = 3 })
    assert.are.same({ requests_per_second = 3, burst = 4 }, cfg.runner.rate_limit)
    assert.matches("requests_per_second: 3", config.snapshot(cfg))
    cfg = assert(load('runner:\n  target: "a:run"\n'))
    config.apply_overrides(cfg, { rate_limit = 7 })
    assert.are.same({ requests_per_second = 7, burst = 1 }, cfg.runner.rate_limit)
  end)
end)

describe("--rate-limit against a strict server (at most N requests in any one-second window)", function()
  local mock = require("support.mock_server")
  local server, dir
  setup(function() server = mock.start() end)
  teardown(function() if server then server:stop() end end)
  after_each(function() P.remove(dir) end)

  -- 50 runs at --parallel 32 --rate-limit 20 take about 2.5 s; the server answers 429 to
  -- a 21st request within one second, and no run retries.
  it("never lets a 21st request into one second at --parallel 32 --rate-limit 20", function()
    server:reset()
    server:control({ window_quota = 20 })
    dir = P.project({ config = ([[
name: window
runner:
  target: "http:GET %s"
  iterations: 50
  http: {retries: 0}
]]):format(server:url("/echo")), inputs = 'generated_inputs:\n  - input: "x"\n' })
    local code, _, err = P.run(dir, "run experiment --quiet --parallel 32 --rate-limit 20")
    local s = server:stats()
    server:control({ window_quota = 0 })
    assert.is_nil(s.statuses["429"], ("%d answered 429; at most %d requests in one second")
      :format(s.statuses["429"] or 0, s.window_max))
    assert.are.equal(0, code, err)
    assert.are.equal(50, s.statuses["200"])
    assert.is_true(s.window_max <= 20, "requests in one second: " .. s.window_max)
  end)
end)
