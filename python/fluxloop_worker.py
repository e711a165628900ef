"""fluxloop_worker - runs a Python agent for the fluxloop runner.

fluxloop starts this file once per worker slot and speaks its JSON-lines worker protocol
(docs/agent-protocol.md) over stdin and stdout. Pure standard library, Python >= 3.8.
Anything the agent prints goes to stderr, which fluxloop keeps as the run's logs: the
protocol stream is private to this file.
"""
import json
import os
import re
import sys
import types

# asyncio, inspect and traceback are imported when first needed: together they are most of
# a worker's start (a plain agent never needs the first two).

PROTOCOL = 1
INPUT_NAMES = ("input", "input_text", "message", "query", "text", "content", "user_message")


def private_protocol_streams():
    """Keeps stdin and stdout for the protocol, on descriptors the agent's children do not
    inherit. The agent's stdin is /dev/null: input() gets end of file, and a child that
    reads stdin can never take a request. fd 1 (print, C extensions) goes to stderr."""
    inp = os.fdopen(os.dup(0), "r", encoding="utf-8", errors="replace")
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8", errors="replace")
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return inp, out


def carry_runs_into_threads():
    """Code a run starts in a thread belongs to that run: a thread runs in a copy of the
    context it was started from, where fluxloop keeps the run it belongs to (fluxloop._RUN).
    What a thread records after its run returned is then dropped, never put into a later
    run's trace. (Tasks of a thread pool: see carry_runs_into_pools.)"""
    import contextvars
    import threading
    start = threading.Thread.start

    def start_in_context(self):
        ctx, run = contextvars.copy_context(), self.run
        self.run = lambda: ctx.run(run)
        return start(self)
    threading.Thread.start = start_in_context


def carry_runs_into_pools():
    """A task submitted to a thread pool runs in a copy of the submitter's context (a pool's
    thread outlives the run that started it). Done once concurrent.futures is imported (by
    the agent, or asyncio): importing it here would add to every worker's start."""
    pools = sys.modules.get("concurrent.futures.thread")
    if pools is None:
        return False
    import contextvars
    submit = pools.ThreadPoolExecutor.submit

    def submit_in_context(self, fn, *args, **kwargs):
        return submit(self, contextvars.copy_context().run, fn, *args, **kwargs)
    pools.ThreadPoolExecutor.submit = submit_in_context
    return True


def setup_path():
    for d in reversed([p for p in os.environ.get("FLUXLOOP_PYTHON_PATH", "").split(":") if p]):
        sys.path.insert(0, d)
    project = os.environ.get("FLUXLOOP_PROJECT_DIR")
    if project:
        sys.path.insert(0, project)
    sys.path.insert(0, os.getcwd())


def resolve(target):
    """'pkg.module:function' or 'pkg.module:Class.method' -> the callable."""
    if ":" not in target:
        raise ValueError("target %r: expected 'module.path:function'" % target)
    module_name, attr = target.rsplit(":", 1)
    __import__(module_name)
    obj = sys.modules[module_name]
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise AttributeError("module %r has no attribute %r" % (module_name, part))
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError("%s is not callable" % target)
    return obj


FACTS = ("iteration", "persona", "trace_id", "metadata", "persona_text", "persona_description")
# In a conversation (multi_turn), as the Python fluxloop binds them: the first name of each
# group the function takes gets the conversation's state, its turns, or the state's metadata.
CONVERSATION = (("conversation_state", "state", "dialog_state"), ("messages", "history", "turns"),
                ("conversation_metadata", "state_metadata", "conversation_meta"))
_plans = {}


def binding_plan(fn):
    """(name of the input parameter, or None, or False to pass the input positionally; run
    facts it takes by name; its conversation names, one per CONVERSATION group or None),
    worked out once per function."""
    plan = _plans.get(fn)
    if plan is None:
        from fluxloop._signature import parameters
        params = parameters(fn)
        if params is None:
            plan = (False, (), (None, None, None))
        else:
            names, positional, varargs = params
            target = next((n for n in names if n in INPUT_NAMES), None)
            if target is None and positional:
                target = positional[0]
            if target is None and varargs:
                target = False  # def run(*args): the input is args[0]
            conv = tuple(next((n for n in g if n in names and n != target), None) for g in CONVERSATION)
            plan = (target, tuple(n for n in names if n in FACTS and n != target), conv)
        _plans[fn] = plan
    return plan


# What a grader may take by name (a fact the run lacks, such as expected, comes as None).
GRADER_FACTS = ("output", "input", "input_text", "expected", "iteration", "persona", "metadata", "entry",
                "duration_ms", "trace_id", "trace", "conversation")


