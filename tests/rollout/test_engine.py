"""Autoregressive chaining: schedules, carried reference frames, determinism."""
from __future__ import annotations

import pytest
import torch

from worldmodel.rollout.engine import ChunkSchedule, RolloutEngine


class RecordingSampler:
    """Fills new frames with a counter and records the reference latents of every call."""

    num_steps, cfg_scale = 1, 1.0

    def __init__(self) -> None:
        self.references: list[torch.Tensor] = []
        self.calls = 0

    def sample(self, model, reference, num_frames, actions, action_valid, generator=None):
        self.references.append(reference.clone())
        self.calls += 1
        b, k = reference.shape[:2]
        noise = torch.randn((b, num_frames - k, *reference.shape[2:]), generator=generator)
        new = noise + 100.0 * self.calls
        return torch.cat([reference, new], dim=1)


def _actions(schedule: ChunkSchedule, b: int = 2):
    return [(torch.zeros(b, 19), torch.zeros(b, 5, dtype=torch.bool))] * schedule.num_chunks


def test_schedule_frame_counts() -> None:
    s = ChunkSchedule(chunk_frames=25, first_reference=1, carry_frames=3, num_chunks=3)
    assert s.starts == [0, 22, 44]
    assert s.total_frames == 69  # 25 + 2 * 22 new frames per later chunk (MaskGWM section 6)
    assert ChunkSchedule.for_horizon(25, 1, 3, total_frames=150).total_frames >= 150
    assert ChunkSchedule.for_horizon(25, 1, 3, total_frames=25).num_chunks == 1


def test_invalid_schedules_are_named() -> None:
    with pytest.raises(ValueError, match="carry_frames"):
        ChunkSchedule(8, 1, 8, 2)
    with pytest.raises(ValueError, match="first_reference"):
        ChunkSchedule(8, 0, 3, 2)


def test_reference_of_each_chunk_is_the_last_frames_of_the_previous_one() -> None:
    schedule = ChunkSchedule(chunk_frames=6, first_reference=1, carry_frames=3, num_chunks=4)
    sampler = RecordingSampler()
    reference = torch.randn(2, 1, 1, 4, 2, 3)
    out = RolloutEngine(torch.nn.Identity(), sampler, schedule).generate(reference, _actions(schedule))
    assert out.shape == (2, schedule.total_frames, 1, 4, 2, 3)
    assert torch.equal(sampler.references[0], reference)
    for i in range(1, schedule.num_chunks):
        start = schedule.starts[i]
        assert torch.equal(sampler.references[i], out[:, start : start + 3]), f"chunk {i}"
    assert torch.equal(out[:, :1], reference)


def test_fixed_seed_gives_the_same_rollout() -> None:
    schedule = ChunkSchedule(chunk_frames=5, first_reference=2, carry_frames=2, num_chunks=3)
    reference = torch.randn(1, 2, 1, 3, 2, 2)
    runs = [RolloutEngine(torch.nn.Identity(), RecordingSampler(), schedule).generate(
        reference, _actions(schedule, 1), generator=torch.Generator().manual_seed(5)) for _ in range(2)]
    assert torch.equal(runs[0], runs[1])


def test_wrong_number_of_chunk_actions_is_named() -> None:
    schedule = ChunkSchedule(chunk_frames=5, first_reference=1, carry_frames=2, num_chunks=3)
    with pytest.raises(ValueError, match="schedule has 3"):
        RolloutEngine(torch.nn.Identity(), RecordingSampler(), schedule).generate(
            torch.zeros(1, 1, 1, 1, 1, 1), _actions(schedule)[:2])


class GuessSampler(RecordingSampler):
    """Returns the start it was given as the new frames, and records start_tau."""

    def __init__(self) -> None:
        super().__init__()
        self.start_taus: list[float] = []

    def sample(self, model, reference, num_frames, actions, action_valid, generator=None, start=None,
               start_tau=1.0):
        self.references.append(reference.clone())
        self.start_taus.append(start_tau)
        return torch.cat([reference, start], dim=1)


class CountingStart:
    """A first-guess provider: the last reference plus the chunk's call number, for every new frame."""

    tau = 0.4

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, refs, values, valid, chunk_frames):
        self.calls += 1
        k = refs.shape[1]
        return refs[:, -1:].expand(-1, chunk_frames - k, *refs.shape[2:]) + self.calls


def test_a_start_provider_gives_every_chunk_its_first_guess_from_the_carried_frames() -> None:
    schedule = ChunkSchedule(chunk_frames=4, first_reference=1, carry_frames=2, num_chunks=3)
    sampler, start = GuessSampler(), CountingStart()
    reference = torch.zeros(1, 1, 1, 1, 1, 1)
    out = RolloutEngine(torch.nn.Identity(), sampler, schedule, start=start).generate(reference, _actions(schedule, 1))
    assert sampler.start_taus == [0.4] * 3 and start.calls == 3
    # Chunk 1: frames 1-3 = 0 + 1; chunk 2 starts from frames 2-3 (value 1): 1 + 2 = 3; chunk 3: 3 + 3 = 6.
    assert out.flatten().tolist() == [0, 1, 1, 1, 3, 3, 6, 6]
