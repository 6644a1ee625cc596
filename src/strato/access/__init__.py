"""Access control: principals, roles, grants, API tokens and the audit log.

One decision function serves the SDK and the server alike, so a rule cannot hold in one and not
the other.
"""
