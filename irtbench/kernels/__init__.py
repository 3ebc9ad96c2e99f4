"""Fast paths of the Adam estimators, kept apart from the estimators and the models so that each
can change without the other: fused epoch kernels (:mod:`irtbench.kernels.fused_epoch`: one
pass over the int8 codes gives an epoch's loss and every gradient) and loop drivers
(:mod:`irtbench.kernels.graph_loop`: the epochs captured as a CUDA graph, no launch per
kernel). An estimator asks :func:`irtbench.kernels.fused_epoch.supports` whether a model and a
layout have a fused kernel, and falls back on its generic path where not.
"""
