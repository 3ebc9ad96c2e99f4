r"""``py-irt``: py-irt's variational 2PL (``py_irt.training.IrtModelTrainer``), as a peer run in
an interpreter of its own.

py-irt (0.7.1) pins ``pandas < 3`` and cannot be installed beside irtbench (pandas 3), so it
lives in a virtual environment of its own, made by (``make py-irt-venv``)::

    python3 -m venv .venv-pyirt && .venv-pyirt/bin/pip install torch==2.13.0 py-irt==0.7.1

Each fit writes the observed triples (student, question, response) of the kept questions to a
temporary ``.npz``, runs :mod:`irtbench.estimators._py_irt_runner` (numpy, torch, pyro and
py_irt only) with that interpreter, and reads the estimates back. The interpreter: option
``python``; else the environment variable ``IRTBENCH_PY_IRT_PYTHON``; else
``.venv-pyirt/bin/python`` in the repository root, then in the current directory. Without it
(or without py_irt in it) the estimator is unavailable, and says how to make it.

**What py-irt fits** (``model_type="2pl"``, ``py_irt/models/two_param_logistic.py``): the
suite's 2PL, :math:`P(Y_{ij} = 1) = \sigma(a_j(\theta_i - b_j))`, in a Bayesian model whose
priors (py-irt's ``"vague"``, its default) are :math:`\theta_i \sim N(0, 1)` (the suite's scale),
:math:`b_j \sim N(0, 0.1^2)` and :math:`a_j \sim \mathrm{LogNormal}(0, 0.1^2)`: despite the name,
priors that hold every difficulty within about +/-0.2 of 0 and every discrimination within
about 20% of 1 (two prior SDs), against which 300 responses an item pull only so far. Its
guide is mean field, :math:`\theta_i \sim N(\mu_i, s_i^2)`, :math:`b_j \sim N(m_j, t_j^2)`
(:math:`t_j` starts at 10), :math:`a_j \sim \mathrm{LogNormal}(\nu_j, u_j^2)` (:math:`u_j` starts
at 1e-6), fitted by maximising a one-sample ELBO (``Trace_ELBO``) with Adam (``lr``, decayed by
``lr_decay`` per epoch) on every response at once, for ``epochs`` epochs with no convergence
test. The estimates are py-irt's final export (``last_params``, what its CLI saves as
``parameters.json``): skills :math:`\mu_i` and difficulties :math:`m_j`, the variational means,
and discriminations :math:`e^{\nu_j}`, the variational *median* of :math:`a_j`. They are
posterior summaries under those priors, **not maximum-likelihood estimates**: on
``simulate(300, 40, model="2pl")`` (difficulties of SD 1) the difficulties come out at about a
third of their true scale and the discriminations' spread at a third of theirs (measured,
README). The suite's affine alignment of the 2PL undoes a common stretch, not the shrinkage of
each item toward the prior, which shows in the recovery and in the distance to the marginal ML
estimate. Option ``priors="hierarchical"`` selects py-irt's other priors, learned locations
and scales (:math:`b_j \sim N(\mu_b, 1/u_b)` with :math:`\mu_b \sim N(0, 10^{12})`,
:math:`u_b \sim \mathrm{Gamma}(1, 1)`, the same for the skills and the log-discriminations),
under which the skills' N(0, 1) no longer fixes the scale (the recovery's affine alignment
takes it out).

**The multidimensional 2PL** (``model="m2pl"``, option ``dims`` D, default 2): py-irt's
``multidim_2pl`` (``py_irt/models/multidim_2pl.py``, the model tinyBenchmarks fitted with D = 5
and 10), :math:`P(Y_{ij} = 1) = \sigma(\sum_k \gamma_{jk}(\theta_{ik} - b_{jk}))`, a difficulty
per item *and dimension* and positive discriminations :math:`\gamma_{jk}` (lognormal), always
under its hierarchical priors (the model has no others: option ``priors`` does not change it):
:math:`\theta_{ik} \sim N(\mu_{\theta k}, 1/u_{\theta k})`,
:math:`b_{jk} \sim N(\mu_{bk}, 1/u_{bk})`, :math:`\log\gamma_{jk} \sim N(\mu_{\gamma k},
1/u_{\gamma k})` with vague normal means and Gamma(1, 1) precisions, a mean-field guide started
at 0 (its one-sample ELBO's noise breaks the symmetry). That is the suite's M2PL with loadings
:math:`a_j = \gamma_j` and intercept :math:`d_j = -\sum_k \gamma_{jk}b_{jk}`; the estimates
reported are py-irt's export, skills :math:`\mu_i` ``(n, D)`` (variational means), loadings
:math:`e^{\nu_j}` (variational medians), and the intercept computed from those and the
difficulties' means :math:`m_{jk}` (a plug-in, not the intercept's posterior mean), with MDISC
:math:`\|a_j\|` and MDIFF :math:`-d_j/\|a_j\|` (:func:`irtbench.models.m2pl.derived_items`).
Its scale and rotation are free (learned prior locations and scales): the recovery's whitening
and rotation (:mod:`irtbench.models.m2pl`) take them out.

**The Rasch model is not offered.** py-irt's ``"1pl"`` is :math:`\sigma(\theta_i - b_j)` with
:math:`\theta_i \sim N(0, 1)`: the skills' SD fixed at 1, the model that the suite declines for
mirt's "1PL" and girth's ``rasch_mml`` (on skills of another spread it shrinks or stretches the
difficulties), and with no common slope to map it onto the Rasch model with an estimated SD.

**SEs**: none (py-irt exports no uncertainty). Questions everybody got right or wrong are left
out of py-irt's fit and reported at -/+inf (:mod:`irtbench.estimators._peers`); every student
keeps a finite posterior mean.

**Threads and clock.** The child runs on the caller's cores (it inherits the affinity that the
thread policy pinned, and irtbench's OpenMP wait policy through the environment) with
``torch.set_num_threads`` set to the caller's ``torch.get_num_threads()``. The suite's clock
(``Fit.seconds``) times everything: the temporary files, the interpreter's start, its imports
of torch, pyro and py_irt, the fit, the results read back and the interpreter's exit.
``diagnostics`` split it: ``py_irt_process_seconds`` (the child, start to exit, measured by
the caller), and inside it ``py_irt_startup_seconds`` (from the start of the child to its
imports done, about 2.8 s here), ``py_irt_setup_seconds`` (py-irt's dataset and trainer built
from the triples) and ``py_irt_train_seconds`` (py-irt's ``train`` call alone: the tensors
made from its lists, every epoch, the exports); the rest of the process is reading and writing
the ``.npz`` files and the interpreter's exit (about 0.6 s after torch and pyro). ``losses`` are
the one-sample negative ELBO of every epoch, as py-irt's loop gets them (recorded by wrapping
pyro's ``SVI.step``); ``n_iter`` is ``epochs``.

Options (defaults: py-irt's ``IrtConfig``): ``epochs`` (2000), ``lr`` (0.1), ``lr_decay``
(0.9999), ``priors`` (``"vague"``), ``seed`` (0: pyro's RNG, for the ELBO's draws),
``dims`` (2: the M2PL's D; only with ``model="m2pl"``) and ``python`` (None: found as above).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from irtbench.estimators import options as option
from irtbench.estimators._child import caller_threads, importable_by, run_runner
from irtbench.estimators._peers import PeerEstimator, PeerFit
from irtbench.estimators.base import BackendNotInstalled, Option, register
from irtbench.models import get_model
from irtbench.models.m2pl import derived_items

#: the command that makes py-irt's own environment (also ``make py-irt-venv``)
INSTALL_COMMAND = ("python3 -m venv .venv-pyirt && "
                   ".venv-pyirt/bin/pip install torch==2.13.0 py-irt==0.7.1")
#: the environment variable naming py-irt's interpreter
PYTHON_VARIABLE = "IRTBENCH_PY_IRT_PYTHON"
#: py-irt's model of each of the suite's
PY_IRT_MODELS = {"2pl": "2pl", "m2pl": "multidim_2pl"}
RUNNER = Path(__file__).with_name("_py_irt_runner.py")
REPOSITORY = Path(__file__).resolve().parents[2]
PRIORS = ("vague", "hierarchical")


def interpreter(python: Option = None) -> Path:
    """py-irt's interpreter: ``python`` if given, else ``$IRTBENCH_PY_IRT_PYTHON``, else
    ``.venv-pyirt/bin/python`` in the repository root if it exists, else in the current
    directory (which may not exist either: :func:`problem` says so)."""
    if python:
        return Path(str(python))
    if os.environ.get(PYTHON_VARIABLE):
        return Path(os.environ[PYTHON_VARIABLE])
    local = Path(".venv-pyirt", "bin", "python")
    return REPOSITORY / local if (REPOSITORY / local).exists() else Path.cwd() / local


def problem(python: Path) -> str | None:
    """Why ``python`` cannot run py-irt (None when it can): absent, or without py_irt."""
    found = importable_by(python, "py_irt")
    if found is not None and not python.exists():
        return (f"py-irt's interpreter {python} (not found; another can be named by "
                f"${PYTHON_VARIABLE} or option python)")
    return found and found.replace("the interpreter", "py-irt's interpreter")


@register
class PyIrt(PeerEstimator):
    """py-irt's variational 2PL in its own interpreter; see the module docstring for what it
    fits and how its clock is split."""

    name = "py-irt"
    colour = 11
    objective = "posterior"
    gives_standard_errors = False
    shortfalls = {
        "m2pl": "py-irt's multidim_2pl skills correlate 0.32-0.35 with the truth in the "
                "battery's 400 x 20 (100 to 3000 epochs) against a floor of 0.64 from the "
                "test's reliability, which numpyro-vi's M2PL passes (0.75): its mean-field "
                "guide under hierarchical, per-dimension difficulty priors",
    }
    test_options = {"epochs": 100}
    backend = "py-irt"
    extra = None
    models = tuple(PY_IRT_MODELS)
    summary = ("peer: py-irt's variational Bayes 2PL and multidimensional 2PL (pyro SVI, its "
               "priors; own venv, subprocess)")
    spec = {
        "epochs": option.positive_int(2000, "SVI epochs (py-irt's default)"),
        "lr": option.positive(0.1, "Adam's learning rate (py-irt's)"),
        "lr_decay": option.Spec(0.9999, "the learning rate's decay per epoch (py-irt's)",
                                lambda v: isinstance(v, (int, float)) and not isinstance(v, bool)
                                and 0 < v <= 1, "a number in (0, 1]"),
        "priors": option.choice("vague", "py-irt's priors: 'vague' (its default) or "
                                "'hierarchical'", *PRIORS),
        "seed": option.SEED,
        **option.model_options("dims"),
        "python": option.unchecked(None, "py-irt's interpreter (None: $IRTBENCH_PY_IRT_PYTHON "
                                   "or .venv-pyirt/bin/python)"),
    }
    warm_up_options = {"epochs": 2}

    @classmethod
    def install_command(cls) -> str:
        return INSTALL_COMMAND

    @classmethod
    def missing_requirements(cls) -> list[str]:
        """What the default interpreter (:func:`interpreter`) lacks: itself, or py_irt."""
        found = problem(interpreter())
        return [] if found is None else [found]

    def require_backend(self) -> None:  # type: ignore[override]
        """The interpreter this fit will use (option ``python`` or the default) must run
        py_irt."""
        found = problem(interpreter(self.options.get("python")))
        if found is not None:
            raise BackendNotInstalled(f"estimator {self.name!r} needs {found}, which is not "
                                      f"installed; install it with: {INSTALL_COMMAND}")

    def estimate(self, responses: np.ndarray, options: dict) -> PeerFit:
        observed = ~np.isnan(responses)
        subjects, items = np.nonzero(observed)
        dims = get_model(options["model"]).skill_dims(options)  # None: one skill each
        payload = dict(subjects=subjects.astype(np.int64), items=items.astype(np.int64),
                       responses=responses[observed].astype(np.float32),
                       n_subjects=responses.shape[0], n_items=responses.shape[1],
                       model_type=PY_IRT_MODELS[options["model"]], dims=dims or 0,
                       epochs=int(options["epochs"]), lr=float(options["lr"]),
                       lr_decay=float(options["lr_decay"]), priors=str(options["priors"]),
                       seed=int(options["seed"]), threads=caller_threads())
        result, process_seconds = run_runner(interpreter(options["python"]), RUNNER, payload,
                                             what="py-irt")
        losses = result["losses"]
        diagnostics = {
            "py_irt_process_seconds": process_seconds,
            "py_irt_startup_seconds": float(result["startup_seconds"]),
            "py_irt_setup_seconds": float(result["setup_seconds"]),
            "py_irt_train_seconds": float(result["train_seconds"]),
            "py_irt_threads": int(result["threads"]),
            "py_irt_version": str(result["py_irt_version"]),
            "py_irt_torch_version": str(result["torch_version"]),
        }
        return READ_BACK[options["model"]](result, diagnostics)


def unidimensional(result: dict, diagnostics: dict) -> PeerFit:
    """py-irt's 2PL: abilities, difficulties and discriminations as they are."""
    losses = result["losses"]
    return PeerFit(result["ability"], None, result["diff"], None, result["disc"], None,
                   len(losses), float("nan"), diagnostics, losses=losses)


def multidimensional(result: dict, diagnostics: dict) -> PeerFit:
    r"""py-irt's ``multidim_2pl``: its (gamma, b) per dimension as loadings and intercepts
    :math:`d_j = -\sum_k \gamma_{jk} b_{jk}`."""
    losses = result["losses"]
    loadings, difficulties = result["disc"], result["diff"]
    items = derived_items(loadings, -np.sum(loadings * difficulties, axis=1))
    return PeerFit(result["ability"], None, items["difficulty"], None,
                   items["discrimination"], None, len(losses), float("nan"),
                   diagnostics, losses=losses,
                   items={"intercept": items["intercept"], "loadings": loadings})


#: how py-irt's export of each model is read back
READ_BACK = {"2pl": unidimensional, "m2pl": multidimensional}

