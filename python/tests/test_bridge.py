"""Tests of the Python bridge itself (stdlib unittest): argument binding, chunk joining,
the decorators' observations and recordings. spec/python_bridge_spec.lua runs them."""
import asyncio
import json
import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fluxloop  # noqa: E402
import fluxloop_worker as bridge  # noqa: E402


class FakeWorker:
    run_id = 7

    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(json.loads(json.dumps(msg)))


class Binding(unittest.TestCase):
    def test_a_grader_takes_the_facts_by_name(self):
        def grade(output, expected, trace):
            return None
        named = {"output": "4", "input_text": "2+2", "trace": {"trace_id": "trace_001"}}
        args, kwargs = bridge.bind(grade, "4", {"bind": named})
        self.assertEqual((args, kwargs), ([], {"output": "4", "expected": None, "trace": {"trace_id": "trace_001"}}))

    def test_a_grader_whose_first_parameter_is_no_fact_gets_the_output_there(self):
        def grade(answer, input_text):
            return None
        args, kwargs = bridge.bind(grade, "4", {"bind": {"output": "4", "input_text": "2+2"}})
        self.assertEqual((args, kwargs), (["4"], {"input_text": "2+2"}))

    def test_input_goes_to_a_parameter_named_like_an_input(self):
        def run(config, user_message, iteration=None):
            return None
        args, kwargs = bridge.bind(run, "hi", {"iteration": 2})
        self.assertEqual(kwargs, {"user_message": "hi", "iteration": 2})

    def test_else_to_the_first_parameter(self):
        def run(q):
            return None
        self.assertEqual(bridge.bind(run, "hi", {})[1], {"q": "hi"})

    def test_persona_text_from_persona_info(self):
        def run(input, persona, persona_text):
            return None
        kwargs = bridge.bind(run, "x", {"persona": "p", "persona_info": {"description": "new user"}})[1]
        self.assertEqual(kwargs, {"input": "x", "persona": "p", "persona_text": "new user"})

    def test_replay_passes_the_recorded_kwargs(self):
        def run(data, user=None):
            return None
        self.assertEqual(bridge.bind(run, "x", {"args": {"data": {"c": 1}, "user": "ann"}}),
                         ([], {"data": {"c": 1}, "user": "ann"}))

    def test_a_conversation_binds_its_state_turns_and_metadata_by_name(self):
        conv = [{"turn_index": 1, "role": "user", "content": "hi", "source": "input"},
                {"turn_index": 1, "role": "assistant", "content": "hello", "source": "agent"},
                {"turn_index": 2, "role": "user", "content": "and?", "source": "supervisor"}]
        turns = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
                 {"role": "user", "content": "and?"}]

        def run(message, messages, conversation_state, history=None, iteration=None):
            return None
        kwargs = bridge.bind(run, "and?", {"iteration": 1, "persona": "p", "conversation": conv})[1]
        self.assertEqual(kwargs["message"], "and?")
        self.assertEqual(kwargs["messages"], turns)
        self.assertNotIn("history", kwargs)  # one name per group: messages came first
        self.assertEqual(kwargs["conversation_state"]["turns"], turns)
        self.assertEqual(kwargs["conversation_state"]["metadata"]["persona"], "p")
        self.assertEqual(kwargs["iteration"], 1)

        def run2(text, history):
            return None
        self.assertEqual(bridge.bind(run2, "x", {"conversation": conv})[1], {"text": "x", "history": turns})
        # outside a conversation nothing is bound to those names
        self.assertEqual(bridge.bind(run2, "x", {})[1], {"text": "x"})

    def test_chunks(self):
        self.assertEqual(bridge.join_chunks(["a", "b"]), "ab")
        self.assertEqual(bridge.join_chunks([{"a": 1}]), [{"a": 1}])


