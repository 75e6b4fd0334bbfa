"""Small helpers for the CDK entry point (app.py), kept here so tests can use them too."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk

from infra import PROJECT_ROOT
from infra.config import AppConfig

CDK_JSON = PROJECT_ROOT / "cdk.json"


def context_flag(value: object, *, default: bool) -> bool:
    """A boolean cdk context value: -c gives strings ("false"), cdk.json gives JSON booleans."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes"):
        return True
    if text in ("false", "0", "no"):
        return False
    raise ValueError(f"cdk context: expected true or false, got {value!r}")


def stack_env(config: AppConfig, environ: Mapping[str, str]) -> cdk.Environment | None:
    """The config's account/region, else the CLI's current ones; None (environment-agnostic) if neither."""
    account = config.account or environ.get("CDK_DEFAULT_ACCOUNT")
    region = config.region or environ.get("CDK_DEFAULT_REGION")
    if account is None and region is None:
        return None
    return cdk.Environment(account=account, region=region)


def project_context() -> dict[str, Any]:
    """cdk.json's context (the feature flags and defaults the CDK CLI passes to app.py), for in-process synths."""
    context: dict[str, Any] = json.loads(CDK_JSON.read_text())["context"]
    return context
