# Reference outputs for evaluation.survival, made with R survival (Debian r-cran-survival).
#
# Run from the repository root:
#     Rscript tests/results/survival/make_survival_reference.R
# Writes, next to this script:
#   reoffence.csv        the data (Python tests read exactly this file)
#   lung.csv             survival::lung (time, event, sex, age): a curve whose median is reached
#   survival_reference.json   every R result the tests compare against
#
# The data set imitates a matched reoffending cohort: integer days to first proven reoffence
# (many tied event times), censoring at 365 days and some earlier censoring, two groups
# (treat 0/1), three covariates (age, male, prior), non-integer weights and a subclass
# (matched-set) id for clustering.
suppressPackageStartupMessages({
  library(survival)
  library(jsonlite)
})

args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "tests/results/survival"

set.seed(20240521)
n_sub <- 150                              # matched subclasses: 1 treated + 1 or 2 controls
sizes <- sample(c(2, 3), n_sub, replace = TRUE, prob = c(0.6, 0.4))
subclass <- rep(seq_len(n_sub), sizes)
n <- length(subclass)
treat <- unlist(lapply(sizes, function(s) c(1, rep(0, s - 1))))
age <- round(rnorm(n, 24, 6))
male <- rbinom(n, 1, 0.7)
prior <- rpois(n, 1.5)
frailty <- rnorm(n_sub, 0, 0.3)[subclass]
lp <- -0.35 * treat + 0.02 * (age - 24) + 0.3 * male + 0.25 * prior + frailty
rate <- 0.0012 * exp(lp)
t_event <- rexp(n, rate)
t_cens <- ifelse(runif(n) < 0.2, runif(n, 30, 365), 365)
duration <- pmax(1, ceiling(pmin(t_event, t_cens)))
event <- as.integer(t_event <= t_cens)
duration[event == 0] <- ceiling(pmin(t_event, t_cens))[event == 0]
# MatchIt-style weights: treated 1, controls 1/(number of controls in the set) rescaled,
# plus some noise so they are not a simple fraction
w <- ifelse(treat == 1, 1, 1 / (sizes[subclass] - 1))
w <- ifelse(treat == 1, 1, w * sum(treat == 0) / sum(w[treat == 0]))
w <- round(w * runif(n, 0.8, 1.25), 4)
d <- data.frame(id = seq_len(n), subclass = subclass, treat = treat, age = age,
                male = male, prior = prior, weight = w, duration = duration, event = event)
write.csv(d, file.path(out_dir, "reoffence.csv"), row.names = FALSE)

# ---------------------------------------------------------------- Kaplan-Meier
km_table <- function(fit) {
  strata <- if (is.null(fit$strata)) rep("all", length(fit$time)) else
    rep(sub("^[a-z]+=", "", names(fit$strata)), fit$strata)
  list(group = strata, time = fit$time, n_risk = fit$n.risk, n_event = fit$n.event,
       n_censor = fit$n.censor, surv = fit$surv, lower = fit$lower, upper = fit$upper)
}
km_at <- function(fit, times) {
  s <- summary(fit, times = times, extend = TRUE)
  strata <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("^[a-z]+=", "", as.character(s$strata))
  list(group = strata, time = s$time, n_risk = s$n.risk, surv = s$surv, lower = s$lower, upper = s$upper)
}
median_table <- function(fit) {
  tab <- summary(fit)$table
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  list(median = unname(tab[, "median"]), lower = unname(tab[, "0.95LCL"]), upper = unname(tab[, "0.95UCL"]))
}
rmean_table <- function(fit, tau) {
  tab <- survival:::survmean(fit, rmean = tau)$matrix
  if (is.null(dim(tab))) tab <- t(as.matrix(tab))
  list(rmean = unname(tab[, "rmean"]), se = unname(tab[, "se(rmean)"]))
}

at_times <- c(0, 30, 90, 180, 182.5, 365, 400)
km <- list()
fits <- list(
  unweighted_all = survfit(Surv(duration, event) ~ 1, data = d),
  unweighted_group = survfit(Surv(duration, event) ~ treat, data = d),
  weighted_all = survfit(Surv(duration, event) ~ 1, data = d, weights = weight),
  weighted_group = survfit(Surv(duration, event) ~ treat, data = d, weights = weight),
  cluster_group = survfit(Surv(duration, event) ~ treat, data = d, cluster = subclass),
  weighted_cluster_group = survfit(Surv(duration, event) ~ treat, data = d, weights = weight,
                                   cluster = subclass)
)
for (nm in names(fits)) {
  km[[nm]] <- list(curve = km_table(fits[[nm]]), at = km_at(fits[[nm]], at_times),
                   median = median_table(fits[[nm]]),
                   rmean365 = rmean_table(fits[[nm]], 365), rmean180 = rmean_table(fits[[nm]], 180))
}

