"""Numerical helpers shared by the classical estimators (jml-newton, cml, mml-em): the data as
score groups or masks on the device (:mod:`.design`), Newton's method for skills and blocks
of separable parameters (:mod:`.newton`), and mml-em's EM kernels: the 2PL's (:mod:`.em2pl`),
the 3PL's and 4PL's (:mod:`.em3pl`) and their SQUAREM acceleration and step halving
(:mod:`.acceleration`)."""
