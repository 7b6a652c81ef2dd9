"""Record linkage: provider referral lists to the police nominal index with Splink.

A provider's referral list carries names, dates of birth, sex and perhaps a postcode, not police identifiers; the
first step of an evaluation (as at the Justice Data Lab) is to find each referred person in police records and
say how many were found. :func:`link` does this with Splink (Fellegi-Sunter with term-frequency adjustments,
trained without labels by expectation maximisation), on DuckDB by default or Spark for national scale.

Steps, in one place:

1. **Check and clean** both tables (:func:`clean`): required columns, parseable dates (ISO ``yyyy-mm-dd`` or UK
   ``dd/mm/yyyy``), unique ids; names lower-cased with punctuation and titles removed, the first given name kept,
   surname tokens kept for double-barrelled and hyphenated names, every first name expanded to its formal forms
   with the shipped nickname table (``data/nicknames.csv``: Bill → William), postcodes normalised with sector and
   district derived. Records without at least two of first name, surname and date of birth cannot be linked:
   they are counted as unlinkable with that reason, never dropped silently.
2. **Compare** with Splink: first name (exact with term frequencies, nickname forms, Jaro-Winkler), surname
   (exact with term frequencies, Jaro-Winkler, a shared token for double-barrelled or partly changed names),
   date of birth (exact, day and month swapped, one character different, within a year), sex, postcode (full,
   sector, district). Blocking: same date of birth, same day-and-month-swapped date, same names, same postcode,
   same first name and year of birth, same surname and year of birth.
3. **Train** without labels: the chance two random records match from deterministic rules, u from random
   sampling (both on the whole index), m by EM in two sessions (blocked on date of birth, then on names) on the
   nominals the blocking rules can pair with a referral, with term frequencies of the whole index computed once
   (the same pairs as on the whole index, at a fraction of the cost). ``model=`` reuses a model.
4. **Assign** each referral to at most one person: the best candidate at or above ``threshold``; when a second
   candidate is within :data:`TIE_MARGIN` match weight of the best, the referral is left unlinked for clerical
   review (``ambiguous``). Several referrals linked to the same person in the same programme are recognised as
   duplicates (``duplicate_of`` names the first one: the earliest referral date, then the lowest referral id).

Names never leave this module: :class:`LinkageResult` holds ids, probabilities and comparison levels only.
"""
from __future__ import annotations

import json
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from evaluation.errors import EvaluationError

#: Default match-probability threshold: a referral links to its best candidate when that candidate's
#: probability is at least this.
DEFAULT_THRESHOLD = 0.95
#: When the second-best candidate's match weight is within this many (log2 Bayes-factor) units of the best's,
#: the referral is not linked but sent to review: the evidence does not single out one person.
TIE_MARGIN = 3.0
#: Below this probability pairs are not kept from Splink's predictions at all (they never decide anything).
_KEEP_PAIRS_ABOVE = 0.001
REQUIRED = ("first_name", "surname", "date_of_birth", "sex")
_TITLES = {"mr", "mrs", "miss", "ms", "mx", "dr", "master"}
_REASONS = {
    "unusable": "fewer than two of first name, surname and date of birth",
    "no_candidate": "no candidate in the nominal index",
    "below_threshold": "best candidate below the threshold",
    "ambiguous": "two or more candidates within the tie margin (clerical review)",
}


class LinkageError(EvaluationError):
    """Bad linkage input: names the file (or table), the column and the rows; never quotes values."""


# ---------------------------------------------------------------------------------------------------------------
# cleaning
# ---------------------------------------------------------------------------------------------------------------
def _rows(mask: np.ndarray, limit: int = 10, lines: np.ndarray | None = None) -> str:
    """"data rows 1, 2" (1-based positions) or, with ``lines`` (each row's line in its file), "lines 3, 7"."""
    idx = np.flatnonzero(mask) + 1 if lines is None else np.asarray(lines)[np.asarray(mask, bool)]
    head = ", ".join(str(i) for i in idx[:limit])
    word = "data row" if lines is None else "line"
    return f"{word}{'s' if idx.size > 1 else ''} {head}" + (f" and {idx.size - limit} more" if idx.size > limit
                                                            else "")


def _nickname_forms() -> dict[str, list[str]]:
    from evaluation.synth_names import nickname_table

    forms: dict[str, set[str]] = {}
    for name, nick in nickname_table().itertuples(index=False):
        forms.setdefault(nick, {nick}).add(name)
        forms.setdefault(name, {name})
    return {k: sorted(v) for k, v in forms.items()}


def _parse_dates(s: pd.Series, *, source: str, column: str, lines: np.ndarray | None = None) -> pd.Series:
    """ISO ``yyyy-mm-dd`` or UK ``dd/mm/yyyy`` (also ``-`` or ``.``, one-digit day or month), either with a time
    of day after it (a spreadsheet's export: ``25/02/2006 00:00``), which is dropped; blank → missing; anything
    else → error."""
    if pd.api.types.is_datetime64_any_dtype(s):
        return pd.to_datetime(s).dt.normalize()
    text = s.astype("string").str.strip().str.replace(r"(?:[ T]\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)$", "",
                                                      regex=True)
    blank = text.isna() | (text == "")
    out = pd.to_datetime(text, format="%Y-%m-%d", errors="coerce")
    rest = (out.isna() & ~blank).to_numpy()
    if rest.any():  # the other forms only for the rows ISO did not read (a million-row index is mostly ISO)
        other = text[rest]
        iso = pd.to_datetime(other.str.slice(0, 10), format="%Y-%m-%d", errors="coerce")
        uk = pd.to_datetime(other.str.replace(r"[.\-]", "/", regex=True), format="%d/%m/%Y", errors="coerce")
        out[rest] = iso.fillna(uk)
    bad = (~blank & out.isna()).to_numpy()
    today = pd.Timestamp.today().normalize()
    bad |= (out.notna() & ((out.dt.year < 1900) | (out > today))).to_numpy()
    if bad.any():
        raise LinkageError(f"{source}: column '{column}' has dates that cannot be read (expected yyyy-mm-dd or "
                           f"dd/mm/yyyy, 1900 to today) in {_rows(bad, lines=lines)}")
    return out


