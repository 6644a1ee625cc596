"""One `FeatureStore` shared by serving threads while another thread writes: every read sees a
whole value (never a torn one) and, per key, values never go back in time (rules 1 and 4)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import numpy as np

from strato import FeatureStore, FeatureView, Field, Float64, Int64

from .helpers import USER

KEYS = 50
ROUNDS = 40
T0 = datetime.now(UTC) - timedelta(days=1)


def test_readers_see_whole_values_moving_forward(store: FeatureStore) -> None:
    view = FeatureView("tick", entities=[USER], schema=[Field("round", Int64), Field("check", Float64)])
    store.apply([USER, view])
    refs = ["tick:round", "tick:check"]
    errors: list[str] = []
    done = threading.Event()

    def write() -> None:
        try:
            for r in range(ROUNDS):
                store.write(
                    "tick",
                    {
                        "user_id": list(range(KEYS)),
                        "event_timestamp": [T0 + timedelta(seconds=r)] * KEYS,
                        "round": [r] * KEYS,
                        "check": [r * 10.0 + k for k in range(KEYS)],
                    },
                    to="online",
                )
        finally:
            done.set()

    def read(seed: int) -> None:
        rng = np.random.default_rng(seed)
        last = np.full(KEYS, -1.0)
        while not done.is_set():
            users = rng.choice(KEYS, size=int(rng.integers(1, 30)), replace=False)
            matrix = store.get_online_features(refs, [{"user_id": int(u)} for u in users]).to_numpy()
            for user, (round_, check) in zip(users, matrix, strict=True):
                if np.isnan(round_):
                    continue
                if check != round_ * 10.0 + user:
                    errors.append(f"torn value for user {user}: round {round_}, check {check}")
                if round_ < last[user]:
                    errors.append(f"user {user} went back from round {last[user]} to {round_}")
                last[user] = round_

    readers = [threading.Thread(target=read, args=(seed,)) for seed in range(3)]
    writer = threading.Thread(target=write)
    for t in (*readers, writer):
        t.start()
    for t in (writer, *readers):
        t.join(timeout=120)
    assert errors == []
    final = store.get_online_features(refs, [{"user_id": k} for k in range(KEYS)]).to_numpy()
    np.testing.assert_array_equal(final[:, 0], np.full(KEYS, ROUNDS - 1))
