-- synth.lua - writes a results folder as `fluxloop run experiment` would, without running
-- anything: `make bench` needs folders of a million inputs in seconds, not minutes.
-- write(dir, { inputs, iterations, seed, slow_from, output_bytes }) -> total traces.
-- Durations, failures (one run in 50), personas (3) and a varied output (one input in 7)
-- are drawn from a seeded generator, so two folders of two seeds differ like two runs do.
local M = {}

local function open(path)
  local f = assert(io.open(path, "wb"))
  f:setvbuf("full", 1 << 20)
  return f
end

function M.write(dir, o)
  local inputs, iterations = o.inputs, o.iterations
  local rand = math.random
  math.randomseed(o.seed or 1)
  os.execute("mkdir -p '" .. dir .. "'")
  local traces, summary, obs = open(dir .. "/traces.jsonl"), open(dir .. "/trace_summary.jsonl"),
    open(dir .. "/observations.jsonl")
  local big = o.output_bytes and ('"' .. string.rep("x", o.output_bytes) .. '"')
  local personas = { '"novice"', '"expert"', "null" }
  local k, ok, sum = 0, 0, 0
  for i = 1, inputs do
    local input = ('"question number %d: what is %d plus %d?"'):format(i, i, i)
    local persona = personas[i % 3 + 1]
    local base = 5 + (i % 13) + (o.slow_from and i >= o.slow_from and 20 or 0)
    for it = 0, iterations - 1 do
      k = k + 1
      local id = ('"trace_%03d"'):format(k)
      local ms = base + rand() * 3
      local good = rand(50) ~= 1
      local output = big or (good and (i % 7 == 0 and ('"answer %d"'):format(it % 2) or input) or "null")
      local err = good and "null" or '{"type":"error","message":"boom","traceback":"stack"}'
      local head = ('{"trace_id":%s,"input":%s,"output":%s,"duration_ms":%.6f,"iteration":%d,"persona":%s,'
        .. '"success":%s,"error":'):format(id, input, output, ms, it, persona, good and "true" or "false")
      summary:write(head, good and "null" or '"error: boom"', "}\n")
      local ob = ('{"trace_id":%s,"id":"trace_%03d.1","parent_id":null,"type":"tool","name":"lookup",'
        .. '"started_at":"2026-12-07T08:00:00.000001Z","duration_ms":1.0,"input":null,"output":null,"metadata":null}')
        :format(id, k)
      traces:write(head, err, ',"metadata":{},"started_at":"2026-12-07T08:00:00.000000Z",',
        '"completed_at":"2026-12-07T08:00:00.005000Z","observations":[', ob, "]}\n")
      obs:write(ob, "\n")
      if good then ok = ok + 1 end
      sum = sum + ms
    end
  end
  for _, f in ipairs({ traces, summary, obs }) do assert(f:close()) end
  local s = open(dir .. "/summary.json")
  s:write(('{"name":"synth","total_traces":%d,"successful":%d,"failed":%d,"avg_duration_ms":%.6f,'
    .. '"started_at":"2026-12-07T08:00:00.000000Z","completed_at":"2026-12-07T09:00:00.000000Z","iterations":%d,'
    .. '"inputs":%d,"planned_traces":%d,"interrupted":false}\n'):format(k, ok, k - ok, sum / k, iterations, inputs, k))
  s:close()
  s = open(dir .. "/config.yaml")
  s:write("name: synth\nrunner:\n  target: agents.agent:run\n  iterations: ", iterations, "\n")
  s:close()
  return k
end

-- write_scores(dir, { inputs, iterations, graders, seed, drop_from }) -> lines: a scores.jsonl for
-- the folder write made, a line per trace and grader in trace order, as a run with graders
-- writes it. A grade passes 9 times in 10 (grader g1 8 in 10 from input drop_from on); one in
-- 200 is a grader error.
function M.write_scores(dir, o)
  math.randomseed(o.seed or 1)
  local rand = math.random
  local f = open(dir .. "/scores.jsonl")
  local k, lines = 0, 0
  for i = 1, o.inputs do
    local worse = o.drop_from and i >= o.drop_from
    for _ = 1, o.iterations do
      k = k + 1
      for g = 1, o.graders do
        local r = rand(200)
        local pass = r == 1 and "null" or (rand(10) <= ((worse and g == 1) and 8 or 9) and "true" or "false")
        f:write(('{"trace_id":"trace_%03d","grader":"g%d","pass":%s,"score":%s,"reason":%s,"error":%s,"duration_ms":0.001}\n')
          :format(k, g, pass, pass == "null" and "null" or (pass == "true" and "1" or "0"),
            pass == "false" and '"output does not contain \\"refund\\""' or "null",
            pass == "null" and '"judge: HTTP 500"' or "null"))
        lines = lines + 1
      end
    end
  end
  assert(f:close())
  return lines
end

return M
