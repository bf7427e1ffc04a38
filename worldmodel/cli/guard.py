"""What every command does with bad input: check the command line's values, and print a user error as one line.

- `run_command` strips `--verbose` before Hydra parses the command line (and runs a command's pre-checks); with it (or `HYDRA_FULL_ERROR=1`)
  user errors keep their traceback.
- `check_override_types` refuses `trainer.max_steps=abc` before anything is built: a value whose type differs
  from the type of the config's own default (an integer, a number, true/false, a list) is named with its key.
- `user_errors` turns a `UserInputError` (and the extra classes a command names) into `prog: message`, exit 1.
"""
from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from hydra import compose
from hydra.core.hydra_config import HydraConfig
from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import DictConfig, ListConfig, OmegaConf

from worldmodel.config import CONF_DIR
from worldmodel.errors import UserInputError

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "WORLDMODEL_VERBOSE"


class OverrideTypeError(UserInputError, ValueError):
    """A command-line value of another type than the config's default for that key."""


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV) == "1" or os.environ.get("HYDRA_FULL_ERROR") == "1"


def run_command(hydra_main: Callable[[], Any], precheck: Callable[[], None] | None = None,
                prog: str = "worldmodel") -> None:
    """The console script: take `--verbose` off the command line (Hydra would refuse it), run `precheck`
    (checks that must come before Hydra writes into the run folder), then the Hydra command."""
    if VERBOSE_FLAG in sys.argv[1:]:
        sys.argv = [a for a in sys.argv if a != VERBOSE_FLAG]
        os.environ[VERBOSE_ENV] = "1"
    if precheck is not None:
        with user_errors(prog):
            precheck()
    hydra_main()


@contextmanager
def user_errors(prog: str, extra: Sequence[type[BaseException]] = ()) -> Iterator[None]:
    """Print a user error as one line naming the input and the fix, without a traceback (unless verbose)."""
    try:
        yield
    except (UserInputError, *extra) as err:
        if verbose():
            raise
        message = " ".join(str(err).split("\n")).strip() or type(err).__name__
        sys.exit(f"{prog}: {message}  (--verbose shows the traceback)")


def _kind(value: Any) -> str | None:
    """The type a default asks for, in words; None when any value will do (strings, null, interpolations)."""
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, (list, tuple, ListConfig)):
        return "a list like [a,b]"
    if isinstance(value, (dict, DictConfig)):
        return "a config group or mapping"
    return None


def _fits(kind: str, value: Any) -> bool:
    if kind == "true or false":
        return isinstance(value, bool)
    if kind == "an integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "a number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "a list like [a,b]":
        return isinstance(value, (list, tuple, ListConfig))
    return isinstance(value, (dict, DictConfig))


def _is_group(key: str) -> bool:
    return (CONF_DIR / key.replace(".", "/")).is_dir() or key.startswith("hydra")


def type_problems(defaults: DictConfig, cfg: DictConfig, overrides: Sequence[str]) -> list[str]:
    """'trainer.max_steps=abc: expected an integer (the default is 10000)' for every mistyped override."""
    problems = []
    for override in OverridesParser.create().parse_overrides(list(overrides)):
        key = override.key_or_group
        if override.is_delete() or override.is_add() or _is_group(key) or override.is_sweep_override():
            continue
        default = OmegaConf.select(defaults, key, default=None, throw_on_missing=False)
        kind = _kind(default)
        if kind is None or kind == "a config group or mapping":
            continue
        given = OmegaConf.select(cfg, key, default=None, throw_on_missing=False)
        if given is not None and not _fits(kind, given):
            shown = f"{default}" if kind != "a list like [a,b]" else OmegaConf.to_yaml(default).strip()
            problems.append(f"{override.input_line}: expected {kind} (the default is {shown}), got {given!r}")
    return problems


def check_override_types(cfg: DictConfig) -> None:
    """Inside a Hydra command: refuse command-line values whose type differs from the default's, naming each."""
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    groups = [o for o in overrides if _is_group(o.split("=", 1)[0].lstrip("+~"))]
    # The defaults of this very composition (same config groups and experiment), without the value overrides.
    defaults = compose(config_name=hydra_cfg.job.config_name, overrides=groups)
    problems = type_problems(defaults, cfg, overrides)
    if problems:
        raise OverrideTypeError("; ".join(problems))
