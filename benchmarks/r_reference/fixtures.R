# Reference Rasch estimates from R's own tools, stored as test fixtures for irtbench.
#
# Usage: Rscript fixtures.R INPUT.csv OUTPUT.csv
#   INPUT.csv: wide 0/1 response matrix (header = question names, no missing values).
#   OUTPUT.csv: one row per question with the difficulties (centred to mean zero) of
#     eRm::RM (conditional ML), psychotools::raschmodel (conditional ML) and
#     lme4::glmer(resp ~ 0 + item + (1 | id), binomial, nAGQ = 25) (marginal ML, normal skills),
#     plus, repeated in every row, lme4's skill SD and max |gradient|.
#
# Packages: Debian's r-base-core r-cran-erm r-cran-psychotools r-cran-lme4.
# lme4's default Laplace fit (nAGQ = 1) warns of non-convergence on VerbAgg; with a single
# random effect, adaptive Gauss-Hermite quadrature (nAGQ = 25) is valid and converges.
suppressPackageStartupMessages({library(eRm); library(psychotools); library(lme4)})
args <- commandArgs(trailingOnly = TRUE)
x <- as.matrix(read.csv(args[1], check.names = FALSE))
storage.mode(x) <- "integer"
centre <- function(b) b - mean(b)

erm <- RM(x, sum0 = TRUE)
erm_difficulty <- centre(-erm$betapar)          # eRm reports easiness parameters


pt <- raschmodel(x)
pt_difficulty <- centre(as.numeric(itempar(pt)))  # sum-zero item difficulties

long <- data.frame(id = factor(rep(seq_len(nrow(x)), ncol(x))),
                   item = factor(rep(colnames(x), each = nrow(x)), levels = colnames(x)),
                   resp = as.vector(x))
mm <- glmer(resp ~ 0 + item + (1 | id), data = long, family = binomial, nAGQ = 25,
            control = glmerControl(optimizer = "bobyqa", optCtrl = list(maxfun = 1e5)))
lme4_difficulty <- centre(-unname(fixef(mm)))   # item effects are easiness
gradient <- mm@optinfo$derivs$gradient
out <- data.frame(question = colnames(x),
                  erm_cml = erm_difficulty,
                  psychotools_cml = pt_difficulty,
                  lme4_mml = lme4_difficulty,
                  lme4_sigma = as.numeric(VarCorr(mm)$id)^0.5,
                  lme4_max_abs_gradient = if (is.null(gradient)) NA else max(abs(gradient)))
write.csv(out, args[2], row.names = FALSE)
cat(sprintf("%s: %d x %d, lme4 sigma %.4f, max |gradient| %.2g\n", args[1], nrow(x), ncol(x),
            out$lme4_sigma[1], out$lme4_max_abs_gradient[1]))
