#!/usr/bin/env python3
"""mock_llm.py - a local stand-in for an OpenAI-compatible chat API, for fluxloop's specs and
`make bench` (python3 stdlib only). It listens on 127.0.0.1 only, on a port the OS picks
(written to --port-file), answers /v1/chat/completions like the real API (tool calls, SSE
streams, usage), and has paths that misbehave on purpose: 429 with Retry-After, 500, slow
answers, malformed JSON, a connection closed mid-stream, a redirect loop, huge bodies, and
a requests-per-second quota (a token bucket, or a strict sliding one-second window). It exits
after --lifetime seconds whatever happens.

Paths:
  POST /v1/chat/completions   chat answer; a tool call when tools are given and the last
                              message is not a tool result; SSE when "stream": true.
                              A model named supervisor-* plays fluxloop's conversation
                              supervisor (see supervise() below)
  ANY  /echo                  the request as JSON: method, path, query, headers, body
                              (?status=S: with that status, an error body that echoes a key)
  ANY  /status/CODE           that status (?retry_after=S adds Retry-After)
  ANY  /flaky?key=K&fail=N&status=S&retry_after=S&retry_date=S
                              the first N requests with key K get status S (default 503)
  ANY  /slow?ms=N             answers after N ms
  ANY  /slow_body?ms=N        sends the headers and a part of the body, waits N ms, ends
  ANY  /malformed             200 application/json that is not JSON
  ANY  /close_mid             promises 1000 bytes, sends 100, closes
  ANY  /sse_close             two SSE events, then closes inside the chunked stream
  ANY  /redirect_loop         302 to itself
  ANY  /redirect?to=URL&status=S&key=K&times=N
                              S (default 302) to URL; with key and times, only the first N
                              requests with key K are redirected, the later ones answered as /echo
  ANY  /big?bytes=N&declare=1 N bytes (Content-Length when declare=1, else chunked)
  ANY  /big_header?bytes=N    a response header line of N bytes (X-Big: aaa...)
  ANY  /stream?n=N&delay_ms=D N server-sent events (event: tick, id: i)
  ANY  /sse_raw               SSE with every kind of line end, sent in 5-byte pieces
  POST /_control              JSON settings: latency_ms, quota, quota_burst, stream_delay_ms,
                              window_quota (at most N requests in any one-second window),
                              chat_rules: a list of {match, status, times, retry_after,
                              echo_headers, content}: a chat request whose last message
                              contains `match` gets `status` (with Retry-After; its headers
                              quoted in the body) its first `times` times (default: always),
                              or `content` as the answer's text
  GET  /_stats                counters: requests, statuses, max_in_flight, first/last times,
                              window_max (with window_quota: most requests seen in one
                              second, 429s included)
  POST /_reset                clears the counters (and the flaky keys)
"""
import argparse
import bisect
import email.utils
import json
import os
import socket
import socketserver
import threading
import time
from urllib.parse import parse_qs, urlsplit

LOCK = threading.Lock()
SETTINGS = {"latency_ms": 0, "quota": 0, "quota_burst": 0, "stream_delay_ms": 0, "window_quota": 0,
            "chat_rules": []}
STATE = {}


def reset_state():
    STATE.update(requests=0, connections=0, statuses={}, in_flight=0, max_in_flight=0, first=None, last=None,
                 flaky={}, tokens=None, refill_at=None, auth_failures=0, rule_hits={},
                 window=[], admitted=[], window_max=0)


reset_state()
API_KEY = None


def take_quota():
    """A token bucket of `quota` requests/s holding up to quota_burst (default quota)."""
    quota = SETTINGS["quota"]
    if not quota:
        return True
    cap = SETTINGS["quota_burst"] or quota
    now = time.monotonic()
    with LOCK:
        if STATE["tokens"] is None:
            STATE["tokens"], STATE["refill_at"] = float(cap), now
        STATE["tokens"] = min(cap, STATE["tokens"] + (now - STATE["refill_at"]) * quota)
        STATE["refill_at"] = now
        if STATE["tokens"] >= 1:
            STATE["tokens"] -= 1
            return True
        return False


