# MatchIt 4.7.2 fixtures for nearest-neighbour matching on covariate distances, on MatchIt's lalonde (lalonde.csv
# here, written by make_methods_reference.R): distance = "mahalanobis" | "robust_mahalanobis" | "euclidean" |
# "scaled_euclidean" (full matching on the covariates, MatchIt's nn_matchC_mahcovs), mahvars (propensity-score
# caliper, Mahalanobis distance within), antiexact, and calipers on single covariates (named caliper vector).
# Run: R_LIBS=/path/to/lib Rscript make_distance_reference.R   (MatchIt 4.7.2 built from its source)
suppressMessages({library(MatchIt); library(jsonlite)})
stopifnot(packageVersion("MatchIt") == "4.7.2")
data("lalonde", package = "MatchIt")
d <- lalonde
d$id <- rownames(d)
f <- treat ~ age + educ + race + married + nodegree + re74 + re75
mv <- ~ age + educ + re74 + re75
specs <- list(
  mahalanobis = list(distance = "mahalanobis"),
  mahalanobis_ratio_2 = list(distance = "mahalanobis", ratio = 2),
  mahalanobis_replace = list(distance = "mahalanobis", replace = TRUE),
  mahalanobis_atc = list(distance = "mahalanobis", estimand = "ATC"),
  mahalanobis_largest_is_data = list(distance = "mahalanobis", m.order = "data"),
  robust_mahalanobis = list(distance = "robust_mahalanobis"),
  robust_mahalanobis_ratio_3 = list(distance = "robust_mahalanobis", ratio = 3),
  euclidean = list(distance = "euclidean"),
  scaled_euclidean = list(distance = "scaled_euclidean"),
  mahalanobis_one_covariate = list(distance = "mahalanobis", f = treat ~ re74),
  mahalanobis_exact = list(distance = "mahalanobis", exact = ~ race),
  mahalanobis_antiexact = list(distance = "mahalanobis", antiexact = ~ nodegree),
  mahalanobis_caliper_age = list(distance = "mahalanobis", caliper = c(age = 2), std.caliper = FALSE),
  mahalanobis_caliper_re74_sd = list(distance = "mahalanobis", caliper = c(re74 = 0.1)),
  mahvars = list(mahvars = mv, caliper = 0.2),
  mahvars_ratio_2 = list(mahvars = mv, caliper = 0.25, ratio = 2),
  mahvars_exact = list(mahvars = mv, caliper = 0.2, exact = ~ married),
  mahvars_no_caliper = list(mahvars = mv),
  ps_antiexact = list(antiexact = ~ married),
  ps_antiexact_ratio_2 = list(antiexact = ~ married + nodegree, ratio = 2),
  ps_caliper_age = list(caliper = c(0.25, age = 5), std.caliper = c(TRUE, FALSE)),
  ps_caliper_covs_sd = list(caliper = c(age = 0.5, educ = 0.5)),
  ps_caliper_covs_replace = list(caliper = c(0.2, re75 = 0.3), replace = TRUE)
)
out <- list(matchit_version = as.character(packageVersion("MatchIt")))
for (nm in names(specs)) {
  s <- specs[[nm]]
  fo <- if (is.null(s$f)) f else s$f; s$f <- NULL
  m <- suppressWarnings(do.call(matchit, c(list(formula = fo, data = d, method = "nearest"), s)))
  args <- s
  for (k in c("mahvars", "exact", "antiexact")) if (!is.null(args[[k]])) args[[k]] <- all.vars(args[[k]])
  if (!is.null(args$caliper)) {
    nms <- names(args$caliper); if (is.null(nms)) nms <- ""
    nms[nms == ""] <- "distance"
    args$caliper <- as.list(setNames(unname(args$caliper), nms))
  }
  if (!is.null(args$std.caliper) && length(args$std.caliper) > 1)
    args$std.caliper <- as.list(setNames(args$std.caliper, names(args$caliper)))
  mm <- m$match.matrix
  r <- list(formula = deparse(fo), args = args,
            distance = if (!is.null(m$distance)) unname(m$distance) else NULL,
            weights = setNames(as.list(unname(m$weights)), d$id),
            subclass = if (!is.null(m$subclass)) setNames(as.list(as.character(m$subclass)), d$id) else NULL,
            match_matrix = setNames(lapply(seq_len(nrow(mm)), function(i) as.list(unname(mm[i, ])) ),
                                    rownames(mm)))
  # the transformed covariates MatchIt matched on (to check the transform, and the algorithm on MatchIt's own
  # numbers where equal distances are decided by the last bit)
  if (nm %in% c("mahalanobis", "robust_mahalanobis", "mahvars_ratio_2")) {
    r$mahcovs <- unname(as.matrix(MatchIt:::transform_covariates(
      if (is.null(s$mahvars)) fo else s$mahvars, data = d, method = if (is.null(s$distance)) "mahalanobis"
      else s$distance, treat = d$treat)))
  }
  out[[nm]] <- r
}
writeLines(toJSON(out, auto_unbox = TRUE, digits = NA, na = "null", null = "null"), "distance_reference.json")
