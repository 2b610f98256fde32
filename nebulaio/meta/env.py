"""The LMDB environment: opened by the one writer (the supervisor) and by every worker.

Workers open it read-only *after* fork and read straight from the memory map; an
environment must never cross a fork. The map size is fixed up front and never changed while
readers have the file mapped, so it is huge (the file itself stays sparse).
"""

import lmdb

from nebulaio.meta.records import SYSTEM

MAP_SIZE = 1 << 40
MAX_READERS = 512
MAX_DBS = 16

BUCKETS_DB = b"buckets"
OBJECTS_DB = b"objects"
SYSTEM_DB = b"system"
UPLOADS_DB = b"uploads"
PARTS_DB = b"parts"
VERSIONS_DB = b"versions"
VKEYS_DB = b"vkeys"
NODES_DB = b"nodes"
IAM_DB = b"iam"
STATS_DB = b"stats"
REQUESTS_DB = b"requests"
REQUEST_AGES_DB = b"request_ages"
TARGETS_DB = b"targets"
EVENTS_DB = b"events"
CORE_DATABASES = (BUCKETS_DB, OBJECTS_DB, SYSTEM_DB)
DATABASES = (
    *CORE_DATABASES,
    UPLOADS_DB,
    PARTS_DB,
    VERSIONS_DB,
    VKEYS_DB,
    NODES_DB,
    IAM_DB,
    STATS_DB,
    REQUESTS_DB,
    REQUEST_AGES_DB,
    TARGETS_DB,
    EVENTS_DB,
)

APPLIED_KEY = b"applied"
TOKENS_PREFIX = b"tokens\0"
"""system db: TOKENS_PREFIX + user -> {"generation"}; Admin API tokens of an older generation are refused."""


def tokens_key(user: str) -> bytes:
    return TOKENS_PREFIX + user.encode()


def read_token_generation(txn: lmdb.Transaction, system_db: lmdb._Database, user: str) -> int:
    value = txn.get(tokens_key(user), db=system_db)
    return 0 if value is None else SYSTEM.decode_header(value)["generation"]


def raise_token_generation(txn: lmdb.Transaction, system_db: lmdb._Database, user: str) -> int:
    """Refuse every Admin API token issued to `user` so far; the new generation."""
    generation = read_token_generation(txn, system_db, user) + 1
    txn.put(tokens_key(user), SYSTEM.encode({"generation": generation}), db=system_db)
    return generation


def open_env(path: str, readonly: bool, map_size: int = MAP_SIZE) -> lmdb.Environment:
    """Open the metadata environment; the writer also creates every named database.

    NOTE: the writer commits with metasync=False: durability comes from the raft journal,
    which is replayed after a crash, and apply is idempotent by raft index.
    """
    env = lmdb.open(
        path,
        map_size=map_size,
        subdir=True,
        readonly=readonly,
        create=not readonly,
        lock=True,
        metasync=False,
        max_dbs=MAX_DBS,
        max_readers=MAX_READERS,
    )
    if not readonly:
        with env.begin(write=True) as txn:
            for name in DATABASES:
                env.open_db(name, txn=txn)
    return env


def open_databases(env: lmdb.Environment) -> tuple[lmdb._Database, lmdb._Database, lmdb._Database]:
    """Handles of the (buckets, objects, system) databases, which the writer has created."""
    return tuple(env.open_db(name, create=False) for name in CORE_DATABASES)  # type: ignore[return-value]


def read_applied(txn: lmdb.Transaction, system_db: lmdb._Database) -> int:
    value = txn.get(APPLIED_KEY, db=system_db)
    return 0 if value is None else SYSTEM.decode_header(value)["index"]


def applied_index(env: lmdb.Environment) -> int:
    """The raft index of the last batch applied to this replica (0 when none)."""
    system_db = env.open_db(SYSTEM_DB, create=False)
    with env.begin(db=system_db) as txn:
        return read_applied(txn, system_db)


def reader_check(env: lmdb.Environment) -> int:
    """Free the reader slots of dead processes; the writer calls this periodically.

    A worker killed inside a read transaction keeps its slot (and pins old pages, so the file
    grows) until this runs. Returns the number of slots freed.
    """
    return env.reader_check()
