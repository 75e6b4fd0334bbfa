"""Fixtures for the infrastructure tests: configs, and synthesized stacks shared across the session.

Every stack is synthesized with the cdk-nag AwsSolutions checks registered, so a synth that succeeds is also a
proof of "no unacknowledged cdk-nag findings". Asset staging is disabled (the bundle is referenced, not copied
per synth) and the bundle itself is cached under .local/bundles by infra.bundling.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from infra.toolchain import node_env

# Before aws_cdk starts its jsii kernel: the pinned Node 24 (package.json), not the machine's.
os.environ["PATH"] = node_env()["PATH"]

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template
from cdk_nag import AwsSolutionsChecks

from infra import PROJECT_ROOT
from infra.app import project_context
from infra.config import AppConfig, ConfigError, parse_config
from infra.stack import ArchiverStack

CONFIG_DIR = PROJECT_ROOT / "config"
EXAMPLES = {
    "msk": CONFIG_DIR / "msk.example.json",
    "self-managed": CONFIG_DIR / "self-managed.example.json",
    "local": CONFIG_DIR / "local.json",
    "typed": CONFIG_DIR / "typed.example.json",
    "layouts": CONFIG_DIR / "layouts.example.json",
}


def example(name: str) -> dict[str, Any]:
    """A fresh, mutable copy of an example config's JSON."""
    data: dict[str, Any] = json.loads(EXAMPLES[name].read_text())
    return data


def with_changes(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with dotted-path changes applied; a value of None deletes the key."""
    data = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node.setdefault(key, {})
        if value is None:
            node.pop(leaf, None)
        else:
            node[leaf] = value
    return data


@dataclass(frozen=True)
class Synthesized:
    config: AppConfig
    stack: ArchiverStack
    template: Template

    def resources(self, kind: str) -> dict[str, Any]:
        return dict(self.template.find_resources(kind))

    def only(self, kind: str) -> dict[str, Any]:
        found = self.resources(kind)
        assert len(found) == 1, f"expected one {kind}, found {sorted(found)}"
        return dict(next(iter(found.values()))["Properties"])

    def statements(self) -> list[dict[str, Any]]:
        """Every statement of the function role's policies."""
        policies = self.resources("AWS::IAM::Policy")
        return [
            statement
            for policy in policies.values()
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]

    def statements_for(self, action: str) -> list[dict[str, Any]]:
        return [s for s in self.statements() if action in as_list(s["Action"])]


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def synthesize(
    data: dict[str, Any],
    *,
    with_event_source: bool = True,
    asset_dir: Path | None = None,
    tamper: Callable[[ArchiverStack], None] | None = None,
    context: dict[str, Any] | None = None,
) -> Synthesized:
    """Synthesize one stack from config JSON, with cdk-nag registered (a finding fails the synth).

    ``tamper`` may change resources before synthesis (to prove the checks are active); ``context`` overrides
    cdk.json's context (e.g. a feature flag)."""
    config = parse_config(data)
    _OUTDIR.mkdir(parents=True, exist_ok=True)
    outdir = tempfile.mkdtemp(dir=_OUTDIR)
    # cdk.json's context (the recommended feature flags) as the CDK CLI would pass it, so tests see what synth does.
    app = cdk.App(
        outdir=outdir, context={**project_context(), **(context or {}), "aws:cdk:disable-asset-staging": True}
    )
    stack = ArchiverStack(
        app, config.stack_name, config=config, with_event_source=with_event_source, asset_dir=asset_dir
    )
    if tamper is not None:
        tamper(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    return Synthesized(config=config, stack=stack, template=Template.from_stack(stack))


_CACHE: dict[str, Synthesized] = {}
_OUTDIR = Path(tempfile.gettempdir()) / f"archiver-infra-tests-{os.getpid()}"


@pytest.fixture(scope="session", autouse=True)
def _clean_cloud_assemblies() -> Iterator[None]:
    """Each synth writes a cloud assembly; remove them all at the end of the session."""
    yield
    shutil.rmtree(_OUTDIR, ignore_errors=True)


@pytest.fixture(scope="session")
def synth() -> Callable[..., Synthesized]:
    """Synthesize (once per distinct config in the session) and return the stack and its Template."""

    def get(data: dict[str, Any], *, with_event_source: bool = True, asset_dir: Path | None = None) -> Synthesized:
        key = json.dumps([data, with_event_source, str(asset_dir)], sort_keys=True)
        if key not in _CACHE:
            _CACHE[key] = synthesize(data, with_event_source=with_event_source, asset_dir=asset_dir)
        return _CACHE[key]

    return get


@pytest.fixture(scope="session")
def msk(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(example("msk"))


@pytest.fixture(scope="session")
def self_managed(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(example("self-managed"))


@pytest.fixture(scope="session")
def local(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(example("local"), with_event_source=False)


@pytest.fixture(scope="session")
def typed(synth: Callable[..., Synthesized]) -> Synthesized:
    return synth(example("typed"))


@pytest.fixture
def project_root() -> Path:
    return PROJECT_ROOT


def problems_of(data: Any) -> list[str]:
    with pytest.raises(ConfigError) as error:
        parse_config(data)
    return error.value.problems


def assert_problem(problems: list[str], *fragments: str) -> None:
    """Some problem contains every fragment (field name first, then the words that explain it)."""
    assert any(all(fragment in problem for fragment in fragments) for problem in problems), problems
