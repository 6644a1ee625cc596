"""`FeatureStore`: the verbs — apply, write, push, materialize, get_online_features,
get_historical_features, sql — orchestrated over the three seams.

Nothing here knows an engine: the registry, online store and offline engine are found by
name through `strato.plugins` from the resolved `StratoConfig`, and `offline.delta` is the
one writer of history. Every write validates the whole batch first (`frames`), then commits
offline (one Delta commit), then online (one backend transaction).

    feature_store   the `FeatureStore` facade: definitions, writes, materialization, history
    online_reads    `get_online_features`: cached plans, engine reads, rule-6 upgrades
    catalog         views, references and codecs, as read from the registry
    repo            which feature repo a store opens (``strato.yaml`` required, or create=True)
    backfill        batch transformations: SqlSource views computed over the gaps of a range
    results         what the verbs return
    threads         the background history writer and the offline read-ahead
"""

from strato.store.feature_store import FeatureStore
from strato.store.results import BackfillResult, MaterializeResult, TrainingSet, WriteResult, WriteTarget

__all__ = ["BackfillResult", "FeatureStore", "MaterializeResult", "TrainingSet", "WriteResult", "WriteTarget"]
