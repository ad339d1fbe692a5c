"""central: the community trainer (a cron job) that turns every install's confirmations into models.

It reads the same formats the daemon writes (``warpd.slots``, ``warpd.catalog``), votes, trains,
evaluates and publishes. Needs the ``[train]`` extra (torch, torchvision, onnx).
"""
