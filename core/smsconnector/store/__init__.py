"""Persistence: the tables, the database and its migrations."""

from .db import Store

__all__ = ["Store"]
