"""multmath: multi-digit multiplication corpora with a verified chain of thought (ICoT-compatible).

`problem(a, b)` is the API other generators call; `multmath.generator` declares the corpus to
`cards.generator` (options, sizes, card, training view) and `multmath-gen` (multmath.cli) writes it.
"""

from multmath.problems import COT_MODES, FORMATS, Problem, problem

__all__ = ["COT_MODES", "FORMATS", "Problem", "problem"]
