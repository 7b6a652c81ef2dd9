"""Programme configuration and paths.

Each programme has ``programmes/<id>.yaml`` at the repository root with its facts from the public pages
(name, provider, funders, funding, dates, target group, targets), the index-date rule, the outcome window,
matching options and the disclosure threshold. :func:`load_programme` reads and checks one; a wrong config
fails fast with :class:`ConfigError` naming the file and the key.
"""
from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROGRAMME_IDS = (
    "pathways-out",
    "sos-plus",
    "mace",
    "detached-youth-work",
    "family-support",
    "capacity-building",
    "pathway-out-adder",
    "wonder-plus",
    "project-adder",
)
DESIGNS = ("individual", "delivery_and_individual", "delivery", "area")
INDIVIDUAL_DESIGNS = ("individual", "delivery_and_individual")


def repo_root() -> Path:
    """The repository root: ``EVALUATION_ROOT`` if set, else the folder holding ``programmes/``."""
    env = os.environ.get("EVALUATION_ROOT")
    if env:
        return Path(env).resolve()
    here = Path(__file__).resolve()
    for parent in here.parents:
        if (parent / "programmes").is_dir() and (parent / "pyproject.toml").exists():
            return parent
    return Path.cwd()


def programmes_dir() -> Path:
    return Path(os.environ.get("EVALUATION_PROGRAMMES", repo_root() / "programmes"))


def default_world() -> Path:
    """The world used when none is named: ``EVALUATION_WORLD`` or ``data/raw/synthetic``."""
    return Path(os.environ.get("EVALUATION_WORLD", repo_root() / "data" / "raw" / "synthetic"))


class ConfigError(ValueError):
    """A programme configuration is wrong; the message names the file and the key."""


@dataclass(frozen=True)
class Programme:
    """One programme's configuration (see ``programmes/<id>.yaml``)."""

    id: str
    name: str
    provider: str
    start: dt.date
    end: dt.date
    design: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    path: Path | None = None

    def get(self, key: str, default: Any = None) -> Any:
        return self.raw.get(key, default)

    @property
    def is_individual(self) -> bool:
        return self.design in INDIVIDUAL_DESIGNS

    @property
    def disclosure_threshold(self) -> int:
        return int((self.raw.get("disclosure") or {}).get("threshold", 5))

    @property
    def index_date_rule(self) -> str:
        return self.raw.get("index_date", "referral_date")

    @property
    def outcome(self) -> dict[str, Any]:
        return {"follow_up_months": 12, "waiting_months": 6, **(self.raw.get("outcome") or {})}

    @property
    def matching(self) -> dict[str, Any]:
        return dict(self.raw.get("matching") or {})


_REQUIRED = {"id": str, "name": str, "provider": str, "start": dt.date, "end": dt.date, "design": str}


def _fail(path: Path | str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {msg}")


def parse_programme(raw: dict[str, Any], path: Path | str = "<config>") -> Programme:
    """Check a programme mapping and return a :class:`Programme`; raise :class:`ConfigError` naming the key."""
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
    for key, typ in _REQUIRED.items():
        if key not in raw or raw[key] is None:
            raise _fail(path, key, "is required")
        value = raw[key]
        if typ is dt.date and isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value)
            except ValueError:
                raise _fail(path, key, f"'{value}' is not a date (YYYY-MM-DD)") from None
            raw[key] = value
        if not isinstance(value, typ):
            raise _fail(path, key, f"must be {typ.__name__}, got {type(value).__name__} ({value!r})")
    if raw["id"] not in PROGRAMME_IDS:
        raise _fail(path, "id", f"unknown programme '{raw['id']}'; known: {', '.join(PROGRAMME_IDS)}")
    if raw["design"] not in DESIGNS:
        raise _fail(path, "design", f"'{raw['design']}' is not one of {', '.join(DESIGNS)}")
    if raw["end"] < raw["start"]:
        raise _fail(path, "end", f"{raw['end']} is before start {raw['start']}")
    if raw.get("index_date", "referral_date") not in ("referral_date", "start_date"):
        raise _fail(path, "index_date", "must be 'referral_date' or 'start_date'")
    if raw.get("funding_gbp") is not None and (isinstance(raw["funding_gbp"], bool)
                                               or not isinstance(raw["funding_gbp"], (int, float))
                                               or raw["funding_gbp"] <= 0):
        raise _fail(path, "funding_gbp", f"must be an amount in pounds > 0 or null, got {raw['funding_gbp']!r}")
    if raw.get("funding_note") is not None and not isinstance(raw["funding_note"], str):
        raise _fail(path, "funding_note", f"must be text, got {type(raw['funding_note']).__name__}")
    outcome = raw.get("outcome") or {}
    for key in ("follow_up_months", "waiting_months"):
        if key in outcome and (not isinstance(outcome[key], int) or outcome[key] < 0):
            raise _fail(path, f"outcome.{key}", f"must be a whole number of months ≥ 0, got {outcome[key]!r}")
    disclosure = raw.get("disclosure") or {}
    if "threshold" in disclosure and (not isinstance(disclosure["threshold"], int) or disclosure["threshold"] < 1):
        raise _fail(path, "disclosure.threshold", f"must be a whole number ≥ 1, got {disclosure['threshold']!r}")
    matching = raw.get("matching") or {}
    if raw["design"] in INDIVIDUAL_DESIGNS:
        if not matching.get("covariates"):
            raise _fail(path, "matching.covariates", "an individual design needs matching covariates")
        if "ratio" in matching and (not isinstance(matching["ratio"], int) or matching["ratio"] < 1):
            raise _fail(path, "matching.ratio", f"must be a whole number ≥ 1, got {matching['ratio']!r}")
    return Programme(
        id=raw["id"], name=raw["name"], provider=raw["provider"], start=raw["start"], end=raw["end"],
        design=raw["design"], raw=raw, path=Path(path) if not isinstance(path, Path) else path,
    )


def load_programme(programme_id: str, directory: Path | str | None = None) -> Programme:
    """Read ``programmes/<programme_id>.yaml`` and check it."""
    directory = Path(directory) if directory else programmes_dir()
    path = directory / f"{programme_id}.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no configuration for programme '{programme_id}'")
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    programme = parse_programme(raw, path)
    if programme.id != programme_id:
        raise _fail(path, "id", f"'{programme.id}' does not match the file name '{programme_id}'")
    return programme


def load_programmes(directory: Path | str | None = None) -> dict[str, Programme]:
    """All nine programmes, in the order of :data:`PROGRAMME_IDS`."""
    return {pid: load_programme(pid, directory) for pid in PROGRAMME_IDS}
