"""`simulate(cfg)`: episodes of a policy in a world model (recorded to mp4), and optionally the fidelity table.

`run_episode(env, policy, seed, scenario)` is the loop a user's own script needs: reset, hand the reset
info to the policy (if it has `reset(info)`), then `obs -> action -> step` until the episode ends.

Seeds follow worldmodel-rollout's rule (worldmodel/rollout/seeds.py): `seed=` on the command line, else the
scenario's `seed:`, else 0; episode i uses that seed + i. episodes.json records it, with `seed_source`
(cli | scenario | default), at the top and per episode.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import torch
from omegaconf import DictConfig, OmegaConf
from tqdm.auto import tqdm

from worldmodel.checkpoint import load_world_model
from worldmodel.files import atomic_write_json
from worldmodel.rollout.seeds import cli_seed, resolve_seed
from worldmodel.runtime import pick_device, sampling_precision
from worldmodel.sim.env import WorldModelEnv
from worldmodel.sim.fidelity import FidelityResult, run_fidelity
from worldmodel.sim.policies import load_policy
from worldmodel.sim.recording import RecordEpisodes
from worldmodel.sim.scenarios import ScenarioLike, as_scenario


@dataclass
class SimResult:
    """What a simulation run wrote: per-episode summaries, recorded folders, the fidelity table."""

    run_dir: Path
    episodes: list[dict[str, Any]]
    recorded: list[Path] = field(default_factory=list)
    fidelity: FidelityResult | None = None


def run_episode(env: gym.Env, policy: Callable, seed: int | None = None,
                scenario: ScenarioLike | None = None) -> dict[str, Any]:
    """Drive one episode; returns steps, simulated seconds, return, progress, wall time and steps per second."""
    options = {} if scenario is None else {"scenario": scenario}
    obs, info = env.reset(seed=seed, options=options)
    if hasattr(policy, "reset"):
        policy.reset(info)
    started = time.perf_counter()
    steps, total, done, max_offset = 0, 0.0, False, abs(info["lateral_offset_m"])
    terminated = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(obs))
        steps, total = steps + 1, total + reward
        max_offset = max(max_offset, abs(info["lateral_offset_m"]))
        done = terminated or truncated
    seconds = time.perf_counter() - started
    return {"scenario": str(scenario), "seed": seed, "steps": steps, "simulated_s": round(info["time_s"], 3),
            "frames": info["frame_count"], "return": round(total, 3), "progress_m": round(info["progress_m"], 3),
            "max_lateral_offset_m": round(max_offset, 3), "terminated": bool(terminated),
            "wall_s": round(seconds, 3), "steps_per_s": round(steps / max(seconds, 1e-9), 3)}


def simulate(cfg: DictConfig) -> SimResult:
    """Run `cfg.episodes` episodes (scenario, or procedural world seed + i), then fidelity if enabled."""
    if cfg.threads is not None:
        torch.set_num_threads(int(cfg.threads))
    run_dir = Path(cfg.run_dir).expanduser().resolve()
    policy = load_policy(cfg.policy, action_mode=cfg.action_mode)
    # Before the checkpoint loads, so a bad scenario or seed= fails at once.
    scenario_seed = None if cfg.scenario is None else as_scenario(cfg.scenario).seed
    seed, seed_source = resolve_seed(cli_seed(cfg.seed), scenario_seed)
    device = pick_device(cfg.device)
    weights = sampling_precision(cfg.precision, device).weights  # a bad precision= fails before the load
    loaded = load_world_model(cfg.checkpoint, device=device, weights_dtype=weights)
    env_kwargs = dict(horizon_s=float(cfg.horizon_s), chunk_s=float(cfg.chunk_s), carry_frames=int(cfg.carry_frames),
                      first_reference=int(cfg.first_reference), action_mode=cfg.action_mode,
                      precision=cfg.precision, num_steps=cfg.num_steps, cfg_scale=cfg.cfg_scale,
                      churn=cfg.churn, warp_start=cfg.get("warp_start"))
    env: gym.Env = WorldModelEnv(loaded, **env_kwargs)
    run_dir.mkdir(parents=True, exist_ok=True)
    if cfg.record:
        env = RecordEpisodes(env, run_dir / "episodes")
    summaries = []
    for i in tqdm(range(int(cfg.episodes)), desc="episodes", disable=not cfg.progress):
        scenario = cfg.scenario if cfg.scenario is not None else seed + i
        summaries.append({**run_episode(env, policy, seed + i, scenario), "seed_source": seed_source})
    env.close()
    recorded = list(env.recorded) if isinstance(env, RecordEpisodes) else []
    sampler = env.unwrapped.sampler  # the checkpoint's, with this run's overrides
    base = {"checkpoint": str(loaded.source), "step": loaded.step, "policy": str(cfg.policy),
            "sampler_steps": sampler.num_steps, "cfg_scale": sampler.cfg_scale,
            "sampler_churn": sampler.churn, "warp_start": env.unwrapped.warp_start,
            "seed": seed, "seed_source": seed_source,  # episode i: seed + i
            "config": OmegaConf.to_container(cfg, resolve=True)}
    atomic_write_json(run_dir / "episodes.json", {**base, "episodes": summaries,
                                                  "recorded": [str(p) for p in recorded]})
    fidelity = None
    if cfg.fidelity.enabled:
        wm_env = env.unwrapped
        fidelity = run_fidelity(wm_env, load_policy(cfg.policy, action_mode=cfg.action_mode), run_dir / "fidelity",
                                int(cfg.fidelity.episodes or cfg.episodes), seed, cfg.scenario,
                                fvd=str(cfg.fidelity.fvd), fvd_min_clips=int(cfg.fidelity.fvd_min_clips),
                                i3d_weights=cfg.fidelity.i3d_weights, record=bool(cfg.fidelity.record),
                                progress=bool(cfg.progress), description=base)
    return SimResult(run_dir, summaries, recorded, fidelity)
