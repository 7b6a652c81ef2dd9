"""Effects on a matched design: the weighted difference in means and, with ``adjust``, g-computation.

Unadjusted (``adjust=None``): weighted least squares of the outcome on treatment; SE cluster-robust by subclass
(``sandwich::vcovCL`` defaults: HC1 with G/(G-1)) without replacement, HC3 with replacement (as
``sandwich::vcovHC(type="HC3")``); CI and p-value from the t distribution with n - 2 df (``lmtest``). Ratios
(risk, odds, rate) by the delta method on the same covariance, on the log scale.

Adjusted (``adjust=[covariates]``): g-computation as MatchIt's vignette *Estimating Effects After Matching*
(``marginaleffects::avg_comparisons``): a weighted outcome model with treatment x covariate interactions on the
matched data -- linear for continuous outcomes, logistic for binary ones, Poisson (log link) for counts --, the
predictions of every target unit of the estimand (treated for ATT, controls for ATC, all matched units for ATE)
under treatment and under control, averaged with the matching weights, and their contrast: difference, risk
ratio and odds ratio (binary), rate ratio (counts). SE by the delta method (analytic gradient) from the robust
covariance of the model: cluster-robust by subclass (``vcovCL`` HC1) for designs with subclasses, HC3 for
matching with replacement and for subclassification; normal CIs and p-values (as marginaleffects). Checked
against R (lm/glm + sandwich, delta method by hand) in ``tests/results/matchit/make_methods_reference.R``.
Estimates are in outcome units (proportions for binary outcomes; x100 for percentage points).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from evaluation._lazy import stats  # scipy.stats on first use (about 1 s to import)

from ._inputs import MatchingError, model_matrix, rows_text

__all__ = ["Effect", "effect", "adjusted_effect", "headline_effect"]


def _is_bin(x):
    return bool(np.all((x == 0) | (x == 1)))


@dataclass
class Effect:
    """Effect estimate from a matched/weighted design. Differences are in outcome units (proportion for binary
    outcomes: x100 for percentage points); ratios are treated / control (weighted means, or g-computed means
    when ``adjusted_for`` is not empty). ``df`` is 0 for normal-based (adjusted) inference."""
    outcome: str
    estimate: float
    se: float
    ci_low: float
    ci_high: float
    p_value: float
    df: int
    se_type: str
    mean_treated: float
    mean_control: float
    n_treated: int
    n_control: int
    outcome_type: str
    ratios: dict = field(default_factory=dict)
    adjusted_for: tuple = ()
    estimand: str = "ATT"

    def __repr__(self) -> str:
        adj = f", adjusted for {len(self.adjusted_for)} covariate(s)" if self.adjusted_for else ""
        return (f"<Effect {self.estimand} on {self.outcome!r} ({self.outcome_type}{adj}): {self.estimate:.4g} "
                f"[{self.ci_low:.4g}, {self.ci_high:.4g}], SE {self.se:.3g}, p = {self.p_value:.3g}>")

    def summary(self) -> pd.DataFrame:
        """The estimates as a table (same as :meth:`to_frame`)."""
        return self.to_frame()

    def to_dict(self) -> dict:
        """Plain dict of the fields (ratios as ``{name: (estimate, ci_low, ci_high, p_value)}``)."""
        from dataclasses import asdict
        return asdict(self)

    def to_frame(self) -> pd.DataFrame:
        rows = {"difference": (self.estimate, self.se, self.ci_low, self.ci_high, self.p_value)}
        for name, (est, lo, hi, p) in self.ratios.items():
            rows[name] = (est, np.nan, lo, hi, p)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["estimate", "se", "ci_low", "ci_high", "p_value"])


def _wls_vcov(y, t, w, cluster=None, se="cluster"):
    """WLS of y on (1, t) with sandwich covariance as R sandwich does it.

    se="cluster": vcovCL(type="HC1", cadjust=TRUE): G/(G-1) * (n-1)/(n-k) * B M B.
    se="HC3": vcovHC(type="HC3"). se="HC1": vcovHC(type="HC1").
    """
    X = np.column_stack([np.ones_like(y), t])
    XtWX = X.T @ (X * w[:, None])
    B = np.linalg.inv(XtWX)
    beta = B @ (X.T @ (w * y))
    e = y - X @ beta
    n, k = X.shape
    sc = X * (w * e)[:, None]
    if se == "cluster":
        codes, uniq = pd.factorize(cluster)
        G = len(uniq)
        S = np.zeros((G, k))
        np.add.at(S, codes, sc)
        meat = S.T @ S
        adj = G / (G - 1) * (n - 1) / (n - k)
        V = adj * B @ meat @ B
    elif se == "HC3":
        h = w * np.einsum("ij,jk,ik->i", X, B, X)
        sc3 = sc / (1 - h)[:, None]
        V = B @ (sc3.T @ sc3) @ B
    else:  # HC1
        V = n / (n - k) * B @ (sc.T @ sc) @ B
    return beta, V, n - k


def effect(design, outcome: str, *, alpha=0.05, outcome_type=None) -> Effect:
    """Unadjusted effect (weighted difference in means) of ``outcome`` on ``design.matched``."""
    md = design.matched
    if outcome not in md.columns:
        raise MatchingError(f"outcome column {outcome!r} is not in the data")
    y_s = md[outcome]
    if y_s.isna().any():
        bad = md.index[y_s.isna().to_numpy()]
        raise MatchingError(f"outcome {outcome!r} is missing for {len(bad)} matched row(s) (e.g. index "
                            f"{rows_text(bad)}); exclude them before matching and report the exclusion")
    y = y_s.to_numpy(dtype=float)
    t = md[design.treatment].to_numpy(dtype=float)
    w = md["weight"].to_numpy(dtype=float)
    if outcome_type is None:
        outcome_type = "binary" if _is_bin(y) else ("count" if np.all(y >= 0) and np.all(y == np.round(y)) else "continuous")
    if design.se_type == "cluster":
        beta, V, df = _wls_vcov(y, t, w, md["subclass"].to_numpy(), "cluster")
        se_type = "cluster-robust by subclass (sandwich::vcovCL defaults, HC1)"
    else:
        beta, V, df = _wls_vcov(y, t, w, None, design.se_type)
        se_type = design.se_type
    est, se = beta[1], math.sqrt(V[1, 1])
    q = stats.t.ppf(1 - alpha / 2, df)
    p = 2 * stats.t.sf(abs(est / se), df) if se > 0 else np.nan
    m0, m1 = beta[0], beta[0] + beta[1]
    ratios = {}
    # ratio measures by the delta method on the same sandwich covariance of (mean_control, mean_treated)
    J = np.array([[1.0, 0.0], [1.0, 1.0]])
    Vm = J @ V @ J.T  # cov of (m0, m1)
    z = stats.norm.ppf(1 - alpha / 2)

    def _ratio(g0, g1, d0, d1):
        est_l = g1 - g0
        grad = np.array([-d0, d1])
        s = math.sqrt(grad @ Vm @ grad)
        return (math.exp(est_l), math.exp(est_l - z * s), math.exp(est_l + z * s),
                2 * stats.norm.sf(abs(est_l / s)) if s > 0 else np.nan)

    if m0 > 0 and m1 > 0:
        if outcome_type == "binary":
            ratios["risk_ratio"] = _ratio(math.log(m0), math.log(m1), 1 / m0, 1 / m1)
            if m0 < 1 and m1 < 1:
                ratios["odds_ratio"] = _ratio(math.log(m0 / (1 - m0)), math.log(m1 / (1 - m1)),
                                              1 / (m0 * (1 - m0)), 1 / (m1 * (1 - m1)))
        elif outcome_type == "count":
            ratios["rate_ratio"] = _ratio(math.log(m0), math.log(m1), 1 / m0, 1 / m1)
    return Effect(outcome=outcome, estimate=float(est), se=float(se), ci_low=float(est - q * se),
                  ci_high=float(est + q * se), p_value=float(p), df=int(df), se_type=se_type,
                  mean_treated=float(m1), mean_control=float(m0), n_treated=int((t == 1).sum()),
                  n_control=int((t == 0).sum()), outcome_type=outcome_type, ratios=ratios,
                  estimand=getattr(design, "estimand", "ATT"))


_FAMILIES = {"continuous": "linear", "binary": "logistic", "count": "poisson"}


def _outcome_type(y: np.ndarray, outcome_type: str | None) -> str:
    if outcome_type is None:
        if _is_bin(y):
            return "binary"
        return "count" if np.all(y >= 0) and np.all(y == np.round(y)) else "continuous"
    if outcome_type not in _FAMILIES:
        raise MatchingError(f"outcome_type must be one of {sorted(_FAMILIES)}, not {outcome_type!r}")
    if outcome_type == "binary" and not _is_bin(y):
        raise MatchingError("outcome_type='binary' needs a 0/1 outcome")
    if outcome_type == "count" and not (np.all(y >= 0) and np.all(y == np.round(y))):
        raise MatchingError("outcome_type='count' needs non-negative whole numbers")
    return outcome_type


def _fit_glm(X, y, w, family: str, maxit: int = 50, tol: float = 1e-10):
    """Weighted GLM with canonical link by Newton-Raphson (= IRLS). Returns (beta, mu, dmu/deta)."""
    k = X.shape[1]
    if family == "linear":
        XtW = X.T * w
        beta = np.linalg.solve(XtW @ X, XtW @ y)
        mu = X @ beta
        return beta, mu, np.ones_like(mu)
    # R's glm.fit path: its starting values (binomial mu = (y + 0.5) / 2 with prior weights, Poisson y + 0.1),
    # IRLS steps, and its stopping rule (relative change in deviance < 1e-8), so the estimates are R's iterate
    if family == "logistic":
        mu = (w * y + 0.5) / (w + 1)
        eta = np.log(mu / (1 - mu))
    else:
        mu = y + 0.1
        eta = np.log(mu)

    def deviance(mu):
        if family == "logistic":
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(y > 0, y * np.log(y / mu), 0) + np.where(y < 1, (1 - y) * np.log((1 - y) / (1 - mu)), 0)
        else:
            with np.errstate(divide="ignore", invalid="ignore"):
                r = np.where(y > 0, y * np.log(y / mu), 0) - (y - mu)
        return 2 * float(np.sum(w * r))

    def linkinv(eta):  # R's C_logit_linkinv / exp, with its clamping at |eta| > 30
        if family == "logistic":
            e = np.exp(np.clip(eta, -30.0, 30.0))
            e = np.where(eta < -30, np.finfo(float).eps, np.where(eta > 30, 1 / np.finfo(float).eps, e))
            return e / (1 + e)
        return np.maximum(np.exp(eta), np.finfo(float).eps)

    def mu_eta(eta, mu):  # R's C_logit_mu_eta (DBL_EPSILON beyond |eta| > 30)
        if family == "logistic":
            ee = np.exp(np.clip(eta, -30.0, 30.0))
            return np.where(np.abs(eta) > 30, np.finfo(float).eps, ee / (1 + ee) ** 2)
        return mu

    devold = deviance(mu)
    beta = np.zeros(k)
    for _ in range(maxit):
        me = mu_eta(eta, mu)
        var = mu * (1 - mu) if family == "logistic" else mu
        z = eta + (y - mu) / me
        ww = w * me ** 2 / var
        XtW = X.T * ww
        try:
            beta = np.linalg.solve(XtW @ X, XtW @ z)
        except np.linalg.LinAlgError as exc:
            raise MatchingError("outcome model is singular (collinear adjustment covariates, or a covariate "
                                "constant within a treatment group)") from exc
        eta = X @ beta
        mu = linkinv(eta)
        dev = deviance(mu)
        if abs(dev - devold) / (abs(dev) + 0.1) < 1e-8:
            break
        devold = dev
    if not np.all(np.isfinite(beta)):
        raise MatchingError("outcome model did not converge; adjust for fewer covariates")
    if family == "logistic" and np.any((mu < 1e-10) | (mu > 1 - 1e-10)):
        import warnings
        warnings.warn("outcome model: fitted probabilities of 0 or 1 (separation); the adjusted estimate rests on "
                      "extrapolation for some covariate patterns", stacklevel=4)
    return beta, mu, (mu * (1 - mu) if family == "logistic" else mu)


def _robust_vcov(X, y, w, mu, dmu, family, se_type, cluster=None):
    """sandwich's vcovCL (HC1, cadjust) or vcovHC (HC3) of a weighted lm/glm with canonical link."""
    n, k = X.shape
    wv = w * (dmu if family != "linear" else 1.0)  # working weights (canonical link: mu.eta^2/var = dmu)
    B = np.linalg.inv((X.T * wv) @ X)
    sc = X * (w * (y - mu))[:, None]
    if se_type == "cluster":
        codes, uniq = pd.factorize(cluster)
        G = len(uniq)
        if G < 2:
            raise MatchingError("cluster-robust SE needs at least two subclasses")
        S = np.zeros((G, k))
        np.add.at(S, codes, sc)
        # vcovCL's default type is HC1 for lm, HC0 for glm (only the G/(G-1) cluster adjustment)
        adj = G / (G - 1) * ((n - 1) / (n - k) if family == "linear" else 1.0)
        return adj * B @ (S.T @ S) @ B
    h = wv * np.einsum("ij,jk,ik->i", X, B, X)
    sc3 = sc / (1 - h)[:, None]
    return B @ (sc3.T @ sc3) @ B


