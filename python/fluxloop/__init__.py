"""fluxloop - the Python SDK's decorators for agents run by the fluxloop runner.

@fluxloop.agent(), @fluxloop.trace(), @fluxloop.tool() and @fluxloop.prompt() record what a
function was called with, what it returned (or raised) and how long it took, as observations
of the current run (types agent, span, tool and generation), nested as the calls nest. Outside
a fluxloop run they only call the function. Pure standard library, Python >= 3.8.
"""
import contextvars
import functools
import json
import os

from fluxloop._signature import call_args as _call_args, is_async as _is_async

__all__ = ["agent", "trace", "tool", "prompt", "record_call_args", "record_usage", "rate_limit"]

# The @prompt span the current call is inside (per thread and per asyncio task), where
# record_usage puts its token counts.
_generation = contextvars.ContextVar("fluxloop_generation", default=None)


class _Runtime:
    """The run in progress in this worker process, and its open spans."""

    def __init__(self):
        self.worker, self.next_span, self.usage, self.generations = None, 0, {}, set()

    def begin(self, worker):
        self.worker, self.next_span, self.usage, self.generations = worker, 0, {}, set()

    def end(self):
        self.worker = None

    def start(self, kind, name, value):
        if self.worker is None:
            return None
        self.next_span += 1
        if kind == "generation":
            self.generations.add(self.next_span)
        self.worker.send({"type": "span_start", "id": self.worker.run_id, "span": self.next_span,
                          "kind": kind, "name": name, "input": _jsonable(value)})
        return self.next_span

    def add_usage(self, span, counts, model):
        """record_usage inside an open @prompt: its counts (summed over calls) and model go
        out with the span's end, over what the span's result holds."""
        held = self.usage.setdefault(span, [{}, None])
        for k, v in counts.items():
            held[0][k] = held[0].get(k, 0) + v
        held[1] = model or held[1]

    def finish(self, span, output=None, error=None, model=None, usage=None):
        if self.worker is None or span is None:
            return
        self.generations.discard(span)
        held = self.usage.pop(span, None)
        if held:
            usage, model = held[0], held[1] or model
        msg = {"type": "span_end", "id": self.worker.run_id, "span": span, "output": _jsonable(output)}
        if error is not None:
            msg["error"] = error
        if model is not None:
            msg["model"] = str(model)
        if usage:
            msg["usage"] = usage
        self.worker.send(msg)


_runtime = _Runtime()


def rate_limit():
    """Call before each request to a model: waits for a token of the experiment's shared
    request rate (runner.rate_limit or --rate-limit, one bucket for every worker), so that
    --parallel 64 against a quota of 10 requests/s sends 10/s. Returns the ms waited; 0 at
    once outside a fluxloop run or when no rate is set."""
    worker = _runtime.worker
    if worker is None:
        return 0
    return worker.rate_limit()


def _jsonable(value):
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        if isinstance(value, dict):
            return {str(k): _jsonable(v) for k, v in value.items()}
        if isinstance(value, (list, tuple)):
            return [_jsonable(v) for v in value]
        return repr(value)


_TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "total_tokens", "input_tokens", "output_tokens")


def _usage(result):
    """The token counts of a model's answer, as the Python SDK's @prompt copies them: the
    `usage` of a dict (an OpenAI-style JSON answer) or of an object (an SDK's response)."""
    usage = result.get("usage") if isinstance(result, dict) else getattr(result, "usage", None)
    return _counts(usage)


def _counts(usage):
    """The numeric token fields of a usage dict or object, or None."""
    if usage is None:
        return None
    if not isinstance(usage, dict):
        usage = {k: getattr(usage, k, None) for k in _TOKEN_FIELDS}
    counts = {k: usage[k] for k in _TOKEN_FIELDS
              if isinstance(usage.get(k), (int, float)) and not isinstance(usage.get(k), bool)}
    return counts or None


def _observed(kind, name=None, model=None, capture_tokens=False):
    def wrap(fn):
        label = name or fn.__name__

        def failed(span, e):
            _runtime.finish(span, error="%s: %s" % (type(e).__name__, e), model=model)

        def done(span, out):
            if capture_tokens:
                _runtime.finish(span, out, model=model, usage=_usage(out))
            else:
                _runtime.finish(span, out, model=model)

        # A generation's span is where record_usage inside it puts its counts.
        mark = _generation.set if kind == "generation" else None

        if _is_async(fn):
            @functools.wraps(fn)
            async def run_async(*args, **kwargs):
                span = _runtime.start(kind, label, _call_args(fn, args, kwargs))
                token = mark(span) if mark and span is not None else None
                try:
                    out = await fn(*args, **kwargs)
                except BaseException as e:
                    failed(span, e)
                    raise
                finally:
                    if token is not None:
                        _generation.reset(token)
                done(span, out)
                return out
            return run_async

        @functools.wraps(fn)
        def run(*args, **kwargs):
            span = _runtime.start(kind, label, _call_args(fn, args, kwargs))
            token = mark(span) if mark and span is not None else None
            try:
                out = fn(*args, **kwargs)
            except BaseException as e:
                failed(span, e)
                raise
            finally:
                if token is not None:
                    _generation.reset(token)
            done(span, out)
            return out
        return run
    return wrap


