"""`kr-lpr` console script: one subcommand per job, each implemented by `main(argv)` in its module."""

from __future__ import annotations

import importlib
import sys

# subcommand -> (module, one-line help); each module's `main(argv: list[str]) -> int` parses its own options.
COMMANDS = {
    "synth": ("kr_lpr.synth", "generate synthetic plates in the <plate>_<idx>.jpg/.txt layout"),
    "validate-data": ("kr_lpr.data", "check a plate folder and report every problem"),
    "train": ("kr_lpr.training", "train from scratch on synthetic plates or fine-tune on a folder"),
    "evaluate": ("kr_lpr.evaluation", "accuracy tables, error report and throughput on a folder"),
    "export": ("kr_lpr.export", "export ONNX, TFLite float32/uint8 and Edge TPU-ready models"),
    "bundle": ("kr_lpr.bundle", "build the standalone deployment zip"),
}


def usage() -> str:
    lines = ["usage: kr-lpr COMMAND [options]   (kr-lpr COMMAND --help for its options)", "", "commands:"]
    lines += [f"  {name:<14} {help_text}" for name, (_, help_text) in COMMANDS.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0
    if argv[0] not in COMMANDS:
        print(f"kr-lpr: unknown command {argv[0]!r}\n\n{usage()}", file=sys.stderr)
        return 2
    try:
        module = importlib.import_module(COMMANDS[argv[0]][0])
    except ModuleNotFoundError as error:
        print(f"kr-lpr {argv[0]} needs {error.name!r}: pip install 'kr-lpr[all]'", file=sys.stderr)
        return 2
    return module.main(argv[1:])


if __name__ == "__main__":
    sys.exit(main())
