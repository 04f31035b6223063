"""eval: VaL-style probes, needle in a haystack, LongBench, report."""
