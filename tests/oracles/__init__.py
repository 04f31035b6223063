"""Straightforward reference implementations and tiny models that tests and benchmarks measure the
library against. They live with the tests, not in the package: users never need them.

Tests import them as `oracles.<module>` (pytest puts `tests/` on `sys.path`); benchmarks add
`tests/` to `sys.path` first.
"""
