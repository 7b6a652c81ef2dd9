# Reference outputs for issue 13 (competing risks, Nelson-Aalen, Cox extensions, log-rank, KM intervals,
# plot.cox.zph smooth), made with R survival 3.5.x, cmprsk and carData on PUBLIC data shipped with R:
#   mgus2.csv      survival::mgus2, time to progression (PCM, event 1) with death first as competing (event 2)
#   veteran.csv    survival::veteran (celltype is a 4-level factor)
#   rossi.csv      carData::Rossi (recidivism after release from prison, weeks to arrest)
#   lung_full.csv  survival::lung with its missing values (ph.ecog, meal.cal)
#   vet_split.csv  survival::veteran split at days 90 and 180 (counting-process (tstart, time] rows)
#   survival_reference2.json   every R result tests/test_survival.py compares against
# Run from anywhere:  Rscript tests/results/survival/make_survival_reference2.R
suppressPackageStartupMessages({
  library(survival); library(cmprsk); library(jsonlite); library(splines)
})
args <- commandArgs(trailingOnly = FALSE)
file_arg <- sub("^--file=", "", args[grep("^--file=", args)])
out_dir <- if (length(file_arg)) dirname(normalizePath(file_arg)) else "tests/results/survival"
ref <- list(r_version = R.version.string, survival_version = as.character(packageVersion("survival")),
            cmprsk_version = as.character(packageVersion("cmprsk")))

strata_of <- function(fit, n) {
  if (is.null(fit$strata)) rep("all", n) else rep(sub("^[^=]+=", "", names(fit$strata)), fit$strata)
}

# ------------------------------------------------------------------ competing risks (mgus2)
m <- survival::mgus2
m$etime <- ifelse(m$pstat == 0, m$futime, m$ptime)
m$event <- ifelse(m$pstat == 0, 2 * m$death, 1)
m$w <- 0.5 + (m$id %% 7) / 4           # non-integer case weights (deterministic)
m$cl <- m$id %/% 3                      # clusters of about three people
m <- m[, c("id", "sex", "age", "hgb", "etime", "event", "w", "cl")]
write.csv(m, file.path(out_dir, "mgus2.csv"), row.names = FALSE)
at_times <- c(0, 12, 60, 120, 240, 400)
aj_out <- function(fit) {
  k <- length(fit$time)
  s <- summary(fit, times = at_times, extend = TRUE)
  sg <- if (is.null(s$strata)) rep("all", length(s$time)) else sub("^[^=]+=", "", as.character(s$strata))
  list(group = strata_of(fit, k), time = fit$time, n_risk = fit$n.risk[, 1],
       cif1 = fit$pstate[, 2], cif2 = fit$pstate[, 3], se1 = fit$std.err[, 2], se2 = fit$std.err[, 3],
       lower1 = fit$lower[, 2], upper1 = fit$upper[, 2], lower2 = fit$lower[, 3], upper2 = fit$upper[, 3],
       at = list(group = sg, time = s$time, n_risk = s$n.risk[, 1], cif1 = s$pstate[, 2],
                 lower1 = s$lower[, 2], upper1 = s$upper[, 2], cif2 = s$pstate[, 3]))
}
# R 3.5.3 ignores cluster= in a multi-state survfit without id= (std.err is per row, as without it); the
# clustered SE the library gives is R's own per-row influence (influence = TRUE) summed within cluster.
aj_cluster_se <- function(fit, cl, w = rep(1, nrow(m))) {
  # influence.pstate is per unit of case weight: std.err = sqrt(sum((w * influence)^2)) without clusters
  infl <- fit$influence.pstate
  if (!is.list(infl)) infl <- list(infl)
  grp <- if (is.null(fit$strata)) rep(1, nrow(m)) else as.integer(factor(m$sex))
  out1 <- out2 <- NULL
  for (i in seq_along(infl)) {
    a <- rowsum(w[grp == i] * infl[[i]][, , 2, drop = TRUE], cl[grp == i])
    b <- rowsum(w[grp == i] * infl[[i]][, , 3, drop = TRUE], cl[grp == i])
    # column 1 of influence.pstate is the starting time (before the first event time)
    out1 <- c(out1, sqrt(colSums(a^2))[-1]); out2 <- c(out2, sqrt(colSums(b^2))[-1])
  }
  list(se1 = unname(out1), se2 = unname(out2))
}
ref$aj_cluster_se <- list(
  cluster = aj_cluster_se(survfit(Surv(etime, factor(event)) ~ sex, data = m, influence = TRUE), m$cl),
  weighted_cluster = aj_cluster_se(survfit(Surv(etime, factor(event)) ~ sex, data = m, weights = w,
                                           influence = TRUE), m$cl, m$w))
