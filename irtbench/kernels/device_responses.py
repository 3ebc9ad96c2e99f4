r"""Responses on a torch device, the one data layer of the torch fits: the layouts
(float32 answers with an optional 0/1 weight, int8 codes with -1 for missing, or sparse
triples), their transfer from host memory, and the pieces a pass over them walks (the whole
float32 matrix, a block of int8 rows at a time decoded, or the gathered observed pairs)."""

from __future__ import annotations

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

__all__ = ["DeviceResponses", "Piece", "codes_to_device", "decode", "fill_codes",
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
    (``student``, ``question`` and their float32 answers in ``y``)."""

    n_observed: int
    y: torch.Tensor | None = None
    weight: torch.Tensor | None = None
    codes: torch.Tensor | None = None
    student: torch.Tensor | None = None
    question: torch.Tensor | None = None

    @classmethod
    def transfer(cls, responses: Responses, n_observed: int, device: torch.device,
                 storage: str) -> DeviceResponses:
        """Move host responses to ``device`` in the layout ``storage`` asks for
        (``"auto"``: int8 above ``COMPACT_ABOVE`` cells)."""
        if is_sparse(responses):
            student, question, y = sparse_to_device(responses, device)
            return cls(n_observed, y=y.float(), student=student, question=question)
        if stored_as(storage, responses.size) == "int8":
            return cls(n_observed, codes=codes_to_device(responses, device))
        y, weight = responses_to_device(responses, device)
        return cls(n_observed, y=y, weight=weight)

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


class Piece(NamedTuple):
    """One piece of the data: a block of dense ``rows`` with their answers ``y`` and the 0/1
    ``weight`` of the observed ones (None: all observed), or (``rows`` None) the observed
    responses gathered as pairs ``student``, ``question``."""

    rows: slice | None
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


def codes_to_device(responses: np.ndarray, device: torch.device) -> torch.Tensor:
    """The compact form (int8, -1 = missing) on ``device``, built a block of rows at a time (no
    float32 copy of the matrix on the host); a C-contiguous int8 matrix on the CPU is used in
    place (no copy at all)."""
    import torch

    if device.type == "cpu" and responses.dtype == np.int8 and responses.flags.c_contiguous:
        return torch.from_numpy(responses)  # read only: the fit never writes its data
    codes = torch.empty(responses.shape, dtype=torch.int8, device=device)
    return fill_codes(codes, responses)


def fill_codes(codes: torch.Tensor, responses: np.ndarray) -> torch.Tensor:
    """Write the compact form of ``responses`` into the int8 device tensor ``codes``: an int8
    matrix in one copy, a float32 one a block of rows at a time (no float32 copy of the
    matrix on the host)."""
    import torch

    if responses.dtype == np.int8 and responses.flags.c_contiguous:
        codes.copy_(torch.from_numpy(responses))
        return codes
    for rows in row_blocks(responses.shape):
        codes[rows] = torch.from_numpy(np.ascontiguousarray(to_compact(responses[rows]))).to(codes.device)
    return codes


def decode(codes: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """``(y, observed)`` of a block of compact codes: 0/1 answers (missing 0) and the 0/1 mask,
    both as ``dtype``."""
    return (codes == 1).to(dtype), (codes != MISSING).to(dtype)


def sparse_to_device(responses: SparseResponses, device: torch.device
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(student, question, y)`` of sparse triples on ``device`` (long, long, float64)."""
    import torch

    return (torch.as_tensor(responses.student, dtype=torch.long, device=device),
            torch.as_tensor(responses.question, dtype=torch.long, device=device),
            torch.as_tensor(responses.response, dtype=torch.float64, device=device))
