"""The subcommands that work on an archive: verify, audit, compact, cat, replay, backfill.

Each prints progress on stderr and its report on stdout, and returns its exit code (archive_ops.cli.errors).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable
from typing import Any

from archive_ops.cli.errors import FINDINGS, OK, CliError
from archive_ops.cli.options import (
    Clients,
    Deployment,
    add_archive,
    add_deployment,
    add_group,
    add_kafka,
    add_output,
    add_range,
    add_topics,
    check_range,
    offset,
    parse_duration,
    parse_size,
    partition,
)

MAX_TARGET_BYTES = 5 * 1024**3  # a merged object is one PUT: S3 takes at most 5 GiB


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def emit(document: Any) -> None:
    print(json.dumps(document, indent=2, default=str))


def register(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    _verify_parser(commands)
    _audit_parser(commands)
    _compact_parser(commands)
    _cat_parser(commands)
    _replay_parser(commands)
    _backfill_parser(commands)


# ---------------------------------------------------------------------------------------------------------------------
# verify


def _verify_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "verify",
        help="completeness audit: archive + dead letters + given-up batches against Kafka's offsets",
        description="Per topic-partition: which expected offsets are archived, dead-lettered, missing (gaps), only in "
        "Kafka (batches the event source gave up on), duplicated or conflicting. Reads the archive objects, the "
        "dead-letter queue and the on-failure queue (without consuming them) and the broker's offsets. Exit 0 "
        "complete, 1 findings, 2 usage or connection errors.",
    )
    add_deployment(parser)
    add_archive(parser)
    parser.add_argument(
        "--topic", action="append", metavar="NAME", help="a topic (repeatable; default: the config's topics)"
    )
    add_group(parser, "consumer group whose committed offsets are expected (default: the config's, per topic)")
    parser.add_argument(
        "--dead-letter-queue-url", metavar="URL", help="default: the stack's DeadLetterQueueUrl; '' for none"
    )
    parser.add_argument(
        "--on-failure-queue-url", metavar="URL", help="default: the stack's OnFailureQueueUrl; '' for none"
    )
    parser.add_argument(
        "--expect",
        choices=["committed", "high"],
        default="committed",
        help="expected offsets end at the group's committed offset (default) or at the partition's end",
    )
    parser.add_argument(
        "--visibility-timeout",
        type=int,
        default=5,
        metavar="SECONDS",
        help="how long peeked queue messages stay hidden from other readers (default 5)",
    )
    add_kafka(parser)
    add_output(parser, ["json", "text"], "json")
    parser.set_defaults(run=run_verify)


def run_verify(args: argparse.Namespace, clients: Clients) -> int:
    from archive_ops import verify

    deployment = Deployment.from_args(args, clients)
    bucket, prefix = deployment.bucket(args), deployment.prefix(args)
    topics = deployment.topics(args)
    dead_letters = deployment.queue(args.dead_letter_queue_url, "DeadLetterQueueUrl", "--dead-letter-queue-url")
    on_failure = deployment.queue(args.on_failure_queue_url, "OnFailureQueueUrl", "--on-failure-queue-url")
    kafka = _optional_kafka(args, deployment)
    if kafka is not None and not topics:
        raise CliError("pass --topic (or --config) to compare with Kafka's offsets")
    log(f"verify s3://{bucket}/{prefix}" + (f" against Kafka {kafka.describe()}" if kafka else " (no Kafka given)"))
    result = verify.audit(
        s3=clients.client("s3"),
        bucket=bucket,
        prefix=prefix,
        sqs=clients.client("sqs") if dead_letters or on_failure else None,
        queue_url=dead_letters,
        on_failure_queue_url=on_failure,
        kafka=kafka.client_settings() if kafka else None,
        topics=topics or None,
        group=args.group,
        groups={topic: deployment.group_for(topic, args.group) or "" for topic in topics} if not args.group else None,
        expect=args.expect,
        visibility_timeout=args.visibility_timeout,
    )
    if not result["partitions"]:
        raise CliError(
            f"nothing to verify: no archive objects under s3://{bucket}/{prefix}, no queue messages and no Kafka "
            f"partitions{' for ' + ', '.join(topics) if topics else ''}: check --bucket, --prefix and --topic"
        )
    print(verify.text_summary(result) if args.output == "text" else json.dumps(result, indent=2))
    return OK if result["complete"] else FINDINGS


def _optional_kafka(args: argparse.Namespace, deployment: Deployment) -> Any:
    """The Kafka connection, or None when no servers are known at all and no Kafka flag was given."""
    from archive_ops.kafka_client import KafkaSettingsError

    try:
        return deployment.kafka(args)
    except KafkaSettingsError as error:
        kafka_flags = (
            args.bootstrap_servers,
            args.kafka_properties,
            args.security_protocol,
            args.sasl_mechanism,
            args.sasl_username,
            args.secret_arn,
            args.ssl_ca_location,
            args.ssl_certificate_location,
        )
        if "no Kafka bootstrap servers" in str(error) and not any(kafka_flags) and deployment.config is None:
            return None
        raise


# ---------------------------------------------------------------------------------------------------------------------
# audit


def _audit_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "audit",
        help="S3-only archive audit (the deployed audit's engine): gaps, duplicates, conflicts, freshness",
        description="Audits the archive from S3 alone, as the stack's scheduled audit does: per topic-partition, "
        "archived and dead-lettered offsets (from the dead-letter ledger in the bucket), gaps between them, "
        "duplicate copies, conflicting copies, pending compactions and freshness. Needs no Kafka. Exit 0 clean, 1 "
        "gaps or conflicts, 2 usage or connection errors.",
    )
    add_deployment(parser)
    add_archive(parser)
    parser.add_argument("--topic", action="append", metavar="NAME", help="a topic (repeatable; default: all topics)")
    add_output(parser, ["json", "text"], "json")
    parser.set_defaults(run=run_audit)


def run_audit(args: argparse.Namespace, clients: Clients) -> int:
    from archive_ops.archive_audit import ArchiveAuditor, AuditReport, run_count

    deployment = Deployment.from_args(args, clients)
    bucket, prefix = deployment.bucket(args), deployment.prefix(args)
    auditor = ArchiveAuditor(clients.client("s3"), bucket, prefix, log=log)
    report = AuditReport()
    for topic in args.topic or [None]:
        part = auditor.run(topic=topic)
        report.partitions.extend(part.partitions)
        report.objects_listed += part.objects_listed
        report.objects_read += part.objects_read
        report.bytes_read += part.bytes_read
        report.seconds += part.seconds
    if not report.partitions:
        raise CliError(_nothing_under(bucket, prefix, args.topic))
    if args.output == "text":
        for p in report.partitions:
            gaps = ",".join(f"{a}-{b}" for a, b in p.gaps) or "none"
            print(
                f"{p.topic}-{p.partition}: offsets {p.first_offset}..{p.last_offset}, archived {p.archived_records}, "
                f"dead-lettered {p.dead_lettered_records}, gaps {gaps} ({run_count(p.gaps)}), duplicates "
                f"{p.duplicate_offsets}, conflicts {p.conflict_offsets}, pending compactions {p.pending_compactions}"
            )
        print("CLEAN: no gaps, no conflicts" if report.clean else "FINDINGS: gaps or conflicts, see above")
    else:
        emit(report.as_dict())
    return OK if report.clean else FINDINGS


def _nothing_under(bucket: str, prefix: str, topics: Iterable[str] | None) -> str:
    which = f" of topic(s) {', '.join(topics)}" if topics else ""
    return f"no archive objects{which} under s3://{bucket}/{prefix}: check --bucket, --prefix and --topic"


# ---------------------------------------------------------------------------------------------------------------------
# compact


def _compact_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "compact",
        help="merge small archive objects into large ones and remove identical retry duplicates",
        description="Per topic-partition and partition path, merges small objects into objects up to the target "
        "size, keeping one copy of records held twice identically; copies that differ are conflicts, reported and "
        "left alone. Crash-safe: inputs are deleted only after the merged object is written and verified. Exit 0 "
        "done, 1 conflicts or failed merges, 2 usage or connection errors.",
    )
    add_deployment(parser)
    add_archive(parser)
    add_topics(parser, many=True)
    parser.add_argument(
        "--target-size",
        type=parse_size,
        default="128MiB",
        metavar="SIZE",
        help="largest merged object (default 128MiB, at most 5GiB)",
    )
    parser.add_argument(
        "--older-than", type=parse_duration, metavar="AGE", help="only objects last written before now minus AGE (2h)"
    )
    parser.add_argument(
        "--method", choices=["auto", "copy", "reencode"], default="auto", help="merge method (default auto)"
    )
    parser.add_argument("--codec", choices=["null", "deflate", "snappy", "zstandard"], help="re-encode into this codec")
    parser.add_argument("--verify-offsets", action="store_true", help="also decode offsets to verify block copies")
    parser.add_argument("--dry-run", action="store_true", help="plan and print; change nothing")
    add_output(parser, ["json", "text"], "json")
    parser.set_defaults(run=run_compact)


def run_compact(args: argparse.Namespace, clients: Clients) -> int:
    from archive_ops.compact import CompactionConfig, CompactionReport, Compactor

    if not 1024 <= args.target_size <= MAX_TARGET_BYTES:
        raise CliError(f"--target-size must be 1KiB to 5GiB (a merged object is one PUT); got {args.target_size} bytes")
    deployment = Deployment.from_args(args, clients)
    bucket, prefix = deployment.bucket(args), deployment.prefix(args)
    started = time.perf_counter()
    report = CompactionReport()
    for topic in args.topic or [None]:
        config = CompactionConfig(
            bucket=bucket,
            prefix=prefix,
            target_bytes=args.target_size,
            older_than=args.older_than,
            topic=topic,
            partitions=tuple(args.partition) if args.partition else None,
            method=args.method,
            codec=args.codec,
            dry_run=args.dry_run,
            verify_offsets=args.verify_offsets,
        )
        part = Compactor(clients.client("s3"), config, log=log).run()
        for name in ("conflicts", "redundant_deleted", "merges", "planned", "skipped", "failed"):
            getattr(report, name).extend(getattr(part, name))
        report.groups += part.groups
    if report.groups == 0:
        raise CliError(_nothing_under(bucket, prefix, args.topic))
    summary = {**report.as_dict(), "seconds": round(time.perf_counter() - started, 3)}
    if args.output == "text":
        print(
            f"{report.groups} group(s): {len(report.merges)} merge(s), {report.duplicates_removed} duplicate "
            f"copies removed, {len(report.redundant_deleted)} redundant object(s) deleted, {len(report.planned)} "
            f"planned (dry run), {len(report.conflicts)} conflict(s), {len(report.failed)} failed merge(s)"
        )
        for conflict in report.conflicts:
            print(f"  CONFLICT offset {conflict.offset}: {', '.join(conflict.keys)}")
    else:
        emit(summary)
    return FINDINGS if report.conflicts or report.failed else OK


# ---------------------------------------------------------------------------------------------------------------------
# cat


def _cat_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "cat",
        help="show archived records of one topic-partition as JSON lines or a table",
        description="Prints the archived records of one topic-partition in offset order, selected by offset and/or "
        "time range. JSON lines show key, value and header values as base64 (exact bytes; null when absent); the "
        "table shows printable UTF-8 as text and escapes everything else (backslash-x hex). Exit 2 when nothing "
        "matches.",
    )
    add_deployment(parser)
    add_archive(parser)
    add_topics(parser, many=False, required=True)
    add_range(parser)
    parser.add_argument("--max-records", type=int, metavar="N", help="stop after N records")
    add_output(parser, ["jsonl", "table"], "jsonl")
    parser.set_defaults(run=run_cat)


def run_cat(args: argparse.Namespace, clients: Clients) -> int:
    from archive_ops import cat
    from archive_ops.archive_index import list_archive
    from archive_ops.replay import Selection, partition_records

    check_range(args)
    deployment = Deployment.from_args(args, clients)
    bucket, prefix = deployment.bucket(args), deployment.prefix(args)
    s3 = clients.client("s3")
    selection = Selection(
        topic=args.topic,
        partitions=(args.partition,),
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since_ms=args.since,
        until_ms=args.until,
    )

    def lister() -> list[Any]:
        return list_archive(s3, bucket, prefix, topic=args.topic, partitions=(args.partition,))

    listed = lister()
    if not listed:
        raise CliError(_nothing_under(bucket, prefix, [f"{args.topic} partition {args.partition}"]))
    typed = [item.key for item in listed if item.ref.fingerprint is not None]
    if typed:
        raise CliError(f"{typed[0]} is a typed archive object (decoded values): cat shows raw envelope archives")
    shown = 0

    def selected() -> Iterable[dict[str, Any]]:
        nonlocal shown
        for record in partition_records(s3, bucket, lister, selection):
            if not selection.wants_time(record["timestamp"]):
                continue
            if args.max_records is not None and shown >= args.max_records:
                return
            shown += 1
            yield record

    lines = cat.table(selected()) if args.output == "table" else cat.jsonl(selected())
    for line in lines:
        print(line)
    if shown == 0:
        raise CliError(f"no archived records of {args.topic}-{args.partition} in the selected range")
    log(f"{shown} record(s)")
    return OK


# ---------------------------------------------------------------------------------------------------------------------
# replay


def _replay_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "replay",
        help="stream archived records back into a Kafka topic (needs an explicit target topic)",
        description="Produces archived records (key, value, headers, timestamp) into a Kafka topic in offset order "
        "per partition, resumable with a checkpoint. The target topic must be named: writing back into the source "
        "topic needs --into-source-topic and is announced before it starts.",
    )
    add_deployment(parser)
    add_archive(parser)
    parser.add_argument("--topic", required=True, metavar="NAME", help="the archived (source) topic")
    parser.add_argument(
        "--partition",
        type=partition,
        action="append",
        metavar="N",
        help="a source partition (repeatable; default: all)",
    )
    add_range(parser)
    parser.add_argument("--target-topic", metavar="NAME", help="the topic to produce to (required)")
    parser.add_argument(
        "--into-source-topic",
        action="store_true",
        help="produce into the source topic itself: its consumers see the records again",
    )
    parser.add_argument("--checkpoint", metavar="FILE", help="resume file, written after every confirmed batch")
    parser.add_argument("--batch-size", type=int, default=1000, metavar="N", help="records per flush and checkpoint")
    parser.add_argument(
        "--partitioning",
        choices=["same", "key"],
        default="same",
        help="same: source partition p to target partition p (default); key: the key's hash chooses",
    )
    parser.add_argument("--create-topic", action="store_true", help="create the target topic if it does not exist")
    parser.add_argument("--dry-run", action="store_true", help="count what would be sent; no Kafka needed")
    add_kafka(parser)
    parser.set_defaults(run=run_replay)


def run_replay(args: argparse.Namespace, clients: Clients) -> int:
    from pathlib import Path

    from archive_ops.replay import ReplayConfig, Replayer, Selection

    check_range(args)
    if args.into_source_topic and args.target_topic and args.target_topic != args.topic:
        raise CliError("--into-source-topic and --target-topic name different topics: pass one of them")
    target = args.topic if args.into_source_topic else args.target_topic
    if not target:
        raise CliError(
            "replay needs --target-topic NAME; writing back into the source topic "
            f"{args.topic!r} needs --into-source-topic (its consumers would see every record again)"
        )
    if target == args.topic and not args.into_source_topic:
        raise CliError(
            f"--target-topic is the source topic {args.topic!r}: pass --into-source-topic to really write into it"
        )
    deployment = Deployment.from_args(args, clients)
    bucket, prefix = deployment.bucket(args), deployment.prefix(args)
    kafka = None if args.dry_run else deployment.kafka(args)
    selection = Selection(
        topic=args.topic,
        partitions=tuple(args.partition) if args.partition else None,
        from_offset=args.from_offset,
        to_offset=args.to_offset,
        since_ms=args.since,
        until_ms=args.until,
    )
    if args.into_source_topic and not args.dry_run:
        assert kafka is not None
        log(
            f"WRITING INTO THE SOURCE TOPIC {args.topic!r} at {kafka.describe()}: archived records of s3://{bucket}/"
            f"{prefix}, partitions {', '.join(map(str, args.partition)) if args.partition else 'all'}, offsets "
            f"{_span(args.from_offset, args.to_offset)}, times {_span(args.since, args.until)}. Its consumers will "
            "see these records again."
        )
    config = ReplayConfig(
        bucket=bucket,
        prefix=prefix,
        selection=selection,
        target_topic=target,
        bootstrap_servers=kafka.bootstrap_servers if kafka else None,
        checkpoint=Path(args.checkpoint) if args.checkpoint else None,
        batch_size=args.batch_size,
        partitioning=args.partitioning,
        create_topic=args.create_topic,
        dry_run=args.dry_run,
        producer_config=kafka.client_settings() if kafka else {},
    )
    if args.batch_size < 1:
        raise CliError("--batch-size must be at least 1")
    summary = Replayer(clients.client("s3"), config, log=log).run()
    emit(summary.as_dict())
    if summary.records == 0 and not summary.resumed_from:
        raise CliError(f"nothing selected: no archived record of {args.topic!r} matches the offset and time range")
    return OK


def _span(low: int | None, high: int | None) -> str:
    return "all" if low is None and high is None else f"{low if low is not None else '...'}..{high or '...'}"


# ---------------------------------------------------------------------------------------------------------------------
# backfill


def _backfill_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = commands.add_parser(
        "backfill",
        help="read an offset range from Kafka and archive it with the function's own code",
        description="The remedy for a batch the event source gave up on, or a gap the audit reports: reads one "
        "topic-partition's offset range from Kafka (assign and seek; no consumer group, no commit unless --commit) "
        "and archives it with the archiver function's code and the deployment's settings, in batches like the event "
        "source. Safe to repeat: records already archived are recognised by the conditional writes. Fails before "
        "writing if Kafka no longer has the first offset.",
    )
    add_deployment(parser, required=True)
    parser.add_argument("--bucket", metavar="NAME", help="archive bucket (default: the stack's ArchiveBucketName)")
    parser.add_argument(
        "--dead-letter-queue-url", metavar="URL", help="where undecodable records go (default: the stack's)"
    )
    add_topics(parser, many=False, required=True)
    parser.add_argument("--from-offset", type=offset, required=True, metavar="OFFSET", help="first offset (inclusive)")
    parser.add_argument("--to-offset", type=offset, required=True, metavar="OFFSET", help="last offset (inclusive)")
    parser.add_argument(
        "--batch-size", type=int, metavar="N", help="records per batch (default: the config's eventSource.batchSize)"
    )
    add_group(parser, "consumer group to commit to with --commit (default: the config's group for the topic)")
    parser.add_argument(
        "--commit", action="store_true", help="afterwards, commit to-offset + 1 for the group if that moves it forward"
    )
    add_kafka(parser)
    parser.set_defaults(run=run_backfill)


def run_backfill(args: argparse.Namespace, clients: Clients) -> int:
    from archive_ops.backfill import Backfiller, BackfillRange
    from archiver.errors import SettingsError
    from archiver.pipeline import Archiver

    check_range(args)
    if args.from_offset < 0:
        raise CliError("--from-offset must be 0 or more")
    deployment = Deployment.from_args(args, clients)
    config = deployment.config
    assert config is not None
    if args.topic not in config.event_source.topics:
        raise CliError(f"topic {args.topic!r} is not one of the config's eventSource.topics: check --topic")
    bucket = deployment.bucket(args)
    queue = args.dead_letter_queue_url or deployment.output("DeadLetterQueueUrl", "--dead-letter-queue-url")
    try:
        settings = config.archive.settings(bucket_name=bucket, dead_letter_queue_url=queue)
    except SettingsError as error:
        raise CliError(f"the config's archive settings are invalid: {error}") from error
    kafka = deployment.kafka(args)
    archiver = Archiver(
        settings,
        s3_client=clients.client("s3"),
        sqs_client=clients.client("sqs"),
        value_clients=lambda service, **_kwargs: clients.client(service),
    )
    group = deployment.group_for(args.topic, args.group) if args.commit else None
    if args.commit and not group:
        raise CliError("--commit needs --group (or a config whose eventSource names the group)")
    log(
        f"backfill {args.topic}-{args.partition} offsets {args.from_offset}..{args.to_offset} from {kafka.describe()} "
        f"into s3://{bucket}/{settings.archive_prefix}"
    )
    backfiller = Backfiller(
        archiver,
        kafka.client_settings(),
        batch_size=args.batch_size or config.event_source.batch_size,
        commit_group=group,
        log=log,
    )
    summary = backfiller.run(BackfillRange(args.topic, args.partition, args.from_offset, args.to_offset))
    emit(summary.as_dict())
    return OK
