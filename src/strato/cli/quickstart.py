"""`strato quickstart`: the fraud-scoring walk-through, end to end, on the embedded default.

It builds a feature repo in a folder, generates two weeks of card transactions, derives
daily features from them (as a batch feature pipeline would), writes the features to
history, materializes them online, builds a point-in-time-correct training set, trains a
model, and scores fresh transactions with online lookups — timing every step.
"""

from __future__ import annotations

import shlex
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from rich.markup import escape

from strato.cli import quickstart_folder, render
from strato.cli.help import activate_hint, strato_command
from strato.cli.loader import load_definitions
from strato.config import write_default_config
from strato.errors import UserError
from strato.store import FeatureStore

DAYS = 14
TRAIN_DAYS = 11
TX_PER_USER_PER_DAY = 0.8
MERCHANTS_PER_USER = 0.05
COUNTRIES = np.array(["DE", "FR", "GB", "NL", "US", "ES", "IT", "PL"])

DEFINITIONS = '''"""Fraud-scoring features (written by `strato quickstart`)."""

from datetime import timedelta

from strato import Entity, FeatureService, FeatureView, Field, Float64, Int64, String, Vector

card_holder = Entity("card_holder", join_keys={"user_id": Int64}, description="A card holder")
merchant = Entity("merchant", join_keys={"merchant_id": Int64}, description="A merchant accepting cards")

user_spending = FeatureView(
    "user_spending",
    entities=[card_holder],
    ttl=timedelta(days=3),
    schema=[
        Field("tx_count_7d", Int64, description="Transactions in the 7 days before the snapshot"),
        Field("amount_mean_7d", Float64, description="Mean amount over those transactions (0 when none)"),
        Field("amount_max_7d", Float64, description="Largest amount over those transactions"),
        Field("home_country", String, description="Country of the card holder's address"),
        Field("spend_profile", Vector(4), description="Share of spend per amount band"),
    ],
    description="Daily spending profile of each card holder",
)

merchant_risk = FeatureView(
    "merchant_risk",
    entities=[merchant],
    ttl=timedelta(days=3),
    schema=[
        Field("tx_count_7d", Int64, description="Transactions at the merchant in 7 days"),
        Field("fraud_rate_7d", Float64, description="Share of those later confirmed as fraud"),
    ],
    description="Daily chargeback rate of each merchant",
)

fraud_model_v1 = FeatureService(
    "fraud_model_v1",
    features=[
        user_spending[["tx_count_7d", "amount_mean_7d", "amount_max_7d"]],
        merchant_risk[["fraud_rate_7d"]],
    ],
    description="Inputs of the fraud model",
)
'''


@dataclass
class _Timings:
    rows: list[tuple[str, str, str]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str, detail: Callable[[], str] = lambda: "") -> Iterator[None]:
        render.rule(f"[bold]{name}")
        started = time.perf_counter()
        yield
        seconds = time.perf_counter() - started
        self.rows.append((name, f"{seconds:,.2f} s", detail()))


@dataclass
class _World:
    """The generated ground truth: who shops where, and how fraud happens."""

    transactions: pd.DataFrame
    user_home: npt.NDArray[np.str_]
    merchant_risk: npt.NDArray[np.float64]
    start: datetime