def bind_by_name(fn, value, named):
    """A grader's arguments (ctx.bind): each parameter named like a fact gets it (output,
    input_text, expected, trace, ...); a first parameter of another name gets the value."""
    from fluxloop._signature import parameters
    params = parameters(fn)
    if params is None:
        return [value], {}
    names, positional, varargs = params
    kwargs = {n: named.get(n) for n in names if n in named or n in GRADER_FACTS}
    if positional and positional[0] not in kwargs:
        return [value], {n: v for n, v in kwargs.items() if n != positional[0]}
    if not kwargs and varargs:
        return [value], {}
    return [], kwargs


def bind(fn, value, ctx):
    """The arguments the Python fluxloop gives: the input to the first parameter named like an
    input (else the first parameter), run facts by name, recorded kwargs on replay; a grader's
    arguments by name (ctx.bind)."""
    if isinstance(ctx.get("bind"), dict):
        return bind_by_name(fn, value, ctx["bind"])
    if ctx.get("args") is not None and isinstance(ctx["args"], dict):
        return [], with_callbacks(ctx["args"], ctx.get("callbacks"))
    target, wanted, conv = binding_plan(fn)
    conversation = ctx.get("conversation")
    if target is False and not wanted and conversation is None:
        return [value], {}
    kwargs = {}
    if target:
        kwargs[target] = value
    args = [value] if target is False else []
    if conversation is not None:
        bind_conversation(kwargs, conv, conversation, ctx)
    if not wanted:
        return args, kwargs
    names = wanted
    info = ctx.get("persona_info") or {}
    facts = {
        "iteration": ctx.get("iteration"), "persona": ctx.get("persona"), "trace_id": ctx.get("trace_id"),
        "metadata": ctx.get("metadata"),
        "persona_text": info.get("description") if isinstance(info, dict) else None,
        "persona_description": info.get("description") if isinstance(info, dict) else None,
    }
    for n in names:
        kwargs[n] = facts[n]
    return args, kwargs


def bind_conversation(kwargs, names, conversation, ctx):
    """The conversation so far (ending with the current user message) by name: its state
    {turns, metadata}, its turns [{role, content}], the state's metadata."""
    state_name, turns_name, meta_name = names
    if not (state_name or turns_name or meta_name):
        return
    turns = [{"role": e.get("role"), "content": e.get("content")} for e in conversation if isinstance(e, dict)]
    info = ctx.get("persona_info") if isinstance(ctx.get("persona_info"), dict) else {}
    metadata = ctx.get("metadata") if isinstance(ctx.get("metadata"), dict) else {}
    meta = {"iteration": ctx.get("iteration"), "persona": ctx.get("persona"),
            "persona_description": metadata.get("persona_description") or info.get("description"),
            "service_context": metadata.get("service_context"), "variation": ctx.get("entry")}
    if state_name:
        kwargs[state_name] = {"turns": turns, "metadata": meta}
    if turns_name:
        kwargs[turns_name] = turns
    if meta_name:
        kwargs[meta_name] = meta


def with_callbacks(args, placeholders):
    """Replay: the recorded kwargs, with a callable wherever the recording had a callback
    (the placeholder strings fluxloop lists in ctx.callbacks). What the agent passes to one
    goes back to fluxloop, which keeps it in the trace's callback_messages."""
    if not placeholders:
        return dict(args)
    wanted = set(p for p in placeholders if isinstance(p, str))

    def callback(placeholder):
        def send(*values):
            import fluxloop
            worker = fluxloop._runtime.current()
            if worker is not None:
                worker.send({"type": "callback", "id": worker.run_id, "placeholder": placeholder,
                             "args": [fluxloop._jsonable(v) for v in values]})
        if placeholder.endswith(":async>"):
            async def send_async(*values):
                send(*values)
            return send_async
        return send

    def swap(value):
        if isinstance(value, str) and value in wanted:
            return callback(value)
        if isinstance(value, dict):
            return {k: swap(v) for k, v in value.items()}
        if isinstance(value, list):
            return [swap(v) for v in value]
        return value
    return {k: swap(v) for k, v in args.items()}


def finite(value):
    """value with NaN and infinities (which JSON cannot hold) as None, at any depth."""
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return None
    if isinstance(value, dict):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite(v) for v in value]
    return value


# fluxloop reads integers as 64-bit: one past that range travels as the string of its digits
# (docs/agent-protocol.md). Such an integer spells 19 digits or more, so JSON text without a
# run of 19 digits needs no second look.
_LONG_DIGITS = re.compile(r"[0-9]{19}")
_INT64 = (-2 ** 63, 2 ** 63 - 1)


