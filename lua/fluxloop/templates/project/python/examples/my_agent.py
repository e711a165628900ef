"""my_agent.py - the project's agent: run(input_text) returns the answer. Replace the lookup
with your own logic; fluxloop starts python3 with its bridge, so `import fluxloop` works."""
import fluxloop

ANSWERS = [
    ("start", "Run `fluxloop run experiment` in the project folder."),
    ("retry", "Set runner.timeout_ms and your client's retries in configs/simulation.yaml."),
    ("export", "Every run is a line of trace_summary.jsonl in the results folder."),
]


@fluxloop.tool(name="lookup")
def lookup(question: str):
    q = question.lower()
    for word, answer in ANSWERS:
        if word in q:
            return answer
    return None


@fluxloop.agent()
def run(input_text: str) -> str:
    answer = lookup(input_text)
    return answer or "Could you say more about: " + input_text
