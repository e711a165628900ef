-- examples/k8s: the Indexed Job's and the merge Job's own commands, run here as Kubernetes
-- would run them (each pod's environment from its manifest, JOB_COMPLETION_INDEX per pod), and
-- the merged folder against a one-machine run. No cluster: what is tested is what the
-- manifests make each pod do.
local P = require("support.project")
local T = require("support.traces")
local yaml = require("fluxloop.yaml")

local REPO = require("fluxloop.fs").getcwd()

local AGENT = [[
return { run = function(input, ctx)
  ctx:observe{ type = "tool", name = "look", input = input }
  if input == "q2" and ctx.iteration == 0 then error("q2 fails on iteration 0") end
  return { answer = input, n = ctx.iteration }
end }
]]

local function manifest(name)
  local doc = yaml.decode(assert(P.read(REPO .. "/examples/k8s/" .. name)), name)
  return doc, doc.spec.template.spec.containers[1]
end

-- pod(container, env) -> exit code, output of the container's command in the project folder,
-- with the manifest's plain env values, then env's (the test's own) over them.
local function pod(dir, container, env)
  local vars = {}
  for _, e in ipairs(container.env) do
    if e.value then vars[#vars + 1] = e.name .. "=" .. P.quote(e.value) end
  end
  for k, v in pairs(env) do vars[#vars + 1] = k .. "=" .. P.quote(v) end
  table.sort(vars)
  local argv = {}
  for i, a in ipairs(container.command) do argv[i] = P.quote(a) end
  local h = io.popen(("cd %s && env %s %s 2>&1"):format(P.quote(dir), table.concat(vars, " "), table.concat(argv, " ")))
  local out = h:read("a")
  local _, _, code = h:close()
  return code, out
end

describe("examples/k8s", function()
  local dir
  after_each(function() P.remove(dir) end)

  it("is an Indexed Job whose completions, parallelism and FLUXLOOP_SHARDS agree", function()
    local job, c = manifest("shards-job.yaml")
    assert.are.equal("Indexed", job.spec.completionMode)
    assert.are.equal(job.spec.completions, job.spec.parallelism)
    local shards
    for _, e in ipairs(c.env) do if e.name == "FLUXLOOP_SHARDS" then shards = tonumber(e.value) end end
    assert.are.equal(job.spec.completions, shards)
    local merge = manifest("merge-job.yaml")
    assert.are.equal("Job", merge.kind)
    assert.are.same(job.spec.template.spec.volumes, merge.spec.template.spec.volumes)
  end)

  it("each pod runs its shard, a retried pod resumes it, and the merge equals a one-machine run", function()
    dir = P.project({ name = "k8s", iterations = 3, inputs = "- input: q1\n- input: q2\n- input: q3\n", agent = AGENT })
    local env = { FLUXLOOP = P.bin(), FLUXLOOP_OUTPUT_DIR = dir .. "/results", FLUXLOOP_RUN_ID = "r7", CPUS = "2" }
    local job, shard_container = manifest("shards-job.yaml")
    for k = 0, job.spec.completions - 1 do
      env.JOB_COMPLETION_INDEX = tostring(k)
      local code, out = pod(dir, shard_container, env)
      assert.are.equal(0, code, out) -- shard 0 holds the failing run: exit 1 becomes a success
    end
    local exp = dir .. "/results/k8s_r7"
    assert.are.equal(2, P.read_json(exp .. "/shards/1-of-4/summary.json").parallel)

    -- Kubernetes starts a pod of an index again after a failure: it finishes the same folder.
    env.JOB_COMPLETION_INDEX = "2"
    local code, out = pod(dir, shard_container, env)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("shards/2-of-4", 1, true), out)
    assert.are.equal(2, #P.read_jsonl(exp .. "/shards/2-of-4/traces.jsonl"))

    local _, merge_container = manifest("merge-job.yaml")
    code, out = pod(dir, merge_container, env)
    assert.are.equal(0, code, out)
    assert.truthy(out:find("Merged 4 shard(s): 9 runs, 8 succeeded, 1 failed", 1, true), out)

    local c1, _, err = P.run(dir, "run experiment --quiet --output-dir one")
    assert.are.equal(1, c1, err)
    assert(T.same(P.experiments(dir, "one")[1], exp))
  end)

  it("the merge pod says what is wrong when no shard of its run id exists", function()
    dir = P.project({ name = "k8s", iterations = 1, inputs = "- input: q1\n", agent = AGENT })
    local _, c = manifest("merge-job.yaml")
    local code, out = pod(dir, c, { FLUXLOOP = P.bin(), FLUXLOOP_OUTPUT_DIR = dir .. "/results", FLUXLOOP_RUN_ID = "nope" })
    assert.are.equal(2, code, out)
    assert.truthy(out:find("expected one experiment folder " .. dir .. "/results/*_nope", 1, true), out)
  end)
end)
