"""What a function takes, read from its code object.

inspect.signature would do, but importing inspect (and the asyncio the bridge would otherwise
import) costs more than the rest of a worker's start; most agents are plain functions or
methods, whose code object says the same. Other callables (classes, partials, builtins,
callable objects) still go through inspect, imported then.
"""
import types

CO_VARARGS = 0x04
CO_VARKEYWORDS = 0x08
CO_COROUTINE = 0x80
CO_ASYNC_GENERATOR = 0x200


def _code_of(fn):
    """(code object, how many leading parameters are bound) of a function or method, past
    functools.wraps decorators as inspect.signature goes; (None, 0) for other callables."""
    bound = 0
    if isinstance(fn, types.MethodType):
        bound, fn = 1, fn.__func__
    seen = 0
    while hasattr(fn, "__wrapped__") and seen < 100:
        fn, seen = fn.__wrapped__, seen + 1
        if isinstance(fn, types.MethodType):
            bound, fn = bound + 1, fn.__func__
    if isinstance(fn, types.FunctionType):
        return fn.__code__, bound
    return None, 0


def parameters(fn):
    """(names of all named parameters, names of the positional ones, takes *args) of fn, or
    None when fn has no signature to read."""
    code, bound = _code_of(fn)
    if code is not None:
        n, k = code.co_argcount, code.co_kwonlyargcount
        names = code.co_varnames[:n + k]
        return list(names[bound:]), list(names[bound:n]), bool(code.co_flags & CO_VARARGS)
    import inspect
    try:
        params = list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        return None
    positional = [p.name for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    named = [p.name for p in params if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    return named, positional, any(p.kind == p.VAR_POSITIONAL for p in params)


def is_async(fn):
    """Whether calling fn gives a coroutine (async def), as inspect.iscoroutinefunction."""
    code, _ = _code_of(fn)
    if code is not None:
        return bool(code.co_flags & CO_COROUTINE)
    import inspect
    return inspect.iscoroutinefunction(fn)


def call_args(fn, args, kwargs):
    """The arguments of a call by parameter name (self and cls left out), as
    inspect.signature(fn).bind_partial(...).arguments would give them."""
    code, bound = _code_of(fn)
    if code is None:
        import inspect
        try:
            b = inspect.signature(fn).bind_partial(*args, **kwargs)
            return {k: v for k, v in b.arguments.items() if k not in ("self", "cls")}
        except (TypeError, ValueError):
            return {"args": list(args), "kwargs": kwargs}
    n, k = code.co_argcount, code.co_kwonlyargcount
    names = code.co_varnames[bound:n + k]
    npos = n - bound
    varargs, varkw = code.co_flags & CO_VARARGS, code.co_flags & CO_VARKEYWORDS
    extra = {key: v for key, v in kwargs.items() if key not in names}
    if (len(args) > npos and not varargs) or (extra and not varkw):
        return {"args": list(args), "kwargs": kwargs}  # a call that would not bind
    out = dict(zip(names[:npos], args))
    after = n + k  # *args, then **kwargs, follow the named parameters in co_varnames
    if len(args) > npos:
        out[code.co_varnames[after]] = tuple(args[npos:])
    out.update((key, v) for key, v in kwargs.items() if key in names)
    if extra:
        out[code.co_varnames[after + (1 if varargs else 0)]] = extra
    return {key: v for key, v in out.items() if key not in ("self", "cls")}
