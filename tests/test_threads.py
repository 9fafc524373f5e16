"""One Model shared by threads: calls are serialised, so every thread gets the single-thread answer,
with the model's own thread pool or without, resizing or not; and the C runtime refuses (never
corrupts, never hangs on) a second run entering a model another thread is running."""
import threading

import numpy as np
import pytest
import torch

import sparselite
from helpers import tiny_encoder
from sparselite.converters import from_torch, prune_groups

THREADS, CALLS = 8, 25


def run_in_threads(work, timeout=300):
    """Runs work(i) on THREADS threads; returns their results, failing on an exception or a hang."""
    results, errors = [None] * THREADS, []

    def target(i):
        try:
            results[i] = work(i)
        except Exception as e:  # noqa: BLE001 - reported below with its thread
            errors.append((i, e))

    threads = [threading.Thread(target=target, args=(i,)) for i in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)
    assert not any(t.is_alive() for t in threads), "a thread hung"
    assert not errors, errors
    return results


@pytest.fixture(scope="module")
def convnet():
    net = torch.nn.Sequential(torch.nn.Conv2d(3, 16, 3, 2, 1), torch.nn.ReLU6(), torch.nn.Conv2d(16, 32, 1),
                              torch.nn.Conv2d(32, 32, 3, 1, 1, groups=32), torch.nn.Hardswish(),
                              torch.nn.Flatten(), torch.nn.Linear(32 * 16 * 16, 10)).eval()
    prune_groups(net, 0.3, group=4)
    return from_torch(net, torch.zeros(1, 3, 32, 32)).to_bytes()


@pytest.mark.parametrize("num_threads", [1, 2])
def test_shared_convnet_gives_single_thread_answers(convnet, num_threads):
    rng = np.random.default_rng(0)
    xs = [rng.standard_normal((1, 3, 32, 32)).astype(np.float32) for _ in range(THREADS)]
    want = [sparselite.load(convnet).run(x)[0] for x in xs]
    model = sparselite.load(convnet, num_threads=num_threads)

    def work(i):
        return [model.run(xs[i])[0] for _ in range(CALLS)]

    for i, outs in enumerate(run_in_threads(work)):
        assert all(np.array_equal(y, want[i]) for y in outs)


@pytest.mark.parametrize("num_threads", [1, 2])
def test_shared_encoder_resized_by_every_thread(num_threads):
    """Each thread runs its own sequence length, so every call resizes the shared model first."""
    _, converted = tiny_encoder()
    data = converted.to_bytes()
    rng = np.random.default_rng(1)
    feeds = [{"ids": rng.integers(0, 40, (2, 3 + i)), "mask": np.ones((2, 3 + i), np.int64)} for i in range(THREADS)]
    want = [sparselite.load(data).run(f) for f in feeds]
    model = sparselite.load(data, num_threads=num_threads)

    def work(i):
        return [model.run(feeds[i]) for _ in range(CALLS)]

    for i, outs in enumerate(run_in_threads(work)):
        for out in outs:
            assert all(np.array_equal(a, b) for a, b in zip(out, want[i]))


def test_native_runs_entering_together_are_refused_with_busy(convnet):
    """Below the Python lock: concurrent sl_model_run calls on one model either run or raise the 'another
    thread' error; none hangs, and the model still gives the right answer afterwards."""
    x = np.random.default_rng(2).standard_normal((1, 3, 32, 32)).astype(np.float32)
    model = sparselite.load(convnet, num_threads=2)
    (want,) = model.run(x)
    refused = []

    def work(_):
        for _ in range(2000):
            if len(refused) > 20:
                return
            try:
                model._backend.run()
            except sparselite.SparseliteError as e:
                assert "another thread" in str(e)
                refused.append(e)

    run_in_threads(work)
    assert refused, "8 threads x 2000 runs never overlapped"
    assert np.array_equal(model.run(x)[0], want)
