-- grade/python_eval.lua - the Python fluxloop's configs/evaluation.yaml as graders: each
-- enabled metric (task_completion, hallucination, relevance, ...) becomes an llm_judge
-- grader whose rubric says what the metric means, with the evaluation goal; its threshold is
-- the metric's `fair` threshold (a pass rate under it fails, as "poor" did there); the model
-- is advanced.llm_judge.model; the key FLUXLOOP_LLM_API_KEY or OPENAI_API_KEY.
local util = require("fluxloop.util")

local M = {}

M.DEFAULT_MODEL = "gpt-5.1" -- the Python tool's own default judge

-- What each metric asks of an answer, in the words a judge is given.
M.RUBRICS = {
  task_completion = "The answer fully accomplishes what the user asked for.",
  hallucination = "The answer invents nothing: every fact, number and name in it is supported by the input or "
    .. "is common knowledge. (Pass means no hallucination.)",
  relevance = "The answer addresses the user's actual question and stays on topic.",
  tool_usage_appropriateness = "The agent called tools when the question needed them and not otherwise, with "
    .. "sensible arguments (the tools it called are listed).",
  user_satisfaction = "A user with the given persona would be satisfied with this answer.",
  clarity = "The answer is clear, well organised and easy to follow.",
  persona_consistency = "The answer suits the user's persona: their expertise, language and goals.",
}

M.known = { [""] = { "evaluation_goal", "metrics", "efficiency", "output", "advanced" } }

-- is_python_eval(doc) -> true when doc is the Python tool's evaluation.yaml.
function M.is_python_eval(doc)
  return util.is_mapping(doc) and (doc.metrics ~= nil or doc.evaluation_goal ~= nil)
end

-- graders(c) -> specs (as grade.check returns them), reading the document of checker c.
function M.graders(c)
  local goal = c:get("evaluation_goal.text")
  if goal ~= nil and type(goal) ~= "string" then c:error("evaluation_goal.text", "expected text") goal = nil end
  local model = c:string("advanced.llm_judge.model", "a model name") or M.DEFAULT_MODEL
  local temperature = c:number("advanced.llm_judge.temperature", 0)
  local metrics = c:mapping("metrics", "task_completion: {enabled: true, thresholds: {good: 0.8, fair: 0.6}}")
  local specs = {}
  for _, name in ipairs(c:keys_of("metrics", metrics or {})) do
    local at = "metrics." .. name
    local m = metrics[name]
    if not util.is_mapping(m) then
      c:error(at, "expected a mapping (enabled:, thresholds: {good:, fair:})")
    elseif not M.RUBRICS[name] then
      c:warn(at, ("unknown metric '%s' (known: %s); it is not graded"):format(name,
        table.concat(util.sorted_keys(M.RUBRICS), ", ")), true)
    elseif m.enabled ~= false then -- a listed metric is graded unless enabled: false
      local fair = c:number(at .. ".thresholds.fair", 0)
      if fair and fair > 1 then c:error(at .. ".thresholds.fair", "expected a rate from 0 to 1") fair = nil end
      local rubric = M.RUBRICS[name]
      if goal and goal ~= "" then rubric = rubric .. "\nThe evaluation's goal: " .. goal end
      specs[#specs + 1] = { name = name, type = "llm_judge", rubric = rubric, model = model,
        temperature = temperature, threshold = fair }
    end
  end
  if #specs == 0 and #c.errors == 0 then
    c:error("metrics", "no metric is enabled (set enabled: true on one, e.g. metrics.task_completion)", true)
  end
  return specs
end

return M
