"""`worldmodel-prepare`: the Hydra command line around `worldmodel.data.prepare.prepare`."""
from __future__ import annotations

import sys

import hydra
from omegaconf import DictConfig

from worldmodel.config import CONF_DIR
from worldmodel.data.prepare import format_summary, prepare


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="prepare")
def main(cfg: DictConfig) -> None:
    """Prepare one split of a dataset; a user error (wrong root, unknown option) is one line, no traceback."""
    try:
        result = prepare(cfg)
    except (ValueError, TypeError, ImportError, OSError) as err:
        # DatasetError (a ValueError) names the path and the fix; the registry's errors name the options.
        sys.exit(f"worldmodel-prepare: {err}")
    print(format_summary(result))


if __name__ == "__main__":
    main()