def clean(df: pd.DataFrame, *, id_column: str, source: str = "table", arrow: bool = False,
          lines: np.ndarray | None = None) -> pd.DataFrame:
    """Check and standardise a referral list or nominal index for linkage.

    Parameters
    ----------
    df : DataFrame
        ``id_column`` plus ``first_name, surname, date_of_birth, sex`` and optionally ``postcode``.
    id_column : str
        ``referral_id`` or ``person_id``; must be present, non-blank and unique.
    source : str
        The file or table name used in error messages.
    arrow : bool
        Return a ``pyarrow.Table`` instead (used by :func:`link`: no per-row Python work on large indexes).
    lines : array of int, optional
        Each row's line in its file (:func:`read_list`): errors then name file lines instead of data rows.

    Returns
    -------
    DataFrame
        ``unique_id, first_name, first_name_forms (list), surname, surname_tokens (list), dob (yyyy-mm-dd),
        dob_swapped (day and month swapped, or missing), birth_year, sex (m/f), postcode, postcode_sector,
        postcode_district, usable (bool)``; one row per input row, same order.

    Raises
    ------
    LinkageError
        Empty table, missing columns, blank or duplicate ids, unreadable dates (rows are named; values never).
    """
    if df is None or len(df) == 0:
        raise LinkageError(f"{source}: the list is empty (no rows)")
    missing = [c for c in (id_column,) + REQUIRED if c not in df.columns]
    if missing:
        raise LinkageError(f"{source}: missing column{'s' if len(missing) > 1 else ''} "
                           + ", ".join(f"'{c}'" for c in missing))
    ids = df[id_column].astype("string").str.strip()
    blank = (ids.isna() | (ids == "")).to_numpy()
    if blank.any():
        raise LinkageError(f"{source}: column '{id_column}' is blank in {_rows(blank, lines=lines)}")
    dup = ids.duplicated(keep=False).to_numpy()
    if dup.any():
        raise LinkageError(f"{source}: column '{id_column}' has duplicate ids in {_rows(dup, lines=lines)}")
    dob = _parse_dates(df["date_of_birth"], source=source, column="date_of_birth", lines=lines)
    text = lambda c: df[c].astype("string").to_numpy(object) if c in df.columns else np.full(len(df), None, object)
    frame = pd.DataFrame({"uid": ids.to_numpy(object), "fn": text("first_name"), "sn": text("surname"),
                          "dob": dob.to_numpy("datetime64[ns]"), "sex": text("sex"), "pc": text("postcode")})
    frame = frame.where(frame.notna(), None)
    forms = pd.DataFrame([(k, v) for k, v in _nickname_forms().items()], columns=["name", "forms"])
    titles = ", ".join(f"'{t}'" for t in sorted(_TITLES))
    # string cleaning in DuckDB: vectorised, so a million-row nominal index cleans in seconds
    import duckdb

    con = duckdb.connect()
    try:
        con.register("frame", frame)
        con.register("forms", forms)
        out = con.sql(f"""
        WITH a AS (
          SELECT row_number() OVER () AS rn, uid, dob, sex, pc,
            nullif(trim(regexp_replace(regexp_replace(lower(strip_accents(fn)), '[''`’.]', '', 'g'),
                                       '[^a-z]+', ' ', 'g')), '') AS fn,
            nullif(trim(regexp_replace(regexp_replace(lower(strip_accents(sn)), '[''`’.]', '', 'g'),
                                       '[^a-z]+', ' ', 'g')), '') AS sn,
            regexp_replace(upper(pc), '[^A-Z0-9]', '', 'g') AS pcc
          FROM frame),
        b AS (
          SELECT *, list_filter(string_split(fn, ' '), lambda x: x NOT IN ({titles}))[1] AS first1,
            CASE WHEN length(pcc) BETWEEN 5 AND 7 THEN left(pcc, length(pcc) - 3) || ' ' || right(pcc, 3) END AS pcn
          FROM a)
        SELECT uid AS unique_id, first1 AS first_name,
          CASE WHEN first1 IS NOT NULL THEN coalesce(forms.forms, [first1]) END AS first_name_forms,
          replace(sn, ' ', '-') AS surname,
          nullif(list_filter(string_split(sn, ' '), lambda x: length(x) > 1), []) AS surname_tokens,
          strftime(dob, '%Y-%m-%d') AS dob,
          CASE WHEN day(dob) <= 12 AND day(dob) <> month(dob)
               THEN printf('%04d-%02d-%02d', year(dob), day(dob), month(dob)) END AS dob_swapped,
          CAST(year(dob) AS VARCHAR) AS birth_year,
          CASE WHEN lower(left(trim(sex), 1)) IN ('m', 'f') THEN lower(left(trim(sex), 1)) END AS sex,
          pcn AS postcode, left(pcn, length(pcn) - 2) AS postcode_sector, split_part(pcn, ' ', 1) AS postcode_district,
          ((first1 IS NOT NULL)::INT + (sn IS NOT NULL)::INT + (dob IS NOT NULL)::INT) >= 2 AS usable
        FROM b LEFT JOIN forms ON forms.name = b.first1
        ORDER BY rn""").to_arrow_table()
    finally:
        con.close()
    return out if arrow else out.to_pandas()


# ---------------------------------------------------------------------------------------------------------------
# the Splink model
# ---------------------------------------------------------------------------------------------------------------
def _settings(cll, cl_custom, block_on, SettingsCreator):
    """Splink settings: comparisons and blocking rules (see the module docstring for the reasoning)."""
    first = cl_custom([
        cll.NullLevel("first_name"),
        cll.ExactMatchLevel("first_name", term_frequency_adjustments=True),
        cll.ArrayIntersectLevel("first_name_forms", min_intersection=1).configure(
            label_for_charts="Nickname or formal name"),
        cll.JaroWinklerLevel("first_name", 0.92),
        cll.JaroWinklerLevel("first_name", 0.80),
        cll.ElseLevel(),
    ], output_column_name="first_name")
    surname = cl_custom([
        cll.NullLevel("surname"),
        cll.ExactMatchLevel("surname", term_frequency_adjustments=True),
        cll.JaroWinklerLevel("surname", 0.92),
        cll.ArrayIntersectLevel("surname_tokens", min_intersection=1).configure(
            label_for_charts="Shares a surname part (double-barrelled)"),
        cll.JaroWinklerLevel("surname", 0.80),
        cll.ElseLevel(),
    ], output_column_name="surname")
    dob = cl_custom([
        cll.NullLevel("dob"),
        cll.ExactMatchLevel("dob"),
        cll.CustomLevel("(dob_l = dob_swapped_r) OR (dob_swapped_l = dob_r)",
                        label_for_charts="Day and month swapped"),
        cll.DamerauLevenshteinLevel("dob", 1),
        cll.DamerauLevenshteinLevel("dob", 2),
        cll.ElseLevel(),
    ], output_column_name="dob")
    sex = cl_custom([cll.NullLevel("sex"), cll.ExactMatchLevel("sex"), cll.ElseLevel()], output_column_name="sex")
    postcode = cl_custom([
        cll.NullLevel("postcode"),
        cll.ExactMatchLevel("postcode", term_frequency_adjustments=True),
        cll.ExactMatchLevel("postcode_sector").configure(label_for_charts="Same postcode sector"),
        cll.ExactMatchLevel("postcode_district").configure(label_for_charts="Same postcode district"),
        cll.ElseLevel(),
    ], output_column_name="postcode")
    return SettingsCreator(
        link_type="link_only",
        comparisons=[first, surname, dob, sex, postcode],
        blocking_rules_to_generate_predictions=[
            block_on("dob"),
            "l.dob = r.dob_swapped",
            "l.dob_swapped = r.dob",
            block_on("first_name", "surname"),
            block_on("surname", "birth_year"),
            block_on("first_name", "birth_year"),
            block_on("postcode"),
        ],
        retain_matching_columns=True,
        retain_intermediate_calculation_columns=False,
    )


def spark_session(cores: int = 2, memory: str = "2g"):
    """A local SparkSession with Splink's similarity functions (Jaro-Winkler etc.) on the class path.

    A session of your own needs ``.config("spark.jars", splink.backends.spark.similarity_jar_location())``.
    """
    import sys

    from pyspark.sql import SparkSession
    from splink.backends.spark import similarity_jar_location

    return (SparkSession.builder.master(f"local[{cores}]").appName("evaluation-linkage")
            .config("spark.jars", similarity_jar_location())
            .config("spark.sql.shuffle.partitions", str(2 * cores)).config("spark.ui.enabled", "false")
            .config("spark.driver.memory", memory)
            # Python workers run this interpreter (the venv's), not whatever ``python3`` is first on PATH
            .config("spark.pyspark.python", sys.executable).getOrCreate())


def _arrow_to_pandas_lists(table) -> pd.DataFrame:
    df = table.to_pandas()
    for c in ("first_name_forms", "surname_tokens"):
        df[c] = df[c].map(lambda v: [str(x) for x in v] if isinstance(v, (list, np.ndarray)) else None)
    return df.astype(object).where(df.notna(), None)


#: Columns with term-frequency adjustments (see :func:`_settings`).
_TF_COLUMNS = ("first_name", "surname", "postcode")


