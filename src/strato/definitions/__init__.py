"""Pure feature definitions and their validation: no I/O happens in this package."""
