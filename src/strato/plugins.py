"""Backends by name: (seam, name) → class, found through Python entry points.

Each seam (``online``, ``offline``, ``registry``) has its own entry-point group
(``strato.online`` …). Core code asks for a backend by the name written in
`strato.yaml` and never imports a backend module itself; a backend is imported only
when it is first asked for, so a missing optional driver costs nothing until used.
"""

from __future__ import annotations

import functools
from importlib.metadata import entry_points
from typing import Literal

from strato.errors import PluginNotFoundError

Seam = Literal["online", "offline", "registry"]

#: Which extra installs the driver a backend needs, for the error message.
INSTALL_HINTS: dict[tuple[Seam, str], str] = {}


@functools.cache
def available(seam: Seam) -> dict[str, str]:
    """Registered names for `seam`, mapped to the ``module:Class`` they load."""
    found: dict[str, str] = {}
    for ep in entry_points(group=f"strato.{seam}"):
        if ep.name in found and found[ep.name] != ep.value:
            # Refuse silently shadowing one backend with another (fsspec's clobber=False).
            raise PluginNotFoundError(
                f"two {seam} backends are registered as {ep.name!r}: {found[ep.name]} and {ep.value}"
            )
        found[ep.name] = ep.value
    return found


@functools.cache
def load(seam: Seam, name: str) -> type:
    """The backend class registered as `name` for `seam`, imported on first use."""
    names = available(seam)
    if name not in names:
        known = ", ".join(sorted(names)) or "none"
        raise PluginNotFoundError(f"no {seam} backend named {name!r}; registered: {known}")
    (ep,) = [ep for ep in entry_points(group=f"strato.{seam}") if ep.name == name][:1]
    try:
        cls: type = ep.load()
    except ImportError as exc:
        hint = INSTALL_HINTS.get((seam, name), f"pip install 'strato[{name}]'")
        raise PluginNotFoundError(
            f"{seam} backend {name!r} needs a driver that is not installed ({exc}); {hint}"
        ) from None
    return cls