def most_in_a_second(times, t):
    """The most of the sorted times in any one-second window [x, x + 1) that holds t."""
    lo = bisect.bisect_left(times, t - 1.0)
    hi = bisect.bisect_right(times, t)
    return max((bisect.bisect_left(times, x + 1.0) - bisect.bisect_left(times, x) for x in times[lo:hi]), default=0)


def take_window(t):
    """A strict server: at most window_quota requests admitted in any one-second window (a
    request answered 429 is not admitted). t is when the request arrived: a connection's
    first request arrived when it was accepted, which a thread may only get to later, so
    the times are kept sorted. window_max counts every arrival."""
    limit = SETTINGS["window_quota"]
    if not limit:
        return True
    with LOCK:
        seen, admitted = STATE["window"], STATE["admitted"]
        for q in (seen, admitted):
            while q and q[0] < t - 2.0:
                q.pop(0)
        bisect.insort(seen, t)
        STATE["window_max"] = max(STATE["window_max"], most_in_a_second(seen, t))
        bisect.insort(admitted, t)
        if most_in_a_second(admitted, t) > limit:
            admitted.remove(t)
            return False
        return True


def words(text):
    return len(text.split()) if isinstance(text, str) else 0


class Handler(socketserver.StreamRequestHandler):
    disable_nagle_algorithm = True

    def handle(self):
        with LOCK:
            STATE["connections"] += 1
        # A TLS client hello (https:// to this plain port) gets what a plain HTTP server
        # answers, at once, instead of a wait for a line that never comes.
        if self.rfile.peek(1)[:1] == b"\x16":
            self.wfile.write(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: 0\r\n\r\n")
            self.count(400, counted=False)
            return
        while True:
            line = self.rfile.readline(65537)
            arrived = self.server.accepted.pop(id(self.request), None) or time.monotonic()
            if not line:
                return
            if line in (b"\r\n", b"\n"):
                continue
            parts = line.decode("latin-1").split()
            if len(parts) < 2:
                return
            method, target = parts[0], parts[1]
            headers = {}
            while True:
                h = self.rfile.readline(65537)
                if h in (b"\r\n", b"\n", b""):
                    break
                name, _, value = h.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = int(headers.get("content-length", "0") or 0)
            body = self.rfile.read(length) if length else b""
            self.keep = headers.get("connection", "").lower() != "close"
            with LOCK:
                STATE["in_flight"] += 1
                STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
            self.in_flight = True
            try:
                status = self.route(method, target, headers, body, arrived)
            except (BrokenPipeError, ConnectionResetError):
                return
            finally:
                self.done_in_flight()
            if status is None or not self.keep:
                return

    # ---- responses ---------------------------------------------------------------------

    in_flight = False  # this connection's request is counted in STATE["in_flight"]

    def done_in_flight(self):
        """The request leaves the in-flight count once, before its last bytes go: the client
        may send its next request as soon as they arrive, before this thread goes on."""
        if self.in_flight:
            self.in_flight = False
            with LOCK:
                STATE["in_flight"] -= 1

    def count(self, status, counted=True):
        """Counts an answer; the control paths' own (counted=False) are left out."""
        if not counted:
            return
        now = time.monotonic()
        with LOCK:
            STATE["requests"] += 1
            key = str(status)
            STATE["statuses"][key] = STATE["statuses"].get(key, 0) + 1
            if STATE["first"] is None:
                STATE["first"] = now
            STATE["last"] = now

    def send(self, status, body=b"", ctype="application/json", extra=(), counted=True):
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        head = ["HTTP/1.1 %d X" % status, "Content-Type: " + ctype, "Content-Length: %d" % len(body)]
        head += ["%s: %s" % kv for kv in extra]
        if not self.keep:
            head.append("Connection: close")
        self.done_in_flight()
        self.count(status, counted)  # before the bytes go: the client may read the stats at once
        self.wfile.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
        return status

    def start_chunked(self, status, ctype):
        self.wfile.write(("HTTP/1.1 %d X\r\nContent-Type: %s\r\nTransfer-Encoding: chunked\r\n\r\n"
                          % (status, ctype)).encode())

    def chunk(self, data):
        if isinstance(data, str):
            data = data.encode()
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def end_chunked(self, status):
        self.done_in_flight()
        self.count(status)
        self.wfile.write(b"0\r\n\r\n")
        return status

    # ---- routes ------------------------------------------------------------------------

    def route(self, method, target, headers, body, arrived):
        url = urlsplit(target)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path
        if path == "/_control":
            SETTINGS.update(json.loads(body or b"{}"))
            with LOCK:
                STATE["tokens"] = None
            return self.send(200, SETTINGS, counted=False)
        if path == "/_stats":
            with LOCK:
                s = dict(STATE, flaky=None, tokens=None, refill_at=None, rule_hits=None, window=None,
                         admitted=None)
            if s["first"] is not None and s["last"] > s["first"]:
                s["rate"] = (s["requests"] - 1) / (s["last"] - s["first"])
            return self.send(200, s, counted=False)
        if path == "/_reset":
            with LOCK:
                # Requests in flight (this one too) are still counted out when they end.
                in_flight = STATE["in_flight"]
                reset_state()
                STATE["in_flight"] = in_flight
            return self.send(200, {"ok": True}, counted=False)
        if not take_window(arrived) or not take_quota():
            return self.send(429, {"error": {"message": "quota exceeded", "type": "rate_limit"}},
                             extra=[("Retry-After", "1")])
        if SETTINGS["latency_ms"] and path in ("/v1/chat/completions", "/echo"):
            time.sleep(SETTINGS["latency_ms"] / 1000.0)
        if path == "/redirect":
            with LOCK:
                seen = STATE["flaky"].get(q.get("key"), 0)
                STATE["flaky"][q.get("key")] = seen + 1
            if "times" not in q or seen < int(q["times"]):
                return self.send(int(q.get("status", "302")), "", extra=[("Location", q.get("to", "/echo"))])
            path = "/echo"
        if path == "/v1/chat/completions":
            return self.chat(headers, body)
        if path == "/echo":
            try:
                parsed = json.loads(body) if body else None
            except ValueError:
                parsed = None
            return self.send(int(q.get("status", "200")), {"method": method, "path": path, "query": q,
                                                            "headers": headers,
                                                            "body": body.decode("utf-8", "replace"),
                                                            "json": parsed})
        if path.startswith("/status/"):
            extra = [("Retry-After", q["retry_after"])] if "retry_after" in q else []
            return self.send(int(path[8:]), q.get("body", '{"error": "as asked"}'), extra=extra)
        if path == "/flaky":
            key, fail = q.get("key", ""), int(q.get("fail", "1"))
            with LOCK:
                seen = STATE["flaky"].get(key, 0)
                STATE["flaky"][key] = seen + 1
            if seen < fail:
                extra = []
                if "retry_after" in q:
                    extra.append(("Retry-After", q["retry_after"]))
                if "retry_date" in q:
                    extra.append(("Retry-After", email.utils.formatdate(time.time() + float(q["retry_date"]),
                                                                        usegmt=True)))
                return self.send(int(q.get("status", "503")), {"error": "try again"}, extra=extra)
            return self.send(200, {"ok": True, "attempt": seen + 1})
        if path == "/slow":
            time.sleep(int(q.get("ms", "1000")) / 1000.0)
            return self.send(200, {"ok": True})
        if path == "/slow_body":
            self.wfile.write(b"HTTP/1.1 200 X\r\nContent-Type: text/plain\r\nContent-Length: 100\r\n\r\n" + b"a" * 10)
            self.wfile.flush()
            time.sleep(int(q.get("ms", "5000")) / 1000.0)
            self.wfile.write(b"b" * 90)
            self.count(200)
            return 200
        if path == "/malformed":
            return self.send(200, '{"choices": [{"message": {"content": "cut')
        if path == "/close_mid":
            self.wfile.write(b"HTTP/1.1 200 X\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n"
                             + b"x" * 100)
            self.wfile.flush()
            self.count(200)
            self.close_now()
            return None
        if path == "/sse_close":
            self.start_chunked(200, "text/event-stream")
            self.chunk('data: {"n": 1}\n\n')
            self.chunk('data: {"n": 2}\n\n')
            self.count(200)
            self.close_now()
            return None
        if path == "/redirect_loop":
            return self.send(302, "", extra=[("Location", "/redirect_loop")])
        if path == "/big":
            n = int(q.get("bytes", "1000000"))
            piece = b"0" * 65536
            if q.get("declare") == "1":
                self.wfile.write(b"HTTP/1.1 200 X\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n\r\n" % n)
                sent = 0
                while sent < n:
                    part = piece[:min(len(piece), n - sent)]
                    self.wfile.write(part)
                    sent += len(part)
                self.count(200)
                return 200
            self.start_chunked(200, "text/plain")
            sent = 0
            while sent < n:
                part = piece[:min(len(piece), n - sent)]
                self.chunk(part)
                sent += len(part)
            return self.end_chunked(200)
        if path == "/big_header":
            return self.send(200, {"ok": True}, extra=[("X-Big", "a" * int(q.get("bytes", "200000")))])
        if path == "/sse_raw":
            # Line ends of every kind, a comment, a multi-line data field and an event with no
            # data, cut into pieces at awkward places (inside "\r\n", inside a field name).
            text = (": comment\r\ndata: one\r\n\r\nevent: two\rdata: a\rdata: b\r\rid: 7\n"
                    "event: empty\n\ndata:three\n\n")
            self.start_chunked(200, "text/event-stream")
            for i in range(0, len(text), 5):
                self.chunk(text[i:i + 5])
            return self.end_chunked(200)
        if path == "/stream":
            self.start_chunked(200, "text/event-stream")
            for i in range(int(q.get("n", "3"))):
                if i and int(q.get("delay_ms", "0")):
                    time.sleep(int(q["delay_ms"]) / 1000.0)
                self.chunk("event: tick\nid: %d\ndata: {\"n\": %d}\n\n" % (i + 1, i + 1))
            return self.end_chunked(200)
        return self.send(404, {"error": "no such path: " + path})

    def close_now(self):
        self.wfile.flush()
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.keep = False

    def chat_rule(self, text):
        """The first of SETTINGS["chat_rules"] whose match is in text and that still applies."""
        for i, rule in enumerate(SETTINGS.get("chat_rules") or []):
            if rule.get("match", "") not in text:
                continue
            with LOCK:
                seen = STATE["rule_hits"].get(i, 0)
                STATE["rule_hits"][i] = seen + 1
            if "status" in rule and seen >= rule.get("times", float("inf")):
                continue
            return rule
        return None

    def chat(self, headers, body):
        if API_KEY is not None and headers.get("authorization") != "Bearer " + API_KEY:
            with LOCK:
                STATE["auth_failures"] += 1
            return self.send(401, {"error": {"message": "invalid api key", "type": "auth"}})
        try:
            req = json.loads(body)
            messages = req["messages"]
        except (ValueError, KeyError, TypeError):
            return self.send(400, {"error": {"message": "body must be JSON with messages"}})
        model = req.get("model") or "mock-model"
        if model.startswith("supervisor-"):
            return self.supervise(model, messages, body)
        last = messages[-1] if messages else {}
        rule = self.chat_rule(str(last.get("content")))
        if rule and "status" in rule:
            extra = [("Retry-After", str(rule["retry_after"]))] if "retry_after" in rule else []
            message = "as the rule says"
            if rule.get("echo_headers"):  # a server that quotes the request (and its key) back
                message += "; your headers: " + json.dumps(headers)
            return self.send(int(rule["status"]), {"error": {"message": message}}, extra=extra)
        prompt = sum(words(m.get("content")) for m in messages if isinstance(m, dict)) or 1
        message = {"role": "assistant"}
        tools = req.get("tools")
        if tools and last.get("role") != "tool":
            fn = tools[0].get("function", {})
            params = fn.get("parameters", {})
            arg = (params.get("required") or list(params.get("properties", {})) or ["input"])[0]
            user = next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), "")
            message.update(content=None, tool_calls=[{"id": "call_1", "type": "function", "function": {
                "name": fn.get("name", "tool"), "arguments": json.dumps({arg: user})}}])
            finish, content = "tool_calls", ""
        elif last.get("role") == "tool":
            content = "Using the tool's answer: " + str(last.get("content"))
            finish = "stop"
        elif rule and "content" in rule:
            content, finish = rule["content"], "stop"
        else:
            content = "echo: " + str(last.get("content"))
            finish = "stop"
        if "content" not in message:
            message["content"] = content
        usage = {"prompt_tokens": prompt, "completion_tokens": max(1, words(content)),
                 "total_tokens": prompt + max(1, words(content))}
        if not req.get("stream"):
            return self.send(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": model,
                                   "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                                   "usage": usage})
        self.start_chunked(200, "text/event-stream")
        base = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": model}
        pieces = [w + " " for w in content.split()] or [""]
        for i, piece in enumerate(pieces):
            if i and SETTINGS["stream_delay_ms"]:
                time.sleep(SETTINGS["stream_delay_ms"] / 1000.0)
            delta = {"content": piece} if i else {"role": "assistant", "content": piece}
            self.chunk("data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": delta,
                                                                   "finish_reason": None}])) + "\n\n")
        self.chunk("data: " + json.dumps(dict(base, choices=[{"index": 0, "delta": {},
                                                               "finish_reason": finish}])) + "\n\n")
        if (req.get("stream_options") or {}).get("include_usage"):
            self.chunk("data: " + json.dumps(dict(base, choices=[], usage=usage)) + "\n\n")
        self.chunk("data: [DONE]\n\n")
        return self.end_chunked(200)


    def supervise(self, model, messages, body):
        """A supervisor's decision, by model name:
          supervisor-N          continue while the transcript has fewer than N assistant
                                replies ("follow-up K"), then terminate (goal_met, closing
                                "Thanks!"); the JSON sits between two sentences of prose
          supervisor-garbage    prose with no JSON in it
          supervisor-nodecision a JSON object without a valid decision
          supervisor-429        always 429 (retry-after-ms: 10)
          supervisor-flaky429   429 the first time a request body is seen, then as supervisor-2
        The last request's messages are kept in /_stats as last_supervisor."""
        with LOCK:
            STATE["last_supervisor"] = messages
        kind = model[len("supervisor-"):]
        if kind == "429":
            return self.send(429, {"error": {"message": "slow down"}}, extra=[("retry-after-ms", "10")])
        if kind == "flaky429":
            with LOCK:
                seen = STATE["flaky"].get(body, 0)
                STATE["flaky"][body] = seen + 1
            if not seen:
                return self.send(429, {"error": {"message": "slow down"}}, extra=[("retry-after-ms", "10")])
            kind = "2"
        prompt = str(messages[-1].get("content", "")) if messages else ""
        replies = sum(1 for line in prompt.split("\n") if line.split(". ", 1)[-1].startswith("Assistant:")
                      and line.split(".", 1)[0].isdigit())
        if kind == "garbage":
            content = "I think the user would keep going with another question."
        elif kind == "nodecision":
            content = json.dumps({"decision": "maybe", "next_user_message": "?"})
        elif replies < int(kind):
            content = "Here is my decision: " + json.dumps({
                "decision": "continue", "next_user_message": "follow-up %d" % replies,
                "termination_reason": None, "closing_user_message": None}) + " Hope that {helps}."
        else:
            content = "Decision: " + json.dumps({"decision": "terminate", "termination_reason": "goal_met",
                                                 "closing_user_message": "Thanks!"})
        usage = {"prompt_tokens": words(prompt) or 1, "completion_tokens": 10, "total_tokens": (words(prompt) or 1) + 10}
        return self.send(200, {"id": "chatcmpl-s", "object": "chat.completion", "model": model,
                               "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                            "finish_reason": "stop"}], "usage": usage})


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256
    accepted = {}  # id(connection) -> when it was accepted (its first request's arrival)

    def process_request(self, request, client_address):
        self.accepted[id(request)] = time.monotonic()
        super().process_request(request, client_address)


def main():
    global API_KEY
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    ap.add_argument("--latency-ms", type=float, default=0)
    ap.add_argument("--quota", type=float, default=0)
    ap.add_argument("--api-key")
    args = ap.parse_args()
    API_KEY = args.api_key
    SETTINGS.update(latency_ms=args.latency_ms, quota=args.quota)
    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
