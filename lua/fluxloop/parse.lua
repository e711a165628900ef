-- parse.lua - `fluxloop parse experiment DIR`: one markdown file per trace and per_trace.jsonl,
-- in the Python fluxloop's per_trace_analysis layout, streaming (one trace in memory at a time).
local fs = require("fluxloop.fs")
local json = require("fluxloop.json")
local results = require("fluxloop.results")
local util = require("fluxloop.util")

local M = {}

local null = json.null

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

M.iso_plus = results.iso_plus

local function slug(s)
  return (tostring(s):gsub("[^%w_%-]", "_"))
end

local function yaml_scalar(v)
  if v == nil or v == null then return "null" end
  if type(v) == "string" then return json.encode(v) end -- a JSON string is a YAML double-quoted scalar
  return tostring(v)
end

-- A value of a trace line too long to hold (jsonlread's max_line) stays in traces.jsonl as a span;
-- parse writes it from there piece by piece. M.max_line: the longest line parse holds whole.
M.max_line = 4 * 1024 * 1024

local is_span = require("fluxloop.jsonlread").is_span

-- A piece of a line that is a span's text, written as mode says (see span:write).
local function span_piece(span, mode) return { span = span, mode = mode } end

local function fenced(lines, lang, text)
  -- A fence longer than any run of backticks inside, so the block cannot end early.
  local longest = 2
  if type(text) == "table" then
    local run, err = text.span:longest_run("`", text.mode)
    if not run then error({ parse_error = err }) end -- see M.whole
    longest = math.max(longest, run)
  else
    for run in text:gmatch("`+") do if #run > longest then longest = #run end end
  end
  local fence = string.rep("`", longest + 1)
  lines[#lines + 1] = fence .. lang
  lines[#lines + 1] = text
  lines[#lines + 1] = fence
end

local function pretty(v)
  if v == nil then v = null end
  if is_span(v) then return span_piece(v, "json") end -- a string: its JSON text is the pretty one
  return json.encode(v, { indent = 2 })
end

-- Depth of each observation in its trace (0 = top level), from parent_id.
local function depths(observations)
  local depth = {}
  for _, o in ipairs(observations) do
    local parent = o.parent_id ~= null and o.parent_id or nil
    depth[o.id or ""] = parent and (depth[parent] or 0) + 1 or 0
  end
  return depth
end

-- The level of an observation, as the Python tool's timeline has it: ERROR when it failed.
local function failed(o) return o.error ~= nil and o.error ~= null end

-- timeline(trace) -> the per_trace.jsonl timeline: observations sorted by start time; a
-- failed one has level ERROR and its error.
function M.timeline(trace)
  local obs = type(trace.observations) == "table" and trace.observations or {}
  local depth = depths(obs)
  local list = {}
  for i, o in ipairs(obs) do
    list[i] = {
      trace_id = trace.trace_id, id = o.id, parent_id = o.parent_id, type = o.type, name = o.name,
      start_time = o.started_at, end_time = M.iso_plus(o.started_at, o.duration_ms) or null,
      level = failed(o) and "ERROR" or "DEFAULT", error = failed(o) and o.error or nil,
      depth = depth[o.id or ""] or 0, duration_ms = o.duration_ms, input = o.input, output = o.output, raw = o,
    }
  end
  -- Stable: ISO strings of one format sort as times; ties keep file (start) order.
  for i, e in ipairs(list) do e.order = i end
  table.sort(list, function(a, b)
    local sa, sb = tostring(a.start_time), tostring(b.start_time)
    if sa ~= sb then return sa < sb end
    return a.order < b.order
  end)
  for _, e in ipairs(list) do e.order = nil end
  return json.array(list)
end

-- markdown(trace, steps) -> the text of one trace's file.
function M.markdown(trace, steps)
  local l = M.markdown_lines(trace, steps)
  l[#l + 1] = ""
  return table.concat(l, "\n")
end

-- markdown_lines(trace, steps) -> the lines of one trace's file (parse writes them one by one). A
-- string input or output may be a span (see M.max_line): its line is then a table of pieces.
function M.markdown_lines(trace, steps)
  local l = {}
  local duration = tonumber(trace.duration_ms) or 0
  l[#l + 1] = "---"
  l[#l + 1] = "trace_id: " .. yaml_scalar(trace.trace_id)
  l[#l + 1] = "iteration: " .. yaml_scalar(trace.iteration)
  l[#l + 1] = "persona: " .. yaml_scalar(trace.persona)
  l[#l + 1] = ("duration_ms: %.2f"):format(duration)
  l[#l + 1] = "success: " .. yaml_scalar(trace.success == true)
  l[#l + 1] = "---"
  l[#l + 1] = ""
  l[#l + 1] = "# Trace Analysis"
  l[#l + 1] = ""
  l[#l + 1] = "- **Trace ID**: " .. tostring(trace.trace_id)
  l[#l + 1] = "- **Iteration**: " .. tostring(trace.iteration)
  l[#l + 1] = "- **Persona**: " .. (trace.persona ~= null and tostring(trace.persona) or "none")
  l[#l + 1] = ("- **Duration**: %.2f ms"):format(duration)
  l[#l + 1] = "- **Success**: " .. tostring(trace.success == true)
  l[#l + 1] = "- **Observations**: " .. #steps
  l[#l + 1] = ""
  l[#l + 1] = "## Input"
  l[#l + 1] = ""
  fenced(l, "json", pretty(trace.input))
  l[#l + 1] = ""
  l[#l + 1] = "## Output"
  l[#l + 1] = ""
  fenced(l, "json", pretty(trace.output))
  -- The Python tool's conversation list: one turn, the input and the agent's answer.
  l[#l + 1] = ""
  l[#l + 1] = "## Conversation"
  l[#l + 1] = ""
  local function turn(role, v, source)
    if is_span(v) then
      l[#l + 1] = { ("- **%s**: "):format(role), span_piece(v, "line"), (" _(source=%s)_"):format(source) }
      return
    end
    local text = type(v) == "string" and v or json.encode(v)
    l[#l + 1] = ("- **%s**: %s _(source=%s)_"):format(role, text:gsub("\n", " "), source)
  end
  local conv = require("fluxloop.conversation.results") -- multi_turn: the trace's own transcript
  if conv.is_conversation(trace.conversation) then conv.markdown_lines(l, trace.conversation)
  else turn("User", trace.input, "input") end
  if not conv.is_conversation(trace.conversation) and trace.output ~= nil and trace.output ~= null then
    turn("Assistant", trace.output, "agent")
  end
  conv.termination_lines(l, trace)
  local e = trace.error
  if e ~= nil and e ~= null then
    l[#l + 1] = ""
    l[#l + 1] = "## Error"
    l[#l + 1] = ""
    if type(e) == "table" then
      l[#l + 1] = "- **Type**: " .. util.text_of(e.type)
      l[#l + 1] = "- **Message**: " .. util.text_of(e.message):gsub("\n", " ")
      if type(e.traceback) == "string" then
        l[#l + 1] = ""
        fenced(l, "text", e.traceback)
      end
    else
      l[#l + 1] = "- **Message**: " .. tostring(e):gsub("\n", " ")
    end
  end
  l[#l + 1] = ""
  l[#l + 1] = "## Timeline"
  if #steps == 0 then
    l[#l + 1] = ""
    l[#l + 1] = "_No observations._"
  end
  for i, s in ipairs(steps) do
    l[#l + 1] = ""
    l[#l + 1] = ("### Step %d: [%s] %s"):format(i, tostring(s.type), tostring(s.name))
    l[#l + 1] = ""
    l[#l + 1] = "- Start: " .. tostring(s.start_time)
    l[#l + 1] = "- End: " .. tostring(s.end_time ~= null and s.end_time or "unknown")
    l[#l + 1] = ("- Duration: %.3f ms"):format(tonumber(s.duration_ms) or 0)
    l[#l + 1] = "- Level: " .. s.level .. (s.depth > 0 and (" (nested %d deep, in %s)"):format(s.depth,
      tostring(s.parent_id)) or "")
    if s.error ~= nil then l[#l + 1] = "- Error: " .. (type(s.error) == "string" and s.error or json.encode(s.error)):gsub("\n", " ") end
    l[#l + 1] = ""
    l[#l + 1] = "Input:"
    l[#l + 1] = ""
    fenced(l, "json", pretty(s.input))
    l[#l + 1] = ""
    l[#l + 1] = "Output:"
    l[#l + 1] = ""
    fenced(l, "json", pretty(s.output))
  end
  return l
end

-- The fields of a trace line that per_trace.jsonl needs, as raw JSON text: a record is put together
-- from the text as it is in traces.jsonl (nothing decoded and encoded again but the observations).
local RAW_KEYS = { "=trace_id", "=iteration", "=persona", "=input", "=output", "=duration_ms", "=success", "=error",
  "=metadata", "=observations", "=conversation", "=turn_count", "=termination_reason" }

local function or_null(v) return v or "null" end

-- record_parts(f, steps_json, n) -> the pieces of the per_trace.jsonl line of one trace, to be
-- written one after the other (a 200 MB output appears four times in it: never concatenated).
-- f: the raw fields (by name), each JSON text or a span (see M.max_line); keys as the Python
-- tool's record (summary is the trace_summary row).
function M.record_parts(f, steps_json, n)
  local tid, it, persona, input, out = or_null(f.trace_id), or_null(f.iteration), or_null(f.persona), or_null(f.input),
    or_null(f.output)
  local dur, ok, err = or_null(f.duration_ms), f.success == "true" and "true" or "false", or_null(f.error)
  local parts = {
    '{"trace_id":', tid, ',"iteration":', it, ',"persona":', persona, ',"input":', input, ',"output":', out,
    ',"final_output":', out, ',"duration_ms":', dur, ',"success":', ok, ',"error":', err,
    ',"metadata":', f.metadata or "{}",
    ',"summary":{"trace_id":', tid, ',"input":', input, ',"output":', out, ',"duration_ms":', dur, ',"iteration":', it,
    ',"persona":', persona, ',"success":', ok, ',"error":', err, '}',
    ',"timeline":', steps_json, ',"conversation":',
  }
  local k = #parts
  if f.conversation then
    parts[k + 1], k = f.conversation, k + 1
  else
    parts[k + 1], parts[k + 2], parts[k + 3], k = '[{"turn_index":1,"role":"user","content":', input,
      ',"source":"input","metadata":{}}', k + 3
    if out ~= "null" then
      parts[k + 1], parts[k + 2], parts[k + 3], k = ',{"turn_index":1,"role":"assistant","content":', out,
        ',"source":"agent","metadata":{}}', k + 3
    end
    parts[k + 1], k = "]", k + 1
  end
  if f.turn_count then
    parts[k + 1], parts[k + 2], parts[k + 3], parts[k + 4], k = ',"turn_count":', f.turn_count,
      ',"termination_reason":', or_null(f.termination_reason), k + 4
  end
  parts[k + 1], parts[k + 2], parts[k + 3] = ',"metrics":{"observation_count":', n, '}}'
  return parts
end

-- record_line(f, steps_json, n) -> the per_trace.jsonl line of one trace, as one string.
function M.record_line(f, steps_json, n)
  return table.concat(M.record_parts(f, steps_json, n))
end

-- record(trace, steps) -> the per_trace.jsonl object of one decoded trace (for scripts).
function M.record(trace, steps)
  local function raw(v) if v == nil then return nil end return json.encode(v) end
  local f = {}
  for _, k in ipairs(RAW_KEYS) do f[k:sub(2)] = raw(trace[k:sub(2)]) end
  return json.decode(M.record_line(f, json.encode(steps), #steps))
end

-- The raw fields parse reads (not only writes): whole even when they are left in the file.
local WHOLE_KEYS = { "trace_id", "success", "observations", "turn_count" }

-- whole(v) -> the JSON text of a raw field, read back when it is a span. A failed read (the file
-- changed under parse) is raised as { parse_error = message }: main says it and exits 2.
function M.whole(v)
  if not is_span(v) then return v end
  local text, err = v:read()
  if not text then error({ parse_error = err }) end
  return text
end

-- decoded(r, spans) -> the trace of the line r last read, decoded; of its values left in the file
-- (spans: r:spans() of a line past M.max_line), a string input or output stays a span, the rest is
-- read back whole.
function M.decoded(r, spans)
  local trace = json.decode((r:line()))
  if not spans then return trace end
  for key, span in pairs(spans) do
    if (key == "input" or key == "output") and span:kind() == "string" then trace[key] = span
    else trace[key] = json.decode(M.whole(span)) end
  end
  return trace
end

local function trace_number(id)
  return type(id) == "string" and tonumber(id:match("^trace_(%d+)$")) or nil
end

-- observations_join(path) -> join, reader | nil, message. join(trace_id) -> the observations of
-- that trace from observations.jsonl, read along with the traces (both files are in trace order),
-- so only one trace's observations are in memory.
function M.observations_join(path)
  local r, err = require("fluxloop.jsonlread").open(path, { "trace_id" })
  if not r then return nil, err end
  local pending_id, pending
  local function join(trace_id)
    local list = {}
    while true do
      if pending_id == nil then
        local lineno, id = r:next()
        if not lineno then return list end
        pending_id, pending = id, json.decode((r:line()))
      end
      if pending_id == trace_id then
        list[#list + 1] = pending
        pending_id = nil
      else
        local a, b = trace_number(pending_id), trace_number(trace_id)
        if a and b and a < b then
          pending_id = nil -- an observation of a trace that is not in the file: dropped
        else
          return list -- it belongs to a later trace
        end
      end
    end
  end
  return join, r
end

-- write_piece(f, piece) -> true | nil, message. piece: a string, a span (its JSON text), a
-- span_piece, or a list of pieces.
local function write_piece(f, piece)
  if type(piece) == "string" or type(piece) == "number" then return f:write(piece) end
  if is_span(piece) then return piece:write(f) end
  if piece.span then return piece.span:write(f, piece.mode) end
  for _, p in ipairs(piece) do
    local ok, err = write_piece(f, p)
    if not ok then return nil, err end
  end
  return true
end

-- write_lines(path, lines): the lines, each ended by a newline, without joining them first.
local function write_lines(path, text)
  local f, err = io.open(path, "wb")
  if not f then return nil, err end
  local ok, werr = true, nil
  for _, piece in ipairs(text) do
    if type(piece) == "string" then ok, werr = f:write(piece, "\n")
    else
      ok, werr = write_piece(f, piece)
      if ok then ok, werr = f:write("\n") end
    end
    if not ok then break end
  end
  local closed, cerr = f:close()
  if not ok or not closed then return nil, ("%s: %s"):format(path, werr or cerr) end
  return true
end

-- main(flags) -> exit status. flags: dir, output, format ("md" | "jsonl"), overwrite, quiet.
function M.main(flags)
  local ok, code = xpcall(M.parse, function(e)
    if type(e) == "table" and e.parse_error then return e end
    return debug.traceback(e, 2) -- a bug: its traceback goes on with the error
  end, flags)
  if ok then return code end
  if type(code) == "table" and code.parse_error then say("fluxloop: error: ", code.parse_error) return 2 end
  error(code, 0)
end

-- parse(flags) -> exit status: main without the handling of a span that cannot be read back.
function M.parse(flags)
  local cwd = util.getcwd()
  local dir = util.abspath(flags.dir, cwd)
  local exp, err = results.open(dir, flags.dir)
  if not exp then say("fluxloop: error: ", err) return 2 end
  local out_rel = flags.output or "per_trace_analysis"
  local out = out_rel:sub(1, 1) == "/" and out_rel or (dir .. "/" .. out_rel)
  if fs.exists(out) and not flags.overwrite then
    say(("fluxloop: error: %s already exists; add --overwrite to write over its files, or choose "
      .. "another folder with --output"):format(out))
    return 2
  end
  local made, merr = fs.mkdirs(out)
  if not made then say("fluxloop: error: cannot create ", out, ": ", tostring(merr)) return 2 end
  local joined, obs_reader = nil, nil
  if exp.file_name ~= "traces.jsonl" then
    -- Without traces.jsonl (the Python tool's case) the observations come from observations.jsonl.
    joined, obs_reader = M.observations_join(exp.dir .. "/observations.jsonl")
    if not joined then say("fluxloop: note: ", obs_reader, ": the timelines are empty") end
  end
  local r, rerr = exp:reader(RAW_KEYS, { max_line = M.max_line })
  if not r then say("fluxloop: error: ", rerr) return 2 end
  local jsonl, jerr = io.open(out .. "/per_trace.jsonl", "wb")
  if not jsonl then say("fluxloop: error: ", jerr) return 2 end
  jsonl:setvbuf("full", 1 << 16)
  local count, md = 0, flags.format ~= "jsonl"
  local f = {}
  while true do
    local lineno
    lineno, f.trace_id, f.iteration, f.persona, f.input, f.output, f.duration_ms, f.success, f.error, f.metadata,
      f.observations, f.conversation, f.turn_count, f.termination_reason = r:next()
    if not lineno then
      if f.trace_id then say("fluxloop: error: ", exp.display, "/", exp.file_name, ": ", f.trace_id) return 2 end
      break
    end
    count = count + 1
    local steps, steps_json, n
    local spans = r:spans() -- nil but for a line past M.max_line
    if spans then for _, k in ipairs(WHOLE_KEYS) do f[k] = M.whole(f[k]) end end
    local observations = f.observations
    if joined then
      local list = joined(json.decode(f.trace_id))
      observations = #list > 0 and list or nil
    end
    if observations == nil or observations == "[]" then
      steps, steps_json, n = json.array({}), "[]", 0
    else
      if type(observations) == "string" then observations = json.decode(observations) end
      steps = M.timeline({ trace_id = json.decode(f.trace_id), observations = observations })
      steps_json, n = json.encode(steps), #steps
    end
    if md then
      local trace = M.decoded(r, spans)
      local name = ("%02d_%s.md"):format(math.tointeger(trace.iteration) or 0, slug(trace.trace_id))
      local ok, werr = write_lines(out .. "/" .. name, M.markdown_lines(trace, steps))
      if not ok then say("fluxloop: error: ", werr) return 2 end
    end
    local parts = M.record_parts(f, steps_json, n)
    parts[#parts + 1] = "\n"
    local wrote, werr
    if spans then wrote, werr = write_piece(jsonl, parts)
    else wrote, werr = jsonl:write(table.unpack(parts)) end -- all strings: one call
    if not wrote then say("fluxloop: error: ", out, "/per_trace.jsonl: ", tostring(werr)) return 2 end
  end
  local damaged, lines = exp:damage(r)
  r:close()
  if obs_reader then
    local _, olist = obs_reader:damaged()
    for _, d in ipairs(olist) do
      lines[#lines + 1] = ("%s/observations.jsonl:%d: damaged line skipped (%s)"):format(exp.display, d.line, d.reason)
    end
    obs_reader:close()
  end
  local closed, cerr = jsonl:close()
  if not closed then say("fluxloop: error: ", out, "/per_trace.jsonl: ", tostring(cerr)) return 2 end
  for _, line in ipairs(lines) do say("fluxloop: warning: ", line) end
  if count == 0 then say("fluxloop: error: ", exp:empty_message(damaged)) return 2 end
  local note = exp:note(count)
  if note then say("fluxloop: note: ", note) end
  if not flags.quiet then
    say(("[INFO] Parsed %s%s into %s (%s per_trace.jsonl)"):format(require("fluxloop.util").n_of(count, "trace"),
      damaged > 0 and (" (%d damaged lines skipped)"):format(damaged) or "", out,
      md and "one markdown file per trace and" or ""))
  end
  return 0
end

return M
