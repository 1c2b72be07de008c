#!/usr/bin/env python3
"""Readiness probe for TF Serving: ready only when EVERY model of the model config has an AVAILABLE
version (TF Serving's own status endpoint answers 200 as soon as any version state exists, LOADING or
a failed load included, so an httpGet probe on it would pass too early).

    python3 readiness_probe.py --model_config /config/models.config [--url http://127.0.0.1:8501]
    python3 readiness_probe.py --idle        # the sidecar's main process: waits for SIGTERM

Exit 0 when ready; 1 with one line per model that is not, on stderr. Python standard library only: the
Kubernetes Deployment (serving/deploy/k8s/deployment.yaml) runs it as an exec probe in a small sidecar
(the TF Serving image has no shell tools), which reaches TF Serving's REST port over the pod's loopback.
"""
from __future__ import annotations

import argparse
import json
import re
import signal
import sys
import urllib.error
import urllib.request
from typing import List

_NAME = re.compile(r'\bname\s*:\s*"((?:[^"\\]|\\.)*)"')


def model_names(config_text: str) -> List[str]:
    """The model names of a text ModelServerConfig (model_config_list { config { name: "..." } ... })."""
    text = "\n".join(line.split("#", 1)[0] for line in config_text.splitlines())
    return _NAME.findall(text)


def not_ready(url: str, names: List[str], timeout_s: float) -> List[str]:
    """One line per model without an AVAILABLE version (empty: ready)."""
    problems = []
    for name in names:
        try:
            with urllib.request.urlopen(f"{url.rstrip('/')}/v1/models/{name}", timeout=timeout_s) as r:
                states = json.loads(r.read()).get("model_version_status", [])
        except urllib.error.HTTPError as e:
            problems.append(f"{name}: HTTP {e.code} (no version loaded yet)")
            continue
        except (urllib.error.URLError, OSError, ValueError) as e:
            problems.append(f"{name}: {getattr(e, 'reason', e)}")
            continue
        if not any(s.get("state") == "AVAILABLE" for s in states):
            seen = ", ".join(f"version {s.get('version')} {s.get('state')}"
                             + (f" ({s['status']['error_message']})" if s.get("status", {}).get("error_message")
                                else "") for s in states)
            problems.append(f"{name}: no AVAILABLE version ({seen or 'none'})")
    return problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model_config", help="TF Serving's --model_config_file")
    p.add_argument("--url", default="http://127.0.0.1:8501", help="TF Serving's REST address")
    p.add_argument("--timeout_s", type=float, default=2.0)
    p.add_argument("--idle", action="store_true", help="wait for SIGTERM (the probe sidecar's main process)")
    args = p.parse_args(argv)
    if args.idle:
        stop = {signal.SIGTERM, signal.SIGINT}
        signal.pthread_sigmask(signal.SIG_BLOCK, stop)
        signal.sigwait(stop)
        return 0
    if not args.model_config:
        p.error("--model_config is required")
    with open(args.model_config) as f:
        names = model_names(f.read())
    if not names:
        print(f"not ready: no model in {args.model_config}", file=sys.stderr)
        return 1
    problems = not_ready(args.url, names, args.timeout_s)
    for line in problems:
        print(f"not ready: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
