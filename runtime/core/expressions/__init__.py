"""Expressions at run time: the SQL compiler (the parser and evaluator live in builder)."""

from runtime.core.expressions.to_sql import NotTranslatable, SqlContext, to_sql

__all__ = ["NotTranslatable", "SqlContext", "to_sql"]
