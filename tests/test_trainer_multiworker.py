"""Multi-worker training (MultiWorkerMirroredStrategy from TF_CONFIG), with two worker processes on
loopback as a TFJob's pods would run them:
- one training step of two workers equals the single-process step on the same global batch;
- killing a worker mid-run and restarting both resumes from the chief's checkpoint and finishes, with
  TensorFlow's multi-worker file rules (only the chief's checkpoints, logs and model remain).

Ports: reserved in this process before the workers start (`reserve_port`), so the cluster spec both
workers get is complete and no other process can be handed those ports in between.
"""
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys

import pytest
from distributed_steps import assert_same_step, weight_difference
from test_trainer_resume import checkpoint_steps, resumable_job

from serving.server_process import LogWatcher

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
WORKERS = 2
WARMUP, GAN, EVERY = 4, 30, 3


def reserve_port(host: str = "127.0.0.1") -> int:
    """A port the OS picks, left in TIME_WAIT: the kernel hands it to no other bind(0)/connect() for a
    minute, while a server that binds it explicitly with SO_REUSEADDR (gRPC, so TensorFlow's worker
    server, does) gets it. The trick of Yelp's ephemeral-port-reserve."""
    with contextlib.closing(socket.socket()) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, 0))
        server.listen(1)
        address = server.getsockname()
        with contextlib.closing(socket.create_connection(address)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the accepting side closes first: TIME_WAIT is on the reserved port
            client.recv(1)
        return address[1]


def tf_configs(n: int = WORKERS):
    cluster = {"worker": [f"127.0.0.1:{reserve_port()}" for _ in range(n)]}
    return [json.dumps({"cluster": cluster, "task": {"type": "worker", "index": i}}) for i in range(n)]


def _env(tf_config: str) -> dict:
    return {**os.environ, "TF_CONFIG": tf_config, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_USE_LEGACY_KERAS": "1"}


def _step_worker(data: dict, out_path: str) -> None:
    """Child process (TF_CONFIG set): the two-phase step under make_strategy's MultiWorkerMirroredStrategy,
    then the same step with the default strategy in this process (every worker does both, so they
    leave the cluster together)."""
    import tensorflow as tf
    from distributed_steps import fixed_global_batch, one_step_each_phase, step_config

    from models.gan_loop import make_strategy

    cfg = step_config("sr")
    strategy = make_strategy(cfg)  # before any other TensorFlow op: collectives are set up at start
    batch = fixed_global_batch(cfg, data)
    result = {"multi_worker": isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy),
              "multi": one_step_each_phase(cfg, strategy, batch),
              "single": one_step_each_phase(cfg, tf.distribute.get_strategy(), batch)}
    with open(out_path, "w") as f:
        json.dump(result, f)


@pytest.mark.slow
def test_two_worker_step_equals_single_process_step(transformed_sr, tmp_path):
    data = {"transform_graph": transformed_sr.transform_graph, "train_files": transformed_sr.train_files}
    outs = [tmp_path / f"worker{i}.json" for i in range(WORKERS)]
    procs = [subprocess.Popen([sys.executable, __file__, "step", json.dumps(data), str(out)], cwd=HERE,
                              env=_env(tf_config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for tf_config, out in zip(tf_configs(), outs, strict=True)]
    for p in procs:
        log, _ = p.communicate(timeout=900)
        assert p.returncode == 0, log[-4000:]
    results = [json.loads(out.read_text()) for out in outs]
    chief = results[0]
    assert chief["multi_worker"]
    assert chief["multi"]["replicas"] == 2 and chief["single"]["replicas"] == 1
    diff = assert_same_step(chief["single"], chief["multi"], transformed_sr.cfg)
    multi, single = chief["multi"]["losses"], chief["single"]["losses"]
    losses = ", ".join(f"{k} {multi[k]:.6g}/{v:.6g}" for k, v in sorted(single.items()))
    print(f"two-worker vs single-process step: max |weight difference| {diff.max():.3g}, "
          f"{int((diff > 1e-5).sum())} of {diff.size} weights beyond 1e-5; losses (2 workers/1 process) {losses}")
    assert weight_difference(results[0]["multi"], results[1]["multi"]).max() == 0.0  # workers stay in sync


def _start_workers(cmd, tmp_path, attempt: str):
    procs, logs = [], []
    for i, tf_config in enumerate(tf_configs()):
        p = subprocess.Popen(cmd, cwd=REPO, env=_env(tf_config), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, bufsize=1)
        procs.append(p)
        logs.append(LogWatcher(p.stdout, str(tmp_path / f"{attempt}-worker{i}.log")))
    return procs, logs


@pytest.mark.slow
def test_killed_worker_and_restarted_cluster_resume_from_the_chiefs_checkpoint(transformed_sr, tmp_path):
    import tensorflow as tf

    cfg, cmd, out, checkpoint_dir = resumable_job(transformed_sr, tmp_path, WARMUP, GAN, EVERY)

    # First attempt: once the chief reports a GAN-phase checkpoint, SIGKILL worker 1 (a lost pod), then
    # worker 0, which cannot go on without its peer (a TFJob restarts the failed workers).
    procs, logs = _start_workers(cmd, tmp_path, "first")
    logs[0].wait_for(r"strategy CollectiveAllReduceStrategy with 2 replica\(s\)", timeout=600)
    gan_steps = "|".join(str(s) for s in range(WARMUP + 1, WARMUP + GAN))
    saved = logs[0].wait_for(rf"models\.trainer: checkpoint \S+ckpt-({gan_steps})$", timeout=900)
    for p in reversed(procs):
        p.send_signal(signal.SIGKILL)
        p.wait()
    killed_at = int(tf.train.latest_checkpoint(checkpoint_dir).rsplit("-", 1)[1])
    assert killed_at >= int(saved.group(1))
    assert WARMUP < killed_at < WARMUP + GAN, "the first attempt was not stopped mid-way"
    assert not (out / "model" / "saved_model.pb").exists()

    # Second attempt: both workers restart (new ports), restore the chief's checkpoint and finish.
    procs, logs = _start_workers(cmd, tmp_path, "second")
    for p in procs:
        assert p.wait(timeout=900) == 0, "\n".join(line for log in logs for line in log.lines[-40:])
    for log in logs:
        log.wait_for("exported the generator of run")  # its last line: all of its log is in
        text = log.text()
        assert re.search(rf"resumed from {re.escape(checkpoint_dir)}/ckpt-{killed_at} at step {killed_at} "
                         r"\(gan phase\)", text), text[-3000:]
        logged = [int(s) for s in re.findall(r"step (\d+)/\d+ \[", text)]
        assert logged and logged[0] > killed_at and logged[-1] == WARMUP + GAN
    assert checkpoint_steps(checkpoint_dir)[-1] == WARMUP + GAN
    # Only the chief's files remain: no worker copies of checkpoints or model, logs only from the chief.
    leftovers = [os.path.join(d, n) for d, dirs, _ in os.walk(tmp_path) for n in dirs if n.startswith("workertemp_")]
    assert not leftovers, leftovers
    assert (out / "model" / "saved_model.pb").exists()
    served = tf.saved_model.load(str(out / "model"))
    assert served.signatures["restore"](images=tf.zeros([1, 9, 11, 3]))["images"].shape.as_list() == [1, 36, 44, 3]


if __name__ == "__main__":
    mode, args, out_path = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
    assert mode == "step"
    _step_worker(args, out_path)
