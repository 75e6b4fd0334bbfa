"""A real `cdk synth` through the project's pinned CDK CLI (npm aws-cdk in node_modules), on the example configs.

The example configs are synthesized in parallel, each into its own directory, exactly as `make synth` does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from cfnlint.api import lint

from infra import PROJECT_ROOT
from infra.toolchain import NODE, node_env
from tests.infra.test_cfn_lint import ACCEPTED

CDK = PROJECT_ROOT / "node_modules" / ".bin" / "cdk"
RUNS = {
    "msk": ["-c", "config=config/msk.example.json"],
    "self-managed": ["-c", "config=config/self-managed.example.json"],
    "local": ["-c", "config=config/local.json", "-c", "withEventSource=false"],
    "typed": ["-c", "config=config/typed.example.json"],
    "layouts": ["-c", "config=config/layouts.example.json"],
}


def test_cdk_cli_synthesizes_every_example(tmp_path: Path) -> None:
    assert CDK.exists(), "node_modules is missing: run `make node-modules` (npm ci)"
    env = {**node_env(), "CDK_DISABLE_CLI_TELEMETRY": "true"}
    env.pop("CDK_DEFAULT_ACCOUNT", None)
    env.pop("CDK_DEFAULT_REGION", None)
    processes = {
        name: subprocess.Popen(
            [
                str(CDK),
                "synth",
                "--quiet",
                "--no-notices",
                "--app",
                f"{sys.executable} app.py",
                *args,
                "--output",
                str(tmp_path / name),
            ],
            cwd=PROJECT_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name, args in RUNS.items()
    }
    outputs = {name: process.communicate(timeout=600)[0] for name, process in processes.items()}
    for name, process in processes.items():
        assert process.returncode == 0, f"cdk synth {name} failed:\n{outputs[name]}"
        # The pinned Node 24 runs the CLI and the app's jsii kernel: no end-of-life banner, nothing silenced; and
        # cdk.json sets the recommended feature flags, so the CLI reports none as unconfigured.
        assert "end-of-life" not in outputs[name], outputs[name]
        assert "feature flags are not configured" not in outputs[name], outputs[name]

    templates = {}
    for name in RUNS:
        manifest = json.loads((tmp_path / name / "manifest.json").read_text())
        (stack,) = [a for a in manifest["artifacts"].values() if a["type"] == "aws:cloudformation:stack"]
        templates[name] = json.loads((tmp_path / name / stack["properties"]["templateFile"]).read_text())

    def count(name: str, kind: str) -> int:
        return sum(1 for r in templates[name]["Resources"].values() if r["Type"] == kind)

    assert count("msk", "AWS::Lambda::EventSourceMapping") == 2
    assert count("self-managed", "AWS::Lambda::EventSourceMapping") == 1
    assert count("local", "AWS::Lambda::EventSourceMapping") == 0
    assert count("typed", "AWS::Lambda::EventSourceMapping") == 4
    assert count("typed", "AWS::Glue::Table") == 4  # every topic, the raw one too
    assert count("layouts", "AWS::Glue::Table") == 2
    assert count("msk", "AWS::Glue::Table") == 0
    for name in RUNS:
        assert count(name, "AWS::Lambda::Function") == 1
        assert count(name, "AWS::CloudWatch::Dashboard") == 1
        assert {"ArchiveBucketName", "DeadLetterQueueUrl", "FunctionName", "DashboardName"} <= set(
            templates[name]["Outputs"]
        )

    # cfn-lint finds nothing in what the CLI wrote (findings accepted with a reason in test_cfn_lint.ACCEPTED).
    for name in RUNS:
        matches = lint(json.dumps(templates[name]), regions=["eu-west-1" if name != "local" else "us-east-1"])
        assert [f"{m.rule.id}: {m.message}" for m in matches if m.rule.id not in ACCEPTED] == [], name
    # Compaction and audit are deployed by every example: a nested stack with the schedules, queue and alarms.
    for name in RUNS:
        (nested,) = (tmp_path / name).glob("*.nested.template.json")
        resources = json.loads(nested.read_text())["Resources"].values()
        kinds = [resource["Type"] for resource in resources]
        assert kinds.count("AWS::Events::Rule") == 2, name
        assert kinds.count("AWS::Lambda::Function") == 3, name
        assert kinds.count("AWS::CloudWatch::Alarm") >= 6, name
        assert "AWS::SQS::Queue" in kinds, name
        nested_matches = lint(nested.read_text(), regions=["eu-west-1" if name != "local" else "us-east-1"])
        assert [f"{m.rule.id}: {m.message}" for m in nested_matches if m.rule.id not in ACCEPTED] == [], name

    # The staged asset is the local bundle for each config's architecture.
    for name, triplet in (("msk", "aarch64"), ("local", "x86_64")):
        assert list((tmp_path / name).glob(f"asset.*/fastavro/_read.*{triplet}*.so")), name


def test_the_pinned_node_is_node_24() -> None:
    """package.json pins Node 24 for this machine's architecture; node_modules/.bin/node is first on PATH."""
    assert NODE.exists(), "node_modules is missing: run `make node-modules` (npm ci)"
    version = subprocess.run(
        ["node", "--version"], env=node_env(), capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert version.startswith("v24."), version
    assert (
        version
        == subprocess.run(
            [str(NODE), "--version"], capture_output=True, text=True, check=True, timeout=60
        ).stdout.strip()
    )


def test_app_fails_once_listing_every_config_problem(tmp_path: Path) -> None:
    bad = json.loads((PROJECT_ROOT / "config" / "local.json").read_text())
    bad["eventSource"]["batchSize"] = 0
    bad["function"]["architecture"] = "sparc"
    bad["archive"]["codec"] = "lz4"
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(bad))
    env = node_env()
    env["CDK_CONTEXT_JSON"] = json.dumps({"config": str(path)})
    env["CDK_OUTDIR"] = str(tmp_path / "out")
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1
    assert f"invalid config {path}:" in result.stderr
    for field in ("eventSource.batchSize", "function.architecture", "archive.codec"):
        assert field in result.stderr, result.stderr


