"""synth and deploy: the pinned CDK CLI (node_modules/.bin/cdk) with the pinned Node 24 first on PATH, as the
Makefile runs it, for one deployment config."""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

from archive_ops.cli.errors import OK, CliError
from archive_ops.cli.options import Clients

FIRST_SYNTH_NOTE = "the first synth bundles the Lambda assets (pip wheels for the function's architecture): ~2 minutes"


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    synth = commands.add_parser(
        "synth",
        help="synthesize the stack for one deployment config (config checks, cdk-nag, cfn-lint)",
        description="Runs the project's pinned CDK CLI: cdk synth -c config=FILE into cdk.out/<config name>, then "
        "cfn-lint on the template. Every config problem is listed at once, each naming its field.",
    )
    synth.add_argument("--config", type=Path, required=True, metavar="FILE", help="the deployment config")
    synth.add_argument("--output-dir", type=Path, metavar="DIR", help="cloud assembly (default cdk.out/<config>)")
    synth.add_argument("--no-event-source", action="store_true", help="leave out the Kafka mappings (LocalStack)")
    synth.set_defaults(run=run_synth)
    deploy = commands.add_parser(
        "deploy",
        help="deploy the stack for one deployment config with the pinned CDK CLI",
        description="Runs cdk deploy -c config=FILE with the project's pinned CDK CLI and Node 24, writing the "
        "stack's outputs to cdk.out/<config name>-outputs.json. Arguments after -- go to cdk deploy as they are "
        "(for example -- --require-approval never).",
    )
    deploy.add_argument("--config", type=Path, required=True, metavar="FILE", help="the deployment config")
    deploy.add_argument("cdk_args", nargs=argparse.REMAINDER, help="extra cdk deploy arguments, after --")
    deploy.set_defaults(run=run_deploy)


def project_root() -> Path:
    from infra import PROJECT_ROOT

    return PROJECT_ROOT


def cdk_command(root: Path) -> list[str]:
    """The pinned CDK CLI, or a CliError that says how to install what is missing."""
    cdk = root / "node_modules" / ".bin" / "cdk"
    if not cdk.exists():
        raise CliError(f"the pinned CDK CLI is not installed ({cdk}): run `make node-modules` in {root}")
    if not (root / ".venv" / "bin" / "python").exists():
        raise CliError(f"cdk.json runs the app with .venv/bin/python, which does not exist: run `make venv` in {root}")
    return [str(cdk)]


def _check_config(path: Path) -> None:
    from infra.config import ConfigError, load_config

    try:
        load_config(path)
    except ConfigError as error:
        raise CliError(str(error).replace("\n", " ")) from error


def _run(command: list[str], root: Path) -> int:
    from infra.toolchain import node_env

    env = node_env()
    env.setdefault("CDK_DISABLE_CLI_TELEMETRY", "true")
    print("$ " + " ".join(command), file=sys.stderr, flush=True)
    return subprocess.run(command, cwd=root, env=env, check=False).returncode  # noqa: S603 (our own pinned CLI)


def run_synth(args: argparse.Namespace, _clients: Clients) -> int:
    root = project_root()
    config = args.config.resolve()
    _check_config(config)
    output = (args.output_dir or root / "cdk.out" / config.stem).resolve()
    command = [*cdk_command(root), "synth", "--quiet", "--no-notices", "-c", f"config={config}", "-o", str(output)]
    if args.no_event_source:
        command += ["-c", "withEventSource=false"]
    print(f"synthesizing {config.name} into {output} ({FIRST_SYNTH_NOTE})", file=sys.stderr, flush=True)
    code = _run(command, root)
    if code != 0:
        raise CliError(f"cdk synth failed (exit {code}); the reason is above")
    lint = shutil.which("cfn-lint", path=str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""))
    if lint is None:
        raise CliError("cfn-lint is not installed: run `make venv`")
    templates = sorted(str(path) for path in output.glob("*.template.json"))
    # W3005: CDK's own DependsOn on the role, redundant with Role's GetAtt (tests/infra/test_cfn_lint.py ACCEPTED)
    code = _run([lint, "--format", "parseable", "--ignore-checks", "W3005", "--", *templates], root)
    if code != 0:
        raise CliError(f"cfn-lint found problems in {output} (exit {code}); they are listed above")
    print(f"synthesized and linted: {output}", file=sys.stderr)
    return OK


def run_deploy(args: argparse.Namespace, _clients: Clients) -> int:
    root = project_root()
    config = args.config.resolve()
    _check_config(config)
    outputs = root / "cdk.out" / f"{config.stem}-outputs.json"
    extra = [item for item in args.cdk_args if item != "--"]
    command = [
        *cdk_command(root),
        "deploy",
        "--no-notices",
        "-c",
        f"config={config}",
        "--outputs-file",
        str(outputs),
        *extra,
    ]
    print(f"deploying {config.name} ({FIRST_SYNTH_NOTE})", file=sys.stderr, flush=True)
    code = _run(command, root)
    if code != 0:
        raise CliError(f"cdk deploy failed (exit {code}); the reason is above")
    print(f"deployed; stack outputs in {outputs}", file=sys.stderr)
    return OK
