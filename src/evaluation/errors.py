"""The library's one error family.

Every error the library raises on purpose derives from :class:`EvaluationError` (itself a :class:`ValueError`,
so older ``except ValueError`` code keeps working). Callers that turn failures into report notes catch
``EvaluationError`` (and numerical failures) only: anything else is a bug and must fail loudly.

Messages name the argument or file, the column or key and the rows; they never quote identifying values (person
ids, names, dates of birth), because a message may reach a published output.

Examples
--------
>>> from evaluation.errors import EvaluationError
>>> from evaluation.config import ConfigError
>>> issubclass(ConfigError, EvaluationError) and issubclass(EvaluationError, ValueError)
True
"""
from __future__ import annotations


class EvaluationError(ValueError):
    """Base class of every error the evaluation library raises on purpose (bad input, bad configuration)."""


__all__ = ["EvaluationError"]