def _tf_tables(ref, nom) -> dict[str, pd.DataFrame]:
    """Term-frequency tables of both lists together, computed once in DuckDB the way Splink does
    (``tf_<col>`` = rows with the value / rows with any value), so a linker on a subset of the index uses the
    whole index's frequencies."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("ref", ref)
        con.register("nom", nom)
        out = {}
        for c in _TF_COLUMNS:
            out[c] = con.sql(f"""
                WITH v AS (SELECT {c} FROM ref UNION ALL SELECT {c} FROM nom)
                SELECT {c}, CAST(count(*) AS DOUBLE) / (SELECT count({c}) FROM v) AS tf_{c}
                FROM v WHERE {c} IS NOT NULL GROUP BY {c}""").df()
    finally:
        con.close()
    return out


def _candidates_of(ref, nom):
    """The nominals that any prediction blocking rule of :func:`_settings` pairs with some referral.

    Blocking (and so EM training and prediction) on these gives exactly the pairs it gives on the whole index,
    but DuckDB then joins a few thousand rows instead of a million: Splink's EM sessions block the concatenated
    input with itself (1M x 1M on date of birth before the link-only filter), which took most of the time.
    Keep in step with the blocking rules in :func:`_settings`.
    """
    import duckdb

    con = duckdb.connect()
    try:
        con.register("ref", ref)
        con.register("nom", nom)
        return con.sql("""
            SELECT n.* FROM nom n WHERE
                n.dob IN (SELECT dob FROM ref WHERE dob IS NOT NULL)
             OR n.dob IN (SELECT dob_swapped FROM ref WHERE dob_swapped IS NOT NULL)
             OR n.dob_swapped IN (SELECT dob FROM ref WHERE dob IS NOT NULL)
             OR n.postcode IN (SELECT postcode FROM ref WHERE postcode IS NOT NULL)
             OR EXISTS (SELECT 1 FROM ref r WHERE r.first_name = n.first_name AND r.surname = n.surname)
             OR EXISTS (SELECT 1 FROM ref r WHERE r.surname = n.surname AND r.birth_year = n.birth_year)
             OR EXISTS (SELECT 1 FROM ref r WHERE r.first_name = n.first_name AND r.birth_year = n.birth_year)
            ORDER BY n.unique_id""").to_arrow_table()
    finally:
        con.close()


def _splink_pairs(ref, nom, *, backend: str, spark, model, seed: int, timings: dict):
    """Train (unless ``model``) and predict. The chance two random records match and the u probabilities come
    from the whole index (random pairs); EM and prediction run on the nominals the blocking rules can pair with a
    referral (:func:`_candidates_of`), with the whole index's term frequencies: the same pairs, far less work."""
    import logging

    import splink.comparison_level_library as cll
    from splink import Linker, SettingsCreator, block_on
    from splink.comparison_library import CustomComparison

    cols = ["unique_id", "first_name", "first_name_forms", "surname", "surname_tokens", "dob", "dob_swapped",
            "birth_year", "sex", "postcode", "postcode_sector", "postcode_district"]
    if backend not in ("duckdb", "spark"):
        raise ValueError(f"backend: 'duckdb' or 'spark', got {backend!r}")
    if backend == "spark" and spark is None:
        spark = spark_session()

    def api():
        if backend == "duckdb":
            from splink import DuckDBAPI

            return DuckDBAPI()
        from splink import SparkAPI

        # persist (not checkpoint) to break lineage: needs no checkpoint directory on the session
        return SparkAPI(spark_session=spark, break_lineage_method="persist")

    def frame(t):  # Spark reads pandas, lists as Python lists; DuckDB reads Arrow directly
        return _arrow_to_pandas_lists(t) if backend == "spark" else t

    t = time.perf_counter()
    ref, nom = ref.select(cols), nom.select(cols)
    tf = _tf_tables(ref, nom)
    sub = _candidates_of(ref, nom)
    timings["term frequencies and candidate nominals"] = time.perf_counter() - t

    def linker_on(nominals, settings):
        db_api = api()
        # table names unique per linker: Spark's temporary views are shared by the whole session
        tag = uuid.uuid4().hex[:12]
        left = db_api.register(frame(ref), dataset_display_name="referrals", table_name=f"referrals_{tag}")
        right = db_api.register(frame(nominals), dataset_display_name="nominals", table_name=f"nominals_{tag}")
        linker = Linker([left, right], settings, log_level=logging.WARNING)
        for c, table in tf.items():
            linker.table_management.register_term_frequency_lookup(db_api.register(table), c)
        return linker

    settings = model
    if model is None:
        full = linker_on(nom, _settings(cll, CustomComparison, block_on, SettingsCreator))
        t = time.perf_counter()
        full.training.estimate_probability_two_random_records_match(
            [block_on("first_name", "surname", "dob")], recall=0.7)
        timings["train: prior"], t = time.perf_counter() - t, time.perf_counter()
        full.training.estimate_u_using_random_sampling(max_pairs=3e5, seed=seed)
        timings["train: u by random sampling"] = time.perf_counter() - t
        settings = full.misc.save_model_to_json()
    linker = linker_on(sub, settings)
    if model is None:
        t = time.perf_counter()
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("dob"))
        linker.training.estimate_parameters_using_expectation_maximisation(block_on("first_name", "surname"))
        timings["train: m by EM"] = time.perf_counter() - t
    t = time.perf_counter()
    pairs = linker.inference.predict(threshold_match_probability=_KEEP_PAIRS_ABOVE).as_pandas_dataframe()
    timings["predict (blocking and scoring)"] = time.perf_counter() - t
    return linker, pairs


