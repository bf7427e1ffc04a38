"""`worldmodel-eval`: the Hydra command line around `worldmodel.eval.run.evaluate`."""
from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.checkpoint import CheckpointError
from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.cli.sampling import sampling_line
from worldmodel.config import CONF_DIR
from worldmodel.data.errors import DatasetError
from worldmodel.eval.protocol import ProtocolError
from worldmodel.eval.run import evaluate
from worldmodel.eval.state import EvalStateError
from worldmodel.eval.unreadable import skipped_line
from worldmodel.eval.weights import WeightsError


def _line(metrics: dict, name: str, unit: str = "") -> str | None:
    if metrics.get(name) is None:
        return None
    parts = [f"{name.upper()} model {metrics[name]:.3f}{unit}"]
    if metrics.get(f"{name}_copy_last_frame") is not None:
        parts.append(f"copy-last-frame {metrics[f'{name}_copy_last_frame']:.3f}{unit}")
    if metrics.get(f"{name}_real_vs_real") is not None:
        parts.append(f"real-vs-real floor {metrics[f'{name}_real_vs_real']:.3f}")
    return ", ".join(parts)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    """Evaluate a checkpoint; prints the headline numbers and where metrics.json and the report went."""
    with user_errors("worldmodel-eval", extra=(CheckpointError, ProtocolError, EvalStateError, WeightsError,
                                               DatasetError)):
        check_override_types(cfg)
        OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
        result = evaluate(cfg)
    m = result.metrics
    if result.report is None:
        print(f"shard {m['shard']} of {m['shards']} done in {result.run_dir}; the last shard to finish writes "
              "metrics.json and the report")
        return
    resolved = m["protocol"]["resolved"]
    print(f"protocol {m['protocol']['name']}: {resolved['videos']} videos, {resolved['predicted_frames']} predicted "
          f"frames each at {resolved['fps']:g} Hz")
    skipped = skipped_line(resolved)
    if skipped:
        print(skipped)
    print(sampling_line(resolved.get("warp_start"), resolved["sampler_steps"], resolved["cfg_scale"],
                        resolved["sampler_churn"], resolved.get("warp_condition", False),
                        resolved.get("sampler_evaluations")))
    for name, unit in (("fid", ""), ("fvd", ""), ("psnr", " dB"), ("ssim", "")):
        line = _line(m, name, unit)
        if line:
            print("  " + line)
    print(f"metrics: {result.run_dir / 'metrics.json'}")
    print(f"report:  {result.report}")


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main)


if __name__ == "__main__":
    main()
