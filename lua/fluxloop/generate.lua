-- generate.lua - `fluxloop generate inputs`: reads configs/input.yaml (gen_config), makes one
-- new input per base input x persona x strategy, from a model (gen_llm, requests in threads
-- of fluxloop.tasks: --parallel at once, --rate-limit per second) or from templates
-- (deterministic), and writes the inputs file `run experiment` reads (gen_output).
local args_mod = require("fluxloop.args")
local clock = require("fluxloop.clock")
local fs = require("fluxloop.fs")
local gen_config = require("fluxloop.gen_config")
local gen_output = require("fluxloop.gen_output")
local util = require("fluxloop.util")

local M = {}

M.USAGE = [[
Usage: fluxloop generate inputs [OPTIONS]

Reads configs/input.yaml (base_inputs, personas, variation_strategies, input_generation)
and writes one new input per base input x persona x strategy to the inputs file that
`fluxloop run experiment` reads.

  --mode llm            Ask an OpenAI-compatible chat API (input_generation.llm: model,
                        base_url (else $OPENAI_BASE_URL, else the OpenAI API), api_key
                        (else FLUXLOOP_LLM_API_KEY or OPENAI_API_KEY, in .env or the
                        environment), user_prompt_template with {input}, {strategy},
                        {persona}, {metadata}; strategy_prompts). Each reply, stripped, is
                        a new input; a failed or empty one is reported and left out.
  --mode deterministic  No model: input_generation.deterministic.templates gives each
                        strategy a text (or a list) with {input} and {persona}.

Options:
  --mode MODE         llm or deterministic.          Default: input_generation.mode, else llm
  --strategy NAME     Only this strategy (repeatable).  Default: variation_strategies,
                      else rephrase, verbose, concise
  --limit N           At most N prompts (N >= 1).
  --output FILE       The file to write.   Default: the config's inputs_file, else
                      inputs/generated.yaml (relative to the project)
  --overwrite         Replace an existing output file (without it: exit 2, nothing asked).
  --dry-run           Print the prompts and their count; send and write nothing.
  --config FILE       The config.                             Default: configs/input.yaml
  --parallel N        Requests at once (1..256).                           Default: 4
  --rate-limit R      Requests per second, R > 0, retries included.   Default: no limit
  --quiet             Print only warnings and errors.
  --no-progress       No progress bar.
  -h, --help          This text.

Examples:
  fluxloop generate inputs --mode deterministic --overwrite
  fluxloop generate inputs --limit 100 --output inputs/batch1.yaml
  fluxloop run experiment --inputs inputs/batch1.yaml --name batch1

Exit codes: 0 every prompt gave an input; 1 some failed or were empty (the others are
written) or all did (nothing written); 2 usage or config error, the output exists, no
API key: nothing asked, nothing written; 130 interrupted (what finished is written).
]]

local SPEC = {
  ["--mode"] = { kind = "choice", choices = { "llm", "deterministic" } },
  ["--strategy"] = "list", ["--limit"] = { kind = "int", min = 1 }, ["--output"] = "string",
  ["--overwrite"] = "bool", ["--dry-run"] = "bool", ["--config"] = "string",
  ["--parallel"] = { kind = "int", min = 1, max = 256 }, ["--rate-limit"] = { kind = "rate" },
  ["--quiet"] = "bool", ["--no-progress"] = "bool", ["--help"] = "bool",
}
local SEE = "; see 'fluxloop generate inputs --help'"
local DEFAULT_PARALLEL = 4
local PROMPT_TEMPLATE = "lua/fluxloop/templates/generate/prompt.txt"

local function say(...) io.stderr:write(...) io.stderr:write("\n") end

