"""The ``warpd`` command: one verb per job, each in the module that does the job.

A verb module exposes ``register(subparsers)``, which adds its parser and sets ``func`` to a
function taking ``(args, cfg)`` and returning an exit code. The config is loaded here once
(``--config``, ``--set``) so every verb sees the same values and a bad config file is reported
the same way everywhere.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from importlib import import_module
from typing import Sequence

from warpd import __version__
from warpd.config import ConfigError, load_config
from warpd.paths import data_paths, install_id

# Modules that contribute verbs, in the order ``--help`` lists them.
VERB_MODULES: tuple[str, ...] = (
    "warpd.doctor",
    "warpd.cli_config",
    "warpd.cli_process",
    "warpd.daemon",
    "warpd.confirm",
    "warpd.autostart",
    "warpd.import_sets_warp",
    "warpd.synth.cli",
)

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
# Verbs that only look: they never create the data folder or the install id.
READ_ONLY_VERBS = frozenset({"doctor", "config", "status"})


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warpd",
        description="Turns Star Trek Online screenshots into SETS builds, in the background.",
        epilog="Run 'warpd <command> --help' for a command's options.",
    )
    parser.add_argument("--version", action="version", version=f"warpd {__version__}")
    parser.add_argument("--config", metavar="FILE", help="config file to use instead of the user's own")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="SECTION.KEY=VALUE",
                        help="override one config value (repeatable), e.g. --set recognition.auto_accept=0.8")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output (-vv for debug)")
    sub = parser.add_subparsers(dest="command", metavar="<command>")
    for module_name in VERB_MODULES:
        try:
            module = import_module(module_name)
        except ImportError as exc:  # a verb whose optional part is not installed stays out of the list
            logging.getLogger(__name__).debug("verb module %s unavailable: %s", module_name, exc)
            continue
        module.register(sub)
    return parser


def _setup_logging(verbosity: int) -> None:
    level = logging.WARNING - 10 * min(verbosity, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    _setup_logging(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help()
        return EXIT_USAGE
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as exc:
        print(f"warpd: configuration error: {exc}", file=sys.stderr)
        if getattr(args, "command", None) != "doctor":
            return EXIT_USAGE
        cfg = None
    if cfg is not None and args.command not in READ_ONLY_VERBS:
        install_id(data_paths(cfg))  # the anonymous id exists from the first real run on
    try:
        return int(args.func(args, cfg) or EXIT_OK)
    except BrokenPipeError:  # output piped into head/less that closed early: not an error
        sys.stderr.close()
        return EXIT_OK


def print_json(obj: object) -> None:
    """One JSON document on stdout, for scripts (``--json``)."""
    print(json.dumps(obj, ensure_ascii=False, default=str))


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
