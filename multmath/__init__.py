"""multmath: multi-digit multiplication corpora with a verified chain of thought (ICoT-compatible).

`problem(a, b)` is the API other generators call; `multmath-gen` (multmath.cli) writes corpora.
"""

from multmath.problems import COT_MODES, FORMATS, Problem, problem

__all__ = ["COT_MODES", "FORMATS", "Problem", "problem"]
