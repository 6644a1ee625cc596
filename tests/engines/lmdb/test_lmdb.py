"""LMDB-only behaviour: files on disk, several stores and processes on one environment,
engine limits mapped to clear Strato errors. The shared contract lives in tests/contract/online.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import lmdb
import pydantic
import pytest

from strato.errors import BackendFailure, BackendUnavailable, ConfigError
from strato.online.backends.lmdb import LMDBOnlineStore, LMDBOptions
from strato.online.codec import HEADER

from . import harness


def v(event: int, payload: bytes = b"") -> bytes:
    return HEADER.pack(event, 0) + payload


def options(tmp_path: Path, **overrides: Any) -> LMDBOptions:
    return LMDBOptions(**(harness.options(tmp_path) | overrides))


def run_python(code: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60, check=True, **kwargs
    )


def test_option_defaults_and_validation() -> None:
    defaults = LMDBOptions()
    assert (defaults.path, defaults.map_size_gb, defaults.sync) == (".strato/online", 64.0, True)
    for bad in ({"map_size_gb": 0}, {"map_size_gb": -1}, {"max_readers": 0}, {"paht": "x"}):
        with pytest.raises(pydantic.ValidationError):
            LMDBOptions(**bad)


def test_durable_default_persists_across_close_and_open(tmp_path: Path) -> None:
    opts = LMDBOptions(path=str(tmp_path / "a" / "b" / "online"))  # nested, missing directories are created
    with LMDBOnlineStore.open(opts, project="p") as store:
        store.write("t", [b"k"], [v(1, b"kept")])
        store.write("gone", [b"k"], [v(1)])
        store.drop("gone")
    assert (tmp_path / "a" / "b" / "online" / "data.mdb").is_file()
    with LMDBOnlineStore.open(opts, project="p") as store:
        assert store.read("t", [b"k"]) == [v(1, b"kept")]
        assert store.read("gone", [b"k"]) == [None]


def test_stores_on_one_path_share_one_environment(tmp_path: Path) -> None:
    opts = options(tmp_path)
    a = LMDBOnlineStore.open(opts, project="a")
    # The same directory spelled differently is the same environment, not a second open.
    same_dir = LMDBOptions(**(opts.model_dump() | {"path": str(tmp_path / "x" / ".." / "online")}))
    (tmp_path / "x").mkdir()
    b = LMDBOnlineStore.open(same_dir, project="b")
    a.write("t", [b"k"], [v(1, b"a")])
    b.write("t", [b"k"], [v(1, b"b")])
    a.close()
    assert b.read("t", [b"k"]) == [v(1, b"b")]
    with pytest.raises(lmdb.Error, match="already open"):
        lmdb.open(opts.path)  # b still holds the environment
    b.close()
    lmdb.open(opts.path).close()  # the last close released it
    with LMDBOnlineStore.open(opts, project="a") as again:
        assert again.read("t", [b"k"]) == [v(1, b"a")]


def test_same_path_with_other_options_is_refused(tmp_path: Path) -> None:
    with (
        LMDBOnlineStore.open(options(tmp_path), project="p"),
        pytest.raises(ConfigError, match="already open in this process with other options"),
    ):
        LMDBOnlineStore.open(options(tmp_path, sync=True), project="q")


def test_path_that_is_a_file_is_a_backend_failure(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(BackendFailure, match="cannot create the directory"):
        LMDBOnlineStore.open(LMDBOptions(path=str(tmp_path / "file")), project="p")


def test_map_full_is_a_clear_failure_and_writes_nothing(tmp_path: Path) -> None:
    with LMDBOnlineStore.open(options(tmp_path, map_size_gb=2 / 1024), project="p") as store:  # 2 MiB
        store.write("t", [b"first"], [v(1)])
        keys = [i.to_bytes(4, "big") for i in range(3000)]
        with pytest.raises(BackendFailure, match=r"full \(online.map_size_gb = 0.00195312\).*Raise online.map_size_gb"):
            store.write("t", keys, [v(1, bytes(1000))] * len(keys))
        assert store.read("t", [b"first", keys[0], keys[-1]]) == [v(1), None, None]
        assert store.write("t", [b"second"], [v(2)]) == 1  # the failed transaction left the store usable


def test_a_key_longer_than_lmdb_allows(tmp_path: Path) -> None:
    with LMDBOnlineStore.open(options(tmp_path), project="p") as store:
        with pytest.raises(BackendFailure, match="longer than LMDB allows"):
            store.write("t", [b"ok", b"x" * 600], [v(1), v(1)])
        assert store.read("t", [b"ok"]) == [None]
        store.write("t", [b"ok"], [v(1)])  # a fresh table (no reads) and a filled one take different paths
        with pytest.raises(BackendFailure, match="longer than LMDB allows"):
            store.write("t", [b"ok", b"x" * 600], [v(2), v(2)])
        assert store.read("t", [b"ok"]) == [v(1)]
        assert store.read("t", [b"x" * 600]) == [None]  # a key that cannot exist is simply not found


def test_reader_slots_full_is_transient(tmp_path: Path) -> None:
    opts = options(tmp_path, max_readers=1)
    with LMDBOnlineStore.open(opts, project="p") as store:
        store.write("t", [b"k"], [v(1)])  # writers take no reader slot
        holder = subprocess.Popen(
            [
                sys.executable,
                "-c",
                f"import lmdb,sys; t=lmdb.open({opts.path!r}, max_readers=1).begin(); print('ready', flush=True); sys.stdin.readline()",
            ],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert holder.stdout is not None
            assert holder.stdout.readline().strip() == "ready"
            with pytest.raises(BackendUnavailable, match="reader slots"):
                store.read("t", [b"k"])
        finally:
            holder.communicate("\n", timeout=30)
        assert store.read("t", [b"k"]) == [v(1)]


def test_reads_see_commits_of_other_processes(tmp_path: Path) -> None:
    opts = options(tmp_path)
    with LMDBOnlineStore.open(opts, project="p") as store:
        store.write("t", [b"k"], [v(1)])
        assert store.read("t", [b"k"]) == [v(1)]  # leaves a cached read transaction behind
        run_python(f"""
            from strato.online.backends.lmdb import LMDBOnlineStore, LMDBOptions
            from strato.online.codec import HEADER
            with LMDBOnlineStore.open(LMDBOptions.model_validate({opts.model_dump()!r}), project="p") as s:
                assert s.write("t", [b"k", b"new"], [HEADER.pack(2, 0), HEADER.pack(2, 0)]) == 2
        """)
        assert store.read("t", [b"k", b"new"]) == [v(2), v(2)]


def test_threads_read_and_write_concurrently(tmp_path: Path) -> None:
    errors: list[BaseException] = []
    with LMDBOnlineStore.open(options(tmp_path), project="p") as store:

        def writer(n: int) -> None:
            try:
                for event in range(200):
                    store.write("t", [b"shared", f"own{n}".encode()], [v(event), v(event)])
            except BaseException as exc:
                errors.append(exc)

        def reader() -> None:
            try:
                last = -1
                for _ in range(500):
                    (value,) = store.read("t", [b"shared"])
                    if value is not None:
                        event = HEADER.unpack_from(value)[0]
                        assert event >= last, "an older event replaced a newer one"
                        last = event
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
        threads += [threading.Thread(target=reader) for _ in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
        assert not errors
        assert store.read("t", [b"shared", b"own0", b"own1", b"own2"]) == [v(199)] * 4


def test_table_and_project_names_cannot_break_the_key_layout(tmp_path: Path) -> None:
    with LMDBOnlineStore.open(options(tmp_path), project="p") as store:
        for bad in ("a/b", "a\x00b"):
            with pytest.raises(ValueError, match="may not contain"):
                store.write(bad, [b"k"], [v(1)])
    with pytest.raises(ValueError, match="NUL"):
        LMDBOnlineStore.open(options(tmp_path), project="p\x00q")


def test_big_tables_around_others(tmp_path: Path) -> None:
    """A table sorted before, between and after others; fresh-table appends and in-place updates."""
    keys = [i.to_bytes(4, "big") for i in range(5000)]
    with LMDBOnlineStore.open(options(tmp_path), project="p") as store:
        for table in ("m", "a", "z"):  # "a" cannot be appended after "m"; "z" can
            assert store.write(table, list(reversed(keys)), [v(1, table.encode())] * len(keys)) == len(keys)
        assert store.write("m", keys[::2], [v(2)] * len(keys[::2])) == len(keys[::2])
        store.drop("m")
        assert store.read("m", keys[:3]) == [None] * 3
        assert store.read("a", keys) == [v(1, b"a")] * len(keys)
        assert store.read("z", keys) == [v(1, b"z")] * len(keys)


def test_a_forked_child_cannot_use_the_parents_environment(tmp_path: Path) -> None:
    """LMDB environments must not cross fork(): the child gets clear errors, the parent keeps working."""
    opts = options(tmp_path)
    with LMDBOnlineStore.open(opts, project="p") as store:
        store.write("t", [b"k"], [v(1)])
        assert store.read("t", [b"k"]) == [v(1)]  # the parent now holds a cached reader slot
        read_end, write_end = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: report what happened through the pipe, never return into pytest
            outcome = []
            for attempt in (lambda: store.read("t", [b"k"]), lambda: LMDBOnlineStore.open(opts, project="p")):
                try:
                    attempt()
                    outcome.append("no error")
                except BackendFailure as exc:
                    outcome.append("fork" if "fork" in str(exc) else str(exc))
                except BaseException as exc:
                    outcome.append(repr(exc))
            try:
                with LMDBOnlineStore.open(options(tmp_path / "child"), project="p") as own:
                    own.write("t", [b"k"], [v(5)])
                    outcome.append(repr(own.read("t", [b"k"])))
            except BaseException as exc:
                outcome.append(repr(exc))
            os.write(write_end, "|".join(outcome).encode())
            os._exit(0)
        os.close(write_end)
        with os.fdopen(read_end) as pipe:
            reported = pipe.read()
        os.waitpid(pid, 0)
        assert reported.split("|") == ["fork", "fork", repr([v(5)])]
        assert store.read("t", [b"k"]) == [v(1)]  # the parent's reader slot survived the child
        store.write("t", [b"k"], [v(2)])
        assert store.read("t", [b"k"]) == [v(2)]
