"""What server-side encryption costs: `python -m benchmarks.encryption [--seconds S] [--large-ops N]`.

One node; PUT and GET of 4 KiB objects (for `--seconds` each, from `--threads` boto3 clients)
and of 64 MiB objects (`--large-ops` each, one at a time) as plain objects, SSE-S3 and SSE-C,
modes interleaved on the same node, each figure also shown as a ratio to plain's. Clients skip
optional checksums so the client's own hashing weighs the same in every mode.
"""

from __future__ import annotations

import argparse
import os
import threading
import time

import boto3
from botocore.config import Config

from benchmarks.load import MIB
from benchmarks.peers import HOST, NebulaIO

SMALL_SIZE = 4 << 10
LARGE_SIZE = 64 * MIB
BUCKET = "bench-sse"
KEYS = 200
"""Distinct 4 KiB keys each client writes over and over."""
CUSTOMER_KEY = os.urandom(32)
MODES = {
    "plain": ({}, {}),
    "SSE-S3": ({"ServerSideEncryption": "AES256"}, {}),
    "SSE-C": (
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CUSTOMER_KEY},
        {"SSECustomerAlgorithm": "AES256", "SSECustomerKey": CUSTOMER_KEY},
    ),
}


class EncryptingNode(NebulaIO):
    name = "nebulaio"
    settings = {"NEBULAIO_SSE_C_OVER_HTTP": "true"}


def client(target: NebulaIO):
    return boto3.client(
        "s3",
        endpoint_url=f"http://{HOST}:{target.port}",
        aws_access_key_id=target.access_key,
        aws_secret_access_key=target.secret_key,
        region_name="us-east-1",
        config=Config(
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            max_pool_connections=4,
            retries={"max_attempts": 1},
        ),
    )


def small_rate(clients: list, operation: str, mode: str, seconds: float, written: list[int]) -> float:
    """Operations a second over `seconds` from every client at once. A PUT phase counts in
    `written` the keys each client wrote; a GET phase reads those keys."""
    put_args, get_args = MODES[mode]
    body = os.urandom(SMALL_SIZE)
    counts = [0] * len(clients)
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        s3 = clients[index]
        n = 0
        while time.monotonic() < deadline:
            key = f"{mode}/small/{index}/{n % KEYS if operation == 'PUT' else n % written[index]}"
            if operation == "PUT":
                s3.put_object(Bucket=BUCKET, Key=key, Body=body, **put_args)
            else:
                s3.get_object(Bucket=BUCKET, Key=key, **get_args)["Body"].read()
            n += 1
        counts[index] = n
        if operation == "PUT":
            written[index] = min(n, KEYS)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(clients))]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.monotonic() - started)


def large_rate(s3, operation: str, mode: str, ops: int, body: bytes) -> float:
    """MiB a second of `ops` 64 MiB transfers, one at a time."""
    put_args, get_args = MODES[mode]
    started = time.monotonic()
    for n in range(ops):
        key = f"{mode}/large/{n}"
        if operation == "PUT":
            s3.put_object(Bucket=BUCKET, Key=key, Body=body, **put_args)
        else:
            got = s3.get_object(Bucket=BUCKET, Key=key, **get_args)["Body"]
            while got.read(MIB):
                pass
    return ops * LARGE_SIZE / MIB / (time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds of each 4 KiB phase")
    parser.add_argument("--threads", type=int, default=8, help="boto3 clients of the 4 KiB phases")
    parser.add_argument("--large-ops", type=int, default=3, help="64 MiB transfers of each large phase")
    args = parser.parse_args()
    large_body = os.urandom(LARGE_SIZE)
    rows: dict[str, dict[str, float]] = {}
    with EncryptingNode() as target:
        target.create_bucket(BUCKET)
        clients = [client(target) for _ in range(args.threads)]
        written = {mode: [0] * len(clients) for mode in MODES}
        for operation in ("PUT", "GET"):
            for mode in MODES:
                rows.setdefault(f"4 KiB {operation} (ops/s)", {})[mode] = small_rate(
                    clients, operation, mode, args.seconds, written[mode]
                )
            for mode in MODES:
                rows.setdefault(f"64 MiB {operation} (MiB/s)", {})[mode] = large_rate(
                    clients[0], operation, mode, args.large_ops, large_body
                )
    names = list(MODES)
    print(
        f"{'':24}" + "".join(f"{name:>12}" for name in names) + "".join(f"{name + '/plain':>16}" for name in names[1:])
    )
    for row, figures in rows.items():
        ratios = "".join(f"{figures[name] / figures['plain']:>16.2f}" for name in names[1:])
        print(f"{row:24}" + "".join(f"{figures[name]:>12.1f}" for name in names) + ratios)


if __name__ == "__main__":
    main()
