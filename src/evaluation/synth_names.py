"""Synthetic names for record linkage: a police nominal index and providers' referral lists with realistic errors.

Everything here is generated: names are drawn from frequency-weighted lists shipped in ``evaluation/data``
(common British given names and surnames with generated Zipf-like weights, plus invented place-name style
surnames; see ``data/README.md``), never taken from records of real people.

* :func:`nominal_index` gives everyone in police records a name and a postcode; some people share a household
  (same surname and postcode: relatives at the same address), and some same-day-of-birth pairs are twins.
* :func:`referral_lists` turns a world's referrals into the lists a provider would hold: names with typos and
  nicknames (Bill for William), day and month of birth swapped, married and double-barrelled surnames, missing
  or changed postcodes, mixed case and punctuation, UK-style ``dd/mm/yyyy`` dates; some referrals are entered
  twice, some people are not in police records at all, and a few rows carry no usable identifiers.
* :func:`write_referral_lists` writes ``referral_lists/<programme_id>.csv``, ``nominal_index.csv`` and
  ``linkage_truth.csv`` (the true ``person_id`` of each referral; empty when the person is not in police
  records) into a world directory. :func:`synthetic_pair` builds a stand-alone case for tests and benchmarks.
"""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

# Norfolk postcode districts by local authority district (outward codes; approximate, for realism only).
_OUTWARD = {
    "Norwich": ["NR1", "NR2", "NR3", "NR4", "NR5", "NR6", "NR7"],
    "Great Yarmouth": ["NR29", "NR30", "NR31"],
    "Broadland": ["NR8", "NR10", "NR12", "NR13"],
    "South Norfolk": ["NR14", "NR15", "NR16", "NR18", "IP20", "IP21", "IP22"],
    "Breckland": ["NR19", "NR20", "IP24", "IP25", "IP26", "PE37"],
    "North Norfolk": ["NR11", "NR21", "NR22", "NR23", "NR24", "NR25", "NR26", "NR27", "NR28"],
    "King's Lynn and West Norfolk": ["PE30", "PE31", "PE32", "PE33", "PE34", "PE35", "PE36", "PE38"],
}
_ALL_OUTWARD = sorted({o for v in _OUTWARD.values() for o in v})
_UNIT_LETTERS = np.array(list("ABDEFGHJLNPQRSTUWXYZ"))  # letters used in the inward code's unit

# Error rates in referral lists (per referral, independent). Chosen to be on the harsh side of what clean
# provider lists show, so that the linkage is tested on the hard cases.
ERROR_RATES = dict(
    nickname=0.10, first_typo=0.05, surname_typo=0.05, married=0.04, double_barrel=0.03, dob_swap=0.03,
    dob_typo=0.02, dob_missing=0.01, postcode_missing=0.30, postcode_moved=0.15, sex_missing=0.01,
    no_identifiers=0.003, duplicate=0.02, not_in_records=0.03,
)


def _data(name: str) -> pd.DataFrame:
    with resources.files("evaluation").joinpath("data", name).open("r", encoding="utf-8") as fh:
        return pd.read_csv(fh, keep_default_na=False)


def nickname_table() -> pd.DataFrame:
    """The shipped nickname table (``name``, ``nickname``; lower case), e.g. ``william`` / ``bill``."""
    return _data("nicknames.csv")


def _draw(rng, values: np.ndarray, weights: np.ndarray, n: int) -> np.ndarray:
    p = weights / weights.sum()
    return values[rng.choice(values.size, size=n, p=p)]


def draw_first_names(rng, sex: np.ndarray) -> np.ndarray:
    """Frequency-weighted first names (lower case) for people of the given sex (``M``/``F``; other → either)."""
    names = _data("first_names.csv")
    out = np.empty(sex.size, dtype=object)
    for s in ("M", "F"):
        sel = sex == s
        pool = names[names["sex"] == s]
        out[sel] = _draw(rng, pool["first_name"].to_numpy(object), pool["weight"].to_numpy(float), int(sel.sum()))
    rest = ~np.isin(sex, ["M", "F"])
    out[rest] = _draw(rng, names["first_name"].to_numpy(object), names["weight"].to_numpy(float), int(rest.sum()))
    return out


