"""Each backend behaves like a dict, under any sequence of writes, compare-and-sets, reads, drops and reopens.

A hypothesis state machine drives the backend and a plain-dict model side by side and
compares every answer: `write`'s change count, `read`'s values, the whole state after each
step. The model restates rule 4 with its own header parsing, so it shares no code with
the backends it judges. Persistent backends are also closed and reopened mid-run.
"""

from __future__ import annotations

import itertools
import struct
from typing import TYPE_CHECKING

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule, run_state_machine_as_test

from strato.online.base import OnlineStore

if TYPE_CHECKING:
    from .conftest import Backend

HEADER = struct.Struct("<qq")
KEYS = [b"", b"a", b"b", b"a\x00", b"\x00", b"\xff" * 40]
TABLES = ["x", "x__v1"]
PROJECTS = ["p", "q"]

keys = st.sampled_from(KEYS)
values = st.builds(
    lambda event, created, payload: HEADER.pack(event, created) + payload,
    st.integers(-2, 2),
    st.integers(0, 2),
    st.sampled_from([b"", b"1", b"22", b"\x00" * 3000]),  # 3000 bytes: bigger than one LMDB page
)
RUNS = itertools.count()


def rank(value: bytes) -> tuple[int, int]:
    event, created = HEADER.unpack(value[: HEADER.size])
    return event, created


def model_write(table: dict[bytes, bytes], items: list[tuple[bytes, bytes]]) -> int:
    """Rule 4, item by item: a value replaces the stored one unless it ranks lower."""
    changed = set()
    for key, value in items:
        if key not in table or rank(value) >= rank(table[key]):
            table[key] = value
            changed.add(key)
    return len(changed)


def model_write_if(table: dict[bytes, bytes], items: list[tuple[bytes, bytes | None, bytes]]) -> list[bool]:
    """Compare-and-set, key by key: written only where the stored bytes (None: absent) are the expected ones."""
    won = [table.get(key) == expected for key, expected, _ in items]
    for (key, _, value), ok in zip(items, won, strict=True):
        if ok:
            table[key] = value
    return won


#: What a compare-and-set expects: the key's current value (a writer that read it), nothing, or any value.
expectations = st.one_of(st.just("current"), st.none(), values)


def test_backend_matches_a_dict_model(online_backend: Backend) -> None:
    backend = online_backend
    persistent = backend.cls.capabilities.persistent
    cas = backend.cls.capabilities.compare_and_set

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            run = next(RUNS)
            self.names = {t: f"run{run}_{t}" for t in TABLES}  # a fresh namespace per run
            self.stores = {p: backend.open(p) for p in PROJECTS}
            self.model: dict[tuple[str, str], dict[bytes, bytes]] = {(p, t): {} for p in PROJECTS for t in TABLES}

        def store(self, project: str) -> OnlineStore:
            return self.stores[project]

        @rule(
            project=st.sampled_from(PROJECTS),
            table=st.sampled_from(TABLES),
            items=st.lists(st.tuples(keys, values), max_size=8),
        )
        def write(self, project: str, table: str, items: list[tuple[bytes, bytes]]) -> None:
            changed = self.store(project).write(self.names[table], [k for k, _ in items], [v for _, v in items])
            assert changed == model_write(self.model[(project, table)], items)

        @precondition(lambda _: cas)
        @rule(
            project=st.sampled_from(PROJECTS),
            table=st.sampled_from(TABLES),
            items=st.lists(st.tuples(keys, expectations, values), max_size=6, unique_by=lambda item: item[0]),
        )
        def write_if(self, project: str, table: str, items: list[tuple[bytes, bytes | str | None, bytes]]) -> None:
            contents = self.model[(project, table)]
            resolved = [(k, contents.get(k) if e == "current" else e, v) for k, e, v in items]
            won = self.store(project).write_if(
                self.names[table], [k for k, _, _ in resolved], [e for _, e, _ in resolved], [v for _, _, v in resolved]
            )
            assert won == model_write_if(contents, resolved)  # type: ignore[arg-type]

        @rule(project=st.sampled_from(PROJECTS), table=st.sampled_from(TABLES), asked=st.lists(keys, max_size=6))
        def read(self, project: str, table: str, asked: list[bytes]) -> None:
            expected = [self.model[(project, table)].get(k) for k in asked]
            assert self.store(project).read(self.names[table], asked) == expected

        @rule(project=st.sampled_from(PROJECTS), table=st.sampled_from(TABLES))
        def drop(self, project: str, table: str) -> None:
            self.store(project).drop(self.names[table])
            self.model[(project, table)].clear()

        @precondition(lambda _: persistent)
        @rule(project=st.sampled_from(PROJECTS))
        def reopen(self, project: str) -> None:
            self.stores[project].close()
            self.stores[project] = backend.open(project)

        @invariant()
        def whole_state_matches(self) -> None:
            for (project, table), contents in self.model.items():
                stored = self.store(project).read(self.names[table], KEYS)
                assert {k: v for k, v in zip(KEYS, stored, strict=True) if v is not None} == contents

        def teardown(self) -> None:
            for store in self.stores.values():
                store.close()

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=100,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
        ),
    )
