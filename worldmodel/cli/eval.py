"""`worldmodel-eval`: reserved command line; its capability lands with a later release."""
from __future__ import annotations

import sys


def main() -> None:
    """Say plainly that this command is not available yet, and exit non-zero."""
    sys.exit("worldmodel-eval is not yet available in this version of worldmodel; "
             "see the README's roadmap for what ships now")


if __name__ == "__main__":
    main()
