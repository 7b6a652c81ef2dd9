"""The canonical tables as pandera schemas: the data dictionary of ``data/README.md`` in code.

Each schema states the columns a table must have, their types, the allowed categories, nullability and
uniqueness. :mod:`evaluation.validate` parses files into these types first (so that an unparseable date is
reported as such) and then validates with these schemas; relations *between* columns or tables (disposal
before offence, referral outside the programme's dates, people missing from ``people``) are checked there with
vectorised masks, so their messages can name the rows.

The constants (disposal types, offence groups, districts, the table list, which columns identify a person, ...)
are defined here once; other modules import them from here.
"""
from __future__ import annotations

import pandera.pandas as pa
from pandera.pandas import Check, Column, DataFrameSchema

from evaluation.config import PROGRAMME_IDS

COUNTED_DISPOSALS = ("conviction", "caution", "reprimand", "warning", "youth_caution", "youth_conditional_caution")
NOT_COUNTED_DISPOSALS = ("penalty_notice", "community_resolution", "nfa", "pending")
DISPOSAL_TYPES = COUNTED_DISPOSALS + NOT_COUNTED_DISPOSALS
#: Each disposal type in words, for the reports' definitions (:func:`evaluation.outcomes.proven_offence_definition`).
DISPOSAL_LABELS = {"conviction": "conviction", "caution": "caution", "reprimand": "reprimand", "warning": "warning",
                   "youth_caution": "youth caution", "youth_conditional_caution": "youth conditional caution",
                   "penalty_notice": "penalty notice", "community_resolution": "community resolution",
                   "nfa": "no further action", "pending": "still pending"}
OFFENCE_GROUPS = (
    "violence_with_injury", "violence_without_injury", "robbery", "sexual", "burglary", "theft", "vehicle",
    "criminal_damage", "arson", "drug_possession", "drug_supply", "public_order", "weapons", "fraud", "other",
)
SEXES = ("F", "M", "U")
ETHNICITY_GROUPS = ("White", "Black", "Asian", "Mixed", "Other", "Unknown")
COMPLETION_STATUSES = ("completed", "disengaged", "ongoing", "not_started")
CONTACT_TYPES = ("arrest", "stop_search", "intelligence", "safeguarding", "custody", "school_concern")
AREA_MEASURES = ("drug_offences", "drug_deaths", "treatment_starts", "treatment_completions", "arrests", "seizures",
                 "population")
ACTIVITIES = ("session", "training", "contact", "referral")
AUDIENCES = ("pupils", "teachers", "parents", "professionals", "vcse_organisations", "young_people", "families")
PENDING_DISPOSAL = "pending"  # an offence not yet disposed of: never counted, reported by the validation report
NORFOLK_DISTRICTS = ("Norwich", "Great Yarmouth", "Broadland", "South Norfolk", "Breckland", "North Norfolk",
                     "King's Lynn and West Norfolk")
REFERRAL_SOURCES = ("school", "custody", "community_policing", "early_help", "self", "health", "victim_services",
                    "yot", "mash", "probation", "dwp")  # the synthetic world's; real extracts may name others

#: Columns whose values identify a person: never quoted in an error message that may reach an output (the full
#: values are kept on ``DataError.detail`` for the terminal). Any column whose name contains one of
#: :data:`IDENTIFYING_NAME_PARTS` counts too (``first_name``, ``surname``, ``pnc_number``, ...).
IDENTIFYING_COLUMNS = ("person_id", "referral_id", "offence_id", "date_of_birth")
IDENTIFYING_NAME_PARTS = ("name", "birth", "dob", "address", "postcode", "pnc", "nhs", "_id")
#: Values that mean "missing" in a text column (empty, whitespace, and what spreadsheets and pandas write for it).
MISSING_TEXT = ("", "nan", "none", "null", "na", "n/a", "<na>", "nat")
#: The extract date may not be later than the latest of these dates (the outcome measure relies on the offences
#: table being complete up to the extract date); without ``meta.json`` it *is* the latest of them.
LATEST_RECORD_COLUMNS = {"offences": ("offence_date", "disposal_date")}
#: Dated events that cannot come before the person's date of birth.
EVENT_DATE_COLUMNS = {"offences": "offence_date", "referrals": "referral_date", "contacts": "contact_date",
                      "custody": "custody_start"}
MAX_AGE_YEARS = 110  # a date of birth making someone older than this at the extract date is an error
#: Bumped whenever a validation rule changes: part of the validated-cache key.
RULES_VERSION = "2026-12-01.1"

DATE = "datetime64[ns]"


def _id(unique: bool = False) -> Column:
    return Column(str, nullable=False, unique=unique, checks=Check.str_length(min_value=1))


def _cat(values) -> Column:
    return Column(str, nullable=False, checks=Check.isin(list(values)))


