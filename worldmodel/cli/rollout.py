"""`worldmodel-rollout`: the Hydra command line around `worldmodel.rollout.run.rollout`."""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.checkpoint import CheckpointError
from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.cli.sampling import sampling_line
from worldmodel.config import CONF_DIR
from worldmodel.rollout.motion import motion_line
from worldmodel.rollout.run import rollout
from worldmodel.rollout.warp_start import WarpStartError
from worldmodel.rollout.yamlmarks import ScenarioError


def psnr_line(metrics: dict) -> str:
    """Model PSNR next to the copy-last-frame baseline and, where the runs could be warped, the warp-last-frame one
    (the last frame moved along the commanded path with no network: what geometry alone predicts)."""
    line = f"model {metrics['psnr_model']:.2f} dB, copy-last-frame {metrics['psnr_copy_last_frame']:.2f} dB"
    if "psnr_warp_last_frame" in metrics:
        line += f", warp-last-frame {metrics['psnr_warp_last_frame']:.2f} dB"
    return line


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="rollout")
def hydra_main(cfg: DictConfig) -> None:
    """Roll out a checkpoint; prints where the reports and videos went and PSNR next to the copy baseline."""
    with user_errors("worldmodel-rollout", extra=(CheckpointError, ScenarioError, WarpStartError)):
        check_override_types(cfg)
        OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
        result = rollout(cfg)
    for run in result.runs:
        print(f"wrote {run.folder}/ ({', '.join(sorted(p.name for p in run.folder.iterdir()))})")
        line = f"  report: {run.report}"
        if "psnr_model" in run.metrics:
            line += f"  PSNR {psnr_line(run.metrics)}"
        print(line)
        if (motion := motion_line(run.metrics)) is not None:
            print(f"  motion seen in CAM_FRONT: {motion}")
    m = result.metrics
    p = m["protocol"]
    print(sampling_line(p["warp_start"], p["sampler_steps"], p["cfg_scale"], p["sampler_churn"],
                        p.get("warp_condition", False), p.get("sampler_evaluations")))
    if "psnr_model" in m:
        print(f"PSNR on {m['protocol']['predicted_frames']} predicted frames x {len(result.runs)} runs: "
              f"{psnr_line(m)}")
    print(f"metrics: {result.run_dir / 'metrics.json'}")


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main)


if __name__ == "__main__":
    main()
