"""Which noise seed a run uses: the one rule of worldmodel-rollout and worldmodel-sim.

A seed given on the command line (`seed=7`) wins over the scenario's `seed:`; without one the scenario's
seed is used; without both, DEFAULT_SEED. conf/rollout.yaml and conf/sim.yaml default `seed` to null, so
that a seed the user typed can be told from none (a default of 0 would hide the scenario's seed or the
user's). Batch mode and sim episodes count up from the resolved seed (clip / episode i: seed + i).
Manifests record each run's seed and where it came from: `seed_source` cli | scenario | default.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from worldmodel.errors import UserInputError
from worldmodel.rollout.limits import SEED

DEFAULT_SEED = 0
SeedSource = Literal["cli", "scenario", "default"]


class SeedError(UserInputError, ValueError):
    """A `seed=` on the command line that is not a usable seed."""


def cli_seed(value: Any) -> int | None:
    """The command line's `seed` checked: None (not given) or an int in the SEED range."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise SeedError(f"seed={value!r} is not an integer; give seed={SEED.describe()}, or leave it out to use "
                        f"the scenario's seed (else {DEFAULT_SEED})")
    problem = SEED.problem(value)
    if problem is not None:
        raise SeedError(f"seed={value}: {problem}")
    return value


def resolve_seed(cli: int | None, scenario: int | None) -> tuple[int, SeedSource]:
    """(seed, source): the command line's if given, else the scenario's, else DEFAULT_SEED."""
    if cli is not None:
        return int(cli), "cli"
    if scenario is not None:
        return int(scenario), "scenario"
    return DEFAULT_SEED, "default"


def shared_seed(runs: Sequence[tuple[int, str]]) -> dict[str, Any]:
    """Top-level manifest entries of runs' (seed, source): each the value all runs share, None where they differ."""
    seeds, sources = {seed for seed, _ in runs}, {source for _, source in runs}
    return {"seed": next(iter(seeds)) if len(seeds) == 1 else None,
            "seed_source": next(iter(sources)) if len(sources) == 1 else None}