ref$aj <- list(
  all = aj_out(survfit(Surv(etime, factor(event)) ~ 1, data = m)),
  sex = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m)),
  weighted = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m, weights = w)),
  cluster = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m, cluster = cl)),
  weighted_cluster = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m, weights = w, cluster = cl)),
  loglog = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m, conf.type = "log-log")),
  plain = aj_out(survfit(Surv(etime, factor(event)) ~ sex, data = m, conf.type = "plain"))
)
ci <- cmprsk::cuminc(m$etime, m$event, m$sex)
ref$gray <- list(stat = unname(ci$Tests[, "stat"]), p = unname(ci$Tests[, "pv"]), df = unname(ci$Tests[, "df"]))
# Fine-Gray: survival::finegray + weighted coxph (the survival package's own route) and cmprsk::crr
m$fevent <- factor(m$event, 0:2, c("censor", "pcm", "death"))
fg <- finegray(Surv(etime, fevent) ~ ., data = m[, c("etime", "fevent", "age", "sex")], etype = "pcm")
fgfit <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex, weights = fgwt, data = fg)
crrfit <- crr(m$etime, m$event, cbind(age = m$age, male = as.numeric(m$sex == "M")), failcode = 1, cencode = 0)
ref$finegray <- list(coef = unname(coef(fgfit)), se = unname(sqrt(diag(fgfit$var))), names = names(coef(fgfit)),
                     robust = !is.null(fgfit$naive.var), loglik = fgfit$loglik, n_rows = nrow(fg),
                     crr_coef = unname(crrfit$coef), crr_se = unname(sqrt(diag(crrfit$var))))
fg2 <- finegray(Surv(etime, fevent) ~ ., data = m[, c("etime", "fevent", "age", "sex")], etype = "death")
fgfit2 <- coxph(Surv(fgstart, fgstop, fgstatus) ~ age + sex, weights = fgwt, data = fg2)
ref$finegray_death <- list(coef = unname(coef(fgfit2)), se = unname(sqrt(diag(fgfit2$var))))

# ------------------------------------------------------------------ Nelson-Aalen and KM intervals (lung)
lung <- survival::lung
lung$event <- as.integer(lung$status == 2)
write.csv(lung[, c("inst", "time", "event", "age", "sex", "ph.ecog", "ph.karno", "meal.cal", "wt.loss")],
          file.path(out_dir, "lung_full.csv"), row.names = FALSE)
na <- survfit(Surv(time, event) ~ sex, data = lung)
sna <- summary(na, times = c(0, 100, 365, 500, 1200), extend = TRUE)
ref$nelson_aalen <- list(group = strata_of(na, length(na$time)), time = na$time, cumhaz = na$cumhaz,
                         se = na$std.chaz,
                         at = list(group = sub("^[^=]+=", "", as.character(sna$strata)), time = sna$time,
                                   cumhaz = sna$cumhaz, se = sna$std.chaz))
ref$km_conf <- list()
for (ct in c("log", "log-log", "plain")) {
  f <- survfit(Surv(time, event) ~ sex, data = lung, conf.type = ct)
  tab <- summary(f)$table
  ref$km_conf[[ct]] <- list(surv = f$surv, lower = f$lower, upper = f$upper,
                            median_lower = unname(tab[, "0.95LCL"]), median_upper = unname(tab[, "0.95UCL"]))
}

# ------------------------------------------------------------------ log-rank: strata and rho (veteran)
vet <- survival::veteran
vet$id <- seq_len(nrow(vet))
write.csv(vet, file.path(out_dir, "veteran.csv"), row.names = FALSE)
lr <- function(sd) list(chisq = unname(sd$chisq), df = length(sd$n) - 1, obs = unname(rowSums(as.matrix(sd$obs))),
                        exp = unname(rowSums(as.matrix(sd$exp))))
ref$logrank <- list(
  rho0 = lr(survdiff(Surv(time, status) ~ trt, data = vet)),
  rho1 = lr(survdiff(Surv(time, status) ~ trt, data = vet, rho = 1)),
  rho05_cell = lr(survdiff(Surv(time, status) ~ celltype, data = vet, rho = 0.5)),
  strata = lr(survdiff(Surv(time, status) ~ trt + strata(celltype), data = vet)),
  strata_rho1 = lr(survdiff(Surv(time, status) ~ trt + strata(celltype), data = vet, rho = 1))
)

