"""Fast paths of the Adam estimators, kept apart from the estimators and the models so that each
can change without the other, and the torch data layer they read (as do ``mml-em``'s EM
kernels): the closed form of the Rasch
objective (:mod:`irtbench.kernels.closed_form`: torch, ``torch.compile``'s fused pass, JAX),
fused epoch kernels (:mod:`irtbench.kernels.fused_epoch`: one Triton pass over the int8 codes
gives an epoch's loss and every gradient), loop drivers (:mod:`irtbench.kernels.graph_loop`:
the epochs captured as a CUDA graph, no launch per kernel) and the responses on a torch device
(:mod:`irtbench.kernels.device_responses`).

A model declares the fast paths it offers (:attr:`Model.fast_paths
<irtbench.models.base.Model.fast_paths>`, ``"closed"`` and ``"fused"``): that declaration is
the only switch. Each path checks that the model's fitted parameters are the objective it
implements (:func:`~irtbench.kernels.closed_form.check`,
:func:`~irtbench.kernels.fused_epoch.has_slope`), and a test holds every declaration to it.
"""
