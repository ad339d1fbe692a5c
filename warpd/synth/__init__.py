"""Synthetic STO art for tests and benchmarks: an icon library and rendered screens.

There are no real game icons on the build machines, so the project renders its own. Recognition is
judged on screens drawn by an independent renderer, so this art is meant to be realistically hard
(families of look-alike icons), not easy for our own matcher.
"""