# ------------------------------------------------------------------ Cox extensions
cox_out <- function(fit, zph = TRUE) {
  out <- list(coef = unname(coef(fit)), se = unname(sqrt(diag(fit$var))), names = names(coef(fit)),
              naive_se = if (is.null(fit$naive.var)) unname(sqrt(diag(fit$var))) else unname(sqrt(diag(fit$naive.var))),
              loglik = fit$loglik, n = fit$n, nevent = fit$nevent,
              n_omitted = if (is.null(fit$na.action)) 0 else length(fit$na.action),
              concordance = unname(fit$concordance["concordance"]))
  if (zph) {
    z <- cox.zph(fit)
    out$zph_chisq <- unname(z$table[, "chisq"]); out$zph_p <- unname(z$table[, "p"])
    out$zph_names <- rownames(z$table)
  }
  out
}
rossi <- carData::Rossi[, c("week", "arrest", "fin", "age", "race", "wexp", "mar", "paro", "prio")]
write.csv(rossi, file.path(out_dir, "rossi.csv"), row.names = FALSE)
frossi <- coxph(Surv(week, arrest) ~ fin + age + race + wexp + mar + paro + prio, data = rossi)
ref$cox <- list(
  veteran_factor = cox_out(coxph(Surv(time, status) ~ trt + celltype + karno, data = vet)),
  rossi = cox_out(frossi),
  rossi_strata = cox_out(coxph(Surv(week, arrest) ~ fin + age + prio + strata(wexp), data = rossi)),
  rossi_strata2 = cox_out(coxph(Surv(week, arrest) ~ fin + age + prio + strata(wexp, mar), data = rossi)),
  rossi_exact = cox_out(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, ties = "exact"), zph = FALSE),
  rossi_breslow = cox_out(coxph(Surv(week, arrest) ~ fin + age + prio, data = rossi, ties = "breslow")),
  lung_na = cox_out(coxph(Surv(time, event) ~ age + sex + ph.ecog + meal.cal, data = lung))
)
vs <- survSplit(Surv(time, status) ~ ., data = vet, cut = c(90, 180), episode = "tgroup")
vs$karno1 <- vs$karno * (vs$tgroup == 1); vs$karno2 <- vs$karno * (vs$tgroup == 2)
vs$karno3 <- vs$karno * (vs$tgroup == 3)
write.csv(vs[, c("id", "tstart", "time", "status", "trt", "karno1", "karno2", "karno3", "celltype")],
          file.path(out_dir, "vet_split.csv"), row.names = FALSE)
ref$cox$counting <- cox_out(coxph(Surv(tstart, time, status) ~ trt + karno1 + karno2 + karno3, data = vs))
ref$cox$counting_cluster <- cox_out(coxph(Surv(tstart, time, status) ~ trt + karno1 + karno2 + karno3,
                                          data = vs, cluster = id), zph = FALSE)
# monotone likelihood: every x = 1 fails before every x = 0
mono <- data.frame(time = 1:10, status = 1, x = rep(1:0, each = 5))
w <- NULL
withCallingHandlers(mfit <- coxph(Surv(time, status) ~ x, data = mono),
                    warning = function(cnd) { w <<- conditionMessage(cnd); invokeRestart("muffleWarning") })
ref$monotone <- list(warning = w, coef = unname(coef(mfit)))

# ------------------------------------------------------------------ plot.cox.zph smooth (Rossi)
z <- cox.zph(frossi)
nsmo <- 40; df <- 4
xx <- z$x
pred.x <- seq(from = min(xx), to = max(xx), length = nsmo)
lmat <- ns(c(pred.x, xx), df = df, intercept = TRUE)
pmat <- lmat[1:nsmo, ]; xmat <- lmat[-(1:nsmo), ]
qmat <- qr(xmat)
bk <- backsolve(qmat$qr[1:df, 1:df], diag(df)); xtx <- bk %*% t(bk)
seval <- ((pmat %*% xtx) * pmat) %*% rep(1, df)
smooth <- list()
for (v in colnames(z$y)) {
  yhat <- pmat %*% qr.coef(qmat, z$y[, v])
  se2 <- 2 * sqrt(z$var[match(v, colnames(z$y)), match(v, colnames(z$y))] * seval)
  smooth[[v]] <- list(yhat = drop(yhat), upper = drop(yhat + se2), lower = drop(yhat - se2))
}
ref$zph_plot <- list(x = pred.x, time = z$time, smooth = smooth, names = colnames(z$y))

write_json(ref, file.path(out_dir, "survival_reference2.json"), digits = NA, auto_unbox = TRUE,
           pretty = TRUE, na = "null")
cat("wrote", file.path(out_dir, "survival_reference2.json"), "\n")
