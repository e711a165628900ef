-- shard.lua - --shard K/N and --shard auto: which share of the plan this process runs, and
-- the one experiment folder all shards of a job write into (each in shards/K-of-N/).
local fs = require("fluxloop.fs")

local M = {}

-- A job id becomes part of a folder name, so it is a plain word.
local function check_job_id(id, from)
  if not id:match("^[%w._-]+$") or id == "." or id == ".." then
    return nil, ("%s '%s': a job id becomes part of the experiment folder's name, so it may hold only "
      .. "letters, digits, '.', '_' and '-'"):format(from, id)
  end
  return id
end

local function int_of(text)
  return text and text:match("^%d+$") and math.tointeger(tonumber(text)) or nil
end

-- Slurm: the task's place in its array. SLURM_ARRAY_TASK_ID counts from the array's MIN in
-- steps of STEP (--array=1-8:2 gives 1, 3, 5, 7), so K = (ID - MIN) / STEP.
local function from_slurm(getenv)
  local id = getenv("SLURM_ARRAY_TASK_ID")
  local min, max = int_of(getenv("SLURM_ARRAY_TASK_MIN")), int_of(getenv("SLURM_ARRAY_TASK_MAX"))
  local count, step = int_of(getenv("SLURM_ARRAY_TASK_COUNT")), int_of(getenv("SLURM_ARRAY_TASK_STEP")) or 1
  local task = int_of(id)
  if not task then return nil, ("--shard auto: SLURM_ARRAY_TASK_ID is '%s', not a number"):format(id) end
  if step < 1 then step = 1 end
  min = min or 0
  if not count and max then count = (max - min) // step + 1 end
  if not count then
    return nil, "--shard auto: SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor "
      .. "SLURM_ARRAY_TASK_MAX is, so the number of shards is unknown; give --shard K/N"
  end
  if (task - min) % step ~= 0 or task < min then
    return nil, ("--shard auto: array task %d is not min %d + a multiple of step %d; submit a plain "
      .. "range such as --array=0-%d"):format(task, min, step, count - 1)
  end
  return (task - min) // step, count, "Slurm array task " .. id
end

-- Kubernetes Indexed Job: JOB_COMPLETION_INDEX, with the Job's completions in FLUXLOOP_SHARDS.
local function from_k8s(getenv)
  local index, shards = getenv("JOB_COMPLETION_INDEX"), getenv("FLUXLOOP_SHARDS")
  if not int_of(index) then
    return nil, ("--shard auto: JOB_COMPLETION_INDEX is '%s', not a number"):format(index)
  end
  if not shards then
    return nil, "--shard auto: JOB_COMPLETION_INDEX is set but FLUXLOOP_SHARDS is not; set it to the "
      .. "Job's completions (the number of shards)"
  end
  local n = int_of(shards)
  if not n then return nil, ("--shard auto: FLUXLOOP_SHARDS is '%s', not a number"):format(shards) end
  return int_of(index), n, "Kubernetes completion index " .. index
end

-- resolve(spec, getenv) -> shard | nil, message
-- spec is the --shard value ("K/N" or "auto"); getenv reads the environment (os.getenv).
-- shard = { index = K, count = N, job_id = "...", source = "where K/N came from" }.
function M.resolve(spec, getenv)
  getenv = getenv or os.getenv
  local k, n, source
  if spec == "auto" then
    if getenv("SLURM_ARRAY_TASK_ID") then
      k, n, source = from_slurm(getenv)
    elseif getenv("JOB_COMPLETION_INDEX") then
      k, n, source = from_k8s(getenv)
    else
      return nil, "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX "
        .. "(a Kubernetes Indexed Job) is set; run inside one, or give --shard K/N"
    end
    if not k then return nil, n end
  else
    local ks, ns = spec:match("^(%d+)/(%-?%d+)$")
    if not ks then
      return nil, ("--shard: expected K/N (this process runs shard K of N, K from 0 to N-1, e.g. 0/4) or "
        .. "auto, got '%s'"):format(spec)
    end
    k, n, source = math.tointeger(tonumber(ks)), math.tointeger(tonumber(ns)), "--shard " .. spec
    if not k or not n then return nil, ("--shard %s: the numbers are too large"):format(spec) end
  end
  if n < 1 then
    return nil, ("%s: the number of shards N must be at least 1, got %d"):format(source, n)
  end
  if k >= n then
    return nil, ("%s: shard K must be from 0 to N-1 = %d (shards count from 0), got %d"):format(source, n - 1, k)
  end
  local job, from = getenv("SLURM_ARRAY_JOB_ID"), "SLURM_ARRAY_JOB_ID"
  if not job or job == "" then job, from = getenv("FLUXLOOP_RUN_ID"), "FLUXLOOP_RUN_ID" end
  if not job or job == "" then
    return nil, ("%s: the shards of one experiment share a folder named after their job, but neither "
      .. "SLURM_ARRAY_JOB_ID nor FLUXLOOP_RUN_ID is set; set FLUXLOOP_RUN_ID to the same word for every "
      .. "shard (e.g. FLUXLOOP_RUN_ID=$(date +%%Y%%m%%d_%%H%%M))"):format(source)
  end
  local id, err = check_job_id(job, from)
  if not id then return nil, err end
  return { index = k, count = n, job_id = id, source = source }