def run_quickstart(path: Path, *, users: int = 20_000, seed: int = 7) -> None:
    """Build a fraud-scoring repo in `path` (replacing a previous demo, never anything else) and run it."""
    if users < 200:
        raise UserError(f"--users must be at least 200 (got {users})")
    _prepare_folder(path)
    rng = np.random.default_rng(seed)
    timings = _Timings()
    context: dict[str, Any] = {}

    with timings.step("1. generate transactions", lambda: f"{len(context['world'].transactions):,} transactions"):
        context["world"] = world = _generate(rng, users)

    with timings.step("2. derive daily features", lambda: f"{context['feature_rows']:,} feature rows"):
        user_features, merchant_features = _user_features(world), _merchant_features(world)
        context["feature_rows"] = len(user_features) + len(merchant_features)

    with FeatureStore(path) as store:
        with timings.step("3. apply definitions", lambda: "2 entities, 2 views, 1 service"):
            result = store.apply(load_definitions(path))
            render.plan(result)

        with timings.step("4. write history (Delta)", lambda: context["write_rate"]):
            began, rows = time.perf_counter(), 0
            for view, frame in (("user_spending", user_features), ("merchant_risk", merchant_features)):
                written = store.write(view, frame, to="offline")
                rows += written.rows
                render.console.print(f"  {view}: {written.rows:,} rows → table version {written.table_version}")
            context["write_rate"] = render.rate(rows, time.perf_counter() - began) or render.count(rows, "row")

        with timings.step("5. materialize online (LMDB)", lambda: context["mat_rate"]):
            materialized = store.materialize(None, datetime.now(UTC))
            total = sum(materialized.rows.values())
            speed = render.rate(total, materialized.seconds)
            context["mat_rate"] = render.count(total, "key") + (f", {speed}" if speed else "")

        service = store.get_feature_service("fraud_model_v1")
        with timings.step("6. point-in-time training set", lambda: context["train_detail"]):
            cutoff = world.start + timedelta(days=TRAIN_DAYS)
            labelled = world.transactions
            spine = labelled[["user_id", "merchant_id", "event_timestamp", "amount", "is_fraud"]]
            training = store.get_historical_features(spine, service)
            frame = training.to_df()
            context["train_detail"] = f"{len(frame):,} rows × {len(training.feature_names)} features"
            render.console.print(f"  read table versions {training.versions}")

        with timings.step("7. train model", lambda: context["auc"]):
            model, auc = _train(frame, cutoff)
            context["auc"] = f"AUC {auc:.3f} on the last {DAYS - TRAIN_DAYS} days"

        with timings.step("8. score live transactions", lambda: context["serve"]):
            context["serve"] = _score_live(store, service, model, world, rng)

        _show_lookup(store)

    render.table("quickstart timings", ["step", "time", "result"], timings.rows)
    strato, repo = strato_command(), shlex.quote(str(path))
    tries = [
        f"{strato} ls views -r {repo}",
        f"{strato} describe view user_spending -r {repo}",
        f"{strato} get -r {repo} --service fraud_model_v1 -e user_id=1,merchant_id=1",
        f'{strato} sql -r {repo} "select count(*), avg(fraud_rate_7d) from merchant_risk"',
    ]
    activate = activate_hint()
    also = f"\n(or run `{activate}` once; then plain `strato …` works in this shell)" if activate else ""
    render.console.print(
        escape(f"The feature repo is in {path}. Try:\n" + "\n".join(f"  {t}" for t in tries) + also),
        soft_wrap=True,  # commands to copy: never broken across lines
        highlight=False,
    )


def _prepare_folder(path: Path) -> None:
    quickstart_folder.prepare(path)  # refuses any folder it cannot prove a previous demo
    write_default_config(path, "quickstart")
    (path / "features.py").write_text(DEFINITIONS)
    quickstart_folder.seal(path, ["strato.yaml", "features.py"])


def _generate(rng: np.random.Generator, users: int) -> _World:
    """Two weeks of transactions ending at today's midnight (UTC), with planted fraud."""
    merchants = max(50, int(users * MERCHANTS_PER_USER))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = today - timedelta(days=DAYS)
    n = int(users * DAYS * TX_PER_USER_PER_DAY)
    user_id = rng.integers(0, users, n)
    merchant_id = rng.integers(0, merchants, n)
    user_scale = rng.lognormal(3.5, 0.6, users)
    user_home = COUNTRIES[rng.integers(0, len(COUNTRIES), users)]
    merchant_risk = rng.beta(0.6, 40, merchants)
    seconds = rng.integers(0, DAYS * 86_400, n)
    amount = np.round(rng.lognormal(0, 0.5, n) * user_scale[user_id], 2)
    abroad = rng.random(n) < 0.08
    country = np.where(abroad, COUNTRIES[rng.integers(0, len(COUNTRIES), n)], user_home[user_id])
    # Fraud: unusually large amounts, risky merchants, spending abroad.
    logit = -5.5 + 1.6 * np.log(amount / user_scale[user_id]) + 35 * merchant_risk[merchant_id] + 1.8 * abroad
    is_fraud = rng.random(n) < 1 / (1 + np.exp(-logit))
    event_time = pd.to_datetime(start) + pd.to_timedelta(seconds, unit="s")
    transactions = pd.DataFrame(
        {
            "user_id": user_id.astype("int64"),
            "merchant_id": merchant_id.astype("int64"),
            "event_timestamp": event_time,
            "amount": amount,
            "country": country,
            "is_fraud": is_fraud.astype("int8"),
        }
    ).sort_values("event_timestamp", ignore_index=True)
    return _World(transactions, user_home, merchant_risk, start)


