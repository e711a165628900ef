// echo.js - a fluxloop worker in Node.js (docs/agent-protocol.md): the whole protocol in a
// few lines. runner.command: ["node", "agents/echo.js"]. Each run records a tool
// observation, writes a log line on stderr, and answers with the input.
const readline = require("readline");

const send = (msg) => process.stdout.write(JSON.stringify(msg) + "\n");
let hello = null;

async function run(input, ctx) {
  // A real agent calls its model here (await fetch(...)).
  return { echo: input, iteration: ctx.iteration, persona: ctx.persona };
}

readline.createInterface({ input: process.stdin }).on("line", async (line) => {
  const msg = JSON.parse(line);
  if (!hello) {
    hello = msg; // {"type":"hello","protocol":1,"target":"..."}
    return send({ type: "hello", protocol: 1, language: "node" });
  }
  const { id, input, ctx } = msg;
  try {
    console.error(`run ${id}: ${ctx.trace_id}`); // kept as the run's logs
    send({ type: "observation", id, observation: { type: "tool", name: "echo", input } });
    send({ type: "result", id, output: await run(input, ctx) });
  } catch (e) {
    send({ type: "result", id, error: { type: e.name, message: e.message, traceback: e.stack } });
  }
});
