"""Where the Hydra configs live, and composing them without the command line (tests, notebooks)."""
from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from omegaconf import DictConfig

# conf/ is read from the checkout (editable install), as in the Lightning+Hydra template.
CONF_DIR = Path(__file__).resolve().parent.parent / "conf"


def compose_config(config_name: str = "train", overrides: Sequence[str] = ()) -> DictConfig:
    """Compose `conf/<config_name>.yaml` with command-line style overrides, as the CLIs do."""
    if not CONF_DIR.is_dir():
        raise FileNotFoundError(
            f"Hydra configs not found at {CONF_DIR}; install worldmodel from a checkout with "
            f"`pip install -e .` so that conf/ sits beside the package")
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name=config_name, overrides=list(overrides), return_hydra_config=False)
