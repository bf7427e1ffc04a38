"""`worldmodel-sim`: the Hydra command line around `worldmodel.sim.run.simulate`."""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.checkpoint import CheckpointError
from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.config import CONF_DIR
from worldmodel.rollout.warp_start import WarpStartError
from worldmodel.rollout.yamlmarks import ScenarioError
from worldmodel.sim.policies import PolicyError
from worldmodel.sim.run import simulate


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="sim")
def hydra_main(cfg: DictConfig) -> None:
    """Drive episodes in a world model; prints each episode's return and where its videos and tables went."""
    with user_errors("worldmodel-sim", extra=(CheckpointError, ScenarioError, PolicyError, WarpStartError)):
        check_override_types(cfg)
        OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
        result = simulate(cfg)
    for i, ep in enumerate(result.episodes):
        print(f"episode {i}: {ep['scenario']} seed {ep['seed']}: {ep['steps']} steps, {ep['simulated_s']} s, "
              f"return {ep['return']}, progress {ep['progress_m']} m, {ep['steps_per_s']} steps/s")
    for folder in result.recorded:
        print(f"  recorded {folder}/generated.mp4")
    print(f"episodes: {result.run_dir / 'episodes.json'}")
    if result.fidelity is not None:
        print((result.fidelity.folder / "fidelity.md").read_text())
        print(f"fidelity: {result.fidelity.folder / 'fidelity.json'}, {result.fidelity.folder / 'fidelity.png'}")


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main)


if __name__ == "__main__":
    main()
