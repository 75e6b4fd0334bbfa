"""Deploy the project's CDK stack to LocalStack with cdklocal, and record its outputs for the other local tools.

    python -m local.deploy                      # config/local.json, no Kafka event-source mapping
    python -m local.deploy --config FILE        # another deployment config

It is the *same* stack as in AWS (bucket, dead-letter queue, function, dashboard, alarms), synthesized from app.py,
with one switch: ``-c withEventSource=false``, because LocalStack accepts no Kafka event-source mapping (the
emulator, ``python -m local.esm``, plays that part). LocalStack's CloudFormation creates no CloudWatch dashboard,
so the dashboard body from the synthesized template is put through the CloudWatch API afterwards.

Outputs go to ``.local/instances/<instance>/outputs.json``: bucket, queue URL/ARN, on-failure queue URL (when the
config has one), function and dashboard names,
plus the event-source settings from the config file (topics, consumer group, batch size, ...).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from infra.toolchain import node_env
from local import aws, config, stack

DEFAULT_CONFIG = config.ROOT / "config" / "local.json"
CDKLOCAL = config.ROOT / "node_modules" / ".bin" / "cdklocal"
# CfnOutput ids of infra/stack.py (OUTPUT_* constants there).
OUTPUT_IDS = {
    "bucket": "ArchiveBucketName",
    "queue_url": "DeadLetterQueueUrl",
    "queue_arn": "DeadLetterQueueArn",
    "function": "FunctionName",
    "dashboard": "DashboardName",
}
# Outputs only some configs have: the on-failure queue exists with eventSource.onFailure "queue" (the default);
# compaction and audit with maintenance.compaction / maintenance.audit enabled (the default).
OPTIONAL_OUTPUT_IDS = {
    "on_failure_queue_url": "OnFailureQueueUrl",
    "compaction_planner": "CompactionPlannerFunctionName",
    "compaction_queue_url": "CompactionQueueUrl",
    "audit_function": "AuditFunctionName",
}


class DeployError(RuntimeError):
    """The deployment to LocalStack failed."""


def outputs_path(instance: str) -> Path:
    return stack.instance_dir(instance) / "outputs.json"


def load_outputs(instance: str | None = None) -> dict[str, Any]:
    instance = instance or stack.default_instance()
    path = outputs_path(instance)
    if not path.exists():
        raise DeployError(f"nothing deployed for instance {instance!r}: run `python -m local.deploy` (or `make demo`)")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _cdk_env(endpoints: config.Endpoints) -> dict[str, str]:
    env = node_env()  # the pinned Node 24 (package.json) first on PATH
    env.update(endpoints.aws_env())
    env.update(
        {
            "CDK_DEFAULT_ACCOUNT": config.LOCAL_ACCOUNT,
            "CDK_DEFAULT_REGION": endpoints.region,
            "CDK_DISABLE_VERSION_CHECK": "1",
            "CI": env.get("CI", "true"),  # no interactive prompts, no progress bars
        }
    )
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    return env


def _ensure_npm() -> None:
    if CDKLOCAL.exists():
        return
    print("installing the CDK CLI and cdklocal (npm ci) ...")
    result = subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=config.ROOT, check=False)  # noqa: S607
    if result.returncode != 0 or not CDKLOCAL.exists():
        raise DeployError("`npm ci` failed: node and npm are needed for cdklocal (package.json pins them)")


def _run(cmd: list[str], env: dict[str, str], log: Path, what: str) -> None:
    with log.open("a") as out:
        out.write(f"\n$ {' '.join(cmd)}\n")
        out.flush()
        result = subprocess.run(cmd, cwd=config.ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, check=False)  # noqa: S603
    if result.returncode != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise DeployError(f"{what} failed (exit {result.returncode}); see {log}:\n{tail}")


def deploy(
    instance: str | None = None,
    *,
    config_file: Path = DEFAULT_CONFIG,
    endpoints: config.Endpoints | None = None,
) -> dict[str, Any]:
    """cdklocal bootstrap + deploy; returns (and saves) the outputs. Needs the local stack (or AWS_ENDPOINT_URL)."""
    instance = instance or stack.default_instance()
    endpoints = endpoints or stack.current(instance).endpoints
    _ensure_npm()
    deployment = json.loads(config_file.read_text())
    stack_name = deployment["stackName"]
    env = _cdk_env(endpoints)
    log = stack.instance_dir(instance) / "logs" / "deploy.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    out_dir = stack.instance_dir(instance) / "cdk.out"
    outputs_file = stack.instance_dir(instance) / "cdk-outputs.json"
    context = ["-c", f"config={config_file}", "-c", "withEventSource=false", "-c", "nag=false"]
    common = ["--output", str(out_dir), "--no-notices", "--no-version-reporting"]
    started = time.monotonic()
    print(f"deploying stack {stack_name} to LocalStack at {endpoints.aws_endpoint} (log: {log}) ...")
    if not _bootstrapped(endpoints):
        _run(
            [str(CDKLOCAL), "bootstrap", f"aws://{config.LOCAL_ACCOUNT}/{endpoints.region}", *context, *common],
            env,
            log,
            "cdklocal bootstrap",
        )
    _run(
        [
            str(CDKLOCAL),
            "deploy",
            stack_name,
            *context,
            *common,
            "--require-approval",
            "never",
            "--outputs-file",
            str(outputs_file),
        ],
        env,
        log,
        "cdklocal deploy",
    )
    raw = json.loads(outputs_file.read_text()).get(stack_name, {})
    outputs: dict[str, Any] = {name: raw.get(output_id) for name, output_id in OUTPUT_IDS.items()}
    missing = [OUTPUT_IDS[name] for name, value in outputs.items() if not value]
    if missing:
        raise DeployError(f"stack {stack_name} has no output(s) {', '.join(missing)}; got {sorted(raw)}")
    outputs.update({name: raw.get(output_id) for name, output_id in OPTIONAL_OUTPUT_IDS.items()})
    outputs.update(
        {
            "stack": stack_name,
            "config_file": str(config_file),
            "event_source": deployment.get("eventSource", {}),
            "source": deployment.get("source", "self-managed"),
            "region": endpoints.region,
        }
    )
    outputs["dashboard_put"] = ensure_dashboard(outputs, out_dir / f"{stack_name}.template.json", endpoints)
    outputs_path(instance).write_text(json.dumps(outputs, indent=2) + "\n")
    print(f"deployed in {time.monotonic() - started:.0f} s: function {outputs['function']}, bucket {outputs['bucket']}")
    return outputs


def _bootstrapped(endpoints: config.Endpoints) -> bool:
    cloudformation = aws.client("cloudformation", endpoints)
    try:
        stacks = cloudformation.describe_stacks(StackName="CDKToolkit")["Stacks"]
    except Exception:
        return False
    return bool(stacks) and stacks[0]["StackStatus"].endswith("_COMPLETE")


def ensure_dashboard(outputs: dict[str, Any], template_file: Path, endpoints: config.Endpoints) -> bool:
    """PutDashboard from the template when LocalStack's CloudFormation did not create it. True if it was put."""
    cloudwatch = aws.client("cloudwatch", endpoints)
    name = outputs["dashboard"]
    try:
        cloudwatch.get_dashboard(DashboardName=name)
        return False
    except Exception:  # noqa: S110 - ResourceNotFound: create it below
        pass
    template = json.loads(template_file.read_text())
    bodies = [
        resource["Properties"]
        for resource in template.get("Resources", {}).values()
        if resource.get("Type") == "AWS::CloudWatch::Dashboard"
    ]
    if not bodies:
        return False
    resources = _physical_ids(outputs["stack"], endpoints)
    pseudo = {
        "AWS::Region": endpoints.region,
        "AWS::AccountId": config.LOCAL_ACCOUNT,
        "AWS::Partition": "aws",
        "AWS::StackName": outputs["stack"],
        "AWS::URLSuffix": "amazonaws.com",
    }
    body = _resolve(bodies[0]["DashboardBody"], {**pseudo, **resources})
    cloudwatch.put_dashboard(DashboardName=name, DashboardBody=body)
    return True


