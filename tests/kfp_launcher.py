"""A compiled Kubeflow Pipelines v2 package run task by task the way open-source KFP's driver and launcher
run it, on one machine, with this project's environment standing in for the container image.

What it reproduces (kubeflow/pipelines backend/src/v2 at 2.3.0; /work/notes/kfp_research.md has the
line references): the DAG walked in dependency order; each task's executor input built from constants,
upstream output parameters and upstream output artifacts, which arrive as KFP's driver hands them over
(name = the ML Metadata artifact id, an EMPTY type, the uri, metadata as ML Metadata returns it: numbers
as doubles, lists and structs wrapped); output artifacts provisioned at
`<root>/<pipeline>/<run>/<task>/<key>`, a fresh output file per task; the cache key computed as KFP
computes it (input artifact ids, input parameter values, output specs without URIs, output parameter
types, image, command and args before placeholder substitution) and a cached execution reused whole,
artifact ids included, when the task's caching is on; a cache entry written only after success; `{{$}}`
replaced by the executor input and the container's command run as a subprocess; the executor output
file read back. What it does not: containers, pods, ML Metadata, conditions, exit handlers, the
`preCacheCheck` hook (open-source KFP never runs it either).
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from typing import Dict, List

import yaml

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _norm(v):
    """Go re-encodes JSON numbers through float64: 6.0 -> 6."""
    if isinstance(v, float) and v.is_integer() and abs(v) < 1e21:
        return int(v)
    if isinstance(v, dict):
        return {k: _norm(x) for k, x in v.items()}
    if isinstance(v, list):
        return [_norm(x) for x in v]
    return v


def _go_json(o) -> str:
    s = json.dumps(_norm(o), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return s.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def cache_key(executor_input: dict, output_parameter_types: Dict[str, str], command: List[str], args: List[str],
              image: str) -> str:
    """KFP's GenerateCacheKey + GenerateFingerPrint (backend/src/v2/cacheutils/cache.go)."""
    ins, outs, key = executor_input.get("inputs", {}), executor_input.get("outputs", {}), {}
    names = {k: {"artifactNames": [a.get("name", "") for a in v["artifacts"]]} if v.get("artifacts") else {}
             for k, v in ins.get("artifacts", {}).items()}
    if names:
        key["inputArtifactNames"] = names
    if ins.get("parameterValues"):
        key["inputParameterValues"] = ins["parameterValues"]
    specs = {}
    for k, v in outs.get("artifacts", {}).items():
        a = v["artifacts"][0]
        specs[k] = {x: a[x] for x in ("name", "type", "metadata") if x in a}
    if specs:
        key["outputArtifactsSpec"] = specs
    params = {k: output_parameter_types[k] for k in outs.get("parameters", {})}
    if params:
        key["outputParametersSpec"] = params
    key["containerSpec"] = {"image": image, "cmdArgs": list(command) + list(args)}
    return hashlib.sha256(_go_json(key).encode()).hexdigest()


def _as_mlmd_returns(value):
    """A metadata value after KFP stored it in ML Metadata and read it back for the next task."""
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, list):
        return {"list": value}
    if isinstance(value, dict):
        return {"struct": value}
    return value


@dataclass
class TaskRun:
    name: str
    state: str  # "ran" | "cached"
    artifacts: Dict[str, dict] = field(default_factory=dict)  # output key -> runtime artifact
    parameters: Dict[str, object] = field(default_factory=dict)
    log: str = ""