def exact(value):
    """value with integers past 64 bits as strings of their digits, at any depth."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value if _INT64[0] <= value <= _INT64[1] else str(value)
    if isinstance(value, dict):
        return {k: exact(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [exact(v) for v in value]
    return value


def to_json(value, **options):
    """JSON text of value, integers past 64 bits as strings (json.dumps's options)."""
    text = json.dumps(value, ensure_ascii=False, **options)
    if _LONG_DIGITS.search(text):
        text = json.dumps(exact(value), ensure_ascii=False, **options)
    return text


def agent_traceback(e):
    """e's traceback from the agent's first frame on: the bridge's own frames are no help."""
    import traceback
    tb = e.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(e), e, tb))


def join_chunks(chunks):
    if all(isinstance(c, str) for c in chunks):
        return "".join(chunks)
    return chunks


class Worker:
    def __init__(self, inp, out):
        self.inp = inp
        self.out = out
        self.loop = None  # an asyncio loop, made for the first async agent
        self.run_id = None
        self.pools_carried = False
        import threading
        self.ask_lock = threading.Lock()  # an agent's threads ask fluxloop one at a time

    def send(self, msg):
        try:
            line = to_json(msg, default=repr, allow_nan=False)
        except ValueError:  # a NaN or an infinity in what an observation recorded: null, as Lua's
            line = to_json(finite(msg), default=repr)
        self.out.write(line + "\n")
        self.out.flush()

    def rate_limit(self):
        """Waits for a token of the experiment's shared request rate; returns the ms waited."""
        with self.ask_lock:
            self.send({"type": "rate_limit", "id": self.run_id})
            line = self.inp.readline()
        answer = json.loads(line) if line else {}
        if answer.get("type") != "rate_limit":
            raise RuntimeError("fluxloop did not answer the rate limit request (got %r)" % line[:80])
        return answer.get("waited_ms", 0)

    def run_async(self, awaitable):
        if self.loop is None:
            import asyncio
            self.loop = asyncio.new_event_loop()
        return self.loop.run_until_complete(awaitable)

    def call(self, fn, value, ctx):
        args, kwargs = bind(fn, value, ctx)
        result = fn(*args, **kwargs)
        if hasattr(result, "__await__"):  # a coroutine or a future: inspect.isawaitable
            result = self.run_async(result)
        if isinstance(result, types.AsyncGeneratorType):
            async def collect(gen):
                return [c async for c in gen]
            result = join_chunks(self.run_async(collect(result)))
        elif isinstance(result, types.GeneratorType):
            result = join_chunks(list(result))
        return result

    def run(self, fn, req):
        import fluxloop
        self.run_id = req.get("id")
        if not self.pools_carried:
            self.pools_carried = carry_runs_into_pools()
        fluxloop._runtime.begin(self)
        try:
            ctx = req.get("ctx") or {}
            if req.get("conversation") is not None:  # a turn of a conversation (multi_turn)
                ctx["conversation"] = req["conversation"]
            output = self.call(fn, req.get("input"), ctx)
            try:
                # Encoded once, into the line itself; NaN and infinities are not JSON.
                text = to_json(output, allow_nan=False)
            except (TypeError, ValueError) as e:
                return self.send({"type": "result", "id": self.run_id, "error": {
                    "type": "invalid_output",
                    "message": "the agent returned a %s, which JSON cannot hold: %s" % (type(output).__name__, e)}})
            self.out.write('{"type": "result", "id": %s, "output": %s}\n' % (json.dumps(self.run_id), text))
            self.out.flush()
        except BaseException as e:  # the run fails, the worker goes on
            if isinstance(e, (KeyboardInterrupt, SystemExit)) and not isinstance(e, SystemExit):
                raise
            self.send({"type": "result", "id": self.run_id, "error": {
                "type": type(e).__name__, "message": str(e), "traceback": agent_traceback(e)}})
        finally:
            fluxloop._runtime.end()
            sys.stderr.flush()


def main():
    inp, out = private_protocol_streams()
    setup_path()
    carry_runs_into_threads()
    worker = Worker(inp, out)
    hello = json.loads(inp.readline() or "{}")
    target = hello.get("target") or os.environ.get("FLUXLOOP_TARGET", "")
    try:
        fn = resolve(target)
    except BaseException as e:
        import traceback
        last = traceback.format_exception_only(type(e), e)[-1].strip()
        sys.stderr.write(agent_traceback(e))
        worker.send({"type": "error", "message": "cannot load %s: %s" % (target, last)})
        return 2
    worker.send({"type": "hello", "protocol": PROTOCOL, "language": "python",
                 "python": sys.version.split()[0], "executable": sys.executable})
    for line in inp:
        req = json.loads(line)
        if req.get("type") == "run":
            worker.run(fn, req)
    return 0


if __name__ == "__main__":
    sys.exit(main())
