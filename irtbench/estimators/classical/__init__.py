"""Numerical helpers shared by the classical estimators (jml-newton, cml, mml-em): the data as
score groups or masks on the device (:mod:`.design`) and Newton's method for skills and blocks
of separable parameters (:mod:`.newton`)."""
