# examples/support_agent.py - a Python agent with nested, decorated tool and model calls: each
# becomes an observation of the run (agent > tool, generation), nested as the calls nest.
import asyncio

import fluxloop


@fluxloop.tool(name="search_docs")
def search(query: str) -> list:
    return ["Install with make deps", "Run with fluxloop run experiment"]


@fluxloop.prompt(name="draft_answer", model="local-echo")
async def draft(question: str, docs: list) -> str:
    await asyncio.sleep(0)
    return "%s -> %s" % (question, docs[0])


@fluxloop.agent(name="support")
async def run(message: str, persona: str = None, iteration: int = 0) -> dict:
    docs = search(message)
    answer = await draft(message, docs)
    print("answered", iteration)            # goes to the run's logs, not the protocol
    return {"answer": answer, "persona": persona, "sources": len(docs)}