def _daily(frame: pd.DataFrame, key: str, count: int, values: dict[str, str]) -> dict[str, npt.NDArray[Any]]:
    """Per key and day, sums of `values` columns as a dense (keys × days) matrix each."""
    day = ((frame["event_timestamp"] - frame["event_timestamp"].dt.normalize().min()).dt.days).to_numpy()
    index = frame[key].to_numpy() * DAYS + day
    out = {"count": np.bincount(index, minlength=count * DAYS).reshape(count, DAYS).astype("float64")}
    for name, column in values.items():
        weights = frame[column].to_numpy(dtype="float64")
        out[name] = np.bincount(index, weights=weights, minlength=count * DAYS).reshape(count, DAYS)
    return out


def _rolling7(matrix: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Sum over the 7 days ending with each day (a window per column)."""
    csum = np.cumsum(matrix, axis=1)
    shifted = np.zeros_like(csum)
    shifted[:, 7:] = csum[:, :-7]
    return csum - shifted


def _snapshot_times(world: _World, keys: int) -> pd.Series:
    """Each day's features become known at the following midnight."""
    ends = pd.to_datetime(world.start) + pd.to_timedelta(np.arange(1, DAYS + 1), unit="D")
    return pd.Series(np.tile(ends.to_numpy(), keys))


def _user_features(world: _World) -> pd.DataFrame:
    tx = world.transactions
    users = len(world.user_home)
    bands = np.digitize(tx["amount"].to_numpy(), [20, 50, 150])
    frame = tx.assign(**{f"band{b}": np.where(bands == b, tx["amount"], 0.0) for b in range(4)})
    daily = _daily(frame, "user_id", users, {"amount": "amount", **{f"band{b}": f"band{b}" for b in range(4)}})
    count, total = _rolling7(daily["count"]), _rolling7(daily["amount"])
    band_totals = np.stack([_rolling7(daily[f"band{b}"]) for b in range(4)], axis=-1)
    amount_max = _rolling_max(frame, users)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / count, 0.0)
        profile = np.where(total[..., None] > 0, band_totals / total[..., None], 0.0).astype("float32")
    return pd.DataFrame(
        {
            "user_id": np.repeat(np.arange(users, dtype="int64"), DAYS),
            "event_timestamp": _snapshot_times(world, users),
            "tx_count_7d": count.ravel().astype("int64"),
            "amount_mean_7d": mean.ravel(),
            "amount_max_7d": amount_max.ravel(),
            "home_country": np.repeat(world.user_home, DAYS),
            "spend_profile": list(profile.reshape(-1, 4)),
        }
    )


def _rolling_max(frame: pd.DataFrame, users: int) -> npt.NDArray[np.float64]:
    day = (frame["event_timestamp"] - frame["event_timestamp"].dt.normalize().min()).dt.days.to_numpy()
    daily = np.zeros((users, DAYS))
    np.maximum.at(daily, (frame["user_id"].to_numpy(), day), frame["amount"].to_numpy())
    out = np.zeros_like(daily)
    for d in range(DAYS):
        out[:, d] = daily[:, max(0, d - 6) : d + 1].max(axis=1)
    return out


def _merchant_features(world: _World) -> pd.DataFrame:
    merchants = len(world.merchant_risk)
    daily = _daily(world.transactions, "merchant_id", merchants, {"fraud": "is_fraud"})
    count, fraud = _rolling7(daily["count"]), _rolling7(daily["fraud"])
    with np.errstate(invalid="ignore", divide="ignore"):
        rate = np.where(count > 0, fraud / count, 0.0)
    return pd.DataFrame(
        {
            "merchant_id": np.repeat(np.arange(merchants, dtype="int64"), DAYS),
            "event_timestamp": _snapshot_times(world, merchants),
            "tx_count_7d": count.ravel().astype("int64"),
            "fraud_rate_7d": rate.ravel(),
        }
    )


MODEL_INPUTS = ["amount", "tx_count_7d", "amount_mean_7d", "amount_max_7d", "fraud_rate_7d"]


