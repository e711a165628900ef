-- llm_agent.lua - an agent that calls an OpenAI-compatible chat API: it asks the model,
-- runs the tool the model calls (a local lookup), and streams the final answer. Every HTTP
-- request is recorded by fluxloop.http as a "generation" observation with its token counts;
-- the tool call is a "tool" span. Point it at a model with the environment:
--   OPENAI_BASE_URL (default https://api.openai.com/v1), OPENAI_API_KEY,
--   OPENAI_MODEL (configs/llm_agent.yaml sets it in runner.env).
local http = require("fluxloop.http")
local json = require("fluxloop.json")

local M = {}

local TOOLS = json.array({
  { type = "function", ["function"] = {
    name = "lookup_docs",
    description = "Looks up fluxloop's documentation for a question",
    parameters = { type = "object", properties = { question = { type = "string" } }, required = { "question" } },
  } },
})

-- The tool the model may call: a local lookup, no network.
local DOCS = {
  { "start", "Run `fluxloop run experiment` in the project folder." },
  { "export", "Every run is a line of trace_summary.jsonl." },
  { "retry", "fluxloop.http retries 429 and 5xx answers three times, honouring Retry-After." },
}
local function lookup_docs(args)
  local q = tostring(args.question or ""):lower()
  for _, d in ipairs(DOCS) do
    if q:find(d[1], 1, true) then return { answer = d[2] } end
  end
  return { answer = "Nothing in the docs about that." }
end

local function endpoint()
  local base = os.getenv("OPENAI_BASE_URL") or "https://api.openai.com/v1"
  return (base:gsub("/+$", "")) .. "/chat/completions"
end

local function headers()
  local key = os.getenv("OPENAI_API_KEY")
  if not key or key == "" then error({ type = "config", message = "OPENAI_API_KEY is not set" }) end
  return { Authorization = "Bearer " .. key }
end

-- One chat completion; a failed request or a non-2xx answer fails the run with its reason.
local function chat(body, opts)
  opts = opts or {}
  opts.headers, opts.timeout_ms = headers(), 60000
  local res, err = http.post_json(endpoint(), body, opts)
  if not res then error({ type = "http", message = err }) end
  if not res.ok then
    error({ type = "http", message = ("HTTP %d: %s"):format(res.status, res.body:sub(1, 500)) })
  end
  return res
end

function M.run(input, ctx)
  local model = os.getenv("OPENAI_MODEL") or "gpt-4o-mini"
  local messages = json.array({
    { role = "system", content = "You answer questions about fluxloop. Use lookup_docs first." },
    { role = "user", content = input },
  })
  -- 1. the model asks for the tool
  local first = assert(chat({ model = model, messages = messages, tools = TOOLS }):json())
  local msg = first.choices[1].message
  if type(msg.tool_calls) == "table" then
    messages[#messages + 1] = msg
    for _, call in ipairs(msg.tool_calls) do
      local args = json.decode(call["function"].arguments) or {}
      local result = ctx:span({ name = call["function"].name, type = "tool" }, lookup_docs, args)
      messages[#messages + 1] = { role = "tool", tool_call_id = call.id, content = json.encode(result) }
    end
  end
  -- 2. the final answer, streamed: the time to its first token goes into the trace
  local parts = {}
  local res = chat({ model = model, messages = messages, stream = true, stream_options = { include_usage = true } },
    { on_event = function(data)
      if data == "[DONE]" then return end
      local ev = json.decode(data)
      local choice = ev and ev.choices and ev.choices[1]
      if choice and type(choice.delta) == "table" and type(choice.delta.content) == "string" then
        parts[#parts + 1] = choice.delta.content
      end
    end })
  ctx.metadata.time_to_first_token_ms = res.first_event_ms
  ctx.metadata.tool_calls = type(msg.tool_calls) == "table" and #msg.tool_calls or 0
  return table.concat(parts)
end

return M