def adjusted_effect(design, outcome: str, adjust, *, alpha: float = 0.05, outcome_type: str | None = None) -> Effect:
    """g-computation effect of ``outcome`` on a matched design, adjusted for the ``adjust`` covariates.

    See the module docstring for the model, target units and standard errors.
    """
    md = design.matched
    adjust = [adjust] if isinstance(adjust, str) else list(adjust)
    missing = [c for c in [outcome, *adjust] if c not in md.columns]
    if missing:
        raise MatchingError(f"column(s) {missing} are not in the data (outcome / adjust)")
    if md[outcome].isna().any():
        bad = md.index[md[outcome].isna().to_numpy()]
        raise MatchingError(f"outcome {outcome!r} is missing for {len(bad)} matched row(s) (e.g. index "
                            f"{rows_text(bad)}); exclude them before matching and report the exclusion")
    if md[adjust].isna().to_numpy().any():
        raise MatchingError(f"adjust: missing values in {[c for c in adjust if md[c].isna().any()]}")
    y = md[outcome].to_numpy(dtype=float)
    t = md[design.treatment].to_numpy(dtype=float)
    w = md["weight"].to_numpy(dtype=float)
    otype = _outcome_type(y, outcome_type)
    family = _FAMILIES[otype]
    Z = model_matrix(md, adjust, drop_first=True).to_numpy(dtype=float)
    keep = Z.std(axis=0) > 0  # a covariate constant in the matched sample has no coefficient (R: NA, aliased)
    Z = Z[:, keep]
    n = len(y)

    def full_matrix(tv):
        tv = np.full(n, tv, dtype=float) if np.isscalar(tv) else tv
        return np.column_stack([np.ones(n), tv, Z, Z * tv[:, None]])

    # as R's lm/glm (pivoted QR, tolerance 1e-7): a column that is a linear combination of the earlier ones
    # (e.g. treat x race level when no matched treated person has that level) is aliased and left out
    Xf = full_matrix(t) * np.sqrt(w)[:, None]
    keep: list[int] = []
    for j in range(Xf.shape[1]):
        cand = Xf[:, keep + [j]]
        q, r = np.linalg.qr(cand)
        if abs(r[-1, -1]) > 1e-7 * max(np.linalg.norm(Xf[:, j]), 1e-300):
            keep.append(j)

    def design_matrix(tv):
        return full_matrix(tv)[:, keep]

    X = design_matrix(t)
    beta, mu, dmu = _fit_glm(X, y, w, family)
    se_kind = getattr(design, "se_type", "cluster")
    if se_kind == "cluster" and "subclass" in md.columns:
        V = _robust_vcov(X, y, w, mu, dmu, family, "cluster", md["subclass"].to_numpy())
        se_type = "g-computation; cluster-robust by subclass (sandwich::vcovCL, HC1); delta method"
    else:
        V = _robust_vcov(X, y, w, mu, dmu, family, "HC3")
        se_type = "g-computation; HC3 (sandwich::vcovHC); delta method"
    estimand = getattr(design, "estimand", "ATT")
    target = {"ATT": t == 1, "ATC": t == 0}.get(estimand, np.ones(n, dtype=bool))
    wt = w[target]

    def mean_and_grad(a):
        Xa = design_matrix(float(a))[target]
        eta = Xa @ beta
        if family == "linear":
            m, d = eta, np.ones_like(eta)
        elif family == "logistic":
            m = 1 / (1 + np.exp(-eta))
            d = m * (1 - m)
        else:
            m = np.exp(eta)
            d = m
        return float(np.sum(wt * m) / wt.sum()), (Xa * (wt * d)[:, None]).sum(axis=0) / wt.sum()

    m1, g1 = mean_and_grad(1)
    m0, g0 = mean_and_grad(0)
    z = stats.norm.ppf(1 - alpha / 2)

    def contrast(est, grad):
        s = math.sqrt(float(grad @ V @ grad))
        return est, s, 2 * stats.norm.sf(abs(est / s)) if s > 0 else np.nan

    est, se, p = contrast(m1 - m0, g1 - g0)
    ratios = {}

    def log_ratio(name, est_l, grad):
        e, s, pv = contrast(est_l, grad)
        ratios[name] = (math.exp(e), math.exp(e - z * s), math.exp(e + z * s), pv)

    if otype == "binary":
        log_ratio("risk_ratio", math.log(m1 / m0), g1 / m1 - g0 / m0)
        log_ratio("odds_ratio", math.log(m1 / (1 - m1)) - math.log(m0 / (1 - m0)),
                  g1 / (m1 * (1 - m1)) - g0 / (m0 * (1 - m0)))
    elif otype == "count":
        log_ratio("rate_ratio", math.log(m1 / m0), g1 / m1 - g0 / m0)
    return Effect(outcome=outcome, estimate=float(est), se=float(se), ci_low=float(est - z * se),
                  ci_high=float(est + z * se), p_value=float(p), df=0, se_type=se_type, mean_treated=m1,
                  mean_control=m0, n_treated=int((t == 1).sum()), n_control=int((t == 0).sum()),
                  outcome_type=otype, ratios=ratios, adjusted_for=tuple(adjust), estimand=estimand)


