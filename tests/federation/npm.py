"""Installs pinned npm packages once per machine into `/tmp/reelgraph-npm-cache/<name>`.

An install is reused while its `package.json` is unchanged; a file lock keeps concurrent test
processes from installing the same directory at once. Scripts are never run
(`--ignore-scripts`), so an install only unpacks registry tarballs.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

NPM_CACHE = Path(os.environ.get("REELGRAPH_NPM_CACHE", "/tmp/reelgraph-npm-cache"))
INSTALL_TIMEOUT_S = 600.0


class NpmUnavailable(RuntimeError):
    """node/npm are missing or the install failed."""


def _require(tool: str) -> str:
    path = shutil.which(tool)
    if path is None:
        raise NpmUnavailable(f"{tool} is not on PATH")
    return path


def node() -> str:
    return _require("node")


def ensure_installed(name: str, package: dict[str, Any]) -> Path:
    """Return a directory whose node_modules holds exactly `package`'s dependencies."""
    NPM_CACHE.mkdir(parents=True, exist_ok=True)
    target = NPM_CACHE / name
    manifest = json.dumps({"name": name, "private": True, **package}, indent=2, sort_keys=True)
    marker = target / ".reelgraph-installed"
    with open(NPM_CACHE / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if marker.exists() and marker.read_text() == manifest:
            return target
        npm = _require("npm")
        if target.exists():
            shutil.rmtree(target)
        target.mkdir(parents=True)
        (target / "package.json").write_text(manifest)
        env = {
            **os.environ,
            "npm_config_update_notifier": "false",
            "npm_config_fund": "false",
            "npm_config_audit": "false",
        }
        done = subprocess.run(
            [npm, "install", "--no-audit", "--no-fund", "--ignore-scripts", "--loglevel=error"],
            cwd=target,
            env=env,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise NpmUnavailable(f"npm install in {target} failed:\n{done.stdout}\n{done.stderr}")
        marker.write_text(manifest)
        return target
