"""`worldmodel-plan`: the Hydra command line around `worldmodel.plan.plan`."""
from __future__ import annotations

import hydra
from omegaconf import DictConfig

from worldmodel.cli.guard import check_override_types, run_command, user_errors
from worldmodel.config import CONF_DIR
from worldmodel.plan.report import format_plan, format_sampling_plan
from worldmodel.plan.run import plan, plan_sampling


@hydra.main(version_base="1.3", config_path=str(CONF_DIR), config_name="plan")
def hydra_main(cfg: DictConfig) -> None:
    """Print what the composed run costs; a wrong option (an unknown GPU, a bad share) is one line."""
    with user_errors("worldmodel-plan", extra=(ValueError,)):
        check_override_types(cfg)
        if cfg.checkpoint is not None:
            print(format_sampling_plan(plan_sampling(cfg)))
            return
        result = plan(cfg)
    print(format_plan(result, title=str(cfg.task_name)))


def main() -> None:
    """The console script (`--verbose` keeps tracebacks of user errors)."""
    run_command(hydra_main)


if __name__ == "__main__":
    main()
