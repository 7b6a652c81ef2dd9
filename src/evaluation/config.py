"""Programme configuration and paths.

Each programme has ``programmes/<id>.yaml`` at the repository root with its facts from the public pages
(name, provider, funders, funding, dates, target group, targets), the index-date rule, the outcome window,
matching options and the disclosure threshold. :func:`load_programme` reads one into a typed :class:`Programme`
and checks it on load: a wrong config fails fast with :class:`ConfigError` naming the file and the key.

The keys a programme file may have, their types and limits, are declared once, in :data:`SCHEMA` (the table in
``programmes/README.md`` documents them). To add a key, add one line there. Checks on load:

* only known keys (an unknown key gets a "did you mean" suggestion: ``threshhold`` -> ``threshold``);
* exact types: YAML's ``yes``/``true`` is a boolean and is never accepted where a number is expected;
  a text where a list is expected (``districts: Norwich``) is refused;
* limits: ``caliper`` > 0, ``follow_up_months`` >= 1, ``ratio`` >= 1, ages >= 0;
* dates are read as text and parsed here, so ``start: 2019-13-01`` is an error naming the key (not a PyYAML
  traceback); a key given twice in one mapping is an error (PyYAML would silently keep the last value);
* matching covariates must be ones the cohort builds (:data:`COVARIATES`);
* the disclosure threshold cannot go below the policy minimum of :data:`MIN_DISCLOSURE_THRESHOLD` (5) unless
  ``disclosure.override_reason`` says why; an override is reported in :attr:`Programme.config_notes`.

The typed option objects (:class:`OutcomeWindow`, :class:`MatchingOptions`, :class:`Disclosure`,
:class:`Funding`, :class:`TargetGroup`) also behave as read-only mappings of their YAML keys, so older code that
does ``programme.outcome["follow_up_months"]`` or ``programme.matching.get("caliper")`` keeps working.

Examples
--------
>>> from evaluation.config import load_programme
>>> p = load_programme("pathways-out")
>>> p.outcome.follow_up_months, p.matching["ratio"], p.disclosure_threshold
(12, 3, 5)
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from evaluation.errors import EvaluationError

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
#: The covariates :func:`evaluation.cohort.build_cohort` computes at the index date (numeric, usable in the
#: propensity model); ``tests/test_config.py`` checks the cohort builds exactly these.
COVARIATES = ("age", "male", "prior_offences", "prior_drug", "drug_misuse", "norwich", "yarmouth")
#: Further cohort columns that exact matching may use (categories, not model terms).
EXACT_ONLY = ("district", "sex", "ethnicity_group")
#: Policy minimum for the disclosure threshold (counts 1 .. threshold - 1 are suppressed).
MIN_DISCLOSURE_THRESHOLD = 5
MEASURES = ("proven_reoffending", "first_proven_offending_or_reoffending")


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


class ConfigError(EvaluationError):
    """A programme configuration is wrong; the message names the file and the key."""


# ---------------------------------------------------------------------------------------------------------------
# the schema: every key a programme file may have (one place; add a key with one line)
# ---------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Key:
    """One allowed key: ``kind`` is ``str``, ``int``, ``number``, ``bool``, ``date``, ``list`` (of text),
    ``mapping`` (free-form, checked elsewhere or not at all) or ``block`` (a nested mapping checked by ``keys``)."""

    kind: str
    required: bool = False
    nullable: bool = False
    min: float | None = None
    above: float | None = None  # strictly greater than
    choices: tuple | None = None
    keys: dict[str, "Key"] | None = None
    all_ok: bool = False  # a list that may also be the word 'all'
    what: str = ""  # what a value names, for messages ("programme")


SCHEMA: dict[str, Key] = {
    "id": Key("str", required=True, choices=PROGRAMME_IDS, what="programme"),
    "name": Key("str", required=True),
    "provider": Key("str", required=True),
    "start": Key("date", required=True),
    "end": Key("date", required=True),
    "design": Key("str", required=True, choices=DESIGNS),
    "partners": Key("list"),
    "funders": Key("list"),
    "funding_gbp": Key("number", nullable=True, above=0),
    "funding_price_year": Key("int", nullable=True, min=1990),
    "funding_note": Key("str", nullable=True),
    "description": Key("str"),
    "target_group": Key("block", nullable=True, keys={
        "min_age": Key("int", nullable=True, min=0),
        "max_age": Key("int", nullable=True, min=0),
        "districts": Key("list", nullable=True, all_ok=True),
        "sex": Key("str", nullable=True, choices=("M", "F", "any")),
        "drug_link": Key("bool"),
    }),
    "targets": Key("mapping", nullable=True),
    "reported": Key("mapping", nullable=True),
    "referral_sources": Key("list"),
    "index_date": Key("str", choices=("referral_date", "start_date")),
    "outcome": Key("block", nullable=True, keys={
        "follow_up_months": Key("int", min=1),
        "waiting_months": Key("int", min=0),
        "measure": Key("str", choices=MEASURES),
        "label": Key("str", nullable=True),
        "first_time_entrants": Key("bool"),
        "ete": Key("bool"),
    }),
    "matching": Key("block", nullable=True, keys={
        "covariates": Key("list", choices=COVARIATES),
        "ratio": Key("int", min=1),
        "replace": Key("bool"),
        "caliper": Key("number", nullable=True, above=0),
        "exact": Key("list", nullable=True, choices=COVARIATES + EXACT_ONLY),
        # headline effects adjusted for these covariates by g-computation ('all': the matching covariates)
        "adjust": Key("list", nullable=True, all_ok=True, choices=COVARIATES),
    }),
    "completers_analysis": Key("bool"),
    "area": Key("block", nullable=True, keys={"treated": Key("str"), "comparison": Key("list")}),
    "measures": Key("list"),
    "disclosure": Key("block", nullable=True, keys={
        "threshold": Key("int", min=1),
        "override_reason": Key("str", nullable=True),
    }),
    "assumed": Key("list"),
    "ete": Key("mapping", nullable=True),
    "sources": Key("list"),
}

_KINDS = {"str": "text", "int": "a whole number", "number": "a number", "bool": "true or false",
          "date": "a date (YYYY-MM-DD)", "list": "a list (e.g. [a, b])", "mapping": "a mapping of keys",
          "block": "a mapping of keys"}


# ---------------------------------------------------------------------------------------------------------------
# typed options (dataclasses that are also read-only mappings of their YAML keys)
# ---------------------------------------------------------------------------------------------------------------
class _Options(Mapping):
    """Mapping access over the dataclass fields (``obj["key"]``, ``obj.get``, ``dict(obj)``, ``**obj``)."""

    def __getitem__(self, key: str) -> Any:
        if key in self._names():
            return getattr(self, key)
        raise KeyError(key)

    def __iter__(self):
        return iter(self._names())

    def __len__(self) -> int:
        return len(self._names())

    def _names(self) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(self) if f.metadata.get("key", True))


@dataclass(frozen=True)
class OutcomeWindow(_Options):
    """The outcome: calendar months of follow-up and of waiting for disposals, the measure and its label."""

    follow_up_months: int = 12
    waiting_months: int = 6
    measure: str = "proven_reoffending"
    label: str | None = None
    first_time_entrants: bool = False
    ete: bool = False  # also report education, training and employment outcomes (the provider's ``ete`` table)


@dataclass(frozen=True)
class MatchingOptions(_Options):
    """Propensity-score matching options, as :func:`evaluation.matching.match` takes them."""

    covariates: tuple[str, ...] = ()
    ratio: int = 1
    replace: bool = False
    caliper: float | None = None
    exact: tuple[str, ...] | None = None
    adjust: tuple[str, ...] | str | None = None  # covariates, or 'all' (the matching covariates)


@dataclass(frozen=True)
class Disclosure(_Options):
    """Disclosure control: counts 1 .. threshold - 1 are suppressed. ``override_reason`` is set only when the
    threshold is below the policy minimum, and is then reported."""

    threshold: int = MIN_DISCLOSURE_THRESHOLD
    override_reason: str | None = None


@dataclass(frozen=True)
class Funding(_Options):
    """Funding in pounds (cash, ``price_year`` prices), or ``None`` when not published (then ``note`` says so)."""

    gbp: float | None = None
    price_year: int | None = None
    note: str | None = None


@dataclass(frozen=True)
class TargetGroup(_Options):
    """Who the comparison pool is drawn from: ages (years at the index date), districts (``None`` = all), sex."""

    min_age: int | None = None
    max_age: int | None = None
    districts: tuple[str, ...] | None = None
    sex: str = "any"
    drug_link: bool = False


@dataclass(frozen=True)
class Programme:
    """One programme's configuration (see ``programmes/<id>.yaml`` and :data:`SCHEMA`).

    ``raw`` is the checked mapping as read (dates parsed); :meth:`get` reads it. The typed options are
    ``outcome``, ``matching``, ``disclosure``, ``funding`` and ``target_group``.
    """

    id: str
    name: str
    provider: str
    start: dt.date
    end: dt.date
    design: str
    raw: dict[str, Any] = field(repr=False, compare=False)
    path: Path | None = None
    outcome: OutcomeWindow = field(default_factory=OutcomeWindow, repr=False, compare=False)
    matching: MatchingOptions = field(default_factory=MatchingOptions, repr=False, compare=False)
    disclosure: Disclosure = field(default_factory=Disclosure, repr=False, compare=False)
    funding: Funding = field(default_factory=Funding, repr=False, compare=False)
    target_group: TargetGroup = field(default_factory=TargetGroup, repr=False, compare=False)
    #: Sentences a report must say about the configuration (e.g. a disclosure override and its reason).
    config_notes: tuple[str, ...] = field(default=(), repr=False, compare=False)

    def get(self, key: str, default: Any = None) -> Any:
        """The value of a top-level key as written in the file (dates parsed), or ``default``."""
        return self.raw.get(key, default)

    @property
    def is_individual(self) -> bool:
        return self.design in INDIVIDUAL_DESIGNS

    @property
    def disclosure_threshold(self) -> int:
        return self.disclosure.threshold

    @property
    def index_date_rule(self) -> str:
        return self.raw.get("index_date", "referral_date")


# ---------------------------------------------------------------------------------------------------------------
# checking
# ---------------------------------------------------------------------------------------------------------------
def _fail(path: Path | str, key: str, msg: str) -> ConfigError:
    return ConfigError(f"{path}: key '{key}': {msg}")


def _got(value: Any) -> str:
    if isinstance(value, bool):
        return f"{str(value).lower()} (a YAML boolean: yes/no/true/false/on/off)"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, (list, dict)):
        return f"a {'list' if isinstance(value, list) else 'mapping'} {value!r}"
    return repr(value)


def _unknown(path, where: str, key, allowed) -> ConfigError:
    near = difflib.get_close_matches(str(key), list(allowed), n=1, cutoff=0.6)
    hint = f"; did you mean '{near[0]}'?" if near else f"; known keys: {', '.join(allowed)}"
    return _fail(path, f"{where}{key}", f"unknown key{hint}")


def _check_value(path, name: str, key: Key, value: Any) -> Any:
    if value is None:
        if key.nullable or key.kind in ("block", "mapping"):
            return None
        raise _fail(path, name, f"must be {_KINDS[key.kind]}, got nothing (null)")
    k = key.kind
    if k == "str":
        if not isinstance(value, str):
            raise _fail(path, name, f"must be text, got {_got(value)}")
    elif k == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise _fail(path, name, f"must be a whole number, got {_got(value)}")
    elif k == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise _fail(path, name, f"must be a number, got {_got(value)}")
        if not math.isfinite(value):  # YAML's .nan and .inf are floats, and NaN passes every "above"/"below"
            raise _fail(path, name, f"must be a finite number, got {value!r}")
    elif k == "bool":
        if not isinstance(value, bool):
            raise _fail(path, name, f"must be true or false, got {_got(value)}")
    elif k == "date":
        if isinstance(value, dt.datetime):
            value = value.date()
        elif isinstance(value, str):
            try:
                value = dt.date.fromisoformat(value.strip())
            except ValueError:
                raise _fail(path, name, f"'{value}' is not a date (YYYY-MM-DD)") from None
        elif not isinstance(value, dt.date):
            raise _fail(path, name, f"must be a date (YYYY-MM-DD), got {_got(value)}")
    elif k == "list":
        if key.all_ok and value == "all":
            return "all"
        if not isinstance(value, list):
            also = " or 'all'" if key.all_ok else ""
            example = f" (write [{value}])" if isinstance(value, str) else ""
            raise _fail(path, name, f"must be a list{also}{example}, got {_got(value)}")
        bad = [v for v in value if not isinstance(v, str)]
        if bad:
            raise _fail(path, name, f"must be a list of text, has {_got(bad[0])}")
        if key.choices is not None:
            unknown = [v for v in value if v not in key.choices]
            if unknown:
                near = difflib.get_close_matches(unknown[0], key.choices, n=1, cutoff=0.6)
                hint = f" (did you mean '{near[0]}'?)" if near else ""
                raise _fail(path, name, f"unknown value(s) {', '.join(map(repr, unknown))}{hint}; known: "
                                        f"{', '.join(key.choices)}")
        return value
    elif k in ("mapping", "block"):
        if not isinstance(value, dict):
            raise _fail(path, name, f"must be a mapping of keys, got {_got(value)}")
        if k == "block":
            out = {}
            for sub, v in value.items():
                if sub not in key.keys:
                    raise _unknown(path, f"{name}.", sub, key.keys)
                out[sub] = _check_value(path, f"{name}.{sub}", key.keys[sub], v)
            return out
        return value
    if key.choices is not None and value not in key.choices:
        near = difflib.get_close_matches(str(value), [str(c) for c in key.choices], n=1, cutoff=0.6)
        hint = f" (did you mean '{near[0]}'?)" if near else ""
        if key.what:
            msg = f"unknown {key.what} '{value}'{hint}; known: {', '.join(map(str, key.choices))}"
        elif len(key.choices) == 2:
            msg = f"must be '{key.choices[0]}' or '{key.choices[1]}', got '{value}'{hint}"
        else:
            msg = f"'{value}' is not one of {', '.join(map(str, key.choices))}{hint}"
        raise _fail(path, name, msg)
    if key.min is not None and value < key.min:
        raise _fail(path, name, f"must be ≥ {key.min:g}, got {value!r}")
    if key.above is not None and value <= key.above:
        raise _fail(path, name, f"must be > {key.above:g}, got {value!r}")
    return value


def parse_programme(raw: dict[str, Any], path: Path | str = "<config>") -> Programme:
    """Check a programme mapping and return a :class:`Programme`.

    Parameters
    ----------
    raw : the mapping read from a programme file.
    path : the file, for messages.

    Returns
    -------
    Programme

    Raises
    ------
    ConfigError
        naming the file and the key: a missing required key, an unknown key (with a "did you mean"), a wrong type,
        a value outside its limits, ``end`` before ``start``, an individual design without covariates, or a
        disclosure threshold below the policy minimum without ``disclosure.override_reason``.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of keys, got {type(raw).__name__}")
    for key, spec in SCHEMA.items():
        if spec.required and raw.get(key) is None:
            raise _fail(path, key, "is required")
    checked: dict[str, Any] = {}
    for key, value in raw.items():
        if key not in SCHEMA:
            raise _unknown(path, "", key, SCHEMA)
        checked[key] = _check_value(path, key, SCHEMA[key], value)
    if checked["end"] < checked["start"]:
        raise _fail(path, "end", f"{checked['end']} is before start {checked['start']}")
    tg = checked.get("target_group") or {}
    if tg.get("min_age") is not None and tg.get("max_age") is not None and tg["max_age"] < tg["min_age"]:
        raise _fail(path, "target_group.max_age", f"{tg['max_age']} is below min_age {tg['min_age']}")
    matching = checked.get("matching") or {}
    if checked["design"] in INDIVIDUAL_DESIGNS and not matching.get("covariates"):
        raise _fail(path, "matching.covariates", "an individual design needs matching covariates")
    disclosure = checked.get("disclosure") or {}
    threshold = disclosure.get("threshold", MIN_DISCLOSURE_THRESHOLD)
    reason = (disclosure.get("override_reason") or "").strip() or None
    notes = []
    if threshold < MIN_DISCLOSURE_THRESHOLD:
        if not reason:
            raise _fail(path, "disclosure.threshold",
                        f"{threshold} is below the policy minimum of {MIN_DISCLOSURE_THRESHOLD}; to go below it, "
                        "give disclosure.override_reason (it is reported)")
        notes.append(f"Disclosure threshold {threshold} is below the policy minimum of {MIN_DISCLOSURE_THRESHOLD}: "
                     f"{reason}")
    elif reason:
        raise _fail(path, "disclosure.override_reason",
                    f"only for a threshold below the policy minimum of {MIN_DISCLOSURE_THRESHOLD}")
    outcome = checked.get("outcome") or {}
    districts = tg.get("districts")
    return Programme(
        id=checked["id"], name=checked["name"], provider=checked["provider"], start=checked["start"],
        end=checked["end"], design=checked["design"], raw=checked,
        path=Path(path) if not isinstance(path, Path) else path,
        outcome=OutcomeWindow(**outcome),
        matching=MatchingOptions(**{k: (tuple(v) if isinstance(v, list) else v) for k, v in matching.items()}),
        disclosure=Disclosure(threshold=threshold, override_reason=reason),
        funding=Funding(gbp=checked.get("funding_gbp"), price_year=checked.get("funding_price_year"),
                        note=checked.get("funding_note")),
        target_group=TargetGroup(**{**{k: v for k, v in tg.items() if v is not None},
                                    "districts": None if districts in (None, "all") else tuple(districts)}),
        config_notes=tuple(notes),
    )