def headline_effect(design, outcome: str, *, adjust=None, outcome_type: str | None = None,
                    alpha: float = 0.05) -> tuple[Effect, list[str]]:
    """The effect a report leads with: adjusted for ``adjust`` (g-computation) when given, else unadjusted.

    Used by :func:`evaluation.estimates.evaluate_programme` for the programme config's ``matching.adjust``. The
    notes are for the report, and quote no data values: which covariates the estimate is adjusted for, warnings
    from the outcome model (separation) and, when the adjusted model cannot be fitted, why the unadjusted
    estimate is shown instead (an honest fallback rather than no estimate).

    Parameters
    ----------
    design : MatchedDesign or WeightedDesign
    outcome : str
        Outcome column.
    adjust : None or list of str
        Covariates to adjust for; None or empty: the weighted difference in means.
    outcome_type : {"binary", "count", "continuous"}, optional
    alpha : float
        1 - confidence level.

    Returns
    -------
    (Effect, list of str)
        The effect (difference in outcome units) and notes for the report.

    Raises
    ------
    MatchingError
        When even the unadjusted effect cannot be estimated (e.g. the outcome column is missing).

    Examples
    --------
    >>> e, notes = headline_effect(design, "reoffended", adjust=["age", "prior_offences"])  # doctest: +SKIP
    >>> e.adjusted_for  # doctest: +SKIP
    ('age', 'prior_offences')
    """
    import warnings

    adjust = [adjust] if isinstance(adjust, str) else list(adjust or ())
    if not adjust:
        return effect(design, outcome, alpha=alpha, outcome_type=outcome_type), []
    notes = [f"Impact estimates are adjusted for {', '.join(adjust)}: a regression on the matched sample "
             "(g-computation, as MatchIt's guidance recommends), which corrects for imbalance left after matching."]
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            e = adjusted_effect(design, outcome, adjust, alpha=alpha, outcome_type=outcome_type)
    except (MatchingError, ArithmeticError, np.linalg.LinAlgError) as exc:
        return (effect(design, outcome, alpha=alpha, outcome_type=outcome_type),
                [f"The adjusted estimate for {outcome} could not be fitted ({exc}); the unadjusted matched "
                 "difference is shown instead."])
    for w in caught:
        if issubclass(w.category, UserWarning):
            notes.append(f"Adjusted estimate for {outcome}: {w.message}.")
    return e, notes