def draw_surnames(rng, n: int) -> np.ndarray:
    """Frequency-weighted surnames (lower case)."""
    s = _data("surnames.csv")
    return _draw(rng, s["surname"].to_numpy(object), s["weight"].to_numpy(float), n)


def draw_postcodes(rng, district: np.ndarray | None, n: int) -> np.ndarray:
    """Synthetic Norfolk-style postcodes (``NR3 2AB``) in the person's local authority district when known."""
    outward = np.empty(n, dtype=object)
    if district is None:
        district = np.full(n, "", dtype=object)
    for d in np.unique(district):
        sel = district == d
        codes = _OUTWARD.get(d, _ALL_OUTWARD)
        outward[sel] = np.array(codes, dtype=object)[rng.integers(0, len(codes), int(sel.sum()))]
    sector = rng.integers(0, 10, n).astype(str)
    unit = np.char.add(_UNIT_LETTERS[rng.integers(0, 20, n)], _UNIT_LETTERS[rng.integers(0, 20, n)])
    return np.array([f"{o} {s}{u}" for o, s, u in zip(outward, sector, unit)], dtype=object)


def _title(name: str) -> str:
    return "-".join("'".join(w[:1].upper() + w[1:] for w in part.split("'")) for part in name.split("-")).replace(
        "O'b", "O'B")


def nominal_index(people: pd.DataFrame, rng, *, household_share: float = 0.15, twin_share: float = 0.005
                  ) -> pd.DataFrame:
    """Names and postcodes for everyone in police records.

    Parameters
    ----------
    people : DataFrame
        ``person_id``, ``date_of_birth``, ``sex`` (``M``/``F``) and optionally ``district``.
    rng : numpy.random.Generator
    household_share : float
        Share of people who live with a relative in the index (same surname and postcode).
    twin_share : float
        Share of people given a twin: someone with the same date of birth takes their surname and postcode.

    Returns
    -------
    DataFrame
        ``person_id, first_name, surname, date_of_birth, sex, postcode`` (names in title case, dates as
        datetime64), one row per person in input order.
    """
    n = len(people)
    sex = people["sex"].astype(str).to_numpy(object)
    first = draw_first_names(rng, sex)
    sur = draw_surnames(rng, n)
    district = people["district"].astype(str).to_numpy(object) if "district" in people else None
    post = draw_postcodes(rng, district, n)
    # relatives at the same address: a random partner takes this person's surname and postcode
    k = int(n * household_share / 2)
    if k and n > 1:
        pairs = rng.choice(n, size=(k, 2), replace=False) if 2 * k <= n else None
        if pairs is not None:
            sur[pairs[:, 1]] = sur[pairs[:, 0]]
            post[pairs[:, 1]] = post[pairs[:, 0]]
    # twins: pairs with the same date of birth share surname and postcode (dates of birth are never changed)
    dob = pd.to_datetime(people["date_of_birth"]).to_numpy()
    order = np.argsort(dob, kind="stable")
    same = np.flatnonzero(dob[order][1:] == dob[order][:-1])
    if same.size:
        pick = rng.choice(same, size=min(same.size, max(int(n * twin_share / 2), 1)), replace=False)
        a, b = order[pick], order[pick + 1]
        sur[b] = sur[a]
        post[b] = post[a]
    return pd.DataFrame({
        "person_id": people["person_id"].to_numpy(object),
        "first_name": [_title(x) for x in first], "surname": [_title(x) for x in sur],
        "date_of_birth": pd.to_datetime(people["date_of_birth"]).dt.normalize().to_numpy(),
        "sex": sex, "postcode": post,
    })


