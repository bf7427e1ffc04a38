"""`worldmodel-rollout`: the Hydra command line around `worldmodel.rollout.run.rollout`."""
from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.checkpoint import CheckpointError
from worldmodel.config import CONF_DIR
from worldmodel.rollout.run import rollout


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="rollout")
def main(cfg: DictConfig) -> None:
    """Roll out a checkpoint; prints where the videos went and PSNR next to the copy baseline."""
    OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
    try:
        result = rollout(cfg)
    except CheckpointError as err:
        sys.exit(f"worldmodel-rollout: {err}")
    m = result.metrics
    for path in result.videos + result.sheets:
        print(f"wrote {path}")
    print(f"PSNR on {m['protocol']['predicted_frames']} predicted frames x {m['protocol']['clips']} clips: "
          f"model {m['psnr_model']:.2f} dB, copy-last-frame baseline {m['psnr_copy_last_frame']:.2f} dB")
    print(f"metrics: {result.run_dir / 'metrics.json'}")


if __name__ == "__main__":
    main()
