# MatchIt 4.7.2 fixtures on MatchIt's own lalonde data (written to lalonde.csv here): methods nearest (ratio 2
# with race as a factor: tied controls), exact, subclass; estimands ATT/ATC/ATE; discard; and g-computation
# effects as MatchIt's vignette "Estimating Effects After Matching" does them (weighted lm/glm with treatment x
# covariate interactions, average comparison over the estimand's target units, sandwich SEs: vcovCL by
# subclass (HC1) or vcovHC HC3, delta method by hand with the analytic gradient).
# Run: R_LIBS=/path/to/lib Rscript make_methods_reference.R  (MatchIt 4.7.2 built from its source, sandwich 3.0-2)
suppressMessages({library(MatchIt); library(sandwich); library(jsonlite)})
stopifnot(packageVersion("MatchIt") == "4.7.2")
data("lalonde", package = "MatchIt")
d <- lalonde
d$id <- rownames(d)
d$re78_pos <- as.integer(d$re78 > 0)
d$re78_k <- as.integer(floor(d$re78 / 5000))   # a count outcome for the Poisson model
write.csv(d[, c("id", "treat", "age", "educ", "race", "married", "nodegree", "re74", "re75", "re78",
                "re78_pos", "re78_k")], "lalonde.csv", row.names = FALSE)
f <- treat ~ age + educ + race + married + nodegree + re74 + re75
adj <- c("age", "educ", "race", "married", "nodegree", "re74", "re75")

gcomp <- function(md, outcome, family, estimand, se) {
  fo <- as.formula(paste(outcome, "~ treat * (", paste(adj, collapse = " + "), ")"))
  fit <- suppressWarnings(if (family == "linear") lm(fo, data = md, weights = weights)
                          else glm(fo, data = md, weights = weights,
                                   family = if (family == "logistic") quasibinomial() else quasipoisson()))
  V <- if (se == "HC3") vcovHC(fit, type = "HC3") else vcovCL(fit, cluster = ~subclass)
  tgt <- switch(estimand, ATT = md$treat == 1, ATC = md$treat == 0, rep(TRUE, nrow(md)))
  nd <- md[tgt, ]
  w <- nd$weights
  pred <- function(a) {
    nd$treat <- a
    X <- model.matrix(delete.response(terms(fit)), nd)
    b <- coef(fit)
    X <- X[, !is.na(b), drop = FALSE]  # aliased terms (NA coefficients) carry no information
    eta <- drop(X %*% b[!is.na(b)])
    if (family == "linear") { m <- eta; dm <- rep(1, length(eta)) }
    else if (family == "logistic") { m <- plogis(eta); dm <- m * (1 - m) }
    else { m <- exp(eta); dm <- m }
    list(m = sum(w * m) / sum(w), g = colSums(X * (w * dm)) / sum(w))
  }
  p1 <- pred(1); p0 <- pred(0)
  stopifnot(ncol(V) == length(p1$g))
  se_of <- function(g) sqrt(drop(t(g) %*% V %*% g))
  out <- list(mean_treated = p1$m, mean_control = p0$m, estimate = p1$m - p0$m, se = se_of(p1$g - p0$g))
  if (family == "logistic") {
    out$log_rr <- log(p1$m / p0$m); out$log_rr_se <- se_of(p1$g / p1$m - p0$g / p0$m)
    out$log_or <- qlogis(p1$m) - qlogis(p0$m)
    out$log_or_se <- se_of(p1$g / (p1$m * (1 - p1$m)) - p0$g / (p0$m * (1 - p0$m)))
  }
  if (family == "poisson") {
    out$log_rr <- log(p1$m / p0$m); out$log_rr_se <- se_of(p1$g / p1$m - p0$g / p0$m)
  }
  out
}

specs <- list(
  nearest = list(method = "nearest"),
  nearest_ratio_2 = list(method = "nearest", ratio = 2),
  nearest_replace = list(method = "nearest", replace = TRUE),
  nearest_atc = list(method = "nearest", estimand = "ATC"),
  nearest_discard_both = list(method = "nearest", discard = "both"),
  exact_att = list(method = "exact", f = treat ~ race + married + nodegree),
  exact_ate = list(method = "exact", f = treat ~ race + married + nodegree, estimand = "ATE"),
  subclass_att = list(method = "subclass"),
  subclass_ate_10 = list(method = "subclass", subclass = 10, estimand = "ATE"),
  subclass_atc = list(method = "subclass", estimand = "ATC")
)
out <- list(matchit_version = as.character(packageVersion("MatchIt")),
            sandwich_version = as.character(packageVersion("sandwich")))
for (nm in names(specs)) {
  s <- specs[[nm]]
  fo <- if (is.null(s$f)) f else s$f; s$f <- NULL
  m <- suppressWarnings(do.call(matchit, c(list(formula = fo, data = d), s)))
  md <- match.data(m)
  est <- if (is.null(s$estimand)) "ATT" else s$estimand
  se <- if (isTRUE(s$replace) || s$method == "subclass") "HC3" else "cluster"
  sm <- summary(m)
  if (is.null(sm$sum.matched)) sm$sum.matched <- sm$sum.across  # subclassification: across subclasses
  r <- list(formula = deparse(fo), args = s,
            distance = if (!is.null(m$distance)) unname(m$distance) else NULL,
            weights = setNames(as.list(unname(m$weights)), d$id),
            subclass = if (!is.null(m$subclass)) setNames(as.list(as.character(m$subclass)), d$id) else NULL,
            smd_after = as.list(sm$sum.matched[, "Std. Mean Diff."]),
            var_ratio_after = as.list(sm$sum.matched[, "Var. Ratio"]),
            ecdf_mean_after = as.list(sm$sum.matched[, "eCDF Mean"]),
            ecdf_max_after = as.list(sm$sum.matched[, "eCDF Max"]),
            effects = list())
  if (!is.null(m$match.matrix)) {
    mm <- m$match.matrix
    r$match_matrix <- setNames(lapply(seq_len(nrow(mm)), function(i) as.list(na.omit(mm[i, ]))), rownames(mm))
  }
  if (s$method != "exact") {
    r$effects$re78 <- gcomp(md, "re78", "linear", est, se)
    r$effects$re78_pos <- gcomp(md, "re78_pos", "logistic", est, se)
    r$effects$re78_k <- gcomp(md, "re78_k", "poisson", est, se)
  }
  r$se <- se
  out[[nm]] <- r
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null"), "methods_reference.json")