end

-- name(shard) -> "K-of-N", the shard's folder under shards/.
function M.name(shard)
  return ("%d-of-%d"):format(shard.index, shard.count)
end

-- parse_name("2-of-4") -> 2, 4 | nil
function M.parse_name(name)
  local k, n = name:match("^(%d+)%-of%-(%d+)$")
  if not k then return nil end
  return math.tointeger(tonumber(k)), math.tointeger(tonumber(n))
end

-- owns(shard, k) -> whether trace number k (1-based) is this shard's: plan index k-1 mod N = K.
function M.owns(shard, k)
  return (k - 1) % shard.count == shard.index
end

-- traces(planned, shard) -> the shard's trace numbers in order: K+1, K+1+N, ... up to planned.
-- Round robin keeps shards balanced when inputs differ in cost (an input's iterations are
-- spread over every shard).
function M.traces(planned, shard)
  local ks = {}
  for k = shard.index + 1, planned, shard.count do ks[#ks + 1] = k end
  return ks
end

-- count(planned, shard) -> how many of the planned traces are the shard's.
function M.count(planned, shard)
  if planned <= shard.index then return 0 end
  return (planned - shard.index - 1) // shard.count + 1
end

-- experiment_dir(base, name, shard) -> "<base>/<name>_<job id>"
function M.experiment_dir(base, name, shard)
  return ("%s/%s_%s"):format(base, name, shard.job_id)
end

-- create_dir(base, name, shard) -> path | nil, message
-- Makes <base>/<name>_<job id>/shards/K-of-N/. The shard folder is made with one mkdir, which
-- fails when it exists: of two processes given the same shard, one runs and the other stops
-- before writing anything.
function M.create_dir(base, name, shard)
  local exp_dir = M.experiment_dir(base, name, shard)
  local ok, err = fs.mkdirs(exp_dir .. "/shards")
  if not ok then return nil, ("cannot create the experiment folder: %s"):format(err) end
  local path = exp_dir .. "/shards/" .. M.name(shard)
  local made, merr, code = fs.mkdir(path)
  if made then return path end
  if code == "EEXIST" then
    return nil, ("shard %s of job %s already ran (or is running) in %s: a shard runs once per job. "
      .. "To finish it: fluxloop run experiment --resume %s; for a new run, use a new FLUXLOOP_RUN_ID")
      :format(M.name(shard), shard.job_id, path, path)
  end
  return nil, ("cannot create the shard folder: %s"):format(merr)
end

-- plan_info(shard, planned) -> what plan.json and summary.json record about the shard.
function M.plan_info(shard, planned)
  return { index = shard.index, count = shard.count, job_id = shard.job_id,
    traces = M.count(planned, shard), experiment_planned_traces = planned }
end

-- check_resume(dir, shard) -> the folder a --resume (or --retry-failed) with --shard means |
-- nil, message. dir may be the shard's own folder or the experiment folder (then its
-- shards/K-of-N/, so a requeued array task can name the experiment folder); the folder's
-- plan.json must be this shard's.
function M.check_resume(dir, shard)
  local sub = dir .. "/shards/" .. M.name(shard)
  if not fs.exists(dir .. "/plan.json") and fs.isdir(sub) then dir = sub end
  local text = require("fluxloop.util").read_file(dir .. "/plan.json")
  if not text then return dir end -- fluxloop.resume says what is wrong with the folder
  local plan = require("fluxloop.json").decode(text)
  local had = type(plan) == "table" and type(plan.shard) == "table" and plan.shard
  if not had or had.index ~= shard.index or had.count ~= shard.count then
    return nil, ("%s: %s is %s, not shard %s; resume the folder of that shard, or leave out --shard")
      :format(shard.source, dir, had and ("shard " .. M.name(had)) or "not a shard's folder", M.name(shard))
  end
  return dir
end

return M
