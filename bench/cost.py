"""Cost per TB archived: this Lambda (from the measured throughput) next to Firehose and MSK Connect list prices.

All prices are on-demand list prices for us-east-1, as published on the pages in ``PRICES`` and read on
``PRICES_SEEN``. S3 storage is left out: every option stores about the same bytes. The arithmetic is printed by
``print_model`` and written to results.json, so every figure in docs/benchmarks.md can be re-derived.
"""

from __future__ import annotations

from typing import Any

from archiver.settings import DEFAULT_CODEC

PRICES_SEEN = "2026-11-26"
TB = 10**12  # "per TB archived" = 10^12 bytes of decoded record payload (keys, values, headers)
GIB = 2**30  # AWS bills data "GB" as GiB
PRICES: dict[str, dict[str, Any]] = {
    "lambda_arm64_gb_s": {
        "usd": 0.0000133334,
        "unit": "GB-second, arm64, first 7.5 billion GB-s per month",
        "source": "https://aws.amazon.com/lambda/pricing/",
    },
    "lambda_requests": {"usd": 0.20 / 1e6, "unit": "request", "source": "https://aws.amazon.com/lambda/pricing/"},
    "s3_put": {
        "usd": 0.005 / 1000,
        "unit": "PUT request, S3 Standard",
        "source": "https://aws.amazon.com/s3/pricing/",
    },
    "sqs_request": {
        "usd": 0.40 / 1e6,
        "unit": "standard-queue request; each 64 KB chunk of a request's payload is billed as one request",
        "source": "https://aws.amazon.com/sqs/pricing/",
    },
    "firehose_msk_ingest_gb": {
        "usd": 0.055,
        "unit": (
            "GB ingested from an MSK source (first 500 TB/month; billed on max(ingested, delivered), no 5 KB rounding)"
        ),
        "source": "https://aws.amazon.com/firehose/pricing/",
    },
    "firehose_format_conversion_gb": {
        "usd": 0.018,
        "unit": "GB converted (JSON to Parquet/ORC; Firehose cannot write Avro)",
        "source": "https://aws.amazon.com/firehose/pricing/",
    },
    "msk_connect_mcu_hour": {
        "usd": 0.11,
        "unit": "MCU-hour (1 MCU = 1 vCPU + 4 GiB), billed while the connector runs",
        "source": "https://aws.amazon.com/msk/pricing/",
    },
}

# Modelling assumptions, each stated in docs/benchmarks.md.
LAMBDA_MEMORY_MB = 1024  # infra's default memoryMiB
FULL_VCPU_MB = 1769  # Lambda allocates one full vCPU at 1,769 MB and CPU in proportion below that
ARM_SPEED_VS_HOST = 1.0  # one Graviton core assumed as fast as one core of the benchmark host (not measured)
S3_WAIT_S_PER_BATCH = 0.100  # assumed wall time waiting on parallel S3 PUTs per batch (not CPU; billed anyway)
POISON_SHARE = 0.001  # dead-letter share used for the SQS line (0.1% of records)
MSK_CONNECT_MB_S_PER_MCU = 10.0  # assumed sustained S3-sink throughput of one MCU (Avro, compressed); not measured
MSK_CONNECT_MIN_MCUS = 1  # the smallest always-on connector: 1 worker x 1 MCU
HOURS_PER_MONTH = 730


def price(name: str) -> float:
    value: float = PRICES[name]["usd"]
    return value


def lambda_per_tb(row: dict[str, Any]) -> dict[str, Any]:
    """One value size: batches per TB, billed GB-s, requests, PUTs, and dollars, from the measured batch time."""
    batches = TB / row["payload_bytes"]
    cpu_s = row["best_s"] / ARM_SPEED_VS_HOST
    cpu_share = min(1.0, LAMBDA_MEMORY_MB / FULL_VCPU_MB)
    memory_gb = LAMBDA_MEMORY_MB / 1024
    compute_s = cpu_s / cpu_share
    compute_gb_s = batches * memory_gb * compute_s
    wait_gb_s = batches * memory_gb * S3_WAIT_S_PER_BATCH
    puts = batches * row["objects"]
    records = batches * row["records"]
    # A dead letter carries the record in base64 inside JSON (about 4/3 of its bytes plus ~600 B of fields); SQS
    # bills each SendMessageBatch per 64 KB of payload, and the archiver sends at most 10 messages per batch.
    letters = records * POISON_SHARE
    letter_bytes = row["payload_bytes"] / row["records"] * 4 / 3 + 600
    sqs_requests = max(letters / 10, letters * letter_bytes / (64 * 1024))
    usd = {
        "compute": compute_gb_s * price("lambda_arm64_gb_s"),
        "s3_wait": wait_gb_s * price("lambda_arm64_gb_s"),
        "requests": batches * price("lambda_requests"),
        "s3_puts": puts * price("s3_put"),
        "sqs": sqs_requests * price("sqs_request"),
    }
    return {
        "value_size": row["value_size"],
        "records_per_batch": row["records"],
        "payload_bytes_per_batch": row["payload_bytes"],
        "batch_cpu_s": cpu_s,
        "batches_per_tb": batches,
        "billed_s_per_batch": compute_s + S3_WAIT_S_PER_BATCH,
        "compute_gb_s_per_tb": compute_gb_s,
        "wait_gb_s_per_tb": wait_gb_s,
        "puts_per_tb": puts,
        "sqs_requests_per_tb": sqs_requests,
        "usd_per_tb": usd,
        "total_usd_per_tb": sum(usd.values()),
    }


