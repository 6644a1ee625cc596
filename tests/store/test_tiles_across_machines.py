"""Windowed-aggregation tiles written from several machines at once lose no event.

Each entity's tiles are one packed row, updated by read-merge-write. The repo's lock file only
orders one machine's writers; across machines, `TileWriter.apply` stores each merged row with
`OnlineStore.write_if` (expecting the bytes it read) and merges again the rows another writer
changed in between. Here: real processes with separate repos (so separate lock files, as on
separate machines) writing the same entities to one real Redis server, Redis Cluster or
Aerospike server; then a rival writer
stepping in between each read and its compare-and-set, deterministically, on the memory store.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from contract.online.conftest import HARNESSES  # tests/ is on sys.path (tests/store/conftest.py)
from strato import Entity, FeatureStore, FeatureView, Field, Float64, Int64, String
from strato.config import write_default_config
from strato.definitions.aggregation import Aggregation
from strato.errors import BackendUnavailable, OnlineBehindError
from strato.online.backends.memory import MemoryOnlineStore
from strato.online.base import OnlineStore
from strato.store import aggregations
from strato.store.aggregations import TileWriter
from strato.streaming.tiles import StreamPositions

USER = Entity("user", join_keys={"user_id": Int64})
DAY = timedelta(days=1)
AGGREGATIONS = [
    Aggregation("amount", "count", DAY),
    Aggregation("amount", "sum", DAY),
    Aggregation("amount", "max", DAY),
    Aggregation("amount", "last", DAY),
    Aggregation("shop", "count", timedelta(hours=2)),
]
NAMES = [a.name for a in AGGREGATIONS]
FEATURES = [f"txns:{n}" for n in NAMES]


def txns() -> FeatureView:
    return FeatureView(
        "txns",
        entities=[USER],
        schema=[Field("amount", Float64), Field("shop", String)],
        aggregations=AGGREGATIONS,
    )


Event = tuple[int, datetime, float, str]  # user, event time, amount, shop


def oracle(events: list[Event], user: int) -> dict[str, Any]:
    """Every event is inside every window (all within the last two hours, distinct times)."""
    mine = sorted((ts, amount) for u, ts, amount, _ in events if u == user)
    amounts = [a for _, a in mine]
    return {
        "amount_count_1d": len(amounts),
        "amount_sum_1d": sum(amounts) if amounts else None,
        "amount_max_1d": max(amounts, default=None),
        "amount_last_1d": amounts[-1] if amounts else None,
        "shop_count_2h": len(amounts),
    }


def rows_of(events: list[Event]) -> pa.Table:
    return pa.table(
        {
            "user_id": pa.array([e[0] for e in events], pa.int64()),
            "event_timestamp": pa.array([e[1] for e in events], pa.timestamp("us", tz="UTC")),
            "amount": pa.array([e[2] for e in events], pa.float64()),
            "shop": pa.array([e[3] for e in events], pa.string()),
        }
    )


def online(store: FeatureStore, users: list[int]) -> list[dict[str, Any]]:
    got = store.get_online_features(FEATURES, {"user_id": users}).to_dict()
    return [{n: got[n][i] for n in NAMES} for i in range(len(users))]


# ---------------------------------------------------------------------- several machines, one Redis

MACHINES = 4
BATCHES = 12
USERS = [0, 1]


def machine_events(machine: int, base: datetime) -> list[list[Event]]:
    """Machine `machine`'s batches: two events per user each, at distinct times and amounts."""
    batches = []
    for b in range(BATCHES):
        batch = []
        for j, user in enumerate(USERS * 2):
            n = machine * 1000 + b * 10 + j
            batch.append((user, base - timedelta(seconds=n), float(n), f"m{machine}"))
        batches.append(batch)
    return batches


def _machine(repo: str, overrides: dict[str, Any], machine: int, base: datetime, start: Any, out: Any) -> None:
    with FeatureStore(repo, **overrides) as store:
        store.apply([USER, txns()])
        start.wait(60)
        for batch in machine_events(machine, base):
            store.write("txns", rows_of(batch))
        out.put(store._tiles.lost_races)


SHARED = ["redis", "redis_cluster", "aerospike"]  # the backends several machines share


@pytest.fixture(params=[pytest.param(name, marks=getattr(pytest.mark, name), id=name) for name in SHARED])
def shared_overrides(request: pytest.FixtureRequest, tmp_path: Path) -> dict[str, Any]:
    """Repo overrides reaching one fresh store on the session's server (skips, saying why, without it)."""
    name: str = request.param
    options = HARNESSES[name].options(tmp_path / "online")
    return {"online__type": name} | {f"online__{k}": v for k, v in options.items()}


def test_writers_on_several_machines_lose_no_event(tmp_path: Path, shared_overrides: dict[str, Any]) -> None:
    base = datetime.now(UTC) - timedelta(minutes=1)
    repos = []
    for m in range(MACHINES + 1):  # one repo per machine, and one to read from
        repo = tmp_path / f"machine{m}"
        repo.mkdir()
        write_default_config(repo, "proj")
        repos.append(repo)
    locks = {repo / ".strato" / aggregations.LOCK_FILE for repo in repos}
    assert len(locks) == len(repos)  # no two "machines" share a lock file
    ctx = multiprocessing.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    machines = [
        ctx.Process(target=_machine, args=(str(repos[m]), shared_overrides, m, base, start, out))
        for m in range(MACHINES)
    ]
    for p in machines:
        p.start()
    start.set()
    lost = [out.get(timeout=240) for _ in machines]
    for p in machines:
        p.join(timeout=60)
    assert [p.exitcode for p in machines] == [0] * MACHINES
    print(f"tile rows merged again after a lost compare-and-set, per machine: {lost}")

    events = [e for m in range(MACHINES) for batch in machine_events(m, base) for e in batch]
    with FeatureStore(repos[-1], **shared_overrides) as reader:
        reader.apply([USER, txns()])
        assert online(reader, USERS) == [oracle(events, u) for u in USERS]


