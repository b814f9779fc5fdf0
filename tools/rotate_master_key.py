"""`make rotate-master-key`: a new KMS master key, and every data key re-wrapped under it, while the API serves.

    python -m tools.rotate_master_key [--key-file PATH] [--retire] [--batch 500]

1. adds a fresh 256-bit master key to the key file and makes it active (an atomic rename; every API process
   re-reads the file when it changes, so new secrets are sealed with the new key from then on);
2. re-wraps the data key of every record still wrapped by another master key (miner_pools and
   exchange_credentials), in batches, each row updated only if it is unchanged since it was read (a row the
   API rewrote meanwhile is simply read again), until none is left. Ciphertexts are never touched: only
   wrapped_key and master_key_id change;
3. with --retire, removes the old master keys from the file once nothing names them.

A reader that meets a key id it does not know re-reads the key file, so records re-wrapped by this tool open
in every process at once. Exit codes: 0 done, 1 a record that would not re-wrap (named), 2 cannot run.
Connects with ADMIN_DATABASE_URL (the sealed tables are per tenant under RLS).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import psycopg2

from app.adapters.kms import (
    DEFAULT_KEY_FILE,
    KeyFileKms,
    KmsError,
    SealedSecret,
    ensure_key_file,
    new_master_key_id,
    read_key_file,
    write_key_file,
)
from tools import db

# table -> its primary key columns
SEALED_TABLES = {"miner_pools": ("tenant_id", "miner_id"), "exchange_credentials": ("tenant_id", "user_id", "exchange")}


def add_active_key(path: Path) -> tuple[str, list[str]]:
    """Add a new master key and make it active; returns (new id, the ids that were there before)."""
    ensure_key_file(path)
    keys, _ = read_key_file(path)
    key_id = new_master_key_id()
    while key_id in keys:
        key_id = new_master_key_id()
    write_key_file(path, {**keys, key_id: os.urandom(32)}, key_id)
    return key_id, sorted(keys)


def rewrap_table(conn: psycopg2.extensions.connection, kms: KeyFileKms, table: str, pk: tuple[str, ...],
                 batch: int) -> int:
    """Re-wrap every record of `table` not under the active key; returns how many were re-wrapped."""
    active = kms.active_key_id
    where_pk = " AND ".join(f"{c} = %s" for c in pk)
    done = 0
    while True:
        with conn, conn.cursor() as cur:
            cur.execute(f"""SELECT {', '.join(pk)}, master_key_id, wrapped_key FROM {table}
                             WHERE master_key_id IS NOT NULL AND master_key_id <> %s LIMIT %s""", (active, batch))
            rows = cur.fetchall()
            if not rows:
                return done
            for row in rows:
                ids, old_key_id, wrapped = row[:len(pk)], row[len(pk)], bytes(row[len(pk) + 1])
                # Only the data key is re-wrapped; nonce and ciphertext are irrelevant to it.
                fresh = kms.rewrap(SealedSecret(old_key_id, wrapped, b"", b""))
                cur.execute(f"""UPDATE {table} SET master_key_id = %s, wrapped_key = %s
                                 WHERE {where_pk} AND master_key_id = %s AND wrapped_key = %s""",
                            (fresh.master_key_id, fresh.wrapped_key, *ids, old_key_id, wrapped))
                done += cur.rowcount


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Rotate the KMS master key and re-wrap every data key.")
    parser.add_argument("--key-file", default=os.environ.get("KMS_KEY_FILE") or str(DEFAULT_KEY_FILE))
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--retire", action="store_true", help="drop the old master keys from the file afterwards")
    args = parser.parse_args(argv)
    if os.environ.get("KMS_MASTER_KEYS"):
        print("rotate-master-key: KMS_MASTER_KEYS is set (keys from the environment); rotate them there",
              file=sys.stderr)
        return 2
    path = Path(args.key_file)
    started = time.monotonic()
    try:
        new_id, old_ids = add_active_key(path)
        print(f"master key {new_id} added and active in {path} (previous: {', '.join(old_ids) or 'none'})")
        kms = KeyFileKms(path)
        conn = db.connect(db.admin_url())
        try:
            total = sum(rewrap_table(conn, kms, table, pk, args.batch) for table, pk in SEALED_TABLES.items())
            with conn, conn.cursor() as cur:
                left = 0
                for table in SEALED_TABLES:
                    cur.execute(f"SELECT count(*) FROM {table} WHERE master_key_id IS NOT NULL "
                                f"AND master_key_id <> %s", (new_id,))
                    left += cur.fetchone()[0]
        finally:
            conn.close()
    except KmsError as exc:
        print(f"rotate-master-key: {exc}", file=sys.stderr)
        return 1
    except psycopg2.Error as exc:
        print(f"rotate-master-key: {exc}".strip(), file=sys.stderr)
        return 2
    print(f"re-wrapped {total} data key(s) in {time.monotonic() - started:.2f} s; {left} left under old keys")
    if args.retire and left == 0:
        keys, active = read_key_file(path)
        write_key_file(path, {active: keys[active]}, active)
        print(f"retired {', '.join(old_ids) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
