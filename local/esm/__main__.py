"""``python -m local.esm``: run the Kafka event-source-mapping emulator against the stack deployed to LocalStack.

Defaults come from the deployment (``.local/instances/<instance>/outputs.json``, written by ``python -m local.deploy``):
the function, the dead-letter queue as on-failure destination, and the config file's ``eventSource`` block (topics,
consumer group, batch size, batching window, retry attempts, starting position, MSK or self-managed). Every one can
be overridden with a flag. Progress goes to stdout as one JSON object per line.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from local import config, deploy, stack
from local.aws import client as aws_client
from local.esm import events
from local.esm.emulator import Emulator, EmulatorConfig
from local.esm.invokers import InProcessInvoker, Invoker, LambdaInvoker, invoke_client
from local.produce import POISON_HEADER


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m local.esm", description=__doc__.split("\n\n")[0])
    p.add_argument("--instance", default=None, help="local stack instance (default: $LOCAL_INSTANCE or 'default')")
    p.add_argument(
        "--mode",
        choices=["invoke", "in-process"],
        default="invoke",
        help="invoke the function deployed in LocalStack (default), or call handler.py in this process",
    )
    p.add_argument("--function-name", default=None, help="default: the deployed stack's function")
    p.add_argument("--topics", default=None, help="comma-separated (default: the config's eventSource.topics)")
    p.add_argument("--group-id", default=None, help="consumer group (default: the config's consumerGroupId)")
    p.add_argument("--batch-size", type=int, default=None, help="max records per invocation (default: config or 100)")
    p.add_argument("--batching-window", type=float, default=None, help="seconds (default: config or 0.5)")
    p.add_argument(
        "--max-retries",
        type=int,
        default=None,
        help="retries of a failing batch before it is discarded; -1 = forever (default: config or -1)",
    )
    p.add_argument(
        "--retry-batching",
        choices=["same", "vary"],
        default="same",
        help="retry a failed batch as the same batch (default), or collect it again from the same offsets with "
        "another size, as AWS may",
    )
    p.add_argument("--retry-seed", type=int, default=None, help="seed of --retry-batching vary's batch sizes")
    p.add_argument(
        "--retry-backoff-max",
        type=float,
        default=10.0,
        help="seconds: the retry backoff doubles from 0.5 s up to this (default 10)",
    )
    p.add_argument(
        "--session-timeout-ms",
        type=int,
        default=6000,
        help="consumer-group session timeout: how long a killed emulator keeps its partitions (default 6000, "
        "Apache Kafka's minimum by default)",
    )
    p.add_argument("--on-failure-queue-url", default=None, help="default: the deployed on-failure queue")
    p.add_argument("--format", choices=["msk", "self-managed"], default=None, help="event format (default: config)")
    p.add_argument("--starting-position", choices=["TRIM_HORIZON", "LATEST"], default=None)
    p.add_argument(
        "--until-idle",
        type=float,
        default=None,
        help="exit once all assigned partitions are committed and no record came for this many seconds",
    )
    p.add_argument("--progress-interval", type=float, default=5.0, help="seconds between progress lines")
    p.add_argument("--no-metrics", action="store_true", help="do not PutMetricData the function's EMF metrics")
    p.add_argument(
        "--tombstones",
        choices=["omit", "null"],
        default="omit",
        help="how a null value appears in the event: left out (as AWS sends it) or JSON null",
    )
    p.add_argument(
        "--poison-header",
        nargs="?",
        const=POISON_HEADER,
        default=None,
        help=f"TEST HOOK: send records carrying this header (default {POISON_HEADER}) with a value that "
        "is not base64, as a broker never could, to exercise the function's dead-letter path",
    )
    p.add_argument(
        "--pause-before-commit",
        type=float,
        default=0.0,
        help="TEST HOOK: seconds between a successful invocation and its commit",
    )
    p.add_argument(
        "--freeze-before-first-commit",
        action="store_true",
        help="TEST HOOK: stop this process (SIGSTOP) after its first successful invocation, before that commit; "
        "it prints 'freezing' first, and goes on when sent SIGCONT",
    )
    return p


def build(args: argparse.Namespace) -> Emulator:
    instance = args.instance or stack.default_instance()
    state = stack.load_state(instance)
    bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS") or (state.kafka_url if state else None)
    aws_endpoint = os.environ.get("AWS_ENDPOINT_URL") or (state.localstack_url if state else None)
    if not bootstrap or not aws_endpoint:
        raise stack.StackError(
            "no broker or LocalStack known: run `make local-up` or set KAFKA_BOOTSTRAP_SERVERS and AWS_ENDPOINT_URL"
        )
    endpoints = config.Endpoints(kafka_bootstrap=bootstrap, aws_endpoint=aws_endpoint.rstrip("/"))
    outputs = deploy.load_outputs(instance)
    source_config: dict[str, Any] = outputs.get("event_source") or {}
    function_name = args.function_name or outputs["function"]

    lambda_client = invoke_client(endpoints)
    invoker: Invoker
    if args.mode == "in-process":
        # The handler's boto3 clients read these, as they would inside LocalStack.
        os.environ.update(endpoints.aws_env())
        invoker = InProcessInvoker.from_deployed(function_name, lambda_client)
    else:
        invoker = LambdaInvoker(function_name, lambda_client)

    topics = tuple(t for t in (args.topics.split(",") if args.topics else source_config.get("topics", [])) if t)
    window = args.batching_window
    if window is None:
        window = float(source_config["batchingWindowSeconds"]) if "batchingWindowSeconds" in source_config else 0.5
    retries = args.max_retries
    if retries is None:
        retries = int(source_config.get("retryAttempts", -1) if source_config.get("retryAttempts") is not None else -1)
    position = args.starting_position or source_config.get("startingPosition", "TRIM_HORIZON")
    event_format: events.EventFormat = args.format or ("msk" if outputs.get("source") == "msk" else "self-managed")
    emulator_config = EmulatorConfig(
        bootstrap_servers=bootstrap,
        topics=topics,
        group_id=args.group_id or source_config.get("consumerGroupId") or "kafka-s3-archiver-local",
        batch_size=args.batch_size or int(source_config.get("batchSize", 100)),
        batching_window_s=window,
        max_retries=retries,
        on_failure_queue_url=args.on_failure_queue_url or outputs.get("on_failure_queue_url"),
        source=events.EventSource(
            format=event_format,
            bootstrap_servers=bootstrap,
            cluster_arn=f"arn:aws:kafka:{endpoints.region}:{config.LOCAL_ACCOUNT}:cluster/local/"
            "00000000-0000-0000-0000-000000000000-1",
            tombstones=args.tombstones,
            poison_header=args.poison_header,
        ),
        starting_position="latest" if position == "LATEST" else "earliest",
        until_idle_s=args.until_idle,
        progress_interval_s=args.progress_interval,
        pause_before_commit_s=args.pause_before_commit,
        freeze_before_first_commit=args.freeze_before_first_commit,
        retry_backoff_max_s=args.retry_backoff_max,
        retry_batching=args.retry_batching,
        retry_seed=args.retry_seed,
        session_timeout_ms=args.session_timeout_ms,
    )
    return Emulator(
        emulator_config,
        invoker,
        sqs_client=aws_client("sqs", endpoints, retries={"max_attempts": 2}, connect_timeout=3, read_timeout=10),
        cloudwatch_client=None if args.no_metrics else aws_client("cloudwatch", endpoints, connect_timeout=3),
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        emulator = build(args)
    except (RuntimeError, ValueError, KeyError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    emulator.install_signal_handlers()
    try:
        emulator.run()
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
