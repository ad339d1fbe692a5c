"""warpd: a background daemon that turns Star Trek Online screenshots into SETS builds.

Data flows one way: watcher -> recognition -> store/queue -> tray/sync. ``central`` (the
community trainer) consumes the same formats, defined once in :mod:`warpd.formats`.
"""

__version__ = "0.1.0"
