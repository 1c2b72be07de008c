"""The batch scheduler's rules (TF Serving's BatchingSession), on threads calling it as request threads
do; the batched function is a numpy function that records what it was given. Batches close when full
(a 60 s timeout never fires here) or at once (timeout 0 with one request), so nothing depends on timing.
The server-level behaviour is tested in tests/test_serving_features.py."""
import threading

import grpc
import numpy as np
import pytest

from serving.batching import BatchingParameters, BatchScheduler
from serving.errors import ServingError

WAIT = 60_000_000  # microseconds: batches close when full


class Recorder:
    def __init__(self, fn=lambda x: x):
        self.batches, self.fn = [], fn

    def __call__(self, feed):
        self.batches.append({k: v.copy() for k, v in feed.items()})
        return {"y": self.fn(feed["x"])}


def run_together(scheduler, fn, inputs):
    results = [None] * len(inputs)

    def one(i):
        try:
            results[i] = scheduler.run("sig", fn, {"x": inputs[i]})["y"]
        except ServingError as e:
            results[i] = e

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    return results


def scheduler(**kw):
    return BatchScheduler(BatchingParameters(**kw), "m")


def test_equal_shapes_share_a_batch_and_different_shapes_are_kept_apart():
    s = scheduler(max_batch_size=2, batch_timeout_micros=WAIT, num_batch_threads=2)
    rec = Recorder(lambda x: x * 2)
    inputs = [np.full((1, 2, 3), i, np.float32) for i in range(2)] + [np.full((1, 4, 1), i, np.float32) for i in (2, 3)]
    results = run_together(s, rec, inputs)
    for x, y in zip(inputs, results, strict=True):
        np.testing.assert_array_equal(y, x * 2)
    assert sorted(b["x"].shape for b in rec.batches) == [(2, 2, 3), (2, 4, 1)]
    s.stop()


def test_allowed_batch_sizes_pad_with_the_first_row_and_outputs_are_split_back():
    s = scheduler(max_batch_size=4, allowed_batch_sizes=(2, 4), batch_timeout_micros=0, num_batch_threads=1)
    rec = Recorder(lambda x: x + 1)
    x = np.arange(3 * 2, dtype=np.float32).reshape(3, 2)
    (y,) = run_together(s, rec, [x])
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(rec.batches[0]["x"], np.concatenate([x, x[:1]]))  # padded to 4 rows
    s.stop()


def test_pad_variable_length_inputs_pads_with_the_first_value_and_does_not_crop():
    s = scheduler(max_batch_size=2, batch_timeout_micros=WAIT, num_batch_threads=1, pad_variable_length_inputs=True)
    rec = Recorder()
    a, b = np.full((1, 2, 3), 7, np.float32), np.full((1, 3, 2), 9, np.float32)
    ya, yb = run_together(s, rec, [a, b])
    assert rec.batches[0]["x"].shape == (2, 3, 3)
    assert ya.shape == yb.shape == (1, 3, 3)  # as in TF Serving: outputs keep the padded size
    np.testing.assert_array_equal(ya, np.full((1, 3, 3), 7))
    np.testing.assert_array_equal(yb, np.full((1, 3, 3), 9))
    s.stop()


def test_oversized_requests_full_queues_and_failing_batches_are_answered_as_tf_serving_does():
    entered, release = threading.Event(), threading.Event()

    def blocking(x):
        entered.set()
        assert release.wait(120)
        return x

    s = scheduler(max_batch_size=2, max_enqueued_batches=1, batch_timeout_micros=0, num_batch_threads=1)
    with pytest.raises(ServingError) as e:
        s.run("sig", Recorder(), {"x": np.zeros((3, 1))})
    assert e.value.code == grpc.StatusCode.INVALID_ARGUMENT
    assert "Task size 3 is larger than maximum input batch size 2" in e.value.message

    first = threading.Thread(target=s.run, args=("sig", Recorder(blocking), {"x": np.zeros((2, 1))}))
    first.start()
    assert entered.wait(120)  # the first batch is running; the next full one waits in the queue
    second = threading.Thread(target=s.run, args=("sig", Recorder(), {"x": np.zeros((2, 1))}))
    second.start()
    while True:  # the second batch is queued once the scheduler holds it (no timing: a condition)
        with s._cond:
            if s._closed:
                break
            s._cond.wait(1)
    with pytest.raises(ServingError) as e:
        s.run("sig", Recorder(), {"x": np.zeros((1, 1))})
    assert e.value.code == grpc.StatusCode.UNAVAILABLE and "queue" in e.value.message
    release.set()
    first.join(120)
    second.join(120)

    def failing(x):
        raise ServingError(grpc.StatusCode.INVALID_ARGUMENT, "bad pixel")

    s2 = scheduler(max_batch_size=2, batch_timeout_micros=WAIT, num_batch_threads=1)
    results = run_together(s2, Recorder(failing), [np.zeros((1, 1)), np.ones((1, 1))])
    assert all(isinstance(r, ServingError) and r.message == "bad pixel" for r in results)  # the whole batch
    s.stop()
    s2.stop()


def test_batching_parameters_file_follows_tf_serving_rules(tmp_path):
    f = tmp_path / "b.txt"
    f.write_text("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\nallowed_batch_sizes: 8\n")
    p = BatchingParameters.from_file(str(f))
    assert (p.max_batch_size, p.allowed_batch_sizes) == (8, (4, 8))
    assert (p.batch_timeout_micros, p.max_enqueued_batches) == (0, 10)  # TF Serving's defaults
    for text, fragment in (("max_batch_size { value: 8 }\nallowed_batch_sizes: 4\n", "end with max_batch_size"),
                           ("enable_large_batch_splitting { value: true }\n", "not supported"),
                           ("max_batch_size: 8\n", "max_batch_size")):
        f.write_text(text)
        with pytest.raises(Exception, match=fragment):
            BatchingParameters.from_file(str(f))