# Robust (infinitesimal-jackknife) RMST: integrate survfit's per-cluster influence on S(t) to tau.
# R 3.5.3 prints only the Greenwood-type se(rmean); this is the robust SE evaluation.survival offers
# for matched designs (weights and subclass pairing), built from R's own influence matrices.
rmst_ij <- function(fit, tau) {
  nstrat <- length(fit$strata)
  grp <- rep(seq_len(nstrat), fit$strata)
  res <- list(); infl_all <- list()
  for (i in seq_len(nstrat)) {
    tt <- fit$time[grp == i]
    keep <- tt <= tau
    dt <- diff(c(tt[keep], tau))
    inf <- fit$influence.surv[[i]][, keep, drop = FALSE] %*% dt
    infl_all[[i]] <- setNames(drop(inf), rownames(fit$influence.surv[[i]]))
    res$se <- c(res$se, sqrt(sum(inf^2)))
  }
  ids <- union(names(infl_all[[1]]), names(infl_all[[2]]))
  a <- infl_all[[1]][ids]; a[is.na(a)] <- 0
  b <- infl_all[[2]][ids]; b[is.na(b)] <- 0
  res$diff_se <- sqrt(sum((b - a)^2))
  res
}
rmst_robust <- list()
for (tau in c(180, 365)) {
  f1 <- survfit(Surv(duration, event) ~ treat, data = d, weights = weight, cluster = subclass, influence = TRUE)
  f2 <- survfit(Surv(duration, event) ~ treat, data = d, weights = weight, influence = TRUE)
  d$rowid <- seq_len(nrow(d))
  f3 <- survfit(Surv(duration, event) ~ treat, data = d, cluster = rowid, influence = TRUE)
  rmst_robust[[paste0("tau", tau)]] <- list(weighted_cluster = rmst_ij(f1, tau), weighted = rmst_ij(f2, tau),
                                            unweighted = rmst_ij(f3, tau))
}

# ---------------------------------------------------------------- log-rank
sd1 <- survdiff(Surv(duration, event) ~ treat, data = d)
d$band <- cut(d$prior, c(-Inf, 0, 2, Inf), labels = c("none", "1-2", "3+"))
sd3 <- survdiff(Surv(duration, event) ~ band, data = d)
logrank <- list(
  two = list(chisq = unname(sd1$chisq), df = length(sd1$n) - 1,
             p = pchisq(sd1$chisq, length(sd1$n) - 1, lower.tail = FALSE),
             obs = unname(sd1$obs), exp = unname(sd1$exp)),
  three = list(chisq = unname(sd3$chisq), df = length(sd3$n) - 1,
               p = pchisq(sd3$chisq, length(sd3$n) - 1, lower.tail = FALSE),
               obs = unname(sd3$obs), exp = unname(sd3$exp))
)

# ---------------------------------------------------------------- Cox
cox_out <- function(fit) {
  zph <- cox.zph(fit)
  list(coef = unname(coef(fit)), se = unname(sqrt(diag(fit$var))),
       naive_se = if (is.null(fit$naive.var)) unname(sqrt(diag(fit$var))) else unname(sqrt(diag(fit$naive.var))),
       robust = !is.null(fit$naive.var), loglik = fit$loglik, names = names(coef(fit)),
       zph_chisq = unname(zph$table[, "chisq"]), zph_df = unname(zph$table[, "df"]),
       zph_p = unname(zph$table[, "p"]), zph_names = rownames(zph$table),
       zph_time = unname(zph$time), zph_x = unname(zph$x), zph_y = unname(zph$y))
}
f <- Surv(duration, event) ~ treat + age + male + prior
cox <- list(
  efron = cox_out(coxph(f, data = d, ties = "efron")),
  breslow = cox_out(coxph(f, data = d, ties = "breslow")),
  efron_cluster = cox_out(coxph(f, data = d, ties = "efron", cluster = subclass)),
  breslow_cluster = cox_out(coxph(f, data = d, ties = "breslow", cluster = subclass)),
  efron_weighted = cox_out(coxph(f, data = d, ties = "efron", weights = weight)),
  breslow_weighted = cox_out(coxph(f, data = d, ties = "breslow", weights = weight)),
  efron_weighted_cluster = cox_out(coxph(f, data = d, ties = "efron", weights = weight, cluster = subclass)),
  efron_robust_nocluster = cox_out(coxph(f, data = d, ties = "efron", robust = TRUE)),
  treat_only_weighted_cluster = cox_out(coxph(Surv(duration, event) ~ treat, data = d,
                                              weights = weight, cluster = subclass))
)

# ---------------------------------------------------------------- lung (medians reached)
lung2 <- data.frame(time = survival::lung$time, event = as.integer(survival::lung$status == 2),
                    sex = survival::lung$sex, age = survival::lung$age)
write.csv(lung2, file.path(out_dir, "lung.csv"), row.names = FALSE)
lfit <- survfit(Surv(time, event) ~ sex, data = lung2)
lung_out <- list(km = list(curve = km_table(lfit), median = median_table(lfit),
                           rmean500 = rmean_table(lfit, 500)),
                 logrank = unname(survdiff(Surv(time, event) ~ sex, data = lung2)$chisq),
                 cox = cox_out(coxph(Surv(time, event) ~ sex + age, data = lung2)))

ref <- list(
  r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
  n = n, at_times = at_times, km = km, logrank = logrank, cox = cox, lung = lung_out,
  rmst_robust = rmst_robust
)
write_json(ref, file.path(out_dir, "survival_reference.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
cat("wrote", file.path(out_dir, "survival_reference.json"), "\n")