local function critical(msg)
  local lines = {}
  for line in (msg .. "\n"):gmatch("(.-)\n") do
    lines[#lines + 1] = (line:find("^%s") or line:find(": warning: ")) and line or ("fluxloop: error: " .. line)
  end
  say(table.concat(lines, "\n"))
  return 2
end

-- The default prompt: a file of that name on the Lua path wins over the embedded one.
local function default_prompt()
  return (assert(require("fluxloop.template").source(PROMPT_TEMPLATE), "no embedded " .. PROMPT_TEMPLATE))
end

local function describe(item, i, n)
  return ("prompt %d of %d (base_inputs[%d], persona %s, strategy %s)"):format(i, n, item.base_index,
    item.persona and item.persona.name or "none", item.strategy)
end

local function dry_run(spec, items, endpoint)
  for i, item in ipairs(items) do
    io.stdout:write(("--- %s\n%s\n"):format(describe(item, i, #items), item.prompt:gsub("\n$", "")))
  end
  local where = spec.mode == "llm"
    and (" for %s at %s (key: %s)"):format(spec.llm.model, endpoint.url, endpoint.key_from or "none")
    or " (deterministic: these texts are the inputs)"
  io.stdout:write(("%d prompt%s%s; dry run: nothing sent, nothing written\n"):format(#items,
    #items == 1 and "" or "s", where))
  return 0
end

-- ask(spec, items, endpoint, flags, p) -> replies (by index), errors (by index), done
local function ask(spec, items, endpoint, flags, p)
  if flags.rate_limit then require("fluxloop.ratelimit").configure({ requests_per_second = flags.rate_limit }) end
  require("fluxloop.guard").install() -- Ctrl-C: nothing more is asked; what finished is written
  local gen_llm = require("fluxloop.gen_llm")
  local jobs = {}
  for i, item in ipairs(items) do jobs[i] = item.prompt end
  local parallel = math.min(flags.parallel or DEFAULT_PARALLEL, math.max(#jobs, 1))
  p:info(("Asking %s for %d new inputs, %d at a time"):format(spec.llm.model, #jobs, parallel))
  p:start(#jobs, parallel)
  local replies, errors, done = require("fluxloop.tasks").map({
    module = "fluxloop.gen_llm", setup = gen_llm.setup({ url = endpoint.url, key = endpoint.key,
      model = spec.llm.model, system_prompt = spec.llm.system_prompt, retries = spec.llm.retries,
      timeout_ms = math.floor(spec.llm.request_timeout * 1000) }),
    jobs = jobs, workers = parallel, path = package.path, cpath = package.cpath,
    on_progress = function(n, in_flight) p:update(n, in_flight) end,
  })
  if replies then p:update(done, 0) end
  p:finish()
  return replies, errors, done
end

-- Rows from the replies; every failed or empty prompt is reported and left out.
local function collect(items, texts, errors, p)
  local rows, keys, failed, empty = {}, {}, 0, 0
  for i, item in ipairs(items) do
    local text = texts[i]
    if text and text ~= "" then
      rows[#rows + 1], keys[#keys + 1] = gen_output.row(item, text)
    elseif text == "" then
      empty = empty + 1
      p:warn(("fluxloop: warning: %s: the reply was empty; no input from it"):format(describe(item, i, #items)))
    elseif errors[i] then
      failed = failed + 1
      p:warn(("fluxloop: warning: %s failed: %s"):format(describe(item, i, #items), errors[i]))
    end
  end
  return rows, keys, failed, empty
end

local function meta_of(spec, flags, rows, template)
  local strategies = {}
  for i, s in ipairs(spec.strategies) do strategies[i] = s.name end
  local llm = spec.mode == "llm"
  local name = spec.doc.name
  return {
    label = llm and ("openai/" .. spec.llm.model) or "deterministic templates",
    stats = { total_generated = #rows, base_inputs = #spec.base_inputs, personas = #spec.personas,
      strategies = #strategies },
    generation_config = { config_name = type(name) == "string" and name or require("fluxloop.json").null,
      generation_mode = spec.mode, provider = llm and spec.llm.provider or nil, model = llm and spec.llm.model or nil,
      strategies = strategies, limit = flags.limit, prompt = llm and template or nil,
      templates = not llm and spec.templates or nil },
  }
end

-- Where the file goes: --output (from cwd), else the config's inputs_file, else
-- <project>/inputs/generated.yaml; and how to show it (relative to cwd when inside it).
local function output_of(flags, spec, cwd)
  local out = flags.output and util.abspath(flags.output, cwd) or spec.inputs_file
    or (spec.project_dir .. "/inputs/generated.yaml")
  return out, flags.output or (out:sub(1, #cwd + 1) == cwd .. "/" and out:sub(#cwd + 2)) or out
end

-- What stops an llm run before any request: nil, or the message.
local function endpoint_problem(spec, endpoint)
  local gen_llm = require("fluxloop.gen_llm")
  if not spec.llm.base_url then -- from OPENAI_BASE_URL: checked here, where its name is known
    local ok, why = require("fluxloop.http").check_url(endpoint.url)
    if not ok then
      return ("OPENAI_BASE_URL '%s' is not a URL fluxloop can ask (%s); write it as http://127.0.0.1:8000/v1")
        :format(endpoint.base_url, why)
    end
  end
  if not endpoint.key and endpoint.base_url == gen_llm.DEFAULT_BASE_URL then
    return "no API key for the OpenAI API: set OPENAI_API_KEY (or FLUXLOOP_LLM_API_KEY) in the environment or in "
      .. spec.project_dir .. "/.env, or input_generation.llm.api_key; or use --mode deterministic"
  end
end

-- The closing line: the count, the time, what was left out, and the file.
local function closing_line(rows, items, done, failed, empty, seconds, shown)
  local notes = {}
  if failed > 0 then notes[#notes + 1] = ("%d failed"):format(failed) end
  if empty > 0 then notes[#notes + 1] = ("%d empty"):format(empty) end
  if done < #items then notes[#notes + 1] = ("interrupted: %d not asked"):format(#items - done) end
  return ("[INFO] %s %d inputs in %.1fs%s. Written: %s"):format(done < #items and "Interrupted:" or "Generated",
    #rows, seconds, #notes > 0 and (" (of " .. #items .. " prompts; " .. table.concat(notes, ", ") .. ")") or "",
    shown)
end

-- run(flags, cwd) -> exit status
function M.run(flags, cwd)
  local spec, warnings = gen_config.load(flags, cwd)
  if not spec then return critical(warnings) end
  local p = require("fluxloop.progress").new({ quiet = flags.quiet, bar = not flags.no_progress })
  for _, w in ipairs(warnings) do p:warn(w) end
  local template = spec.mode == "llm" and (spec.llm.user_prompt_template or default_prompt()) or nil
  local items = gen_config.prompts(spec, template, flags.limit)
  local out, shown = output_of(flags, spec, cwd)
  local endpoint = spec.mode == "llm" and require("fluxloop.gen_llm").endpoint(spec.llm, spec.project_dir) or nil
  local problem = endpoint and endpoint_problem(spec, endpoint)
  if problem and not (flags.dry_run and endpoint.base_url == require("fluxloop.gen_llm").DEFAULT_BASE_URL) then
    return critical(problem)
  end
  if flags.dry_run then return dry_run(spec, items, endpoint) end
  if fs.exists(out) and not flags.overwrite then
    return critical(("%s exists; nothing was generated (--overwrite replaces it, or --output FILE writes "
      .. "elsewhere)"):format(shown))
  end
  local t0 = clock.now_ns()
  local texts, errors, done = {}, {}, #items
  if spec.mode == "llm" then
    texts, errors, done = ask(spec, items, endpoint, flags, p)
    if not texts then return critical(errors) end
  else
    for i, item in ipairs(items) do texts[i] = item.prompt end
  end
  local rows, keys, failed, empty = collect(items, texts, errors, p)
  if #rows == 0 then
    say(("fluxloop: error: none of the %d prompts gave an input; nothing was written to %s"):format(#items, shown))
    return done < #items and 130 or 1
  end
  local ok, werr = gen_output.write(out, gen_output.document(rows, keys, meta_of(spec, flags, rows, template)))
  if not ok then return critical(("cannot write %s: %s"):format(shown, tostring(werr))) end
  if not flags.quiet or failed + empty > 0 or done < #items then
    say(closing_line(rows, items, done, failed, empty, (clock.now_ns() - t0) / 1e9, shown))
  end
  if done < #items then return 130 end
  return (failed + empty > 0) and 1 or 0
end

-- main(args) -> exit status; args are the words after `generate`.
function M.main(args)
  local flags, positional = args_mod.parse(args, SPEC, SEE)
  if not flags then return critical(positional) end
  if flags.help then io.stdout:write(M.USAGE) return 0 end
  if positional[1] ~= "inputs" or #positional > 1 then
    return critical((positional[1] == nil and "missing 'inputs' after 'generate'"
      or positional[1] ~= "inputs" and ("unknown command 'generate %s'"):format(positional[1])
      or ("unexpected argument '%s'"):format(positional[2])) .. ": try 'fluxloop generate inputs'" .. SEE)
  end
  return M.run(flags, assert(fs.getcwd()))
end

return M
