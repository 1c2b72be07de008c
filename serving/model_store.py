"""The models a server holds, kept in step with TF Serving's directory layout by polling.

Layout: `<base_path>/<version>/saved_model.pb` with integer version directories (anything else, such
as a `.tmp-3` directory a pusher is still writing, is ignored). Every `poll_seconds` the store lists
the versions, decides which ones the version policy wants (default: the latest one), LOADS new
versions first and only then switches requests to them and unloads the versions no longer wanted,
so a push never interrupts serving. In-flight requests keep a reference to the version they started
on and finish on it. A version is AVAILABLE only once its warm-up requests (serving/warmup.py) have
run. A version that fails to load or to warm up is reported (state END with its error) and not
retried until its files change.

Version states follow TF Serving's ModelVersionStatus: LOADING -> AVAILABLE -> UNLOADING -> END.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import threading
from typing import Callable, Dict, List, Tuple

from contracts import serving_layout
from serving import warmup
from serving.errors import not_found
from serving.servable import Servable

log = logging.getLogger("serving.model_store")

VersionPolicy = Callable[[List[int]], List[int]]


def latest_policy(num_versions: int = 1) -> VersionPolicy:
    return lambda versions: sorted(versions)[-num_versions:]


def specific_policy(wanted) -> VersionPolicy:
    wanted = {int(v) for v in wanted}
    return lambda versions: sorted(v for v in versions if v in wanted)


def all_policy() -> VersionPolicy:
    return lambda versions: sorted(versions)


@dataclasses.dataclass
class ModelSource:
    name: str
    base_path: str
    policy: VersionPolicy = dataclasses.field(default_factory=latest_policy)


@dataclasses.dataclass
class VersionStatus:
    version: int
    state: str  # LOADING | AVAILABLE | UNLOADING | END
    error: str = ""


def sources_from_config_file(path: str, base_override: str = "") -> List[ModelSource]:
    """Models of a TF Serving `--model_config_file` (text ModelServerConfig with model_config_list).

    `base_override`: serve `<base_override>/<name>` instead of each config's base_path (the config
    names container paths such as /models/srgan; a local run keeps its models elsewhere)."""
    from google.protobuf import text_format
    from tensorflow_serving.config import model_server_config_pb2

    cfg = model_server_config_pb2.ModelServerConfig()
    with open(path) as f:
        text_format.Parse(f.read(), cfg)
    out = []
    for m in cfg.model_config_list.config:
        which = m.model_version_policy.WhichOneof("policy_choice")
        if which == "specific":
            policy = specific_policy(m.model_version_policy.specific.versions)
        elif which == "all":
            policy = all_policy()
        elif which == "latest" and m.model_version_policy.latest.num_versions:
            policy = latest_policy(m.model_version_policy.latest.num_versions)
        else:
            policy = latest_policy(1)
        base = os.path.join(base_override, m.name) if base_override else m.base_path
        out.append(ModelSource(m.name, base, policy))
    return out


class ModelStore:
    def __init__(self, max_pixels: int, sources: List[ModelSource] | None = None, model_base: str = "",
                 poll_seconds: float = 1.0, budget=None, batching=None, warmup: bool = True):
        """Serve `sources`, or every model directory found under `model_base` (discovered by polling).
        `budget` (PixelBudget), `batching` (BatchingParameters) and `warmup` go to every version."""
        if not sources and not model_base:
            raise ValueError("give model sources or a model base directory")
        self.max_pixels = max_pixels
        self.budget, self.batching, self.warmup = budget, batching, warmup
        self.model_base = model_base
        self.poll_seconds = poll_seconds
        self._fixed = {s.name: s for s in (sources or [])}
        self._loaded: Dict[str, Dict[int, Servable]] = {}
        self._status: Dict[str, Dict[int, VersionStatus]] = {}
        self._failed: Dict[Tuple[str, int], float] = {}  # -> mtime of the failed saved_model.pb
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- lookups (request path) ------------------------------------------------------------------
    def get(self, name: str, version: int | None = None) -> Servable:
        with self._lock:
            loaded = self._loaded.get(name)
            if name not in self._status:
                raise not_found(f"Servable not found for request: model {name!r} is not served here; "
                                f"models: {sorted(self._status)}")
            if not loaded:
                raise not_found(f"Servable not found for request: model {name!r} has no available version")
            if version is None:
                return loaded[max(loaded)]
            if version not in loaded:
                raise not_found(f"Servable not found for request: Specific({name}, {version}); "
                                f"available versions: {sorted(loaded)}")
            return loaded[version]

    def status(self, name: str, version: int | None = None) -> List[VersionStatus]:
        with self._lock:
            states = self._status.get(name)
            if not states:  # unknown, or no version yet: NOT_FOUND as in TF Serving (readiness probes rely on it)
                raise not_found(f"Could not find any versions of model {name!r}")
            if version is None:
                return [dataclasses.replace(s) for _, s in sorted(states.items(), reverse=True)]
            if version not in states:
                raise not_found(f"Could not find version {version} of model {name!r}")
            return [dataclasses.replace(states[version])]

    def model_names(self) -> List[str]:
        with self._lock:
            return sorted(self._status)

    # -- polling ---------------------------------------------------------------------------------
    def _sources(self) -> List[ModelSource]:
        if self._fixed:
            return list(self._fixed.values())
        try:
            names = sorted(n for n in os.listdir(self.model_base)
                           if not n.startswith(".") and os.path.isdir(os.path.join(self.model_base, n)))
        except FileNotFoundError:
            names = []
        return [ModelSource(n, os.path.join(self.model_base, n)) for n in names]

    def poll_once(self) -> None:
        for src in self._sources():
            with self._lock:
                self._status.setdefault(src.name, {})
                self._loaded.setdefault(src.name, {})
            self._sync(src)

    def _sync(self, src: ModelSource) -> None:
        on_disk = serving_layout.versions(src.base_path)
        wanted = set(src.policy(on_disk))
        with self._lock:
            have = set(self._loaded[src.name])
        for v in sorted(wanted - have):
            self._load(src, v)
        with self._lock:
            loaded = self._loaded[src.name]
            # A version the policy dropped is unloaded only once a wanted one is AVAILABLE (a failed
            # push keeps the old version serving); one deleted from disk goes at once, as in TF Serving.
            wanted_up = bool(wanted & set(loaded))
            stale = [v for v in loaded if v not in on_disk or (v not in wanted and wanted_up)]
            for v in stale:
                self._status[src.name][v] = VersionStatus(v, "UNLOADING")
        for v in stale:
            with self._lock:
                servable = self._loaded[src.name].pop(v, None)
                self._status[src.name][v] = VersionStatus(v, "END")
            if servable is not None:
                servable.close()
            log.info("unloaded model %s version %d", src.name, v)

    def _load(self, src: ModelSource, version: int) -> None:
        path = serving_layout.version_dir(src.base_path, version)
        mtime = os.path.getmtime(os.path.join(path, serving_layout.SAVED_MODEL_FILE))
        if self._failed.get((src.name, version)) == mtime:
            return
        with self._lock:
            self._status[src.name][version] = VersionStatus(version, "LOADING")
        log.info("loading model %s version %d from %s", src.name, version, path)
        try:
            servable = Servable(src.name, version, path, self.max_pixels, self.budget, self.batching)
            try:
                if self.warmup:
                    warmup.replay(servable)
            except Exception:
                servable.close()
                raise
        except Exception as e:  # a broken push must not take the server down
            self._failed[(src.name, version)] = mtime
            with self._lock:
                self._status[src.name][version] = VersionStatus(version, "END", f"{type(e).__name__}: {e}")
            log.error("failed to load model %s version %d: %s", src.name, version, e)
            return
        with self._lock:
            self._loaded[src.name][version] = servable
            self._status[src.name][version] = VersionStatus(version, "AVAILABLE")
        log.info("model %s version %d AVAILABLE", src.name, version)

    def start(self) -> None:
        """Load what is there now (before the ports open), then keep polling in the background."""
        self.poll_once()
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.poll_seconds):
            try:
                self.poll_once()
            except Exception:  # keep polling whatever one pass hit
                log.exception("model poll failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
        with self._lock:
            servables = [s for versions in self._loaded.values() for s in versions.values()]
        for servable in servables:
            servable.close()