def _typo(rng, s: str) -> str:
    if len(s) < 3:
        return s
    i = int(rng.integers(1, len(s) - 1))
    kind = rng.integers(0, 4)
    letters = "abcdefghijklmnopqrstuvwxyz"
    if kind == 0:  # substitution
        return s[:i] + letters[rng.integers(0, 26)] + s[i + 1:]
    if kind == 1:  # deletion
        return s[:i] + s[i + 1:]
    if kind == 2:  # transposition
        return s[:i - 1] + s[i] + s[i - 1] + s[i + 1:]
    return s[:i] + letters[rng.integers(0, 26)] + s[i:]  # insertion


def _style(rng, s: str) -> str:
    """Case, spacing and punctuation as typed by different people."""
    if not s:
        return s
    u = rng.random()
    if u < 0.15:
        s = s.upper()
    elif u < 0.25:
        s = s.lower()
    if rng.random() < 0.3:
        s = s.replace("'", "")
    if "-" in s and rng.random() < 0.3:
        s = s.replace("-", " ")
    if rng.random() < 0.05:
        s = " " + s + " "
    return s


def _garble(rng, row: dict, nick: dict, rates: dict, surnames: np.ndarray) -> dict:
    """One provider's entry for a person in the nominal index (returns a new dict)."""
    first, sur = row["first_name"].lower(), row["surname"].lower()
    if rng.random() < rates["nickname"] and first in nick:
        options = nick[first]
        first = options[rng.integers(0, len(options))]
    elif rng.random() < rates["first_typo"]:
        first = _typo(rng, first)
    u = rng.random()
    if row["sex"] == "F" and u < rates["married"]:
        sur = surnames[rng.integers(0, surnames.size)]  # married (or maiden) name: a different surname
    elif u < rates["married"] + rates["double_barrel"]:
        other = surnames[rng.integers(0, surnames.size)]
        sur = f"{sur}-{other}" if rng.random() < 0.5 else f"{other}-{sur}"
    elif rng.random() < rates["surname_typo"]:
        sur = _typo(rng, sur)
    dob = pd.Timestamp(row["date_of_birth"])
    dob_text = dob.strftime("%d/%m/%Y")
    u = rng.random()
    if u < rates["dob_swap"] and dob.day <= 12 and dob.day != dob.month:
        dob_text = f"{dob.month:02d}/{dob.day:02d}/{dob.year}"
    elif u < rates["dob_swap"] + rates["dob_typo"]:
        k = rng.integers(0, 3)
        if k == 0:
            dob_text = (dob + pd.Timedelta(days=int(rng.choice([-1, 1])))).strftime("%d/%m/%Y")
        elif k == 1:
            dob_text = dob.replace(year=dob.year + int(rng.choice([-1, 1])), day=min(dob.day, 28)).strftime(
                "%d/%m/%Y")
        else:
            dob_text = dob.strftime("%d/%m/%Y")[:-1] + str(rng.integers(0, 10))
    elif u < rates["dob_swap"] + rates["dob_typo"] + rates["dob_missing"]:
        dob_text = ""
    post = row["postcode"]
    u = rng.random()
    if u < rates["postcode_missing"]:
        post = ""
    elif u < rates["postcode_missing"] + rates["postcode_moved"]:
        post = draw_postcodes(rng, None, 1)[0]
    elif rng.random() < 0.3:
        post = post.replace(" ", "") if rng.random() < 0.5 else post.lower()
    sex = "" if rng.random() < rates["sex_missing"] else row["sex"]
    return {"first_name": _style(rng, _title(first)), "surname": _style(rng, _title(sur)),
            "date_of_birth": dob_text, "sex": sex, "postcode": post}


