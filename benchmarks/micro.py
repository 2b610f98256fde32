"""In-process costs of the S3 hot path's pieces: `python -m benchmarks.micro`.

End-to-end figures come from `benchmarks.run`; these say where a request's CPU goes
inside NebulaIO itself (best of several runs, CPU time).
"""

import hashlib
import itertools
import tempfile
import time
import timeit
from types import SimpleNamespace

from botocore.auth import S3SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from nebulaio.meta import Applier, MetaReader, open_env
from nebulaio.s3 import sigv4, xml
from nebulaio.s3.accesslog import AccessLog, format_record
from nebulaio.s3.request import S3Request, headers_of

ACCESS, SECRET = "bench", "bench-secret"
LIST_KEYS = 100_000
PAGE = 1000


def best_per_call(call, number: int) -> float:
    return min(timeit.repeat(call, number=number, repeat=5, timer=time.process_time)) / number


def signed_get() -> dict:
    request = AWSRequest(
        method="GET",
        url="http://127.0.0.1:9000/bucket/photos/2024/cat.jpg",
        headers={"x-amz-content-sha256": "UNSIGNED-PAYLOAD"},
    )
    S3SigV4Auth(Credentials(ACCESS, SECRET), "s3", "us-east-1").add_auth(request)
    environ = {"HTTP_" + k.upper().replace("-", "_"): v for k, v in request.headers.items()}
    environ["HTTP_HOST"] = "127.0.0.1:9000"
    return environ


def record(key: str, n: int) -> dict:
    return {
        "key": key,
        "vid": f"v{n}",
        "size": 4096,
        "etag": hashlib.md5(key.encode()).hexdigest(),
        "mtime": 1_700_000_000_000 + n,
        "ctype": "binary/octet-stream",
        "headers": {},
        "meta": {},
        "checksums": {},
        "inline": True,
    }


def main() -> None:
    environ = signed_get()
    headers = headers_of(environ)
    now = time.time()
    authenticate = lambda: sigv4.authenticate(  # noqa: E731
        "GET", "/bucket/photos/2024/cat.jpg", "", headers, {ACCESS: SECRET}.get, now
    )
    assert authenticate() is not None
    print(f"SigV4 header auth, GET:            {best_per_call(authenticate, 2000) * 1e6:8.1f} µs")
    print(f"request headers from environ:      {best_per_call(lambda: headers_of(environ), 2000) * 1e6:8.1f} µs")

    with tempfile.TemporaryDirectory() as directory:
        env = open_env(directory, readonly=False, map_size=1 << 32)
        applier = Applier(env, lambda *_: None)
        index = itertools.count(1)
        create = {"op": "bucket.create", "bucket": "big", "owner": "o", "created": 1, "region": "us-east-1"}
        applier.apply_batch(next(index), [(create, None)])
        keys = [f"g{n // 1000:03d}/{n % 1000:04d}" for n in range(LIST_KEYS)]
        for start in range(0, LIST_KEYS, 10_000):
            batch = [
                ({"op": "object.put", "bucket": "big", "record": record(key, n)}, b"")
                for n, key in enumerate(keys[start : start + 10_000], start)
            ]
            applier.apply_batch(next(index), batch)
        reader = MetaReader(env)
        first = lambda: reader.list_objects("big", max_keys=PAGE)  # noqa: E731
        last = lambda: reader.list_objects("big", after=keys[-PAGE - 1], max_keys=PAGE)  # noqa: E731
        grouped = lambda: reader.list_objects("big", delimiter="/", max_keys=PAGE)  # noqa: E731
        print(f"LMDB 1,000-key page, start of 100k: {best_per_call(first, 20) * 1e3:8.2f} ms")
        print(f"LMDB 1,000-key page, end of 100k:   {best_per_call(last, 20) * 1e3:8.2f} ms")
        print(f"LMDB delimiter page, 100 groups:    {best_per_call(grouped, 20) * 1e3:8.2f} ms")
        page = first()
        render = lambda: xml.list_objects_v2("big", "", "", PAGE, True, page, None, "t", None, None)  # noqa: E731
        print(f"ListObjectsV2 XML, 1,000 entries:   {best_per_call(render, 20) * 1e3:8.2f} ms")
        access_log_costs(applier, next(index), reader, environ)
        env.close()


def access_log_costs(applier, raft_index: int, reader, environ: dict) -> None:
    """What server access logging adds to a request: reading the bucket's setting, and with
    logging on, queueing the record; formatting happens in the delivering thread."""
    logging = {"bucket": "big", "prefix": "logs/", "partitioned": None}
    configure = {"op": "bucket.configure", "bucket": "logged", "setting": "logging", "value": logging}
    create = {"op": "bucket.create", "bucket": "logged", "owner": "o", "created": 1, "region": "us-east-1"}
    applier.apply_batch(raft_index, [(create, None), (configure, None)])
    # Never started: the records stay queued, nothing is delivered.
    access_log = AccessLog(SimpleNamespace(reader=reader), "us-east-1", 3600, 1 << 30)
    environ = dict(environ, REQUEST_METHOD="GET", SERVER_PROTOCOL="HTTP/1.1", REMOTE_ADDR="127.0.0.1")
    for bucket in ("big", "logged"):
        request = S3Request(dict(environ, RAW_URI=f"/{bucket}/photos/2024/cat.jpg"), "0123456789ABCDEF", ())
        call = lambda request=request: access_log.record(request, "GetObject", 200, None, 4096, 4096, 0.001)  # noqa: E731
        label = "logging on, record queued" if bucket == "logged" else "logging off"
        print(f"access log, {label + ':':26s} {best_per_call(call, 20000) * 1e6:7.1f} µs")
    queued = access_log._queue[0]
    print(f"access log, formatting one record:  {best_per_call(lambda: format_record(queued), 20000) * 1e6:7.1f} µs")


if __name__ == "__main__":
    main()
