# Reference outputs for Cox predictions and concordance (issue 13, item "no predictions or concordance"),
# made with R survival 3.5.x on PUBLIC data shipped with R (the CSVs beside this script):
#   lung.csv   survival::lung (time, event 0/1, sex, age)
#   rossi.csv  carData::Rossi (weeks to arrest)
#   survival_reference3.json   what tests/test_survival.py compares predict() and concordance() against
# Run from anywhere:  Rscript tests/results/survival/make_survival_reference3.R
suppressPackageStartupMessages({ library(survival); library(jsonlite) })
args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "tests/results/survival"
ref <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")))

lung <- read.csv(file.path(out_dir, "lung.csv"))
lung$w <- 1 + (seq_len(nrow(lung)) %% 3) / 2      # deterministic non-integer case weights
rossi <- read.csv(file.path(out_dir, "rossi.csv"), stringsAsFactors = TRUE)
new_lung <- data.frame(time = c(100, 300, 500), event = c(1, 0, 1), age = c(50, 65, 80), sex = c(1, 2, 1))

pred <- function(fit, newdata = NULL) {
  out <- list()
  for (ty in c("lp", "risk", "expected")) {
    out[[ty]] <- if (is.null(newdata)) unname(predict(fit, type = ty)) else unname(predict(fit, newdata, type = ty))
  }
  out
}
conc <- function(fit) {
  cc <- concordance(fit)
  list(concordance = cc$concordance, var = cc$var, count = as.list(cc$count), n = cc$n)
}
case <- function(fit, newdata = NULL) {
  r <- list(coef = unname(coef(fit)), train = pred(fit), concordance = conc(fit))
  if (!is.null(newdata)) r$new <- pred(fit, newdata)
  r
}

ref$lung_efron <- case(coxph(Surv(time, event) ~ age + sex, data = lung), new_lung)
ref$lung_breslow <- case(coxph(Surv(time, event) ~ age + sex, data = lung, ties = "breslow"), new_lung)
ref$lung_strata <- case(coxph(Surv(time, event) ~ age + strata(sex), data = lung), new_lung)
ref$lung_weighted <- case(coxph(Surv(time, event) ~ age + sex, data = lung, weights = w), new_lung)
ref$rossi <- case(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi))
# concordance of a given score (x) with the outcome, as concordance(y ~ x): higher x, longer survival
ref$rossi_score <- { cc <- concordance(Surv(week, arrest) ~ prio, data = rossi)
  list(concordance = cc$concordance, var = cc$var, count = as.list(cc$count), n = cc$n) }

writeLines(toJSON(ref, digits = NA, auto_unbox = TRUE, pretty = TRUE), file.path(out_dir, "survival_reference3.json"))
cat("wrote", file.path(out_dir, "survival_reference3.json"), "\n")