def test_app_requires_a_config(tmp_path: Path) -> None:
    # PATH without node_modules/.bin (as when the CLI was started with another Node): app.py puts the pinned Node
    # first itself, so its jsii kernel prints no end-of-life banner even where the machine's Node is 20.
    path = os.pathsep.join(p for p in os.environ["PATH"].split(os.pathsep) if p != str(NODE.parent))
    env = {**os.environ, "PATH": path, "CDK_OUTDIR": str(tmp_path)}
    env.pop("CDK_CONTEXT_JSON", None)
    result = subprocess.run(
        [sys.executable, "app.py"], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert result.returncode == 1
    assert "pass -c config=<file>" in result.stderr
    assert "end-of-life" not in result.stderr


def test_the_command_synthesizes_one_config_and_lints_it(tmp_path: Path) -> None:
    """`kafka-s3-archiver synth --config FILE` (`make synth CONFIG=FILE`): the pinned CDK CLI, then cfn-lint."""
    command = Path(sys.executable).parent / "kafka-s3-archiver"
    out = tmp_path / "local"
    result = subprocess.run(
        [str(command), "synth", "--config", "config/local.json", "--no-event-source", "--output-dir", str(out)],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    template = json.loads((out / "KafkaS3ArchiverLocal.template.json").read_text())
    assert "AWS::Lambda::Function" in {resource["Type"] for resource in template["Resources"].values()}
    assert "synthesized and linted" in result.stderr


def test_the_command_says_what_to_install(tmp_path: Path, monkeypatch: Any, capsys: Any) -> None:
    from archive_ops.cli import cdk, main

    monkeypatch.setattr(cdk, "project_root", lambda: tmp_path)  # a checkout without node_modules or .venv
    assert main(["synth", "--config", "config/local.json"]) == 2
    assert "run `make node-modules`" in capsys.readouterr().err
    (tmp_path / "node_modules" / ".bin").mkdir(parents=True)
    (tmp_path / "node_modules" / ".bin" / "cdk").touch()
    assert main(["deploy", "--config", "config/local.json"]) == 2
    assert "run `make venv`" in capsys.readouterr().err


def test_cdk_app_before_make_venv_says_what_to_run(tmp_path: Path) -> None:
    """cdk.json's app on a fresh checkout (no .venv): one line naming `make venv`, not "python: not found"."""
    script = PROJECT_ROOT / "scripts" / "cdk-app"
    result = subprocess.run([str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 1
    assert "run 'make venv node-modules' first" in result.stderr
    assert json.loads((PROJECT_ROOT / "cdk.json").read_text())["app"] == "scripts/cdk-app"
