"""The `digitlens` command. The only module that talks to users; each subcommand wires library calls."""
from __future__ import annotations

import argparse
import importlib
import sys

from digitlens import __version__

EPILOG = """examples:
  digitlens data                          fetch and verify MNIST, print where it is cached
  digitlens train --arch seed             the seed's Keras CNN, the seed's recipe (>= 99.1%)
  digitlens train                         the default network (>= 99.70%, <= 30 min on 2 CPU cores)
  digitlens evaluate                      accuracy, per-class precision/recall, report with plots
  digitlens read photo.jpg scans/ --json  read digits and numbers in photos
  digitlens live --source 0               webcam, boxes and readings overlaid (q quits)
  digitlens live --source demo            the shipped demo clip
  digitlens serve                         web page and HTTP API on http://127.0.0.1:8000
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="digitlens", description="Handwritten digit recognition: train on MNIST, read digits in photos, "
        "live video and the browser.", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"digitlens {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    runners = {}
    for module in COMMAND_MODULES:
        mod = importlib.import_module(f"digitlens.{module}")
        for name, (help_text, add_arguments, run) in mod.COMMANDS.items():
            p = sub.add_parser(name, help=help_text.splitlines()[0], description=help_text,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
            add_arguments(p)
            runners[name] = run
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 0
    try:
        return int(runners[args.command](args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


# Modules that define COMMANDS = {name: (help text, add_arguments(parser), run(args) -> exit status)}.
# They import heavy dependencies (torch, fastapi) inside run, so `digitlens --help` stays fast.
COMMAND_MODULES = ("cli_train", "cli_read", "video_cli", "server.cli")

if __name__ == "__main__":
    sys.exit(main())