class KfpRehearsal:
    """Runs one package repeatedly (as a recurring run would), with one cache across the runs."""

    def __init__(self, package: str, pipeline_root: str, work_dir: str):
        with open(package) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        self.spec = docs[0]
        self.pipeline = self.spec["pipelineInfo"]["name"]
        self.root = pipeline_root
        self.work_dir = work_dir
        self.cache: Dict[str, dict] = {}  # cache key -> {"artifacts", "parameters"} of a successful execution
        self._next_id = 1

    def _order(self) -> List[str]:
        tasks, done, order = self.spec["root"]["dag"]["tasks"], set(), []
        while len(order) < len(tasks):
            ready = sorted(n for n, t in tasks.items() if n not in done and set(t.get("dependentTasks", [])) <= done)
            if not ready:
                raise ValueError("the task graph has a cycle")
            order += ready
            done |= set(ready)
        return order

    def run(self, run_id: str, env: Dict[str, str] | None = None) -> Dict[str, TaskRun]:
        tasks = self.spec["root"]["dag"]["tasks"]
        done: Dict[str, TaskRun] = {}
        for name in self._order():
            done[name] = self._run_task(run_id, name, tasks[name], done, env)
        return done

    def _run_task(self, run_id, name, task, done, env) -> TaskRun:
        component = self.spec["components"][task["componentRef"]["name"]]
        container = self.spec["deploymentSpec"]["executors"][component["executorLabel"]]["container"]
        task_dir = os.path.join(self.work_dir, run_id, name)
        os.makedirs(task_dir)
        executor_input = {"inputs": {"parameterValues": {}, "artifacts": {}},
                          "outputs": {"artifacts": {}, "parameters": {},
                                      "outputFile": os.path.join(task_dir, "output_metadata.json")}}
        for key, source in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in source:
                value = source["runtimeValue"]["constant"]
            else:
                producer = source["taskOutputParameter"]
                value = done[producer["producerTask"]].parameters[producer["outputParameterKey"]]
            executor_input["inputs"]["parameterValues"][key] = value
        for key, source in task.get("inputs", {}).get("artifacts", {}).items():
            producer = source["taskOutputArtifact"]
            upstream = done[producer["producerTask"]].artifacts[producer["outputArtifactKey"]]
            executor_input["inputs"]["artifacts"][key] = {"artifacts": [
                {"name": upstream["name"], "type": {"instanceSchema": ""}, "uri": upstream["uri"],
                 "metadata": {k: _as_mlmd_returns(v) for k, v in upstream.get("metadata", {}).items()}}]}
        outputs = component.get("outputDefinitions", {})
        for key, definition in outputs.get("artifacts", {}).items():
            uri = "/".join([self.root.rstrip("/"), self.pipeline, run_id, name, key])
            executor_input["outputs"]["artifacts"][key] = {"artifacts": [{"type": definition["artifactType"],
                                                                          "uri": uri}]}
        out_types = {k: d["parameterType"] for k, d in outputs.get("parameters", {}).items()}
        for key in out_types:
            executor_input["outputs"]["parameters"][key] = {"outputFile": os.path.join(task_dir, "outputs", key)}

        command, args = container.get("command", []), container.get("args", [])
        key = cache_key(executor_input, out_types, command, args, container["image"])
        use_cache = task.get("cachingOptions", {}).get("enableCache", False)
        if use_cache and key in self.cache:
            hit = self.cache[key]
            return TaskRun(name, "cached", hit["artifacts"], hit["parameters"])

        # The launcher's prepareOutputFolders: the parents of output artifacts' (local) paths and parameter files.
        for holder in executor_input["outputs"]["artifacts"].values():
            os.makedirs(os.path.dirname(holder["artifacts"][0]["uri"]), exist_ok=True)
        for param in executor_input["outputs"]["parameters"].values():
            os.makedirs(os.path.dirname(param["outputFile"]), exist_ok=True)
        payload = json.dumps(executor_input, separators=(",", ":"))
        argv = [a.replace("{{$}}", payload) for a in list(command) + list(args)]
        argv[0] = sys.executable if argv[0] == "python" else argv[0]  # the project's environment as the image
        proc = subprocess.run(argv, cwd=REPO_ROOT, env=dict(os.environ, **(env or {})), capture_output=True,
                              text=True)
        log = proc.stdout + proc.stderr
        with open(os.path.join(task_dir, "log.txt"), "w") as f:
            f.write(log)
        if proc.returncode != 0:
            raise RuntimeError(f"task {name} of run {run_id} failed ({proc.returncode}):\n{log[-4000:]}")
        result = self._collect(executor_input, out_types)
        record = TaskRun(name, "ran", result["artifacts"], result["parameters"], log)
        if use_cache:  # the launcher records a cache entry only after success, and only when caching is on
            self.cache[key] = result
        return record

    def _collect(self, executor_input: dict, out_types: Dict[str, str]) -> dict:
        """The launcher's reading of the executor output: output file values win, then parameter files."""
        path = executor_input["outputs"]["outputFile"]
        written = json.load(open(path)) if os.path.exists(path) else {}
        artifacts = {}
        for key, holder in executor_input["outputs"]["artifacts"].items():
            provisioned = dict(holder["artifacts"][0])
            out = (written.get("artifacts", {}).get(key, {}).get("artifacts") or [{}])[0]
            if out.get("uri"):
                provisioned["uri"] = out["uri"]
            provisioned["metadata"] = {**provisioned.get("metadata", {}), **out.get("metadata", {})}
            provisioned["name"] = str(self._next_id)  # a new ML Metadata artifact
            self._next_id += 1
            artifacts[key] = provisioned
        parameters = {}
        for key in out_types:
            if key in written.get("parameterValues", {}):
                parameters[key] = written["parameterValues"][key]
            else:
                with open(executor_input["outputs"]["parameters"][key]["outputFile"]) as f:
                    parameters[key] = f.read()
        return {"artifacts": artifacts, "parameters": parameters}
