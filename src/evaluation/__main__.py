"""Command line: ``python -m evaluation <command>``.

Commands
--------
synth     write a synthetic world (``--seed``, ``--out``, ``--scale``)
validate  check a world folder and print a validation report, without building (exit 2 when not valid)
outcomes  print headline proven-reoffending tables for every programme of a world
build     build programme reports with papermill (``--programme``, ``--jobs``, ``--formats``)
portfolio the commissioner's overview from the built reports
calibrate check by simulation that the pipeline recovers the synthetic world's true effects

Each command lives with the module that owns it (``<module>.add_cli(subparsers)`` registers it and sets
``func``); this file only dispatches, so a newcomer finds a command's code next to the logic it runs.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# (module, command) in the order of the flow; a module that is missing is skipped so that
# the CLI works while a stage is being built.
_COMMAND_MODULES = ["synth", "validate", "outcomes_cli", "report.build", "report.portfolio", "calibration"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m evaluation", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(f"evaluation.{name}")
        except ModuleNotFoundError as exc:  # pragma: no cover - only while a stage is absent
            if exc.name and exc.name.startswith("evaluation"):
                continue
            raise
        module.add_cli(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    result = args.func(args)
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
