"""Expressions at run time: the SQL compiler (the parser and evaluator live in builder)."""

from .to_sql import NotTranslatable, SqlContext, to_sql

__all__ = ["NotTranslatable", "SqlContext", "to_sql"]