def model(results: dict[str, Any]) -> dict[str, Any]:
    rows = [row for row in results["throughput"] if row["codec"] == DEFAULT_CODEC and row["variant"] == "ours/default"]
    per_size = [lambda_per_tb(row) for row in rows]
    focus = next((item for item in per_size if item["value_size"] == 1_000), per_size[0])
    gib_per_tb = TB / GIB
    firehose = {
        "gib_per_tb": gib_per_tb,
        "ingest_usd": gib_per_tb * price("firehose_msk_ingest_gb"),
        "conversion_usd": gib_per_tb * price("firehose_format_conversion_gb"),
    }
    firehose["total_usd_per_tb"] = firehose["ingest_usd"] + firehose["conversion_usd"]
    mcu_hours = TB / (MSK_CONNECT_MB_S_PER_MCU * 1e6) / 3600
    msk_connect = {
        "mcu_hours_per_tb": mcu_hours,
        "usd_per_tb_at_full_use": mcu_hours * price("msk_connect_mcu_hour"),
        "floor_usd_per_month": MSK_CONNECT_MIN_MCUS * HOURS_PER_MONTH * price("msk_connect_mcu_hour"),
    }
    return {
        "prices": PRICES,
        "prices_seen": PRICES_SEEN,
        "assumptions": {
            "lambda_memory_mb": LAMBDA_MEMORY_MB,
            "full_vcpu_mb": FULL_VCPU_MB,
            "arm_speed_vs_host": ARM_SPEED_VS_HOST,
            "s3_wait_s_per_batch": S3_WAIT_S_PER_BATCH,
            "poison_share": POISON_SHARE,
            "msk_connect_mb_s_per_mcu": MSK_CONNECT_MB_S_PER_MCU,
            "codec": DEFAULT_CODEC,
        },
        "lambda_by_value_size": per_size,
        "lambda": {
            "value_size": focus["value_size"],
            "compute_usd_per_tb": focus["usd_per_tb"]["compute"],
            "total_usd_per_tb": focus["total_usd_per_tb"],
        },
        "firehose": firehose,
        "msk_connect": msk_connect,
    }


def print_model(cost: dict[str, Any]) -> None:
    a = cost["assumptions"]
    p = {name: item["usd"] for name, item in cost["prices"].items()}
    print(f"Cost per TB of payload (us-east-1 list prices seen {cost['prices_seen']}):")
    print(
        f"  Lambda arm64 at {a['lambda_memory_mb']} MB = {min(1, a['lambda_memory_mb'] / a['full_vcpu_mb']):.3f} vCPU; "
        f"GB-s ${p['lambda_arm64_gb_s']:.10f}, request ${p['lambda_requests'] * 1e6:.2f}/M, "
        f"PUT ${p['s3_put'] * 1000:.3f}/1000, SQS ${p['sqs_request'] * 1e6:.2f}/M"
    )
    for item in cost["lambda_by_value_size"]:
        usd = item["usd_per_tb"]
        print(
            f"  {item['value_size']:>6} B values: {item['batches_per_tb']:,.0f} batches/TB x "
            f"{item['batch_cpu_s'] * 1e3:.1f} ms CPU / {min(1, a['lambda_memory_mb'] / a['full_vcpu_mb']):.3f} vCPU "
            f"x {a['lambda_memory_mb'] / 1024:.0f} GB = {item['compute_gb_s_per_tb']:,.0f} GB-s "
            f"-> compute ${usd['compute']:.3f}; "
            f"+ S3 wait ${usd['s3_wait']:.3f} + requests ${usd['requests']:.3f} + PUTs ${usd['s3_puts']:.3f} "
            f"({item['puts_per_tb']:,.0f}) + SQS ${usd['sqs']:.3f} = ${item['total_usd_per_tb']:.2f}/TB"
        )
    f = cost["firehose"]
    print(
        f"  Firehose (MSK source + format conversion): {f['gib_per_tb']:.1f} GiB x (${p['firehose_msk_ingest_gb']} + "
        f"${p['firehose_format_conversion_gb']}) = ${f['total_usd_per_tb']:.2f}/TB"
    )
    m = cost["msk_connect"]
    print(
        f"  MSK Connect S3 sink: 10^12 B / {a['msk_connect_mb_s_per_mcu']:.0f} MB/s per MCU = "
        f"{m['mcu_hours_per_tb']:.1f} MCU-h x ${p['msk_connect_mcu_hour']} = "
        f"${m['usd_per_tb_at_full_use']:.2f}/TB at full use, "
        f"plus a floor of ${m['floor_usd_per_month']:.0f}/month for 1 MCU always on"
    )
