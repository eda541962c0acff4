"""``python -m notionfs.emulator``: serve the demo workspace on loopback until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import sys

from notionfs.emulator import cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m notionfs.emulator",
        description="A local Notion API and signed-URL file host serving a demo workspace.",
    )
    cli.add_arguments(parser)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    return cli.run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
