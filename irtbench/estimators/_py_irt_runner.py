"""The child side of the ``py-irt`` peer (:mod:`irtbench.estimators.py_irt`): a standalone
script run by the interpreter of py-irt's own virtual environment, which cannot hold irtbench
(py-irt pins pandas < 3). It imports only the standard library, numpy, torch, pyro and py_irt,
never irtbench.

    python -I _py_irt_runner.py IN.npz OUT.npz SPAWNED

``IN.npz`` holds the observed triples (``subjects``, ``items``, ``responses``), the counts
``n_subjects`` and ``n_items``, py-irt's settings (``model_type``, ``epochs``, ``lr``,
``lr_decay``, ``priors``; ``dims``, 0 for none: ``multidim_2pl``'s D), ``seed`` and
``threads``; ``SPAWNED`` is the parent's
``CLOCK_MONOTONIC`` just before it started this process. The script builds a
``py_irt.dataset.Dataset`` straight from the index lists, trains
``py_irt.training.IrtModelTrainer`` on the CPU and writes ``OUT.npz``: py-irt's final export
(``last_params``, what its CLI saves as ``parameters.json``: ``ability``, ``diff``, ``disc``;
``(n, D)``, ``(J, D)`` and ``(J, D)`` for ``multidim_2pl``),
the loss of every epoch, and its own clocks: ``startup_seconds`` (interpreter start and
imports, from ``spawned``), ``setup_seconds`` (the dataset and the trainer built) and
``train_seconds`` (the ``train`` call alone).
"""

import sys
import time
from pathlib import Path

# run as a script, its own folder (irtbench/estimators, which holds py_irt.py) comes first on
# sys.path and would shadow the py_irt package; -I leaves it out on Python >= 3.11 only
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]


def monotonic() -> float:
    """The system-wide monotonic clock, comparable with the parent's."""
    return time.clock_gettime(time.CLOCK_MONOTONIC)


def main(source: str, target: str, spawned: str) -> None:
    import numpy as np

    settings = np.load(source)
    threads = int(settings["threads"])
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(threads)
    except RuntimeError:  # only possible before any inter-op work
        pass
    import py_irt
    import pyro
    from ordered_set import OrderedSet  # py-irt's own dependency, as in its Dataset
    from py_irt.config import IrtConfig
    from py_irt.dataset import Dataset
    from py_irt.training import IrtModelTrainer
    from pyro.infer import SVI

    imported = monotonic()
    startup_seconds = imported - float(spawned)

    losses = []
    step = SVI.step

    def recorded_step(self, *args, **kwargs):  # the loss py-irt's loop gets back, kept
        loss = step(self, *args, **kwargs)
        losses.append(loss)
        return loss

    SVI.step = recorded_step
    pyro.set_rng_seed(int(settings["seed"]))

    n_subjects, n_items = int(settings["n_subjects"]), int(settings["n_items"])
    item_ids = [str(j) for j in range(n_items)]
    subject_ids = [str(i) for i in range(n_subjects)]
    n_observed = len(settings["responses"])
    dataset = Dataset(
        item_ids=OrderedSet(item_ids),
        subject_ids=OrderedSet(subject_ids),
        item_id_to_ix={name: j for j, name in enumerate(item_ids)},
        ix_to_item_id=dict(enumerate(item_ids)),
        subject_id_to_ix={name: i for i, name in enumerate(subject_ids)},
        ix_to_subject_id=dict(enumerate(subject_ids)),
        observation_subjects=settings["subjects"].tolist(),
        observation_items=settings["items"].tolist(),
        observations=settings["responses"].tolist(),
        training_example=[True] * n_observed,
    )
    dims = int(settings["dims"]) if "dims" in settings.files else 0
    config = IrtConfig(model_type=str(settings["model_type"]), epochs=int(settings["epochs"]),
                       lr=float(settings["lr"]), lr_decay=float(settings["lr_decay"]),
                       priors=str(settings["priors"]), seed=int(settings["seed"]),
                       dims=dims or None)
    trainer = IrtModelTrainer(data_path=None, config=config, dataset=dataset, verbose=False)
    trained = monotonic()
    setup_seconds = trained - imported
    trainer.train(device="cpu")
    train_seconds = monotonic() - trained

    params = trainer.last_params
    np.savez(
        target,
        ability=np.asarray(params["ability"], dtype=np.float64),
        diff=np.asarray(params["diff"], dtype=np.float64),
        disc=np.asarray(params["disc"], dtype=np.float64),
        losses=np.asarray(losses, dtype=np.float64),
        startup_seconds=startup_seconds,
        setup_seconds=setup_seconds,
        train_seconds=train_seconds,
        threads=torch.get_num_threads(),
        py_irt_version=getattr(py_irt, "__version__", "") or _version("py-irt"),
        torch_version=torch.__version__,
        pyro_version=pyro.__version__,
    )


def _version(distribution: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(distribution)
    except PackageNotFoundError:
        return ""


if __name__ == "__main__":
    main(*sys.argv[1:4])
