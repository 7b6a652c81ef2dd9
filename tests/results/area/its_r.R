# Reference for tests/test_area.py::test_its_agrees_with_r_sandwich: segmented regression of its_series.csv
# (intervention 2021-01, calendar-month dummies) with Newey-West HAC errors (sandwich::NeweyWest, Bartlett
# kernel, lag 4, no prewhitening, adjust = TRUE i.e. n/(n-k)), Durbin-Watson and Breusch-Godfrey (lmtest).
# Run from the repository root: Rscript tests/results/area/its_r.R
suppressPackageStartupMessages({library(sandwich); library(lmtest); library(jsonlite)})
d <- read.csv("tests/results/area/its_series.csv")
d$month <- as.Date(d$month)
d$t <- seq_len(nrow(d)) - 1
k0 <- which(d$month == as.Date("2021-01-01")) - 1
d$post <- as.numeric(d$t >= k0)
d$months_since <- ifelse(d$post == 1, d$t - k0, 0)
d$moy <- factor(as.integer(format(d$month, "%m")))
fit <- lm(value ~ t + post + months_since + moy, data = d)
V <- NeweyWest(fit, lag = 4, prewhite = FALSE, adjust = TRUE)
bg <- bgtest(fit, order = 12, type = "Chisq")
out <- list(
  coef = as.list(coef(fit)[c("(Intercept)", "t", "post", "months_since")]),
  se = as.list(sqrt(diag(V))[c("(Intercept)", "t", "post", "months_since")]),
  durbin_watson = unname(dwtest(fit)$statistic),
  breusch_godfrey_stat = unname(bg$statistic), breusch_godfrey_p = unname(bg$p.value),
  R = R.version.string, sandwich = as.character(packageVersion("sandwich")),
  lmtest = as.character(packageVersion("lmtest"))
)
write_json(out, "tests/results/area/its_r.json", digits = NA, auto_unbox = TRUE, pretty = TRUE)