# ---------------------------------------------------------------------------------------------------------------
# result
# ---------------------------------------------------------------------------------------------------------------
@dataclass(repr=False)
class LinkageResult:
    """Linkage of a referral list to the nominal index (see :func:`link`).

    Attributes
    ----------
    links : DataFrame
        One row per referral in input order: ``referral_id``, ``person_id`` (missing when not linked),
        ``match_probability`` and ``match_weight`` of the best candidate (missing when none), ``decision``
        (``linked`` or the reason code), ``duplicate_of`` (the first referral linked to the same person in the same
        programme, by earliest ``referral_date`` then lowest ``referral_id``; else missing).
    candidates : DataFrame
        Scored candidate pairs kept from Splink (``referral_id, person_id, match_probability, match_weight`` and
        the comparison levels ``gamma_*``); ids only.
    threshold : float
    backend : str
    model : str
        The trained Splink model as JSON; pass it back as ``model=`` to reuse it.
    seconds : float
    timings : dict
        Seconds per step: cleaning the nominal index, training (prior, u, m), prediction, assignment.
    """

    links: pd.DataFrame
    candidates: pd.DataFrame
    threshold: float
    backend: str
    model: str
    seconds: float
    timings: dict = field(default_factory=dict)  # seconds per step (cleaning, training, prediction, assignment)
    _linker: object = field(default=None)

    @property
    def n_referrals(self) -> int:
        return len(self.links)

    @property
    def n_linked(self) -> int:
        return int(self.links["person_id"].notna().sum())

    @property
    def unlinked(self) -> pd.DataFrame:
        """Referrals not linked: ``referral_id``, ``reason`` (code) and ``description``."""
        u = self.links.loc[self.links["person_id"].isna(), ["referral_id", "decision"]].rename(
            columns={"decision": "reason"}).reset_index(drop=True)
        u["description"] = u["reason"].map(_REASONS)
        return u

    @property
    def duplicates(self) -> pd.DataFrame:
        """Referrals recognised as a repeat of an earlier referral of the same person (``referral_id``,
        ``duplicate_of``)."""
        d = self.links.loc[self.links["duplicate_of"].notna(), ["referral_id", "duplicate_of"]]
        return d.reset_index(drop=True)

    def review(self, n: int = 20) -> pd.DataFrame:
        """The ``n`` least certain decisions, for clerical review.

        Ambiguous referrals first, then those whose best match weight is closest to the threshold's weight.
        Returns ids, probabilities, the runner-up's weight and the comparison levels (``gamma_*``: higher is closer
        agreement, -1 missing) so a reviewer can look the records up; never names or dates.
        """
        thr_w = float(np.log2(self.threshold / (1 - self.threshold)))
        top = self.candidates.sort_values(["referral_id", "match_weight"], ascending=[True, False])
        best = top.groupby("referral_id", sort=False).head(1).set_index("referral_id")
        second = top.groupby("referral_id", sort=False).nth(1).set_index("referral_id")["match_weight"]
        links = self.links[self.links["decision"] != "unusable"].copy()
        links["candidate_person_id"] = links["referral_id"].map(best["person_id"])
        links["runner_up_weight"] = links["referral_id"].map(second)
        links["distance"] = (links["match_weight"] - thr_w).abs()
        links.loc[links["decision"] == "ambiguous", "distance"] = -1.0
        links = links[links["match_weight"].notna()].sort_values("distance", kind="stable").head(n)
        gammas = best[[c for c in best.columns if c.startswith("gamma_")]]
        out = links.drop(columns=["distance"]).join(gammas, on="referral_id")
        return out.reset_index(drop=True)

    def summary(self) -> pd.DataFrame:
        """Counts and the model's own estimate of precision (mean match probability of the links made)."""
        dec = self.links["decision"].value_counts()
        linked = self.links[self.links["person_id"].notna()]
        rows = [
            ("referrals", self.n_referrals),
            ("linked to a person in police records", self.n_linked),
            ("  of which repeat referrals of the same person", int(self.links["duplicate_of"].notna().sum())),
            ("not linked: " + _REASONS["unusable"], int(dec.get("unusable", 0))),
            ("not linked: " + _REASONS["no_candidate"], int(dec.get("no_candidate", 0))),
            ("not linked: " + _REASONS["below_threshold"], int(dec.get("below_threshold", 0))),
            ("not linked: " + _REASONS["ambiguous"], int(dec.get("ambiguous", 0))),
            ("threshold (match probability)", self.threshold),
            ("model-estimated precision (mean match probability of links)",
             float(linked["match_probability"].mean()) if len(linked) else np.nan),
            ("model-estimated false links", float((1 - linked["match_probability"]).sum())),
        ]
        return pd.DataFrame(rows, columns=["measure", "value"])

    def evaluate(self, truth: pd.DataFrame) -> pd.DataFrame:
        """Precision and recall against known truth (``referral_id``, ``person_id``; missing when not in police
        records). Precision = correct links / links made; recall = correct links / referrals whose person is in the
        index."""
        t = truth.set_index("referral_id")["person_id"].astype("string")
        got = self.links.set_index("referral_id")["person_id"].astype("string")
        true = t.reindex(got.index)
        made = got.notna()
        correct = made & (got == true).fillna(False)
        findable = true.notna()
        tp, n_made, n_find = int(correct.sum()), int(made.sum()), int(findable.sum())
        return pd.DataFrame([
            ("links made", n_made), ("correct links", tp), ("false links", n_made - tp),
            ("referrals whose person is in police records", n_find),
            ("precision", tp / n_made if n_made else np.nan), ("recall", tp / n_find if n_find else np.nan),
        ], columns=["measure", "value"])

    def match_weights_chart(self):
        """Splink's chart of the model's match weights by comparison level (altair)."""
        return self._linker.visualisations.match_weights_chart()

    def m_u_parameters_chart(self):
        """Splink's chart of the m and u probabilities (altair)."""
        return self._linker.visualisations.m_u_parameters_chart()

    def plot(self, ax=None):
        """Histogram of each referral's best match weight with the threshold marked (matplotlib Axes)."""
        import matplotlib.pyplot as plt

        if ax is None:
            _, ax = plt.subplots(figsize=(6, 3.5))
        w = self.links["match_weight"].dropna()
        ax.hist(w, bins=40, color="#1f4e79")
        thr_w = float(np.log2(self.threshold / (1 - self.threshold)))
        ax.axvline(thr_w, color="#c00000", linestyle="--", label=f"threshold p = {self.threshold:g}")
        ax.set_xlabel("best candidate's match weight (log2 Bayes factor incl. prior)")
        ax.set_ylabel("referrals")
        ax.legend(frameon=False)
        return ax

    def __repr__(self) -> str:
        pct = 100 * self.n_linked / self.n_referrals if self.n_referrals else 0.0
        return (f"LinkageResult({self.n_linked:,} of {self.n_referrals:,} referrals linked ({pct:.1f}%), "
                f"threshold {self.threshold:g}, {self.backend}, {self.seconds:.1f} s)")


# ---------------------------------------------------------------------------------------------------------------
# linkage
# ---------------------------------------------------------------------------------------------------------------
def link(referrals: pd.DataFrame, nominals: pd.DataFrame, *, threshold: float | None = None,
         backend: str = "duckdb", spark=None, model=None, names: tuple[str, str] = ("referrals", "nominal index"),
         seed: int = 1, _nominal_lines: np.ndarray | None = None) -> LinkageResult:
    """Link a provider's referral list to the police nominal index.

    Parameters
    ----------
    referrals : DataFrame
        ``referral_id, first_name, surname, date_of_birth, sex`` and optionally ``postcode`` and
        ``programme_id`` (repeat referrals are looked for within a programme). Dates as ``yyyy-mm-dd``,
        ``dd/mm/yyyy`` or datetime.
    nominals : DataFrame
        ``person_id`` and the same fields.
    threshold : float, optional
        Match probability a best candidate needs to be linked; default :data:`DEFAULT_THRESHOLD`.
    backend : {"duckdb", "spark"}
        DuckDB (embedded) or Spark (``spark`` session, or a local one is started).
    spark : pyspark.sql.SparkSession, optional
    model : str, dict or path, optional
        A trained Splink model (``LinkageResult.model``) to reuse instead of training (EM) on these data.
    names : (str, str)
        File or table names used in error messages.
    seed : int
        Seed for Splink's random sampling of u parameters (results are reproducible).

    Returns
    -------
    LinkageResult
        ``.links`` (one row per referral), ``.unlinked``, ``.review(n)``, ``.model``, ``.summary()``.

    Raises
    ------
    LinkageError
        Empty lists, missing columns, blank or duplicate ids, unreadable dates; messages name the table, column
        and rows, never the values.

    Examples
    --------
    >>> from evaluation.synth_names import synthetic_pair
    >>> refs, noms, truth = synthetic_pair(200, 5000, seed=1)
    >>> res = link(refs, noms)                                           # doctest: +SKIP
    >>> res.evaluate(truth)                                              # doctest: +SKIP
    """
    t0 = time.perf_counter()
    threshold = DEFAULT_THRESHOLD if threshold is None else float(threshold)
    if not 0 < threshold < 1:
        raise ValueError(f"threshold: a probability strictly between 0 and 1, got {threshold!r}")
    timings: dict[str, float] = {}
    ref_t = clean(referrals, id_column="referral_id", source=names[0], arrow=True)
    t = time.perf_counter()
    nom_t = clean(nominals, id_column="person_id", source=names[1], arrow=True, lines=_nominal_lines)
    timings["clean the nominal index"] = time.perf_counter() - t
    if isinstance(model, (str, Path)) and not str(model).lstrip().startswith("{"):
        model = json.loads(Path(model).read_text())
    elif isinstance(model, str):
        model = json.loads(model)
    for t_, name in ((ref_t, names[0]), (nom_t, names[1])):
        if not pd.Series(t_["usable"].to_numpy(zero_copy_only=False)).any():
            raise LinkageError(f"{name}: no row has two of first name, surname and date of birth; nothing can be "
                               "linked")
    ref = pd.DataFrame({"unique_id": ref_t["unique_id"].to_numpy(zero_copy_only=False).astype(object),
                        "usable": ref_t["usable"].to_numpy(zero_copy_only=False).astype(bool)})
    linker, pairs = _splink_pairs(ref_t.filter(ref_t["usable"]), nom_t.filter(nom_t["usable"]), backend=backend,
                                  spark=spark, model=model, seed=seed, timings=timings)
    t = time.perf_counter()
    # orient pairs: referral on one side, person on the other
    if len(pairs):
        ref_left = (pairs["source_dataset_l"] == "referrals").to_numpy()
        rid = np.where(ref_left, pairs["unique_id_l"], pairs["unique_id_r"])
        pid = np.where(ref_left, pairs["unique_id_r"], pairs["unique_id_l"])
    else:
        rid = pid = np.empty(0, dtype=object)
    cand = pd.DataFrame({"referral_id": rid.astype(str), "person_id": pid.astype(str),
                         "match_probability": pairs["match_probability"].to_numpy(float) if len(pairs) else [],
                         "match_weight": pairs["match_weight"].to_numpy(float) if len(pairs) else []})
    for c in [c for c in pairs.columns if c.startswith("gamma_")]:
        cand[c] = pairs[c].to_numpy()
    # one pair per (referral, person): several blocking rules may find it; Splink dedupes, this is a guard
    cand = cand.sort_values(["referral_id", "match_weight"], ascending=[True, False], kind="stable")
    cand = cand.drop_duplicates(["referral_id", "person_id"]).reset_index(drop=True)
    links = _assign(ref, cand, threshold)
    if "programme_id" in referrals.columns:
        prog = pd.Series(referrals["programme_id"].astype("string").to_numpy(), index=ref["unique_id"])
        links["_group"] = links["referral_id"].map(prog).fillna("")
    else:
        links["_group"] = ""
    # The first of a person's referrals to a programme is the earliest referral date, then the lowest referral
    # id (a list's order says nothing), the one rule the pipeline's referrals table (_pipeline_referrals) keeps.
    # Dates read as clean() reads them (ISO or dd/mm/yyyy; unreadable ones an error naming rows): pandas' own
    # guess reads 05/02/2021 month-first (2 May) and, in a mixed or UK list, coerces the rest to missing, which
    # would silently decide which repeat referral is kept.
    if "referral_date" in referrals.columns:
        when = pd.Series(_parse_dates(referrals["referral_date"], source=names[0], column="referral_date")
                         .to_numpy(), index=ref["unique_id"])
        links["_when"] = links["referral_id"].map(when)
    else:
        links["_when"] = pd.NaT
    linked = links["person_id"].notna()
    order = links[linked].sort_values(["_when", "referral_id"], kind="stable", na_position="last")
    first = order.groupby(["_group", "person_id"], sort=False)["referral_id"].transform("first")
    links["duplicate_of"] = pd.Series(pd.NA, index=links.index, dtype="string")
    dup = first != order["referral_id"]
    links.loc[dup[dup].index, "duplicate_of"] = first[dup]
    links = links.drop(columns=["_group", "_when"])
    model_json = json.dumps(linker.misc.save_model_to_json(), indent=1)
    timings["assign and duplicates"] = time.perf_counter() - t
    return LinkageResult(links=links, candidates=cand, threshold=threshold, backend=backend, model=model_json,
                         seconds=time.perf_counter() - t0, timings=timings, _linker=linker)


