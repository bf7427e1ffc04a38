"""`worldmodel-prepare`: the Hydra command line around `worldmodel.data.prepare.prepare`."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.config import CONF_DIR
from worldmodel.data.prepare import format_summary, prepare


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
def hydra_main(cfg: DictConfig) -> None:
    """Prepare one split of a dataset; a user error (wrong root, unknown option) is one line, no traceback."""
    # DatasetError names the path and the fix; the registry's errors (ValueError, TypeError) name the options; an
    # optional reader library that is missing (ImportError) and an unreadable folder (OSError) say which.
    with user_errors("worldmodel-prepare", extra=(ValueError, TypeError, ImportError, OSError)):
        check_override_types(cfg)
        result = prepare(cfg)
    print(format_summary(result))


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main)


if __name__ == "__main__":
    main()
