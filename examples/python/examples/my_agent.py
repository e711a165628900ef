# examples/my_agent.py - the agent of the `fluxloop run experiment` page, unchanged, with the
# `process` function it calls defined here.
import fluxloop


def process(input_text: str) -> str:
    return "Here is how to start: " + input_text.strip().rstrip("?").lower()


@fluxloop.agent()
def run(input_text: str) -> str:
    return process(input_text)