def _physical_ids(stack_name: str, endpoints: config.Endpoints) -> dict[str, str]:
    cloudformation = aws.client("cloudformation", endpoints)
    found = cloudformation.describe_stack_resources(StackName=stack_name)["StackResources"]
    return {item["LogicalResourceId"]: item.get("PhysicalResourceId", "") for item in found}


def _resolve(value: Any, refs: dict[str, str]) -> Any:
    """Enough of CloudFormation's intrinsics for a dashboard body: Ref, Fn::Join, Fn::GetAtt (name-like), Fn::Sub."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return [_resolve(item, refs) for item in value]
    if isinstance(value, dict) and len(value) == 1:
        ((key, argument),) = value.items()
        if key == "Ref":
            return refs.get(argument, argument)
        if key == "Fn::Join":
            separator, parts = argument
            return str(separator).join(str(_resolve(part, refs)) for part in _resolve(parts, refs))
        if key == "Fn::GetAtt":
            logical, _attribute = argument if isinstance(argument, list) else argument.split(".", 1)
            return refs.get(logical, logical)
        if key == "Fn::Sub":
            text = argument if isinstance(argument, str) else argument[0]
            for name, replacement in refs.items():
                text = text.replace("${" + name + "}", replacement)
            return text
        if key == "Fn::Select":
            index, items = argument
            return _resolve(items, refs)[int(index)]
    if isinstance(value, dict):
        return {key: _resolve(item, refs) for key, item in value.items()}
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m local.deploy", description=__doc__.split("\n\n")[0])
    parser.add_argument("--instance", default=None)
    parser.add_argument(
        "--config", type=Path, default=DEFAULT_CONFIG, help="deployment config (default: config/local.json)"
    )
    args = parser.parse_args(argv)
    try:
        deploy(args.instance, config_file=args.config.resolve())
    except RuntimeError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
