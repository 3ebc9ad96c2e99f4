r"""Responses on a torch device, the one data layer of the torch fits (``torch-adam`` and
``mml-em``'s EM kernels): the layouts (float32 answers with an optional 0/1 weight, int8 codes
with -1 for missing, or sparse triples), their transfer from host memory (all questions or a
subset of them, renumbered 0..), and the pieces a pass over them walks (the whole float32
matrix, a block of int8 rows at a time decoded, or the gathered observed pairs), the dense rows
decoded a block at a time in any float dtype, and the triples as compressed sparse row
matrices."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from irtbench.responses import (
    COMPACT_ABOVE,
    MISSING,
    Responses,
    SparseResponses,
    is_sparse,
    row_blocks,
    split_observed,
    to_compact,
)

if TYPE_CHECKING:
    import torch

__all__ = ["Compressed", "DeviceResponses", "Piece", "codes_to_device", "decode", "fill_codes",
           "responses_to_device", "sparse_to_device", "stored_as"]


def stored_as(storage: str, size: int) -> str:
    """The layout ``"int8"`` or ``"float32"`` that option ``storage`` gives a dense matrix of
    ``size`` responses (``"auto"``: int8 above ``COMPACT_ABOVE``)."""
    if storage == "auto":
        return "int8" if size > COMPACT_ABOVE else "float32"
    return str(storage)


@dataclass
class DeviceResponses:
    """Responses on a torch device in one of three layouts: float32 answers (``y``, missing 0)
    with an optional 0/1 ``weight``; int8 ``codes`` (-1 = missing); or sparse triples
    (``student``, ``question`` and their answers in ``y``, of ``n_questions`` questions)."""

    n_observed: int
    y: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    student: torch.Tensor | None = None
    question: torch.Tensor | None = None
    n_students: int | None = None
    n_questions: int | None = None

    @classmethod
    def transfer(cls, responses: Responses, n_observed: int, device: torch.device,
                 storage: str, *, columns: np.ndarray | None = None,
                 dtype: torch.dtype | None = None) -> DeviceResponses:
        """Move host responses to ``device`` in the layout ``storage`` asks for
        (``"auto"``: int8 above ``COMPACT_ABOVE`` cells).

        Args:
            responses: a dense matrix (either form) or sparse triples.
            n_observed: the observed responses among those moved (of ``columns``).
            device: where to.
            storage: ``"auto"``, ``"int8"`` or ``"float32"`` (dense matrices only).
            columns: a boolean mask of the questions to move (renumbered 0..); None: all.
            dtype: of the sparse triples' answers (default float32).
        """
        import torch

        n_students = responses.shape[0]
        n_questions = responses.shape[1] if columns is None else int(columns.sum())
        if is_sparse(responses):
            student, question, y = sparse_to_device(responses, device, columns)
            return cls(n_observed, y=y.to(dtype or torch.float32), student=student,
                       question=question, n_students=n_students, n_questions=n_questions)
        if stored_as(storage, n_students * n_questions) == "int8":
            return cls(n_observed, codes=codes_to_device(responses, device, columns))
        y, weight = responses_to_device(
            responses if columns is None else np.asarray(responses)[:, columns], device)
        return cls(n_observed, y=y, weight=weight)

    @property
    def shape(self) -> tuple[int, int]:
        """``(n_students, n_questions)`` of the matrix these responses are cells of."""
        if self.student is not None:
            return int(self.n_students), int(self.n_questions)
        matrix = self.codes if self.codes is not None else self.y
        return int(matrix.shape[0]), int(matrix.shape[1])

    @property
    def complete(self) -> bool:
        """Whether every cell is observed."""
        n_students, n_questions = self.shape
        return self.n_observed == n_students * n_questions

    def pieces(self, dtype: torch.dtype) -> Iterator[Piece]:
        """The :class:`Piece` s of the data: the whole matrix, the gathered observed responses,
        or one block of int8 rows at a time (decoded to ``dtype``)."""
        if self.student is not None:
            yield Piece(None, self.y, None, self.student, self.question)
            return
        if self.codes is None:
            yield Piece(slice(None), self.y, self.weight)
            return
        for rows in row_blocks(tuple(self.codes.shape), gpu=self.codes.is_cuda):
            yield Piece(rows, *decode(self.codes[rows], dtype))

    def rows(self, rows: slice | torch.Tensor, dtype: torch.dtype) -> Piece:
        """The dense rows ``rows`` (a slice, or a tensor of row numbers gathered in its order)
        as ``dtype``: their answers (missing 0) and the 0/1 weight of the observed ones, None
        when nothing in the matrix is missing (:attr:`complete`)."""
        mask = not self.complete
        if self.codes is not None:
            return Piece(rows, *decode(self.codes[rows], dtype, observed=mask))
        weight = self.weight[rows].to(dtype) if mask and self.weight is not None else None
        return Piece(rows, self.y[rows].to(dtype), weight)

    def blocks(self, dtype: torch.dtype, elements: int | None = None) -> Iterator[Piece]:
        """:meth:`rows` a block of rows at a time (``elements`` entries each:
        :func:`~irtbench.responses.row_blocks`)."""
        n_students, n_questions = self.shape
        on_gpu = (self.codes if self.codes is not None else self.y).is_cuda
        for rows in row_blocks((n_students, n_questions), gpu=on_gpu, elements=elements):
            yield self.rows(rows, dtype)

    def compressed(self) -> Compressed:
        """Sparse triples as compressed sparse row matrices by student and by question."""
        import torch

        def csr(rows: torch.Tensor, columns: torch.Tensor, values: torch.Tensor,
                shape: tuple[int, int]) -> torch.Tensor:
            indices = torch.stack([rows, columns])
            with warnings.catch_warnings():  # torch's notes that CSR is "beta"
                warnings.simplefilter("ignore", UserWarning)
                return torch.sparse_coo_tensor(indices, values, shape,
                                               check_invariants=False).coalesce().to_sparse_csr()

        shape = self.shape
        flipped = (shape[1], shape[0])
        ones = torch.ones_like(self.y)
        student, question = self.student, self.question
        return Compressed((csr(student, question, self.y, shape),
                           csr(student, question, ones, shape)),
                          (csr(question, student, self.y, flipped),
                           csr(question, student, ones, flipped)))


class Compressed(NamedTuple):
    """Sparse triples as compressed sparse row matrices: ``by_student`` the answers :math:`Y`
    and the observed mask :math:`O` (students x questions), ``by_question`` their transposes
    :math:`Y^\top`, :math:`O^\top`. A product with any of them costs the observed
    responses."""

    by_student: tuple[torch.Tensor, torch.Tensor]
    by_question: tuple[torch.Tensor, torch.Tensor]


class Piece(NamedTuple):
    """One piece of the data: a block of dense ``rows`` (a slice or a tensor of row numbers)
    with their answers ``y`` and the 0/1 ``weight`` of the observed ones (None: all observed),
    or (``rows`` None) the observed responses gathered as pairs ``student``, ``question``."""

    rows: slice | torch.Tensor | None
    y: torch.Tensor
    weight: torch.Tensor | None
    student: torch.Tensor | None = None
    question: torch.Tensor | None = None

    def skill(self, skill: torch.Tensor) -> torch.Tensor:
        """The skills of this piece's rows, or of its pairs' students."""
        return skill[self.rows] if self.student is None else skill[self.student]

    def rasch_logits(self, skill: torch.Tensor, difficulty: torch.Tensor) -> torch.Tensor:
        r""":math:`\theta_i - b_j` of the piece (the Rasch model's fast paths)."""
        if self.student is None:
            return skill[self.rows, None] - difficulty[None, :]
        return skill[self.student] - difficulty[self.question]


def responses_to_device(responses: np.ndarray, device: torch.device
                        ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`irtbench.responses.split_observed` on ``device``: float32 answers (missing 0) and
    a float32 0/1 weight of the observed entries (None when nothing is missing)."""
    import torch

    y, weight, _ = split_observed(responses)
    weight_tensor = None if weight is None else torch.from_numpy(weight).to(device)
    return torch.from_numpy(y).to(device), weight_tensor


def codes_to_device(responses: np.ndarray, device: torch.device,
                    columns: np.ndarray | None = None) -> torch.Tensor:
    """The compact form (int8, -1 = missing) on ``device`` of the questions ``columns`` (a
    boolean mask; None: all), built a block of rows at a time (no float32 copy of the matrix
    on the host); a C-contiguous int8 matrix on the CPU, all of it kept, is used in place (no
    copy at all)."""
    import torch

    everything = columns is None or bool(columns.all())
    if (everything and device.type == "cpu" and responses.dtype == np.int8
            and responses.flags.c_contiguous):
        return torch.from_numpy(responses)  # read only: the fit never writes its data
    n_questions = responses.shape[1] if everything else int(columns.sum())
    codes = torch.empty((responses.shape[0], n_questions), dtype=torch.int8, device=device)
    return fill_codes(codes, responses, None if everything else columns)


def fill_codes(codes: torch.Tensor, responses: np.ndarray,
               columns: np.ndarray | None = None) -> torch.Tensor:
    """Write the compact form of ``responses`` (of its questions ``columns``, a boolean mask;
    None: all) into the int8 device tensor ``codes``: a whole int8 matrix in one copy,
    otherwise a block of rows at a time (no float32 copy of the matrix on the host)."""
    import torch

    if columns is None and responses.dtype == np.int8 and responses.flags.c_contiguous:
        codes.copy_(torch.from_numpy(responses))
        return codes
    for rows in row_blocks(responses.shape):
        block = np.asarray(responses[rows])
        block = to_compact(block if columns is None else block[:, columns])
        codes[rows] = torch.from_numpy(np.ascontiguousarray(block)).to(codes.device)
    return codes


def decode(codes: torch.Tensor, dtype: torch.dtype, *, observed: bool = True
           ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``(y, observed)`` of a block of compact codes: 0/1 answers (missing 0) and the 0/1 mask
    (None unless ``observed``), both as ``dtype``."""
    return (codes == 1).to(dtype), (codes != MISSING).to(dtype) if observed else None


def sparse_to_device(responses: SparseResponses, device: torch.device,
                     columns: np.ndarray | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(student, question, y)`` of sparse triples on ``device`` (long, long, float64): of the
    questions ``columns`` (a boolean mask; None: all), renumbered 0.. in their order."""
    import torch

    student, question, y = responses.student, responses.question, responses.response
    if columns is not None:
        kept = columns[question]
        student, question, y = student[kept], (np.cumsum(columns) - 1)[question[kept]], y[kept]
    return (torch.as_tensor(student, dtype=torch.long, device=device),
            torch.as_tensor(question, dtype=torch.long, device=device),
            torch.as_tensor(y, dtype=torch.float64, device=device))
