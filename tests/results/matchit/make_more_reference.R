# Extra MatchIt 4.7.2 fixtures (ties, exact strata, calipers that drop units, ratio with replacement,
# linear.logit caliper with ratio 2) on the shipped synthetic_cohort.csv. Same output layout as
# make_reference.R, plus `formula` per spec and the match matrix. m.order = "random" is skipped: R's RNG
# cannot be reproduced from Python.
# Run: Rscript make_more_reference.R  (MatchIt 4.7.2, built from the CRAN 4.7.2 source, commit ac853e7)
suppressMessages({library(MatchIt); library(sandwich); library(lmtest); library(jsonlite)})
stopifnot(packageVersion("MatchIt") == "4.7.2")
d <- read.csv("synthetic_cohort.csv")
full <- treat ~ age + male + prior + drug + norwich + yarmouth
coarse <- treat ~ male + drug + norwich + yarmouth          # <= 16 distinct scores: ties everywhere
specs <- list(
  ties_default = list(f = coarse),
  ties_ratio_2 = list(f = coarse, ratio = 2),
  ties_smallest_ratio_3 = list(f = coarse, ratio = 3, m.order = "smallest"),
  ties_replace_ratio_3 = list(f = coarse, ratio = 3, replace = TRUE),
  ties_data_order = list(f = coarse, m.order = "data"),
  exact_two_strata_caliper = list(f = full, exact = ~ norwich + male, caliper = 0.1),
  exact_ratio_2_smallest = list(f = full, exact = ~ drug + yarmouth, ratio = 2, m.order = "smallest"),
  caliper_drops_units = list(f = full, caliper = 0.01),
  caliper_drops_ratio_2 = list(f = full, caliper = 0.02, ratio = 2),
  linear_caliper_ratio_2 = list(f = full, link = "linear.logit", caliper = 0.1, ratio = 2),
  replace_ratio_3_caliper = list(f = full, ratio = 3, replace = TRUE, caliper = 0.05),
  replace_exact = list(f = full, replace = TRUE, exact = ~ norwich),
  ratio_3_exact_short = list(f = full, ratio = 3, exact = ~ yarmouth + drug + male)
)
out <- list(matchit_version = as.character(packageVersion("MatchIt")))
for (nm in names(specs)) {
  s <- specs[[nm]]
  f <- s$f; s$f <- NULL
  m <- suppressWarnings(do.call(matchit, c(list(formula = f, data = d, method = "nearest", distance = "glm"), s)))
  md <- match.data(m)
  fit <- lm(reoffended ~ treat, data = md, weights = weights)
  vc <- if (isTRUE(s$replace)) vcovHC(fit, type = "HC3") else vcovCL(fit, cluster = ~subclass)
  sm <- summary(m)
  mm <- m$match.matrix
  out[[nm]] <- list(
    formula = deparse(f),
    args = lapply(s, function(x) if (inherits(x, "formula")) deparse(x) else x),
    distance = setNames(as.list(unname(m$distance)), d$id),
    distance_hex = sprintf("%a", unname(m$distance)),  # exact bits, in data order
    weights = setNames(as.list(md$weights), md$id),
    subclass = if (!isTRUE(s$replace)) setNames(as.list(as.character(md$subclass)), md$id) else NULL,
    match_matrix = setNames(lapply(seq_len(nrow(mm)), function(i) as.list(d$id[as.integer(na.omit(match(mm[i, ], rownames(d))))])),
                            d$id[as.integer(rownames(mm))]),
    smd_before = as.list(sm$sum.all[, "Std. Mean Diff."]),
    smd_after = as.list(sm$sum.matched[, "Std. Mean Diff."]),
    var_ratio_after = as.list(sm$sum.matched[, "Var. Ratio"]),
    nn = as.list(as.data.frame(sm$nn)),
    effect = list(estimate = unname(coef(fit)["treat"]), se = unname(sqrt(vc["treat", "treat"])),
                  se_type = if (isTRUE(s$replace)) "HC3" else "cluster-robust by subclass (sandwich::vcovCL defaults)"))
}
# distance_hex holds the exact bits, so the matching algorithm can also be checked on MatchIt's own distances
# (a few ties in |distance difference| are decided by the last bit of the distances)
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null"), "more_reference.json")
