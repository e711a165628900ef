-- tasks_spec.lua - fluxloop.tasks: a Lua handler over a list of jobs in N threads.
local P = require("support.project")
local clock = require("fluxloop.clock")
local tasks = require("fluxloop.tasks")

describe("fluxloop.tasks", function()
  local dir, path
  before_each(function()
    dir = P.new()
    P.write(dir, "spec_tasks_handler.lua", [[
local clock = require("fluxloop.clock")
return { worker = function(setup)
  if setup == "refuse" then error("no handler for you") end
  return function(job)
    if job == "fail" then return nil, "failed on purpose" end
    if job == "raise" then error("raised on purpose") end
    if job:match("^sleep") then clock.sleep(tonumber(job:match("%d+"))) end
    return setup .. ":" .. job
  end
end }
]])
    path = dir .. "/?.lua;" .. package.path
  end)
  after_each(function() P.remove(dir) end)

  local function map(jobs, workers, setup, on_progress)
    return tasks.map({ module = "spec_tasks_handler", setup = setup or "s", jobs = jobs, workers = workers,
      path = path, cpath = package.cpath, on_progress = on_progress })
  end

  it("returns each job's result in the jobs' order, and errors beside them", function()
    local results, errors, done = map({ "a", "fail", "b", "raise", "c" }, 3)
    assert.are.equal(5, done)
    assert.are.same({ [1] = "s:a", [3] = "s:b", [5] = "s:c" }, results)
    assert.are.equal("failed on purpose", errors[2])
    assert.truthy(errors[4]:find("raised on purpose", 1, true), errors[4])
    assert.truthy(errors[4]:find("stack traceback", 1, true), errors[4])
  end)

  it("runs jobs at the same time: 8 jobs of 200 ms on 8 threads take far less than 1.6 s", function()
    local jobs = {}
    for i = 1, 8 do jobs[i] = "sleep200" end
    local t0 = clock.now_ns()
    local results, _, done = map(jobs, 8)
    local ms = (clock.now_ns() - t0) / 1e6
    assert.are.equal(8, done)
    assert.are.equal(8, #results)
    assert.is_true(ms < 1200, ms)
  end)

  it("calls on_progress while it waits", function()
    local calls = 0
    map({ "sleep300", "sleep300" }, 1, nil, function(done, in_flight)
      calls = calls + 1
      assert.is_true(done >= 0 and in_flight >= 0)
    end)
    assert.is_true(calls >= 2, calls)
  end)

  it("a handler that cannot be made stops the map with its message", function()
    local results, err = map({ "a" }, 2, "refuse")
    assert.is_nil(results)
    assert.truthy(err:find("no handler for you", 1, true), err)
  end)

  it("no jobs: empty results", function()
    local results, errors, done = map({}, 4)
    assert.are.same({}, results)
    assert.are.same({}, errors)
    assert.are.equal(0, done)
  end)

  it("misuse raises", function()
    assert.has_error(function() tasks.map({ module = "x", setup = "s", jobs = { 1, {} }, workers = 1 }) end)
    assert.has_error(function() tasks.map({ module = "x", setup = "s", jobs = {}, workers = 0 }) end)
    assert.has_error(function() tasks.map({ setup = "s", jobs = {}, workers = 1 }) end)
  end)
end)