def referral_lists(nominals: pd.DataFrame, referrals: pd.DataFrame, rng, *, rates: dict | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Provider referral lists for a world's referrals, with realistic errors.

    Parameters
    ----------
    nominals : DataFrame
        The nominal index from :func:`nominal_index`.
    referrals : DataFrame
        ``referral_id``, ``person_id`` and any other columns (programme, dates, status), kept as they are.
    rng : numpy.random.Generator
    rates : dict, optional
        Overrides of :data:`ERROR_RATES`.

    Returns
    -------
    lists : DataFrame
        The referral columns without ``person_id`` plus ``first_name, surname, date_of_birth`` (text,
        ``dd/mm/yyyy``), ``sex``, ``postcode``; duplicate entries (new ``referral_id``) and referrals of people
        not in police records are appended, rows shuffled within the list.
    truth : DataFrame
        ``referral_id, person_id`` (missing when the person is not in police records), ``kind``
        (``referral``, ``duplicate`` or ``not_in_records``).
    """
    rates = {**ERROR_RATES, **(rates or {})}
    nick: dict[str, list[str]] = {}
    for name, nickname in nickname_table().itertuples(index=False):
        nick.setdefault(name, []).append(nickname)
    surnames = _data("surnames.csv")["surname"].to_numpy(object)
    by_id = nominals.set_index("person_id")
    base = referrals.drop(columns=["person_id"]).reset_index(drop=True)
    pid = referrals["person_id"].to_numpy(object)
    n = len(base)
    # extra rows: duplicates (same person entered twice) and people never in police records
    n_dup = int(rng.binomial(n, rates["duplicate"])) if n else 0
    n_new = int(rng.binomial(n, rates["not_in_records"])) if n else 0
    dup_src = rng.choice(n, size=n_dup, replace=True) if n_dup else np.empty(0, int)
    new_src = rng.choice(n, size=n_new, replace=True) if n_new else np.empty(0, int)
    src = np.concatenate([np.arange(n), dup_src, new_src])
    kind = np.array(["referral"] * n + ["duplicate"] * n_dup + ["not_in_records"] * n_new, dtype=object)
    persons = np.concatenate([pid, pid[dup_src], np.full(n_new, None, dtype=object)])
    # people not in police records: fresh names, dates of birth like the referred person's
    strangers = {}
    if n_new:
        ref_people = by_id.loc[pid[new_src]]
        sex = ref_people["sex"].to_numpy(object)
        dob = pd.to_datetime(ref_people["date_of_birth"]) + pd.to_timedelta(rng.integers(-400, 400, n_new), "D")
        strangers = pd.DataFrame({"first_name": [_title(x) for x in draw_first_names(rng, sex)],
                                  "surname": [_title(x) for x in draw_surnames(rng, n_new)],
                                  "date_of_birth": dob.to_numpy(), "sex": sex,
                                  "postcode": draw_postcodes(rng, None, n_new)})
    rows = []
    for i, (s, p) in enumerate(zip(src, persons)):
        if kind[i] == "not_in_records":
            person = strangers.iloc[i - n - n_dup].to_dict()
        else:
            person = by_id.loc[p].to_dict()
        entry = _garble(rng, person, nick, rates, surnames)
        if rng.random() < rates["no_identifiers"]:
            entry.update(first_name="", surname="", date_of_birth="")
        rows.append(entry)
    ids = np.concatenate([referrals["referral_id"].astype(str).to_numpy(object),
                          _new_ids(referrals["referral_id"], n_dup + n_new)])
    lists = pd.concat([pd.DataFrame({"referral_id": ids}), base.iloc[src].reset_index(drop=True).drop(
        columns=["referral_id"]), pd.DataFrame(rows)], axis=1)
    truth = pd.DataFrame({"referral_id": ids, "person_id": pd.array(persons, dtype="string"), "kind": kind})
    order = rng.permutation(len(lists))
    return lists.iloc[order].reset_index(drop=True), truth.iloc[order].reset_index(drop=True)


def _new_ids(existing: pd.Series, k: int) -> np.ndarray:
    nums = pd.to_numeric(existing.astype(str).str.extract(r"(\d+)$")[0], errors="coerce")
    start = int(nums.max()) + 1 if nums.notna().any() else 1
    width = max(6, len(str(start + k)))
    return np.array([f"R{i:0{width}d}" for i in range(start, start + k)], dtype=object)


#: Sub-folder of a world holding the linkage inputs with names (never read by the rest of the pipeline).
LINKAGE_DIR = "linkage"


def write_referral_lists(world_dir, people: pd.DataFrame, referrals: pd.DataFrame, rng, *,
                         rates: dict | None = None) -> dict[str, int]:
    """Write a world's nominal index, provider referral lists and linkage truth.

    Writes ``nominal_index.csv``, ``referral_lists/<programme_id>.csv`` (one per programme, rows of people
    entered by that provider) and ``linkage_truth.csv`` under ``world_dir/linkage/`` (:data:`LINKAGE_DIR`): the
    only files of a world with names, kept apart from the canonical tables the rest of the pipeline validates.

    Parameters
    ----------
    world_dir : path
    people, referrals : DataFrame
        The world's ``people`` and ``referrals`` tables (``referrals`` needs ``programme_id``).
    rng : numpy.random.Generator
    rates : dict, optional
        Overrides of :data:`ERROR_RATES`.

    Returns
    -------
    dict
        Row counts: ``nominal_index``, ``referral_lists``, ``duplicates``, ``not_in_records``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from evaluation.synth import generate_world
    >>> t = generate_world(1, scale=0.05)                               # doctest: +SKIP
    >>> write_referral_lists("w", t["people"], t["referrals"], np.random.default_rng(1))  # doctest: +SKIP
    """
    world_dir = Path(world_dir) / LINKAGE_DIR
    world_dir.mkdir(parents=True, exist_ok=True)
    nominals = nominal_index(people, rng)
    lists, truth = referral_lists(nominals, referrals, rng, rates=rates)
    out = nominals.copy()
    out["date_of_birth"] = out["date_of_birth"].dt.strftime("%Y-%m-%d")
    out.to_csv(world_dir / "nominal_index.csv", index=False)
    ldir = world_dir / "referral_lists"
    ldir.mkdir(parents=True, exist_ok=True)
    for old in ldir.glob("*.csv"):
        old.unlink()
    for col in lists.columns:
        if pd.api.types.is_datetime64_any_dtype(lists[col]):
            lists[col] = lists[col].dt.strftime("%Y-%m-%d")
    for prog, part in lists.groupby("programme_id", sort=True):
        part.to_csv(ldir / f"{prog}.csv", index=False)
    truth.to_csv(world_dir / "linkage_truth.csv", index=False)
    return {"nominal_index": len(nominals), "referral_lists": len(lists),
            "duplicates": int((truth["kind"] == "duplicate").sum()),
            "not_in_records": int((truth["kind"] == "not_in_records").sum())}


def synthetic_pair(n_referrals: int, n_nominals: int, seed: int = 0, *, rates: dict | None = None
                   ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A stand-alone linkage case: ``(referrals, nominals, truth)`` for tests and benchmarks.

    ``n_nominals`` people with dates of birth between 1950 and 2010; ``n_referrals`` of them referred (before
    duplicates and people not in records are added, see :func:`referral_lists`).
    """
    rng = np.random.default_rng(seed)
    start = np.datetime64("1950-01-01", "D").astype(np.int64)
    end = np.datetime64("2010-12-31", "D").astype(np.int64)
    people = pd.DataFrame({
        "person_id": [f"P{i:08d}" for i in range(1, n_nominals + 1)],
        "date_of_birth": pd.to_datetime(rng.integers(start, end, n_nominals), unit="D"),
        "sex": np.where(rng.random(n_nominals) < 0.7, "M", "F").astype(object),
        "district": np.array(list(_OUTWARD), dtype=object)[rng.integers(0, len(_OUTWARD), n_nominals)],
    })
    nominals = nominal_index(people, rng)
    chosen = rng.choice(n_nominals, size=n_referrals, replace=False)
    referrals = pd.DataFrame({"referral_id": [f"R{i:06d}" for i in range(1, n_referrals + 1)],
                              "person_id": nominals["person_id"].to_numpy(object)[chosen],
                              "programme_id": "synthetic-programme"})
    lists, truth = referral_lists(nominals, referrals, rng, rates=rates)
    return lists, nominals, truth
