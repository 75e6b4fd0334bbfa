"""``kafka-s3-archiver``: the one operator command (pyproject console script).

Exit codes, the same for every subcommand: 0 success, 1 findings (gaps, offsets only in Kafka, conflicts, failed
merges), 2 usage, configuration or connection errors, each explained on one line without a traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from archive_ops.cli import cdk, commands
from archive_ops.cli.errors import ERROR, explain
from archive_ops.cli.options import Clients

PROG = "kafka-s3-archiver"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Operate a Kafka-to-S3 Avro archive: verify and audit it, compact it, look at records, replay "
        "them into Kafka, backfill ranges from Kafka, and synthesize or deploy the stack. Exit codes: 0 success, "
        "1 findings (gaps, offsets only in Kafka, conflicts), 2 usage, configuration or connection errors. AWS "
        "access uses the standard configuration (AWS_PROFILE, AWS_REGION, AWS_ENDPOINT_URL).",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    commands.register(subcommands)
    cdk.register(subcommands)
    return parser


def main(argv: Sequence[str] | None = None, *, clients: Clients | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        code: int = args.run(args, clients or Clients())
    except KeyboardInterrupt:
        print(f"{PROG} {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        message = explain(error)
        if message is None:
            raise  # a bug: keep its traceback
        print(f"{PROG} {args.command}: error: {message}", file=sys.stderr)
        return ERROR
    return code


def entry_point() -> None:
    sys.exit(main())