# ---------------------------------------------------------------------------------------------------------------
# reading files: dates stay text (parsed above, with the key named); duplicate keys are refused
# ---------------------------------------------------------------------------------------------------------------
class _DuplicateKey(Exception):
    def __init__(self, key, first: int, second: int):
        super().__init__(key)
        self.key, self.first, self.second = key, first, second


class _StrictLoader(yaml.SafeLoader):
    """PyYAML's safe loader without implicit timestamps (so a bad date is our error, not a traceback) and with
    duplicate keys refused (PyYAML keeps the last value silently)."""

    def construct_mapping(self, node, deep=False):
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            line = key_node.start_mark.line + 1
            if key in seen:
                raise _DuplicateKey(key, seen[key], line)
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


_StrictLoader.yaml_implicit_resolvers = {
    ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def read_yaml(path: Path | str) -> Any:
    """Read a YAML file strictly (see :class:`_StrictLoader`); raise :class:`ConfigError` naming the file."""
    path = Path(path)
    try:
        return yaml.load(path.read_text(), Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except _DuplicateKey as exc:
        raise ConfigError(f"{path}: key '{exc.key}': given twice (lines {exc.first} and {exc.second}); "
                          "keep one") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None


def load_programme(programme_id: str, directory: Path | str | None = None) -> Programme:
    """Read ``programmes/<programme_id>.yaml`` and check it.

    Parameters
    ----------
    programme_id : one of :data:`PROGRAMME_IDS`.
    directory : folder of the programme files (default :func:`programmes_dir`).

    Returns
    -------
    Programme

    Raises
    ------
    ConfigError
        naming the file and the key (see :func:`parse_programme`), for a missing file, invalid YAML or a key given
        twice.
    """
    directory = Path(directory) if directory else programmes_dir()
    path = directory / f"{programme_id}.yaml"
    if not path.exists():
        raise ConfigError(f"{path}: no configuration for programme '{programme_id}'")
    programme = parse_programme(read_yaml(path), path)
    if programme.id != programme_id:
        raise _fail(path, "id", f"'{programme.id}' does not match the file name '{programme_id}'")
    return programme


def load_programmes(directory: Path | str | None = None) -> dict[str, Programme]:
    """All nine programmes, in the order of :data:`PROGRAMME_IDS`."""
    return {pid: load_programme(pid, directory) for pid in PROGRAMME_IDS}


__all__ = ["PROGRAMME_IDS", "DESIGNS", "INDIVIDUAL_DESIGNS", "COVARIATES", "EXACT_ONLY", "MIN_DISCLOSURE_THRESHOLD",
           "SCHEMA", "Key", "ConfigError", "Programme", "OutcomeWindow", "MatchingOptions", "Disclosure", "Funding",
           "TargetGroup", "parse_programme", "load_programme", "load_programmes", "read_yaml", "repo_root",
           "programmes_dir", "default_world"]