SCHEMAS: dict[str, DataFrameSchema] = {
    "people": DataFrameSchema({
        "person_id": _id(unique=True),
        "date_of_birth": Column(DATE, nullable=False),
        "sex": _cat(SEXES),
        "ethnicity_group": _cat(ETHNICITY_GROUPS),
        "district": Column(str, nullable=False),
        "drug_misuse": Column(bool, nullable=False),
    }, name="people", strict=False, coerce=False),
    "referrals": DataFrameSchema({
        "referral_id": _id(unique=True),
        "person_id": _id(),
        "programme_id": _cat(PROGRAMME_IDS),
        "referral_date": Column(DATE, nullable=False),
        "start_date": Column(DATE, nullable=True),
        "end_date": Column(DATE, nullable=True),
        "completion_status": _cat(COMPLETION_STATUSES),
        "referral_source": Column(str, nullable=False),
    }, name="referrals", strict=False, coerce=False),
    "contacts": DataFrameSchema({
        "person_id": _id(),
        "contact_date": Column(DATE, nullable=False),
        "contact_type": _cat(CONTACT_TYPES),
    }, name="contacts", strict=False, coerce=False),
    "offences": DataFrameSchema({
        "offence_id": _id(unique=True),
        "person_id": _id(),
        "offence_date": Column(DATE, nullable=False),
        "disposal_date": Column(DATE, nullable=True),
        "disposal_type": _cat(DISPOSAL_TYPES),
        "offence_group": _cat(OFFENCE_GROUPS),
        "drug_related": Column(bool, nullable=False),
    }, name="offences", strict=False, coerce=False),
    "custody": DataFrameSchema({
        "person_id": _id(),
        "custody_start": Column(DATE, nullable=False),
        "custody_end": Column(DATE, nullable=False),
    }, name="custody", strict=False, coerce=False),
    "area_monthly": DataFrameSchema({
        "area": Column(str, nullable=False),
        "month": Column(DATE, nullable=False, checks=Check(lambda s: s.dt.day == 1, element_wise=False,
                                                           error="month must be the first day of the month")),
        "measure": _cat(AREA_MEASURES),
        "value": Column(float, nullable=False, checks=Check.ge(0)),
    }, name="area_monthly", strict=False, coerce=False),
    "delivery": DataFrameSchema({
        "programme_id": _cat(PROGRAMME_IDS),
        "date": Column(DATE, nullable=False),
        "activity": _cat(ACTIVITIES),
        "audience": _cat(AUDIENCES),
        "sessions": Column("Int64", nullable=False, checks=Check.ge(0)),
        "attendees": Column("Int64", nullable=False, checks=Check.ge(0)),
        "referrals_to": Column(str, nullable=True),
        "organisations": Column("Int64", nullable=True, checks=Check.ge(0)),
    }, name="delivery", strict=False, coerce=False),
    # Education, training and employment (ETE) outcomes recorded by a provider (Pathway Out (ADDER)); read with
    # load_table(world.path, "ete") by evaluation.vfm.ete_outcomes; data/README.md, table `ete`.
    "ete": DataFrameSchema({
        "person_id": _id(),
        "programme_id": _cat(PROGRAMME_IDS),
        "ete_at_start": Column(bool, nullable=False),
        "status_at_exit": Column(str, nullable=True, checks=Check.isin(["employment", "education_training", "not_in_ete", "unknown"])),  # empty while still on the programme,
        "sustained_3m": Column("Int64", nullable=True, checks=Check.isin([0, 1])),
        "sustained_6m": Column("Int64", nullable=True, checks=Check.isin([0, 1])),
    }, name="ete", strict=False, coerce=False),
}

# how each column is parsed from a file before validation
COLUMN_KINDS: dict[str, dict[str, str]] = {
    name: {col: ("date" if str(c.dtype) == DATE else "bool" if str(c.dtype) == "bool" else
                 "int" if str(c.dtype) == "Int64" else "float" if str(c.dtype) == "float64" else "str")
           for col, c in schema.columns.items()}
    for name, schema in SCHEMAS.items()
}
REQUIRED_TABLES = ("people", "referrals", "contacts", "offences")
OPTIONAL_TABLES = ("custody", "area_monthly", "delivery", "ete")
TABLES = REQUIRED_TABLES + OPTIONAL_TABLES
WORLD_TABLES = TABLES  # the name the report build used for the same list


def is_identifying(column: str | None) -> bool:
    """Whether values of ``column`` may identify a person (never quoted in messages that reach an output)."""
    if column is None:
        return False
    c = str(column).lower()
    if c in ("programme_id",):
        return False
    return c in IDENTIFYING_COLUMNS or any(part in c for part in IDENTIFYING_NAME_PARTS)

__all__ = ["SCHEMAS", "COLUMN_KINDS", "TABLES", "REQUIRED_TABLES", "OPTIONAL_TABLES", "COUNTED_DISPOSALS",
           "NOT_COUNTED_DISPOSALS", "DISPOSAL_TYPES", "DISPOSAL_LABELS", "OFFENCE_GROUPS", "COMPLETION_STATUSES",
           "AREA_MEASURES",
           "SEXES", "ETHNICITY_GROUPS", "CONTACT_TYPES", "ACTIVITIES", "AUDIENCES", "PENDING_DISPOSAL",
           "NORFOLK_DISTRICTS", "REFERRAL_SOURCES", "IDENTIFYING_COLUMNS", "MISSING_TEXT", "LATEST_RECORD_COLUMNS",
           "EVENT_DATE_COLUMNS", "MAX_AGE_YEARS", "RULES_VERSION", "WORLD_TABLES", "is_identifying", "pa"]