class Decorators(unittest.TestCase):
    def setUp(self):
        self.worker = FakeWorker()
        fluxloop._runtime.begin(self.worker)

    def tearDown(self):
        fluxloop._runtime.end()

    def test_nested_calls_make_nested_spans(self):
        @fluxloop.tool(name="look")
        def look(q):
            return q.upper()

        @fluxloop.agent()
        def run(q):
            return look(q)

        self.assertEqual(run("x"), "X")
        kinds = [(m["type"], m.get("kind"), m["span"]) for m in self.worker.sent]
        self.assertEqual(kinds, [("span_start", "agent", 1), ("span_start", "tool", 2),
                                 ("span_end", None, 2), ("span_end", None, 1)])
        self.assertEqual(self.worker.sent[0]["input"], {"q": "x"})
        self.assertEqual(self.worker.sent[3]["output"], "X")

    def test_async_and_errors(self):
        @fluxloop.prompt
        async def llm(prompt):
            raise ValueError("quota")

        with self.assertRaises(ValueError):
            asyncio.run(llm("p"))
        self.assertEqual(self.worker.sent[-1]["error"], "ValueError: quota")

    def test_outside_a_run_the_function_just_runs(self):
        fluxloop._runtime.end()

        @fluxloop.trace()
        def f(x):
            return x + 1
        self.assertEqual(f(1), 2)
        self.assertEqual(self.worker.sent, [])


class Runs(unittest.TestCase):
    def tearDown(self):
        fluxloop._runtime.end()

    def test_a_thread_records_into_the_run_that_started_it_only(self):
        import threading
        bridge.carry_runs_into_threads()
        worker = FakeWorker()

        @fluxloop.tool()
        def work(n):
            return n
        go, done = threading.Event(), threading.Event()

        def late():
            go.wait()
            work("late")
            done.set()
        fluxloop._runtime.begin(worker)
        threading.Thread(target=late).start()
        fluxloop._runtime.end()
        later = FakeWorker()
        later.run_id = 8
        fluxloop._runtime.begin(later)  # the next run: the first run's thread is not part of it
        go.set()
        done.wait(5)
        work("own")
        self.assertEqual(worker.sent, [])
        self.assertEqual([m["input"] for m in later.sent if m["type"] == "span_start"], [{"n": "own"}])

    def test_integers_past_64_bits_become_strings(self):
        value = {"a": [2 ** 64, -2 ** 63 - 1, 2 ** 63 - 1, True], "b": 1.5, "c": "1234567890123456789012"}
        self.assertEqual(json.loads(bridge.to_json(value)),
                         {"a": ["18446744073709551616", "-9223372036854775809", 2 ** 63 - 1, True], "b": 1.5,
                          "c": "1234567890123456789012"})
        self.assertEqual(bridge.to_json(10 ** 400), '"1' + "0" * 400 + '"')

    def test_a_traceback_starts_in_the_agent(self):
        def agent(input):
            raise KeyError(input)
        ns = {}  # the catch in a function of the bridge's file, as in a worker
        exec(compile("def outer(fn):\n    try:\n        Worker(None, None).call(fn, 'k', {})\n"
                     "    except KeyError as e:\n        return agent_traceback(e)\n", bridge.__file__, "exec"),
             {"Worker": bridge.Worker, "agent_traceback": bridge.agent_traceback}, ns)
        text = ns["outer"](agent)
        self.assertNotIn("fluxloop_worker", text)
        self.assertRegex(text, r'^Traceback \(most recent call last\):\n  File "[^"]*test_bridge.py", line \d+, in agent\n')


class Recording(unittest.TestCase):
    def test_record_call_args_masks_secrets(self):
        with tempfile.TemporaryDirectory() as d:
            path = os.path.join(d, "rec", "args.jsonl")
            os.environ.update({"FLUXLOOP_RECORD_ARGS": "1", "FLUXLOOP_RECORDING_FILE": path})
            try:
                self.assertTrue(fluxloop.record_call_args("a.b:run", {"data": {"content": "hi"}, "api_key": "sk-x",
                                                                       "send": print}))
            finally:
                del os.environ["FLUXLOOP_RECORD_ARGS"], os.environ["FLUXLOOP_RECORDING_FILE"]
            line = json.loads(open(path).read())
            self.assertEqual(line["_version"], "1")
            self.assertEqual(line["iteration"], 0)
            self.assertEqual(line["kwargs"]["api_key"], "***")
            self.assertEqual(line["kwargs"]["send"], "<callable:print>")
            self.assertTrue(line["timestamp"].endswith("Z"))


if __name__ == "__main__":
    unittest.main()
