"""`worldmodel-train`: the Hydra command line around `worldmodel.training.train`."""
from __future__ import annotations

import signal
import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, OmegaConf

from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.config import CONF_DIR
from worldmodel.training.faults import BadSampleFractionError, NonFiniteLossError, OutOfMemoryAdvice
from worldmodel.training.run_dir import check_run_dir, check_writable
from worldmodel.training.train import train

PROG = "worldmodel-train"
# Exit status of a run stopped by Ctrl-C after writing its checkpoint, as a shell reports an interrupted command.
INTERRUPTED = 128 + signal.SIGINT


def _command_line_value(key: str) -> str | None:
    values = [a.split("=", 1)[1] for a in sys.argv[1:] if a.split("=", 1)[0].lstrip("+") == key and "=" in a]
    return values[-1] if values else None


def check_run_folder() -> None:
    """Before Hydra writes `.hydra/` into it: a run_dir named on the command line that holds another run, or
    that cannot be written to (Hydra would fail there with a traceback)."""
    run_dir = _command_line_value("run_dir")
    if run_dir is None:
        return  # the default folder is new (it is named by the time)
    folder = Path(run_dir).expanduser().resolve()
    resuming = _command_line_value("ckpt_path") not in (None, "null")
    overwrite = (_command_line_value("overwrite") or "false").lower() == "true"
    check_run_dir(folder, resuming=resuming, overwrite=overwrite)
    check_writable(folder)


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="train")
def hydra_main(cfg: DictConfig) -> None:
    """Train; every `key=value` on the command line overrides the composed config."""
    with user_errors(PROG, extra=(NonFiniteLossError, BadSampleFractionError, OutOfMemoryAdvice)):
        check_override_types(cfg)
        OmegaConf.update(cfg, "run_dir", HydraConfig.get().runtime.output_dir)
        result = train(cfg)
    if result.time_limited_at_step is not None:
        print(f"stopped by trainer.max_time={cfg.trainer.max_time} at step {result.time_limited_at_step} of "
              f"trainer.max_steps={cfg.trainer.max_steps} (this machine is slower than the budget assumes; "
              f"resume below to train on)")
    if result.stopped_by is not None:
        print(f"stopped by {result.stopped_by} at step {result.preempted_at_step}: checkpoint and export written")
    print(f"run folder:   {result.run_dir}")
    print(f"export:       {result.export_dir}  (pass to worldmodel-rollout checkpoint=...)")
    if result.last_checkpoint:
        print(f"resume with:  {PROG} ckpt_path={result.last_checkpoint} run_dir={result.run_dir}")
    if result.stopped_by == "SIGINT":
        sys.exit(INTERRUPTED)


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main, precheck=check_run_folder, prog=PROG)


if __name__ == "__main__":
    main()
