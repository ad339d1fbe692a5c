"""``warpd config``: show the configuration warpd is running with, and where it came from."""

from __future__ import annotations

import argparse

from warpd.config import Config


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("config", help="show the effective configuration and its files",
                            description="Print every setting after defaults, your file, the environment "
                                        "(WARPD_<SECTION>__<KEY>) and --set are applied.")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--path", action="store_true", help="print only the path of your config file")
    parser.set_defaults(func=run)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return str(value)


def run(args: argparse.Namespace, cfg: Config) -> int:
    if args.path:
        print(cfg.user_file)
        return 0
    values = cfg.as_dict()
    if values.get("sync", {}).get("token"):
        values["sync"]["token"] = "<set>"  # tokens are never printed
    if args.json:
        from warpd.cli import print_json

        print_json({"defaults_file": str(cfg.defaults_file), "user_file": str(cfg.user_file),
                    "user_file_loaded": cfg.user_file_loaded, "values": values})
        return 0
    state = "loaded" if cfg.user_file_loaded else "not present, defaults in use"
    print(f"# defaults: {cfg.defaults_file}\n# your file: {cfg.user_file} ({state})")
    for section, table in values.items():
        print(f"\n[{section}]")
        for key, value in table.items():
            print(f"{key} = {_toml_value(value)}")
    return 0
