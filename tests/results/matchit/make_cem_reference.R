# MatchIt 4.7.2 fixtures for coarsened exact matching (MatchIt's own cem_matchit, method = "cem") on MatchIt's
# lalonde (lalonde.csv here): default Sturges bins, ATT/ATC/ATE, cutpoints per column (number of bins, quantile
# bins, cut points, 0 = no coarsening), other binning rules, and k2k (1:1 within strata, Mahalanobis/Euclidean).
# Run: R_LIBS=/path/to/lib Rscript make_cem_reference.R   (MatchIt 4.7.2 built from its source)
suppressMessages({library(MatchIt); library(jsonlite)})
stopifnot(packageVersion("MatchIt") == "4.7.2")
data("lalonde", package = "MatchIt")
d <- lalonde
d$id <- rownames(d)
f <- treat ~ age + educ + race + married + nodegree + re74 + re75
specs <- list(
  cem_att = list(),
  cem_atc = list(estimand = "ATC"),
  cem_ate = list(estimand = "ATE"),
  cem_cutpoints = list(cutpoints = list(age = 4, re74 = "q4", educ = c(8, 12))),
  cem_no_coarsening_educ = list(cutpoints = list(educ = 0, age = 3, re74 = 2, re75 = 2)),
  cem_fd = list(cutpoints = "fd"),
  cem_scott = list(cutpoints = "scott"),
  cem_drop_re75 = list(cutpoints = list(re75 = 1)),
  cem_k2k = list(k2k = TRUE),
  cem_k2k_euclidean = list(k2k = TRUE, k2k.method = "euclidean"),
  cem_k2k_atc = list(k2k = TRUE, estimand = "ATC")
)
out <- list(matchit_version = as.character(packageVersion("MatchIt")))
for (nm in names(specs)) {
  s <- specs[[nm]]
  m <- suppressWarnings(do.call(matchit, c(list(formula = f, data = d, method = "cem"), s)))
  args <- s
  if (!is.null(args$cutpoints) && is.list(args$cutpoints)) args$cutpoints <- lapply(args$cutpoints, as.list)
  r <- list(formula = deparse(f), args = args,
            weights = setNames(as.list(unname(m$weights)), d$id),
            subclass = setNames(as.list(as.character(m$subclass)), d$id))
  if (!is.null(m$match.matrix)) {
    mm <- m$match.matrix
    r$match_matrix <- setNames(lapply(seq_len(nrow(mm)), function(i) as.list(unname(mm[i, ]))), rownames(mm))
  }
  out[[nm]] <- r
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null"), "cem_reference.json")