def _assign(ref: pd.DataFrame, cand: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """Each referral to at most one person: best candidate at/above the threshold, unless a runner-up is within
    :data:`TIE_MARGIN` match weight (then ``ambiguous``)."""
    best = cand.groupby("referral_id", sort=False).head(1).set_index("referral_id")
    second = cand.groupby("referral_id", sort=False).nth(1).set_index("referral_id")["match_weight"]
    links = pd.DataFrame({"referral_id": ref["unique_id"].to_numpy(object)})
    links["person_id"] = links["referral_id"].map(best["person_id"]).astype("string")
    links["match_probability"] = links["referral_id"].map(best["match_probability"]).astype(float)
    links["match_weight"] = links["referral_id"].map(best["match_weight"]).astype(float)
    runner = links["referral_id"].map(second).astype(float)
    decision = np.full(len(links), "linked", dtype=object)
    has = links["person_id"].notna().to_numpy()
    above = (links["match_probability"] >= threshold).to_numpy()
    tie = (runner.notna() & (links["match_weight"] - runner < TIE_MARGIN)).to_numpy()
    decision[~has] = "no_candidate"
    decision[has & ~above] = "below_threshold"
    decision[has & above & tie] = "ambiguous"
    decision[~ref["usable"].to_numpy()] = "unusable"
    links["decision"] = decision
    links.loc[decision != "linked", "person_id"] = pd.NA
    return links


# ---------------------------------------------------------------------------------------------------------------
# a world's referral lists (command line)
# ---------------------------------------------------------------------------------------------------------------
#: Identifying columns of a referral list: used for linkage only, never written out.
IDENTIFYING = ("first_name", "surname", "date_of_birth", "sex", "postcode")


def _linkage_dir(world_dir) -> Path:
    from evaluation.synth_names import LINKAGE_DIR

    return Path(world_dir) / LINKAGE_DIR


#: The referral facts a world's list must carry for linkage (repeat referrals are found within a programme and
#: the earliest kept); the referrals table's other columns are checked when the linked referrals are validated.
LIST_COLUMNS = ("programme_id", "referral_date")


#: The referrals table's columns (data/README.md) a list row carries into the linkage output besides
#: ``person_id``: every other column of a list (a provider's notes, address, NHS number …) is never written out.
REFERRAL_COLUMNS = ("referral_id", "programme_id", "referral_date", "start_date", "end_date", "completion_status",
                    "referral_source")


def read_list(path, *, what: str = "list") -> pd.DataFrame:
    """One CSV of names as a spreadsheet writes it: UTF-8 (with or without a byte-order mark) or Windows-1252
    (Excel's "CSV" on Windows), any line endings; headers matched without regard to case, surrounding spaces
    or spaces for underscores (``First Name`` → ``first_name``); cells stripped of surrounding spaces; rows with
    every cell blank (a spreadsheet's empty rows) skipped. ``_line`` holds each row's line in the file.

    Raises
    ------
    LinkageError
        An empty file, undecodable bytes, or two columns with the same name (named by file and line, never by a
        value: the file holds names).
    """
    import csv
    import io

    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise LinkageError(f"{path}: the {what} cannot be read ({type(exc).__name__})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        try:
            text = raw.decode("cp1252")
        except UnicodeDecodeError as exc:
            line = raw[:exc.start].count(b"\n") + 1
            raise LinkageError(f"{path}: line {line} is neither UTF-8 nor Windows-1252 text; save the {what} as "
                               "'CSV UTF-8'") from None
    if not text.strip():  # also a byte-order mark alone
        raise LinkageError(f"{path}: the {what} is an empty file (no header row)")
    # one pass; a record's line in the file is csv.reader's line_num after it (a quoted cell may span lines)
    reader = csv.reader(io.StringIO(text, newline=""))
    header = [re.sub(r"[\s\-]+", "_", h.strip().lower()) for h in next(reader)]
    seen = [h for h in dict.fromkeys(header) if header.count(h) > 1]
    if seen:
        known = [h for h in seen if h in REFERRAL_COLUMNS + REQUIRED + ("postcode",)]
        raise LinkageError(f"{path}: line {reader.line_num} (the header) names {len(seen)} column(s) twice"
                           + (f" ({', '.join(known)})" if known else "") + "; keep one of each")
    width = len(header)
    body, lines, ragged = [], [], []
    for rec in reader:
        end = reader.line_num
        cells = [c.strip() for c in rec]
        if not any(cells):
            continue  # an empty row: no referral
        if len(cells) != width:
            ragged.append(end)
            continue
        body.append(cells)
        lines.append(end)
    if ragged:
        head = ", ".join(str(i) for i in ragged[:10]) + (f" and {len(ragged) - 10} more" if len(ragged) > 10 else "")
        raise LinkageError(f"{path}: line{'s' if len(ragged) > 1 else ''} {head} do{'es' if len(ragged) == 1 else ''}"
                           f" not have the header's {width} columns")
    df = pd.DataFrame(body, columns=header, dtype=object).astype(str) if body else pd.DataFrame(columns=header)
    df["_line"] = np.asarray(lines, dtype=int)
    return df


def _list_files(ldir: Path) -> list[Path]:
    """The referral lists in ``ldir``: every ``.csv`` (any case: ``Referrals.CSV``). Any other file but hidden
    files and spreadsheet lock files (``~$…``) is an error, never silently left out (a list saved as ``.xlsx``)."""
    if not ldir.is_dir():
        return []
    files = sorted(f for f in ldir.iterdir() if not f.name.startswith((".", "~$")))
    other = [f.name for f in files if f.suffix.lower() != ".csv" or not f.is_file()]
    if other:
        raise LinkageError(f"{ldir}: not CSV referral lists: {', '.join(other)}; save each list as CSV (or move "
                           "other files elsewhere)")
    return files


def read_referral_lists(world_dir) -> pd.DataFrame:
    """All provider referral lists of a world (``linkage/referral_lists/*.csv``) as one table, checked file by file.

    Each file is read by :func:`read_list` (encodings, header spelling, blank rows) and checked with :func:`clean`
    so errors name the file and its lines; ``programme_id`` and ``referral_date`` must be filled in on every row;
    referral ids repeated across files are an error naming both files. Adds ``_file`` (the list's file name) and
    ``_line``; ``attrs["unread_columns"]`` counts the columns that are neither identifiers nor the referrals
    table's (never written out).
    """
    ldir = _linkage_dir(world_dir) / "referral_lists"
    files = _list_files(ldir)
    if not files:
        raise LinkageError(f"{ldir}: no referral lists (*.csv) found")
    parts, unread = [], 0
    for f in files:
        df = read_list(f, what="referral list")
        lines = df["_line"].to_numpy()
        clean(df.drop(columns="_line"), id_column="referral_id", source=str(f), arrow=True, lines=lines)
        missing = [c for c in LIST_COLUMNS if c not in df.columns]
        if missing:  # the referral facts the pipeline needs besides the identifiers
            raise LinkageError(f"{f}: missing column(s) {', '.join(missing)} (a referral list holds the referrals "
                               "table's columns, see data/README.md, and the identifiers)")
        for col in LIST_COLUMNS:
            blank = (df[col] == "").to_numpy()
            if blank.any():
                raise LinkageError(f"{f}: column '{col}' is blank in {_rows(blank, lines=lines)}")
        for col in ("referral_date", "start_date", "end_date"):  # the programme's dates: ISO for the pipeline
            if col in df:
                d = _parse_dates(df[col], source=str(f), column=col, lines=lines)
                df[col] = d.dt.strftime("%Y-%m-%d").fillna("")
        # codes checked here, not only in the linked referrals: the list's lines, never its values (a shifted column
        # holds names)
        from evaluation.config import PROGRAMME_IDS
        from evaluation.schemas import COMPLETION_STATUSES

        for col, codes in (("programme_id", PROGRAMME_IDS), ("completion_status", COMPLETION_STATUSES)):
            bad = ~df[col].isin(codes).to_numpy() if col in df else np.zeros(len(df), bool)
            if bad.any():
                raise LinkageError(f"{f}: column '{col}' is not one of {', '.join(codes)} in "
                                   f"{_rows(bad, lines=lines)}")
        unread += sum(c not in REFERRAL_COLUMNS + IDENTIFYING for c in df.columns if c != "_line")
        df["_file"] = f.name
        parts.append(df)
    allr = pd.concat(parts, ignore_index=True)
    dup = allr["referral_id"].duplicated(keep=False)
    if dup.any():
        where = sorted(allr.loc[dup, "_file"].unique())
        raise LinkageError(f"{ldir}: column 'referral_id' repeats ids across files ({', '.join(where)})")
    allr.attrs["unread_columns"] = unread
    return allr


#: The linkage step's output folder (under the repository root, or ``--out``): pseudonymised, no names.
DEFAULT_OUT = Path("data") / "processed" / "linked"
#: Per-programme linkage counts in the output folder, read by the reports (no names).
COUNTS_FILE = "linkage_counts.csv"
#: The pipeline's referrals table in the output folder: one linked referral per person per programme.
REFERRALS_FILE = "referrals.csv"
#: Every list row's decision in the output folder (clerical review; pseudonymised).
DECISIONS_FILE = "link_decisions.csv"
#: What was linked, from which inputs (their SHA-256), in the output folder.
MANIFEST_FILE = "manifest.json"


_DIGESTS: dict[tuple, str] = {}


def inputs_digest(world_dir) -> str:
    """SHA-256 over the world's linkage inputs (every referral list and the nominal index, by name and content):
    the key that ties a linkage output folder to the lists it was made from (:func:`linked_folder`). Memoised in
    the process by each file's (name, size, mtime_ns, ctime_ns): a report checks the same folder twice (when it
    picks the folder and when it loads the world), and a national nominal index is hundreds of MB."""
    import hashlib

    ldir = _linkage_dir(world_dir)
    files = [f for f in _list_files(ldir / "referral_lists") + [ldir / "nominal_index.csv"] if f.exists()]
    stamp = tuple((str(f.resolve()), st.st_size, st.st_mtime_ns, st.st_ctime_ns) for f in files
                  for st in [f.stat()])
    if stamp in _DIGESTS:
        return _DIGESTS[stamp]
    h = hashlib.sha256()
    for f in files:
        h.update(f.name.encode() + b"\0")
        with open(f, "rb") as fh:
            h.update(hashlib.file_digest(fh, "sha256").digest())
        h.update(b"\0")
    _DIGESTS[stamp] = h.hexdigest()
    return _DIGESTS[stamp]


def _counts(refs: pd.DataFrame, res: LinkageResult, ev: pd.DataFrame | None) -> pd.DataFrame:
    """``programme_id, referred, found, duplicates, precision, recall``: list rows per programme, those linked to a
    person in police records, and the repeat referrals among them (same person, same programme); precision and
    recall against the synthetic truth (the whole world's, missing without)."""
    prog = refs["programme_id"] if "programme_id" in refs else pd.Series("all", index=refs.index)
    found = res.links["person_id"].notna().to_numpy()
    dup = res.links["duplicate_of"].notna().to_numpy()
    out = pd.DataFrame({"programme_id": prog.to_numpy(), "found": found, "dup": dup}).groupby(
        "programme_id", sort=True).agg(referred=("found", "size"), found=("found", "sum"),
                                       duplicates=("dup", "sum")).reset_index()
    e = ev.set_index("measure")["value"] if ev is not None else {}
    out["precision"] = float(e["precision"]) if "precision" in e else np.nan
    out["recall"] = float(e["recall"]) if "recall" in e else np.nan
    out["threshold"] = res.threshold
    return out


def _pipeline_referrals(decisions: pd.DataFrame) -> pd.DataFrame:
    """The referrals table the rest of the pipeline validates: linked rows only, one per person per programme
    (the referral :func:`link` did not mark as a repeat: the earliest referral date, then the lowest referral id,
    so the choice does not depend on list order), the list's columns minus the decision columns."""
    keep = (decisions["link_decision"] == "linked") & decisions["duplicate_of"].isna()  # link() chose the first
    first = decisions[keep].sort_values("referral_id", kind="stable")
    return first.drop(columns=["match_probability", "link_decision", "duplicate_of"])


def _inert_for_spreadsheets(df: pd.DataFrame) -> pd.DataFrame:
    """Text cells a spreadsheet would run as a formula (starting ``=``, ``+``, ``-``, ``@``, tab or carriage
    return) get a leading apostrophe (OWASP's CSV-injection advice): the clerical-review file is opened in Excel,
    and a provider's free text must not become a live formula there. Numbers are left alone."""
    out = df.copy()
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            v = out[c].astype("string")
            bad = v.str.match(r"^[=+\-@\t\r]").fillna(False).to_numpy(dtype=bool)
            if bad.any():
                out[c] = out[c].astype(object)
                out.loc[bad, c] = "'" + v[bad].astype(str)
    return out


def link_world(world_dir, out=None, *, threshold: float | None = None, backend: str = "duckdb"
               ) -> tuple[LinkageResult, pd.DataFrame, Path]:
    """Link a world's referral lists to its nominal index and write pseudonymised referrals.

    Reads ``linkage/referral_lists/*.csv`` and ``linkage/nominal_index.csv`` of the world (and
    ``linkage/linkage_truth.csv`` when present: a synthetic world); the world folder is only read. Writes to
    ``out`` (default :data:`DEFAULT_OUT`, ``data/processed/linked``), with no names, dates of birth or postcodes:

    - :data:`REFERRALS_FILE`: the referrals table the pipeline reads instead of the world's ``referrals.csv``
      (:func:`evaluation.validate.load_world` with ``linked=``): linked referrals, one per person per programme;
    - :data:`DECISIONS_FILE`: every list row with ``person_id`` (missing when not linked), ``match_probability``,
      ``link_decision`` (``linked`` or the reason) and ``duplicate_of``;
    - :data:`COUNTS_FILE` (per programme: referred, found, duplicates; precision and recall against the truth),
      ``linkage_summary.csv``, ``linkage_model.json`` and :data:`MANIFEST_FILE` (the inputs' digest).

    Returns
    -------
    (LinkageResult, summary DataFrame, output directory)

    Raises
    ------
    LinkageError
        A list or the nominal index is missing or malformed (the message names the file, column and rows).
    """
    import datetime as _dt

    world_dir = Path(world_dir)
    ldir = _linkage_dir(world_dir)
    if out is None:
        from evaluation.config import repo_root

        out = repo_root() / DEFAULT_OUT
    out = Path(out)
    w, o = world_dir.resolve(), out.resolve()
    if o == w or w in o.parents:  # the world (data/raw) is only read: its referrals.csv, its lists stay as they are
        raise LinkageError(f"--out {out}: inside the world folder {world_dir}; write the linkage output elsewhere "
                           f"(default {DEFAULT_OUT})")
    if out.exists() and not out.is_dir():
        raise LinkageError(f"--out {out}: is a file, not a folder")
    if (out / "people.csv").exists() or (out / "linkage").is_dir():  # another world: its referrals.csv is data
        raise LinkageError(f"--out {out}: is a world folder (it holds people.csv or linkage/); write the linkage "
                           f"output elsewhere (default {DEFAULT_OUT})")
    digest = inputs_digest(world_dir)  # before reading: a list edited meanwhile makes the output stale, not mixed
    refs = read_referral_lists(world_dir)
    nom_path = ldir / "nominal_index.csv"
    if not nom_path.exists():
        raise LinkageError(f"{nom_path}: the nominal index is missing")
    noms = read_list(nom_path, what="nominal index")
    nom_lines = noms.pop("_line").to_numpy()  # errors name the file's lines (blank rows were skipped)
    res = link(refs.drop(columns=["_file", "_line"]), noms, threshold=threshold, backend=backend,
               _nominal_lines=nom_lines,
               names=(str(ldir / "referral_lists"), str(nom_path)))
    keep = [c for c in REFERRAL_COLUMNS if c in refs.columns]  # never the identifiers or a list's other columns
    decisions = refs[keep].merge(res.links.rename(columns={"decision": "link_decision"})[
        ["referral_id", "person_id", "match_probability", "link_decision", "duplicate_of"]], on="referral_id",
        how="left", validate="one_to_one")
    summary = res.summary()
    truth_path = ldir / "linkage_truth.csv"
    ev = None
    if truth_path.exists():
        ev = res.evaluate(pd.read_csv(truth_path, dtype=str, keep_default_na=False).replace("", None))
        tagged = ev.assign(measure="against the synthetic truth: " + ev["measure"])
        summary = pd.concat([summary, tagged], ignore_index=True)
    summary = pd.concat([summary, pd.DataFrame([("list columns not read (not in the referrals table)",
                                                 refs.attrs.get("unread_columns", 0))], columns=["measure", "value"])],
                        ignore_index=True)
    counts = _counts(refs, res, ev)
    try:
        out.mkdir(parents=True, exist_ok=True)
        (out / MANIFEST_FILE).unlink(missing_ok=True)  # a run that fails while writing leaves no usable output
        _pipeline_referrals(decisions).to_csv(out / REFERRALS_FILE, index=False)
        _inert_for_spreadsheets(decisions).to_csv(out / DECISIONS_FILE, index=False)
        summary.to_csv(out / "linkage_summary.csv", index=False)
        counts.to_csv(out / COUNTS_FILE, index=False)
        (out / "linkage_model.json").write_text(res.model + "\n")
        (out / MANIFEST_FILE).write_text(json.dumps({  # last: the output is complete
            "world": str(world_dir.resolve()), "inputs_sha256": digest, "threshold": res.threshold,
            "backend": backend, "linked_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
            "files": [REFERRALS_FILE, DECISIONS_FILE, COUNTS_FILE, "linkage_summary.csv", "linkage_model.json"]},
            indent=1) + "\n")
    except OSError as exc:  # unwritable folder, full disk, a folder where a file goes: one line, no usable output
        raise LinkageError(f"--out {out}: cannot be written ({exc.strerror or type(exc).__name__}"
                           f"{': ' + Path(exc.filename).name if getattr(exc, 'filename', None) else ''})") from None
    return res, summary, out


def linked_folder(world_dir, linked=None) -> Path | None:
    """The linkage output folder to read a world's referrals from, or ``None`` (use the world's ``referrals.csv``).

    ``linked``: a folder written by :func:`link_world`, ``False`` for none, or ``None`` for the default
    (:data:`DEFAULT_OUT` under the repository root, used only when its manifest names this world). A folder whose
    manifest names this world but whose inputs digest differs from the world's current lists is stale: an error,
    never silently used or ignored.

    Raises
    ------
    LinkageError
        A named folder without a manifest or the referrals table, or made from other lists (stale).
    """
    if linked is False:
        return None
    world_dir = Path(world_dir)
    explicit = linked is not None
    if not explicit:
        from evaluation.config import repo_root

        linked = repo_root() / DEFAULT_OUT
    linked = Path(linked)
    man = linked / MANIFEST_FILE
    if not man.exists():
        if explicit:
            raise LinkageError(f"{linked}: not a linkage output folder (no {MANIFEST_FILE}); run `python -m "
                               f"evaluation link --world {world_dir} --out {linked}`")
        return None
    try:
        m = json.loads(man.read_text())
    except (OSError, ValueError) as exc:
        raise LinkageError(f"{man}: unreadable ({type(exc).__name__})") from None
    same_world = str(m.get("world")) == str(world_dir.resolve())
    if not explicit and not same_world:
        return None  # the default folder was linked from another world: not this world's
    if not (linked / REFERRALS_FILE).exists() or not (linked / COUNTS_FILE).exists():
        raise LinkageError(f"{linked}: {REFERRALS_FILE} or {COUNTS_FILE} is missing; run `python -m evaluation link "
                           f"--world {world_dir} --out {linked}` again")
    if m.get("inputs_sha256") != inputs_digest(world_dir):
        raise LinkageError(f"{linked}: linked from {'other' if not same_world else 'older'} referral lists or nominal "
                           f"index than {_linkage_dir(world_dir)} holds now; run `python -m evaluation link --world "
                           f"{world_dir} --out {linked}` again")
    return linked


def read_counts(linked) -> pd.DataFrame:
    """A linkage output folder's :data:`COUNTS_FILE`: ``programme_id, referred, found, duplicates, precision,
    recall`` (``precision``/``recall`` missing for a real list)."""
    p = Path(linked) / COUNTS_FILE
    try:
        c = pd.read_csv(p, dtype={"programme_id": str})
    except (OSError, ValueError) as exc:
        raise LinkageError(f"{p}: unreadable ({type(exc).__name__})") from None
    need = {"programme_id", "referred", "found", "duplicates"}
    if not need <= set(c.columns):
        raise LinkageError(f"{p}: missing column(s) {', '.join(sorted(need - set(c.columns)))}; run `python -m "
                           "evaluation link` again")
    for col in ("precision", "recall", "threshold"):
        if col not in c:
            c[col] = np.nan
    return c


def linkage_counts(counts: pd.DataFrame | None, programme_id: str) -> dict | None:
    """A programme's row of :func:`read_counts` as a dict (``None`` when absent or linkage has not run).

    Returns
    -------
    dict or None
        ``referred`` (rows of the provider's list), ``found`` (linked to a person in police records),
        ``duplicates`` (repeat referrals of a person already found), ``precision``/``recall`` against the
        synthetic truth (``nan`` for a real list) and the match-probability ``threshold`` used.
    """
    if counts is None:
        return None
    row = counts[counts["programme_id"] == programme_id]
    if row.empty:
        return None
    r = row.iloc[0]
    return {"referred": int(r["referred"]), "found": int(r["found"]), "duplicates": int(r["duplicates"]),
            "precision": float(r["precision"]), "recall": float(r["recall"]), "threshold": float(r["threshold"])}


def _run_cli(args) -> int:
    # a LinkageError (an EvaluationError) becomes one line and exit status 2 in evaluation.__main__
    res, summary, out = link_world(args.world, args.out, threshold=args.threshold, backend=args.backend)
    n, m = res.n_linked, res.n_referrals
    print(f"referred by the providers: {m:,}")
    print(f"found in police records: {n:,} of {m:,} ({100 * n / m:.1f}%)")
    s = summary.set_index("measure")["value"]
    for key, value in s.items():
        if key.startswith("not linked") or key.startswith("  of which") or key.startswith("model-estimated"):
            print(f"  {key.strip()}: {value:,.4g}" if isinstance(value, float) else f"  {key.strip()}: {value:,}")
    if "against the synthetic truth: precision" in s:
        print(f"against the synthetic truth: precision {s['against the synthetic truth: precision']:.4f}, "
              f"recall {s['against the synthetic truth: recall']:.4f}")
    if s.get("list columns not read (not in the referrals table)", 0):
        print(f"  list columns not read and not written (neither identifiers nor the referrals table's): "
              f"{s['list columns not read (not in the referrals table)']:,}")
    print(f"pseudonymised referrals (no names) written to {out / REFERRALS_FILE}; every decision in "
          f"{out / DECISIONS_FILE}")
    return 0


def _probability(text: str) -> float:
    """``--threshold``: a probability strictly between 0 and 1 (argparse's one-line usage error otherwise)."""
    import argparse

    try:
        v = float(text)
    except ValueError:
        v = float("nan")
    if not 0 < v < 1:  # also nan
        raise argparse.ArgumentTypeError(f"a probability strictly between 0 and 1, got {text!r}")
    return v


def add_cli(subparsers) -> None:
    """Register ``link``: ``--world DIR [--out DIR] [--threshold P] [--backend duckdb|spark]``."""
    p = subparsers.add_parser(
        "link", help="link providers' referral lists to police records (Splink)",
        description="Link a world's provider referral lists (linkage/referral_lists/*.csv) to its police nominal "
                    "index (linkage/nominal_index.csv) and write pseudonymised referrals with person_id, no names, "
                    "to --out.")
    p.add_argument("--world", default="data/raw/synthetic", help="world directory (default data/raw/synthetic)")
    p.add_argument("--out", default=None, help=f"output directory (default {DEFAULT_OUT} in the repository)")
    p.add_argument("--threshold", type=_probability, default=None,
                   help=f"match probability needed to link (default {DEFAULT_THRESHOLD})")
    p.add_argument("--backend", choices=["duckdb", "spark"], default="duckdb")
    p.set_defaults(func=_run_cli)


# ---------------------------------------------------------------------------------------------------------------
# reports: the linkage step's counts in a programme's register and methods text
# ---------------------------------------------------------------------------------------------------------------
#: Attrition ids of the linkage stages (:func:`evaluation.cohort.build_cohort` names the stages).
REFERRED_ID = "attrition.referrals_on_the_provider_s_list.participants"
FOUND_ID = "attrition.referrals_found_in_police_records.participants"


def register_linkage(reg, counts: dict | None) -> None:
    """Register what the linkage step adds to a programme's figures, under disclosure control.

    The counts themselves are the first attrition stages (``Referrals on the provider's list``, ``Referrals found in police
    records``: rounded like the rest of the attrition table, their difference a hidden step). Added here:
    ``linkage.found.share``, the share found, computed from the two counts *as rounded* (so it tells a reader
    nothing the rounded counts do not; published to whole percent), and ``linkage.precision``/``linkage.recall``,
    the whole world's linkage quality against the synthetic truth (when known).
    """
    if not counts:
        return
    from evaluation.disclosure import round_base

    if REFERRED_ID in reg and FOUND_ID in reg and counts["found"] >= reg.threshold:
        m, n = round_base(counts["referred"], reg.base), round_base(counts["found"], reg.base)
        # equal rounded counts when some were not found would print "100% found": no share then (found_sentence
        # says "all but a few")
        if m > 0 and (n < m or counts["found"] == counts["referred"]):
            reg.add("linkage.found.share", "Share of the provider's referrals found in police records (of the "
                    "rounded counts)", n / m, "proportion", "attrition", denominator=REFERRED_ID)
    for key in ("precision", "recall"):
        v = counts.get(key)
        if v is not None and not np.isnan(v):
            reg.add(f"linkage.{key}", f"Linkage {key} against the synthetic truth", float(v), "proportion",
                    "methods")


def found_sentence(ev) -> str:
    """"The provider made M referrals; N of them (x%) were found in police records …" from the published figures
    (empty when the referrals were not linked or a count is suppressed). When rounding makes the two counts equal
    but a few were not found, it says so ("all but a few") instead of a share of 100%."""
    reg = ev.register()
    if REFERRED_ID not in reg or FOUND_ID not in reg or ev.linkage is None:
        return ""
    if any(reg[i].status not in ("shown", "rounded") for i in (REFERRED_ID, FOUND_ID)):
        return ""
    m, n = reg.display(REFERRED_ID), reg.display(FOUND_ID)
    lost = ev.linkage["referred"] - ev.linkage["found"]
    rounded = reg[REFERRED_ID].status == "rounded"
    if lost == 0:
        what = "all of them were found in police records"
    elif ev.linkage["found"] == 0:  # not "all but a few": none (zero is published, it discloses no one)
        what = "none of them were found in police records"
        m = f"about {m}" if rounded else m
    elif "linkage.found.share" in reg and reg["linkage.found.share"].status in ("shown", "rounded"):
        pct = reg.display("linkage.found.share", lambda v: f"{100 * v:.0f}%")
        what = (f"{'about ' if reg[FOUND_ID].status == 'rounded' else ''}{n} of them ({pct}) were found in police "
                "records")  # the rounding note follows (attrition_intro)
        m = f"about {m}" if rounded else m
    else:
        what = f"all but a few (fewer than {reg.threshold}) were found in police records"
        m = f"about {m}" if rounded else m
    return f"The provider made {m} referrals; {what}." + (" The analysis starts from the referrals found."
                                                         if ev.linkage["found"] else "")


def methods_text(ev) -> str:
    """The methods appendix's linkage paragraph (Markdown; empty when the world's lists were not linked)."""
    reg = ev.register()
    if REFERRED_ID not in reg:
        return ""
    threshold = (ev.linkage or {}).get("threshold", np.nan)
    threshold = DEFAULT_THRESHOLD if threshold is None or np.isnan(threshold) else threshold
    text = ("\n\n**Linkage.** The provider's referral list holds names, dates of birth, sex and postcodes, not police "
            "identifiers. Each referral was matched to the police nominal index by probabilistic record linkage "
            "(Splink, the Ministry of Justice's library: Fellegi–Sunter with term-frequency adjustments, trained "
            "without labels; names compared with a nickname table, dates of birth allowing swapped day and month) "
            f"and linked to at most one person when the match probability was at least {threshold:g}. "
            "A repeat referral of a person already referred to the programme is counted once, from the earliest "
            "referral. How many referrals were found is in the attrition table (Who was analysed). Names never "
            "leave the linkage step.")
    if "linkage.precision" in reg and "linkage.recall" in reg:
        p, r = reg.display("linkage.precision", "{:.3f}".format), reg.display("linkage.recall", "{:.3f}".format)
        text += (f" On this synthetic world, against the known truth, precision was {p} (share of links that are "
                 f"the right person) and recall {r} (share of referred people in police records who were found). "
                 "These figures describe the synthetic lists' errors; a real list's quality may differ.")
    return text
