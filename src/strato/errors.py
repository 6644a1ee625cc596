"""Every exception Strato raises, in one tree.

    StratoError                      root: catch this to catch everything Strato raises
    ├── UserError                    bad input; the message names the object, field, row or parameter
    │   ├── DefinitionError          an Entity / Field / FeatureView / FeatureService is invalid
    │   ├── ConfigError              strato.yaml, STRATO_* variables or arguments are invalid
    │   ├── SchemaError              a batch of rows does not match the view's schema
    │   │   └── ValidationError      a batch breaks the view's data-quality rules (Expect)
    │   ├── NotFoundError            a named object (view, feature, service, version) does not exist
    │   │   └── RegistryNotFoundError  no registry at the configured place yet (nothing applied)
    │   ├── BreakingChangeError      apply would break a view; ask for a new version
    │   ├── ConflictError            another process changed the registry meanwhile; nothing was changed
    │   ├── PluginNotFoundError      no backend registered under that name (or its extra is missing)
    │   ├── AuthenticationError      access control is on and no valid token was given (HTTP 401)
    │   ├── AccessDeniedError        the token's grants do not allow this action on this object (HTTP 403)
    │   └── TransformationError      an on-demand view's function raised, or returned the wrong shape
    └── BackendError                 an engine failed
        ├── BackendUnavailable       transient: retrying may succeed (lock held, server down)
        ├── BackendFailure           terminal: retrying will not help (corrupt data, full disk)
        └── OnlineBehindError        history was committed, the online step then failed; says how to finish

Faces (CLI, server) print a `UserError` as one line and exit non-zero; only `BackendError`s
and genuine bugs deserve a traceback.
"""

from __future__ import annotations


class StratoError(Exception):
    """Root of every error Strato raises."""


class UserError(StratoError):
    """The caller gave bad input; retrying the same call will fail the same way."""


class DefinitionError(UserError):
    """A feature definition is invalid."""


class ConfigError(UserError):
    """The configuration is invalid."""


class SchemaError(UserError):
    """Rows do not match the schema of the view they are written to."""


class ValidationError(SchemaError):
    """A batch breaks its view's data-quality rules; nothing was written. `failures` holds one
    entry per broken rule: the field, the rule, how many rows, and a sample of them."""

    def __init__(self, message: str, *, failures: tuple[object, ...] = ()):
        super().__init__(message)
        self.failures = failures


class NotFoundError(UserError):
    """A named object does not exist."""


class RegistryNotFoundError(NotFoundError):
    """A store opened read-only found no registry: nothing was ever applied there."""


class BreakingChangeError(UserError):
    """An apply would change a view in a way old data cannot follow."""


class ConflictError(UserError):
    """The registry changed under a call: a plan made before another apply, or a write that
    reached a view version's storage after a newer version replaced it. Nothing was changed;
    plan (or write) again against the registry as it is now."""


class OffsetsMovedError(ConflictError):
    """A streamed batch's offsets moved in history after its writer read them: another
    consumer (a new owner of the partition after a rebalance, or a zombie) wrote them first.
    Nothing was written; read the offsets again and write only what history lacks."""


class PluginNotFoundError(UserError):
    """No backend is registered under the requested name."""


class AuthenticationError(UserError):
    """Access control is on for the project and the caller gave no token, or one that is
    malformed, unknown or revoked. The message never repeats the token."""


class AccessDeniedError(UserError):
    """The caller's token is valid but its grants do not cover the action; names both."""


class TransformationError(UserError):
    """An on-demand feature view's function raised, or returned columns its schema does not
    declare (missing, wrong type, wrong length); the message names the view and the column."""

    def __init__(self, message: str, *, view: str):
        super().__init__(message)
        self.view = view


class BackendError(StratoError):
    """A storage engine failed."""


class BackendUnavailable(BackendError):
    """Transient engine failure: the same call may succeed later."""


class BackendFailure(BackendError):
    """Terminal engine failure: retrying will not help."""


class OnlineBehindError(BackendError):
    """A write committed history, then its online step failed: the two stores are out of step.

    The message names the committed table version and the command that finishes the write
    (an incremental materialization, which loads every commit not yet online).
    """

    def __init__(self, message: str, *, view: str, table_version: int):
        super().__init__(message)
        self.view = view
        self.table_version = table_version
