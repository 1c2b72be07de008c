"""Server-side request batching as TF Serving does it with --enable_batching --batching_parameters_file.

TF Serving's BatchingSession and shared batch scheduler, reproduced for one loaded model version:
- requests to one signature queue together; a batch closes when its size (the sum of the requests'
  0th dimensions) reaches `max_batch_size`, or `batch_timeout_micros` after its first request (0: as
  soon as a batch thread is free); `num_batch_threads` threads run batches, oldest first;
- a request larger than `max_batch_size` is refused (INVALID_ARGUMENT, TF Serving's message), and one
  that finds `max_enqueued_batches` batches already queued is turned away (UNAVAILABLE);
- the inputs are concatenated along the 0th dimension and the outputs split back; with
  `allowed_batch_sizes` the batch is padded up to the next allowed size with copies of the last
  request's first row; with `pad_variable_length_inputs` every input is padded at the end of each
  dimension to the largest in the batch, with the tensor's first value (outputs are not cropped back);
- an error fails every request of the batch.
One difference, so that concurrent requests of different sizes never fail: without padding, only
requests whose inputs have equal shapes (beyond the 0th dimension) share a batch here. TF Serving puts
them in one batch and fails it (FAILED_PRECONDITION "Tensors with name ... from different tasks have
different shapes and padding is turned off"); this server logs that once per signature and counts it
(`gan_restore_batching_shape_splits_total`). Defaults of unset fields are TF Serving's.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import os
import threading
import time
from typing import Callable, Dict, List, Tuple

import grpc
import numpy as np

from serving.errors import ServingError, invalid
from serving.metrics import METRICS

log = logging.getLogger("serving.batching")

Outputs = Dict[str, np.ndarray]


@dataclasses.dataclass(frozen=True)
class BatchingParameters:
    max_batch_size: int = 1000
    batch_timeout_micros: int = 0
    max_enqueued_batches: int = 10
    num_batch_threads: int = os.cpu_count() or 1
    allowed_batch_sizes: Tuple[int, ...] = ()
    pad_variable_length_inputs: bool = False

    @classmethod
    def from_file(cls, path: str) -> BatchingParameters:
        """A TF Serving --batching_parameters_file (text BatchingParameters); ValueError where TF Serving
        would refuse it or this server cannot follow it."""
        from serving.tfs_protos import parse_text_file

        msg = parse_text_file(path, "BatchingParameters")
        if msg.HasField("enable_large_batch_splitting") and msg.enable_large_batch_splitting.value:
            raise ValueError(f"{path}: enable_large_batch_splitting is not supported by the local server")
        wrapped = {f: getattr(msg, f).value for f in ("max_batch_size", "batch_timeout_micros",
                                                      "max_enqueued_batches", "num_batch_threads")
                   if msg.HasField(f)}
        params = cls(**wrapped, allowed_batch_sizes=tuple(msg.allowed_batch_sizes),
                     pad_variable_length_inputs=msg.pad_variable_length_inputs)
        params.check(path)
        return params

    def check(self, where: str = "batching parameters") -> None:
        if min(self.max_batch_size, self.max_enqueued_batches, self.num_batch_threads) < 1:
            raise ValueError(f"{where}: max_batch_size, max_enqueued_batches and num_batch_threads must be >= 1")
        sizes = self.allowed_batch_sizes
        if sizes and (list(sizes) != sorted(set(sizes)) or sizes[-1] != self.max_batch_size):
            raise ValueError(f"{where}: allowed_batch_sizes must increase and end with max_batch_size "
                             f"({self.max_batch_size}); got {list(sizes)}")


class _Task:
    def __init__(self, inputs: Dict[str, np.ndarray], size: int):
        self.inputs, self.size = inputs, size
        self.done = threading.Event()
        self.outputs: Outputs | None = None
        self.error: Exception | None = None


class _Batch:
    def __init__(self, signature: str, shape_key, run: Callable[[Dict[str, np.ndarray]], Outputs], deadline: float):
        self.signature, self.shape_key, self.run, self.deadline = signature, shape_key, run, deadline
        self.tasks: List[_Task] = []
        self.size = 0


class BatchScheduler:
    """The batches of one model version; `run` blocks until the request's batch has run."""

    def __init__(self, params: BatchingParameters, model: str):
        self.params, self.model = params, model
        self._cond = threading.Condition()
        self._open: Dict[Tuple[str, object], _Batch] = {}
        self._closed: collections.deque = collections.deque()
        self._warned: set = set()
        self._stopping = False
        self._threads = [threading.Thread(target=self._work, name=f"batch-{model}-{i}", daemon=True)
                         for i in range(params.num_batch_threads)]
        for t in self._threads:
            t.start()

    def run(self, signature: str, fn: Callable[[Dict[str, np.ndarray]], Outputs],
            inputs: Dict[str, np.ndarray]) -> Outputs:
        sizes = {v.shape[0] if v.ndim else None for v in inputs.values()}
        if len(sizes) != 1 or None in sizes:
            raise invalid("with batching, every input must have the same 0th (batch) dimension size")
        size = sizes.pop()
        p = self.params
        if size > p.max_batch_size:
            raise invalid(f"Task size {size} is larger than maximum input batch size {p.max_batch_size}")
        shape_key = None if p.pad_variable_length_inputs else tuple(
            (k, v.shape[1:], v.dtype.str) for k, v in sorted(inputs.items()))
        task = _Task(inputs, size)
        with self._cond:
            alone = self._stopping  # the version is being unloaded: a request that still reached it runs alone
            if not alone:
                self._enqueue(task, signature, shape_key, fn)
        if alone:
            return fn(inputs)
        task.done.wait()
        if task.error is not None:
            raise task.error
        return task.outputs

    def _enqueue(self, task: _Task, signature: str, shape_key, fn) -> None:
        """With the lock held: into the open batch of its signature and shape (a new one if needed)."""
        p, size = self.params, task.size
        key = (signature, shape_key)
        batch = self._open.get(key)
        if batch is not None and batch.size + size > p.max_batch_size:
            self._close(key)
            batch = None
        if batch is None:
            queued = sum(1 for b in self._closed if b.signature == signature) + \
                sum(1 for k in self._open if k[0] == signature)
            if queued >= p.max_enqueued_batches:
                raise ServingError(grpc.StatusCode.UNAVAILABLE,
                                   "The batch scheduling queue to which this task was submitted is full")
            self._note_shape_split(signature, shape_key)
            batch = self._open[key] = _Batch(signature, shape_key, fn,
                                             time.monotonic() + p.batch_timeout_micros / 1e6)
        batch.tasks.append(task)
        batch.size += size
        if batch.size >= p.max_batch_size:
            self._close(key)
        self._cond.notify_all()

    def _note_shape_split(self, signature: str, shape_key) -> None:
        others = [k[1] for k in self._open if k[0] == signature and k[1] != shape_key]
        if shape_key is None or not others:
            return
        METRICS.batch_shape_splits.inc(self.model, signature)
        if signature not in self._warned:
            self._warned.add(signature)
            log.warning("model %s signature %s: requests with input shapes %s and %s are batched apart; TF Serving "
                        "would put them in one batch and fail it (padding is turned off)", self.model, signature,
                        _shapes(others[0]), _shapes(shape_key))

    def _close(self, key) -> None:
        self._closed.append(self._open.pop(key))

    def _next_batch(self) -> _Batch | None:
        """With the lock held: a closed batch, or an open one whose timeout has passed; waits for one."""
        while True:
            if self._closed:
                return self._closed.popleft()
            now = time.monotonic()
            due = min(self._open.items(), key=lambda kv: kv[1].deadline, default=None)
            if due is not None and (due[1].deadline <= now or self._stopping):
                self._close(due[0])
                continue
            if self._stopping and not self._open:
                return None
            self._cond.wait(None if due is None else due[1].deadline - now)

    def _work(self) -> None:
        while True:
            with self._cond:
                batch = self._next_batch()
            if batch is None:
                return
            self._process(batch)

    def _process(self, batch: _Batch) -> None:
        tasks, p = batch.tasks, self.params
        padded = next((s for s in p.allowed_batch_sizes if s >= batch.size), batch.size)
        try:
            merged = {name: _merge([t.inputs[name] for t in tasks], padded - batch.size,
                                   p.pad_variable_length_inputs) for name in tasks[0].inputs}
            METRICS.batch_size.observe(padded, self.model, batch.signature)
            outputs = batch.run(merged)
            bounds = np.cumsum([0] + [t.size for t in tasks])
            for value in outputs.values():
                if value.ndim == 0 or value.shape[0] != padded:
                    raise ServingError(grpc.StatusCode.FAILED_PRECONDITION,
                                       "Batched output tensor's 0th dimension does not equal the sum of the 0th "
                                       "dimension sizes of the input tensors")
            for i, t in enumerate(tasks):
                t.outputs = {k: v[bounds[i]:bounds[i + 1]] for k, v in outputs.items()}
        except Exception as e:  # the whole batch fails together, as in TF Serving
            for t in tasks:
                t.error = e
        for t in tasks:
            t.done.set()

    def stop(self) -> None:
        """Run what is queued at once (open batches too), then end the batch threads."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        for t in self._threads:
            t.join()


def _merge(arrays: List[np.ndarray], pad_rows: int, pad_lengths: bool) -> np.ndarray:
    if pad_lengths and len({a.shape for a in arrays}) > 1:
        most = np.max([a.shape for a in arrays], axis=0)
        arrays = [np.pad(a, [(0, 0)] + [(0, m - n) for m, n in zip(most[1:], a.shape[1:], strict=True)],
                         constant_values=a.flat[0]) if a.shape[1:] != tuple(most[1:]) else a for a in arrays]
    if pad_rows:
        arrays = arrays + [arrays[-1][:1]] * pad_rows
    return np.concatenate(arrays) if len(arrays) > 1 else arrays[0]


def _shapes(shape_key) -> str:
    return ", ".join(f"{name} {list(shape)}" for name, shape, _ in shape_key)
