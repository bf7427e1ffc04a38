"""`worldmodel-train`: the Hydra command line around `worldmodel.training.train`."""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.config import CONF_DIR
from worldmodel.training.train import train


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def main(cfg: DictConfig) -> None:
    """Train; every `key=value` on the command line overrides the composed config."""
    OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
    result = train(cfg)
    if result.time_limited_at_step is not None:
        print(f"stopped by trainer.max_time={cfg.trainer.max_time} at step {result.time_limited_at_step} of "
              f"trainer.max_steps={cfg.trainer.max_steps} (this machine is slower than the budget assumes; "
              f"resume below to train on)")
    print(f"run folder:   {result.run_dir}")
    print(f"export:       {result.export_dir}  (pass to worldmodel-rollout checkpoint=...)")
    if result.last_checkpoint:
        print(f"resume with:  worldmodel-train ckpt_path={result.last_checkpoint} run_dir={result.run_dir}")


if __name__ == "__main__":
    main()
