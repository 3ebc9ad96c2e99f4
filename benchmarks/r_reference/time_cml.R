# Wall time of R's conditional-ML Rasch fits, for the comparison in irtbench's README.
#
# Usage: Rscript time_cml.R INPUT.csv [REPEATS]
#   INPUT.csv: wide 0/1 response matrix (e.g. written by `python time_cml.py`).
# Prints the median seconds of psychotools::raschmodel() and eRm::RM() over REPEATS runs
# (default 3), and the largest difference between their centred difficulties.
suppressPackageStartupMessages({library(eRm); library(psychotools)})
args <- commandArgs(trailingOnly = TRUE)
x <- as.matrix(read.csv(args[1], check.names = FALSE))
repeats <- if (length(args) > 1) as.integer(args[2]) else 3
time_of <- function(f) median(replicate(repeats, system.time(f())[["elapsed"]]))
pt_seconds <- time_of(function() raschmodel(x))
erm_seconds <- time_of(function() RM(x, sum0 = TRUE))
b_pt <- as.numeric(itempar(raschmodel(x)))
b_erm <- -RM(x, sum0 = TRUE)$betapar
cat(sprintf("%s %d x %d: psychotools::raschmodel %.3f s, eRm::RM %.3f s (median of %d); max |diff| %.2g\n",
            basename(args[1]), nrow(x), ncol(x), pt_seconds, erm_seconds, repeats,
            max(abs((b_pt - mean(b_pt)) - (b_erm - mean(b_erm))))))
cat(sprintf("R %s, psychotools %s, eRm %s\n", getRversion(), packageVersion("psychotools"),
            packageVersion("eRm")))
