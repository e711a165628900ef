"""Token counts of a Python agent's model calls (@fluxloop.prompt, fluxloop.record_usage) and
what record_call_args says when it records nothing. spec/python_bridge_spec.lua runs them."""
import asyncio
import json
import os
import sys
import unittest
import warnings

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fluxloop  # noqa: E402

RESPONSE = {"model": "small-1", "choices": [{"message": {"content": "hi"}}],
            "usage": {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}}


class FakeWorker:
    run_id = 3

    def __init__(self):
        self.sent = []

    def send(self, msg):
        self.sent.append(json.loads(json.dumps(msg)))


class Usage(unittest.TestCase):
    def setUp(self):
        self.worker = FakeWorker()
        fluxloop._runtime.begin(self.worker)

    def tearDown(self):
        fluxloop._runtime.end()

    def ends(self):
        return [m for m in self.worker.sent if m["type"] == "span_end"]

    def test_prompt_returning_the_response_copies_its_usage(self):
        @fluxloop.prompt(model="small-1")
        def ask(q):
            return RESPONSE

        ask("q")
        self.assertEqual(self.ends()[0]["usage"], RESPONSE["usage"])
        self.assertEqual(self.ends()[0]["model"], "small-1")

    def test_record_usage_inside_a_prompt_that_returns_text(self):
        @fluxloop.prompt()
        def ask(q):
            fluxloop.record_usage(RESPONSE)
            fluxloop.record_usage(prompt_tokens=1, completion_tokens=1)
            return RESPONSE["choices"][0]["message"]["content"]

        self.assertEqual(ask("q"), "hi")
        end = self.ends()[0]
        self.assertEqual(end["usage"], {"prompt_tokens": 13, "completion_tokens": 4, "total_tokens": 15})
        self.assertEqual(end["model"], "small-1")
        self.assertEqual([m["type"] for m in self.worker.sent], ["span_start", "span_end"])

    def test_record_usage_outside_a_prompt_is_a_generation_of_its_own(self):
        @fluxloop.agent()
        def run(q):
            self.assertTrue(fluxloop.record_usage({"input_tokens": 7, "output_tokens": 2}, model="claude-x"))
            return "done"

        run("q")
        obs = [m for m in self.worker.sent if m["type"] == "observation"]
        self.assertEqual(obs[0]["observation"], {"type": "generation", "name": "model call", "model": "claude-x",
                                                 "usage": {"input_tokens": 7, "output_tokens": 2}})
        self.assertNotIn("usage", self.ends()[0])

    def test_concurrent_async_prompts_keep_their_own_counts(self):
        @fluxloop.prompt()
        async def ask(n):
            await asyncio.sleep(0.01 * (3 - n))
            fluxloop.record_usage(prompt_tokens=n, completion_tokens=n)
            return str(n)

        async def both():
            return await asyncio.gather(ask(1), ask(2))

        asyncio.run(both())
        starts = {m["span"]: m["input"]["n"] for m in self.worker.sent if m["type"] == "span_start"}
        for end in self.ends():
            n = starts[end["span"]]
            self.assertEqual(end["usage"], {"prompt_tokens": n, "completion_tokens": n})

    def test_no_counts_warns_and_records_nothing(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            self.assertFalse(fluxloop.record_usage({"choices": []}))
        self.assertIn("no token counts", str(caught[0].message))
        self.assertEqual(self.worker.sent, [])

    def test_outside_a_run_it_does_nothing(self):
        fluxloop._runtime.end()
        self.assertFalse(fluxloop.record_usage(RESPONSE))


class RecordingOff(unittest.TestCase):
    def setUp(self):
        self.saved = {k: os.environ.pop(k) for k in ("FLUXLOOP_RECORD_ARGS", "FLUXLOOP_RECORDING_FILE")
                      if k in os.environ}

    def tearDown(self):
        os.environ.pop("FLUXLOOP_RECORD_ARGS", None)
        os.environ.update(self.saved)

    def record(self):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = fluxloop.record_call_args("a.b:run", {"x": 1})
        return result, [str(w.message) for w in caught]

    def test_unset_says_why_nothing_was_recorded(self):
        result, said = self.record()
        self.assertFalse(result)
        self.assertEqual(len(said), 1)
        self.assertIn("FLUXLOOP_RECORD_ARGS is not set", said[0])
        self.assertIn("FLUXLOOP_RECORDING_FILE=", said[0])

    def test_unset_inside_a_run_is_quiet(self):
        fluxloop._runtime.begin(FakeWorker())
        try:
            self.assertEqual(self.record(), (False, []))
        finally:
            fluxloop._runtime.end()

    def test_turned_off_on_purpose_is_quiet(self):
        os.environ["FLUXLOOP_RECORD_ARGS"] = "0"
        self.assertEqual(self.record(), (False, []))

    def test_a_value_that_is_neither_yes_nor_no_says_so(self):
        os.environ["FLUXLOOP_RECORD_ARGS"] = "maybe"
        result, said = self.record()
        self.assertFalse(result)
        self.assertIn("FLUXLOOP_RECORD_ARGS='maybe' is neither", said[0])


if __name__ == "__main__":
    unittest.main()
