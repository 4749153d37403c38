"""TransNAS-Bench-101 (Duan et al., CVPR 2021): two table-only spaces.

NAS-Bench-Suite-Zero scored TransNAS-Bench-101's micro (cell) and macro (skeleton) spaces on
seven Taskonomy tasks; zcnas imports those tables (`zcnas bench import naslib-zc`) as ground
truth plus reference scores. The Taskonomy images are not available here, so zcnas builds
none of these networks: the spaces validate and canonicalise encodings, and `score` refuses
them with one sentence while `report`, `compare` and `combine` work.

Encodings are NASLib's (naslib/search_spaces/transbench101/): both are a 6-tuple of ints,
written as NASLib writes the keys of its tables, ``(1, 0, 0, 2, 1, 0)``.

* micro: one op per edge of an NB201-like 4-node cell, ints 0..3 (NASLib's order of the four
  TransNAS ops: none/zero, skip, 1x1 and 3x3 ReLU-conv-BN).
* macro: 4 to 6 residual blocks, each 1..4 (1 plain, 2 channel doubling, 3 spatial
  downsampling, 4 both), padded with zeros at the end to length 6.
"""

from __future__ import annotations

import ast

from zcnas.errors import ArchError
from zcnas.spaces.base import SearchSpace


def _int_tuple(encoding, what: str, example: str) -> tuple[int, ...]:
    if isinstance(encoding, str):
        try:
            value = ast.literal_eval(encoding.strip())
        except (ValueError, SyntaxError):
            raise ArchError(f"Architecture {encoding!r} is not a {what}; write it like {example}.") from None
    else:
        value = encoding
    if not isinstance(value, (tuple, list)) or not all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        raise ArchError(f"Architecture {encoding!r} is not a {what}; write it like {example}.")
    return tuple(int(v) for v in value)


class TransNASMicro(SearchSpace):
    name = "transbench101_micro"
    description = "TransNAS-Bench-101 micro (cell) space, 7 Taskonomy tasks; table-only (no builder here)"
    example = "(1, 0, 0, 2, 1, 0)"
    input_kind = "table"

    def parse(self, encoding) -> tuple[int, ...]:
        ops = _int_tuple(encoding, "TransNAS-Bench-101 micro cell (6 op ints 0..3)", self.example)
        if len(ops) != 6 or not all(0 <= v <= 3 for v in ops):
            raise ArchError(
                f"Architecture {encoding!r} must be 6 op ints 0..3, one per cell edge, like {self.example}."
            )
        return ops

    def to_string(self, parsed) -> str:
        return str(tuple(parsed))


class TransNASMacro(SearchSpace):
    name = "transbench101_macro"
    description = "TransNAS-Bench-101 macro (skeleton) space, 7 Taskonomy tasks; table-only (no builder here)"
    example = "(1, 2, 4, 2, 0, 0)"
    input_kind = "table"

    def parse(self, encoding) -> tuple[int, ...]:
        blocks = _int_tuple(encoding, "TransNAS-Bench-101 macro skeleton (6 ints)", self.example)
        used = list(blocks)
        while used and used[-1] == 0:
            used.pop()
        if len(blocks) != 6 or not 4 <= len(used) <= 6 or not all(1 <= v <= 4 for v in used):
            raise ArchError(
                f"Architecture {encoding!r} must be 4 to 6 block ints 1..4 padded with zeros to length 6, "
                f"like {self.example}."
            )
        return blocks

    def to_string(self, parsed) -> str:
        return str(tuple(parsed))
