"""`strato serve`: Strato's online features over HTTP, in Feast's request and response shapes.

`create_app` builds the ASGI app (Starlette) around one `FeatureStore`, opened when the app
starts — in each worker process after uvicorn forks, so workers share the LMDB store rather
than inherit one handle. This package may import `strato.store` and below; nothing below
imports it.
"""

from __future__ import annotations

from strato.server.app import create_app
from strato.server.settings import ServerSettings

__all__ = ["ServerSettings", "create_app"]
