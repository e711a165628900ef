#!/usr/bin/env python3
"""mock_judge.py - spec support: an OpenAI-style chat endpoint on 127.0.0.1 that plays an
LLM judge. POST /v1/chat/completions reads the agent's answer out of the judge prompt and
passes it when it contains the word in `pass_word` (default "refund"), with a score of 0.9 or
0.1 and a reason. /_control changes the behaviour:
  mode: "ok" (a JSON verdict), "prose" (the verdict inside prose and a ```json fence),
        "garbage" (no JSON in the reply), "500" (HTTP 500), "not_chat" (200 with no choices),
        "echo_key" (401 quoting the Authorization header it got)
  fail_first: N answers 429 with Retry-After: 0 before the normal answer (per prompt)
  latency_ms: sleep before answering
  pass_word: the word that makes an answer pass
GET /_stats -> {"requests": n, "statuses": {...}, "max_in_flight": n, "auth": [headers seen]};
POST /_reset clears them (and which prompts were seen).
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LOCK = threading.Lock()
SETTINGS = {"mode": "ok", "fail_first": 0, "latency_ms": 0, "pass_word": "refund"}
STATE = {"requests": 0, "statuses": {}, "in_flight": 0, "max_in_flight": 0, "auth": [], "seen": {}}


def answer_of(prompt):
    marker = "The agent's answer:\n"
    at = prompt.find(marker)
    if at < 0:
        return ""
    rest = prompt[at + len(marker):]
    end = rest.find("\n\nDoes the answer meet the rubric?")
    return rest if end < 0 else rest[:end]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go as two writes: no 40 ms wait between

    def log_message(self, *args):
        pass

    def send(self, status, body, extra=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        with LOCK:  # counted before the bytes go: the client may read the stats at once
            STATE["statuses"][str(status)] = STATE["statuses"].get(str(status), 0) + 1
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in extra:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/_stats":
            with LOCK:
                snapshot = json.dumps(dict(STATE, seen=len(STATE["seen"])))
            return self.send(200, snapshot.encode())
        self.send(404, {"error": "not found"})

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.path == "/_control":
            SETTINGS.update(json.loads(body))
            return self.send(200, SETTINGS)
        if self.path == "/_reset":
            with LOCK:
                STATE.update(requests=0, statuses={}, max_in_flight=0, auth=[], seen={})
            return self.send(200, {"reset": True})
        if self.path != "/v1/chat/completions":
            return self.send(404, {"error": "not found"})
        with LOCK:
            STATE["requests"] += 1
            STATE["in_flight"] += 1
            STATE["max_in_flight"] = max(STATE["max_in_flight"], STATE["in_flight"])
            STATE["auth"].append(self.headers.get("Authorization"))
        try:
            self.chat(body)
        finally:
            with LOCK:
                STATE["in_flight"] -= 1

    def chat(self, body):
        if SETTINGS["latency_ms"]:
            time.sleep(SETTINGS["latency_ms"] / 1000.0)
        req = json.loads(body)
        prompt = req["messages"][-1]["content"]
        with LOCK:
            tries = STATE["seen"].get(prompt, 0)
            STATE["seen"][prompt] = tries + 1
        if tries < SETTINGS["fail_first"]:
            return self.send(429, {"error": {"message": "slow down"}}, [("Retry-After", "0")])
        mode = SETTINGS["mode"]
        if mode == "500":
            return self.send(500, {"error": {"message": "the judge is down"}})
        if mode == "echo_key":  # a careless server that quotes the request's key in its error
            return self.send(401, {"error": {"message": "bad key: %s" % self.headers.get("Authorization")}})
        if mode == "not_chat":
            return self.send(200, {"object": "error", "detail": "no choices here"})
        answer = answer_of(prompt)
        ok = SETTINGS["pass_word"] in answer
        verdict = {"pass": ok, "score": 0.9 if ok else 0.1,
                   "reason": ("it mentions %s" if ok else "it never mentions %s") % SETTINGS["pass_word"]}
        if mode == "garbage":
            content = "I think it is fine, more or less."
        elif mode == "prose":
            content = "Here is my verdict:\n```json\n" + json.dumps(verdict) + "\n```\nThanks."
        else:
            content = json.dumps(verdict)
        usage = {"prompt_tokens": 50, "completion_tokens": 12, "total_tokens": 62}
        self.send(200, {"id": "judge-1", "object": "chat.completion", "model": req.get("model"),
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                                     "finish_reason": "stop"}], "usage": usage})


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 256  # 16 workers connect at once: a short backlog drops SYNs (1 s retries)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--lifetime", type=float, default=600)
    args, _ = ap.parse_known_args()
    server = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % server.server_address[1])
    os.rename(tmp, args.port_file)
    threading.Timer(args.lifetime, lambda: os._exit(0)).start()
    server.serve_forever(poll_interval=0.5)


if __name__ == "__main__":
    main()