def _model_matrix(frame: pd.DataFrame) -> npt.NDArray[np.float64]:
    x = frame[MODEL_INPUTS].to_numpy(dtype="float64", na_value=np.nan)
    ratio = x[:, 0] / np.where(np.nan_to_num(x[:, 2]) > 0, x[:, 2], np.nan)
    return np.column_stack([x, ratio])


def _train(frame: pd.DataFrame, cutoff: datetime) -> tuple[Any, float]:
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.metrics import roc_auc_score
    from threadpoolctl import threadpool_limits

    train = frame[frame["event_timestamp"] < cutoff]
    test = frame[frame["event_timestamp"] >= cutoff]
    model = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, random_state=0)
    with threadpool_limits(limits=1):  # a few thousand rows: OpenMP threads cost more than they save
        model.fit(_model_matrix(train), train["is_fraud"].to_numpy())
        scores = model.predict_proba(_model_matrix(test))[:, 1]
    render.console.print(
        f"  trained on {len(train):,} rows ({train['is_fraud'].mean():.2%} fraud), tested on {len(test):,}"
    )
    return model, float(roc_auc_score(test["is_fraud"].to_numpy(), scores))


def _score_live(store: FeatureStore, service: Any, model: Any, world: _World, rng: np.random.Generator) -> str:
    """One online lookup + one prediction per incoming transaction, as a scoring service does.

    Predictions run on one thread, as a scoring service's would: for one row, OpenMP's thread
    pool only costs (on a busy machine its spinning threads made each prediction ~100x slower).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _score_requests(store, service, model, world, rng)


def _score_requests(store: FeatureStore, service: Any, model: Any, world: _World, rng: np.random.Generator) -> str:
    requests = 2_000
    users, merchants = len(world.user_home), len(world.merchant_risk)
    user_ids = rng.integers(0, users, requests)
    merchant_ids = rng.integers(0, merchants, requests)
    amounts = np.round(rng.lognormal(3.5, 0.8, requests), 2)
    lookup_us, total_us, flagged = [], [], 0
    for i in range(requests):
        began = time.perf_counter_ns()
        response = store.get_online_features(
            service, [{"user_id": int(user_ids[i]), "merchant_id": int(merchant_ids[i])}]
        )
        features = response.to_numpy()
        looked_up = time.perf_counter_ns()
        row = np.concatenate([[amounts[i]], features[0]])
        ratio = row[0] / row[2] if row[2] > 0 else np.nan
        score = model.predict_proba(np.append(row, ratio).reshape(1, -1))[0, 1]
        done = time.perf_counter_ns()
        flagged += bool(score > 0.2)
        lookup_us.append((looked_up - began) / 1000)
        total_us.append((done - began) / 1000)
    lookup, total = np.array(lookup_us), np.array(total_us)
    render.console.print(
        f"  {requests:,} requests: feature lookup p50 {np.percentile(lookup, 50):,.0f} µs, "
        f"p99 {np.percentile(lookup, 99):,.0f} µs; lookup + model p50 {np.percentile(total, 50):,.0f} µs; "
        f"{flagged} scored above 0.2 (held for review)"
    )
    return f"lookup p99 {np.percentile(lookup, 99):,.0f} µs, end to end p50 {np.percentile(total, 50):,.0f} µs"


def _show_lookup(store: FeatureStore) -> None:
    """One online lookup of every feature type the demo uses, shown as a person reads it."""
    response = store.get_online_features(
        [
            "user_spending:tx_count_7d",
            "user_spending:amount_mean_7d",
            "user_spending:home_country",
            "user_spending:spend_profile",
            "merchant_risk:fraud_rate_7d",
        ],
        [{"user_id": 1, "merchant_id": 1}, {"user_id": 2, "merchant_id": 2}],
    )
    data = response.to_dict()
    rows = []
    for i in range(len(response)):
        profile = data["spend_profile"][i]
        rows.append(
            [
                f"{data['user_id'][i]} / {data['merchant_id'][i]}",
                str(data["tx_count_7d"][i]),
                f"{data['amount_mean_7d'][i]:.2f}",
                str(data["home_country"][i]),
                " ".join(f"{x:.1f}" for x in profile) if profile is not None else "-",
                f"{data['fraud_rate_7d'][i]:.2%}",
            ]
        )
    render.table(
        "online lookup: user_spending and merchant_risk",
        ["user/merchant", "tx 7d", "mean 7d", "country", "spend profile", "merchant fraud"],
        rows,
    )