def _decorator(kind):
    def make(name=None, model=None, capture_tokens=None, **_options):
        # Generations (@prompt) copy their answer's token counts unless told not to.
        tokens = (kind == "generation") if capture_tokens is None else bool(capture_tokens)
        if callable(name):  # used bare: @fluxloop.agent
            return _observed(kind, capture_tokens=tokens)(name)
        return _observed(kind, name, model, tokens)
    return make


agent = _decorator("agent")
trace = _decorator("span")
tool = _decorator("tool")
prompt = _decorator("generation")

def record_usage(usage=None, model=None, name="model call", **counts):
    """Records the token counts of a model call the run made, when its @fluxloop.prompt
    function does not return the response itself (it returns the text, say):
        fluxloop.record_usage(response)              # a dict with "usage" (and "model")
        fluxloop.record_usage(response["usage"], model="gpt-4o-mini")
        fluxloop.record_usage(prompt_tokens=12, completion_tokens=30)
    usage is an OpenAI-style {prompt_tokens, completion_tokens, total_tokens} or an
    Anthropic-style {input_tokens, output_tokens}, a dict or an SDK's object. Inside a
    @fluxloop.prompt call the counts (summed over several calls) go on that observation;
    elsewhere they make a generation observation of their own, named `name`. Returns True
    when recorded; False outside a fluxloop run, or with a RuntimeWarning when there are no
    counts to record."""
    worker = _runtime.worker
    if worker is None:
        return False
    if isinstance(usage, dict) and "usage" in usage:  # a whole OpenAI-style response
        model, usage = model or usage.get("model"), usage["usage"]
    elif usage is not None and not isinstance(usage, dict) and getattr(usage, "usage", None) is not None:
        model, usage = model or getattr(usage, "model", None), usage.usage
    found = dict(_counts(usage) or {})
    found.update(_counts(counts) or {})
    if not found:
        import warnings
        warnings.warn("fluxloop.record_usage: no token counts in %r (expected prompt_tokens, completion_tokens, "
                      "total_tokens, input_tokens or output_tokens)" % ((usage, counts),), RuntimeWarning,
                      stacklevel=2)
        return False
    span = _generation.get()
    if span is not None and span in _runtime.generations:
        _runtime.add_usage(span, found, model)
    else:
        obs = {"type": "generation", "name": str(name), "usage": found}
        if model is not None:
            obs["model"] = str(model)
        worker.send({"type": "observation", "id": worker.run_id, "observation": obs})
    return True


_SECRET_WORDS = ("token", "password", "passwd", "secret", "key", "auth", "credential", "creds")
_counters = {}


def _mask(value):
    if isinstance(value, dict):
        return {k: ("***" if any(w in str(k).lower() for w in _SECRET_WORDS) and not callable(v) else _mask(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    if callable(value):
        return "<callable:%s>" % getattr(value, "__name__", "function")
    return _jsonable(value)


_ON, _OFF = ("1", "true", "yes", "on"), ("0", "false", "no", "off", "")


def _not_recording(why):
    import warnings
    warnings.warn("fluxloop.record_call_args recorded nothing: %s; set FLUXLOOP_RECORD_ARGS=1 and "
                  "FLUXLOOP_RECORDING_FILE=recordings/args.jsonl to record (FLUXLOOP_RECORD_ARGS=0 turns "
                  "recording off without this warning)" % why, RuntimeWarning, stacklevel=3)
    return False


def record_call_args(target, kwargs=None, iteration=None, **more):
    """Appends a recording line ({"_version","iteration","target","kwargs","timestamp"}) to
    $FLUXLOOP_RECORDING_FILE when $FLUXLOOP_RECORD_ARGS is 1, true, yes or on; secrets masked.
    Returns True when it wrote the line. Outside a fluxloop run, with FLUXLOOP_RECORD_ARGS
    unset (or not a yes or a no) it returns False with a RuntimeWarning that says why, so a
    recording that never happens is not a silent surprise; FLUXLOOP_RECORD_ARGS=0 is off,
    quietly, and so is an unset variable inside a run (a replayed handler)."""
    flag = os.environ.get("FLUXLOOP_RECORD_ARGS")
    if flag is None:
        return False if _runtime.worker is not None else _not_recording("FLUXLOOP_RECORD_ARGS is not set")
    if flag.strip().lower() in _OFF:
        return False
    if flag.strip().lower() not in _ON:
        return _not_recording("FLUXLOOP_RECORD_ARGS=%r is neither 1, true, yes, on nor 0, false, no, off" % flag)
    path = os.environ.get("FLUXLOOP_RECORDING_FILE")
    if not path:
        raise RuntimeError("FLUXLOOP_RECORD_ARGS is on but FLUXLOOP_RECORDING_FILE is not set")
    args = dict(kwargs or {}, **more)
    if iteration is None:
        iteration = _counters.get((path, target), -1) + 1
    _counters[(path, target)] = iteration
    import time
    t = time.time()
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".%06dZ" % int((t % 1) * 1e6)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps({"_version": "1", "iteration": iteration, "target": target,
                            "kwargs": _mask(args), "timestamp": stamp}) + "\n")
    return True