# ---------------------------------------------------------------------- a rival between read and CAS


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[FeatureStore]:
    write_default_config(tmp_path, "proj")
    with FeatureStore(tmp_path, online__type="memory") as store:
        store.apply([USER, txns()])
        yield store


class Rival:
    """Another machine's writer (its own `TileWriter`, its own lock file) that merges one of its
    batches into the same online store just before each of the next `turns` compare-and-sets
    of the writer under test: exactly the interleaving that loses an update without a CAS."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, batches: list[list[Event]], **kwargs: Any):
        self.writer = TileWriter(tmp_path / "other-machine" / aggregations.LOCK_FILE)
        self.batches = list(batches)
        self.kwargs = kwargs
        self.turns = 0
        self._busy = False
        original = MemoryOnlineStore.write_if

        def racing(store: OnlineStore, table: str, keys: Any, expected: Any, values: Any) -> list[bool]:
            if not self._busy and self.batches:
                self._busy = True
                try:
                    self.turns += 1
                    batch = self.batches.pop(0)
                    positions = self.kwargs.get("positions")
                    self.writer.apply(store, txns(), rows_of(batch), 0, positions)
                finally:
                    self._busy = False
            return original(store, table, keys, expected, values)  # type: ignore[arg-type]

        monkeypatch.setattr(MemoryOnlineStore, "write_if", racing)


def _events(user: int, n: int, base: datetime, first: int, shop: str) -> list[Event]:
    return [(user, base - timedelta(seconds=first + i), float(first + i), shop) for i in range(n)]


def test_a_merge_that_loses_the_race_is_merged_again(
    memory_store: FeatureStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    base = datetime.now(UTC) - timedelta(minutes=1)
    rival_batches = [_events(0, 3, base, 100, "r") + _events(1, 2, base, 200, "r"), _events(0, 1, base, 300, "r")]
    rival = Rival(monkeypatch, tmp_path, rival_batches)
    mine = _events(0, 4, base, 1, "me") + _events(1, 4, base, 20, "me")
    memory_store.write("txns", rows_of(mine))
    assert rival.turns == 2  # it stepped in before each of the writer's first two CAS rounds
    assert memory_store._tiles.lost_races == 3  # users 0 and 1, then user 0 again
    everything = mine + [e for batch in rival_batches for e in batch]
    assert online(memory_store, [0, 1]) == [oracle(everything, 0), oracle(everything, 1)]


def test_a_streamed_replay_merged_by_the_rival_is_not_counted_twice(
    memory_store: FeatureStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Two consumers replaying the same offsets: whoever wins the row, its marks tell the
    loser, on its second merge, that these events are already in."""
    base = datetime.now(UTC) - timedelta(minutes=1)
    events = _events(0, 3, base, 1, "s") + _events(1, 2, base, 10, "s")
    positions = StreamPositions(["t:0"] * 5, [0, 1, 2, 3, 4])
    Rival(monkeypatch, tmp_path, [events], positions=positions)
    memory_store.write("txns", rows_of(events), to="online", stream_positions=positions)
    assert memory_store._tiles.lost_races == 2
    assert online(memory_store, [0, 1]) == [oracle(events, 0), oracle(events, 1)]


def test_a_merge_that_never_wins_is_a_clear_error(
    memory_store: FeatureStore, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(aggregations, "CAS_ATTEMPTS", 3)
    base = datetime.now(UTC) - timedelta(minutes=1)
    rival_batches = [_events(0, 1, base, 100 + i, "r") for i in range(10)]
    rival = Rival(monkeypatch, tmp_path, rival_batches)
    with pytest.raises(OnlineBehindError, match=r"changed by other writers in each of 3 tries") as caught:
        memory_store.write("txns", rows_of(_events(0, 2, base, 1, "me")))
    assert isinstance(caught.value.__cause__, BackendUnavailable)  # transient: the write may be retried
    assert rival.turns == 3
    # The rival's merges all stand: losing writers never overwrite the winners.
    rival_events = [b[0] for b in rival_batches[:3]]
    assert online(memory_store, [0]) == [oracle(rival_events, 0)]


def test_without_compare_and_set_the_lock_alone_orders_merges(
    memory_store: FeatureStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A backend that does not declare the capability is written as before (one writer per view
    across machines); `write_if` is never called on it."""
    plain = dataclasses.replace(MemoryOnlineStore.capabilities, compare_and_set=False)
    monkeypatch.setattr(MemoryOnlineStore, "capabilities", plain)

    def refuse(*args: Any) -> list[bool]:
        raise AssertionError("write_if called on a backend without compare_and_set")

    monkeypatch.setattr(MemoryOnlineStore, "write_if", refuse)
    base = datetime.now(UTC) - timedelta(minutes=1)
    first, second = _events(0, 3, base, 1, "a"), _events(0, 2, base, 50, "b") + _events(1, 1, base, 60, "b")
    memory_store.write("txns", rows_of(first))
    memory_store.write("txns", rows_of(second))
    assert online(memory_store, [0, 1]) == [oracle(first + second, 0), oracle(first + second, 1)]
