"""The training order: disjoint rank shards, mid-epoch resume, and per-sample draws independent of batching."""
from __future__ import annotations

import torch

from worldmodel.diffusion import RectifiedFlow
from worldmodel.training.sampler import ResumableShardedSampler, sample_generators


def test_ranks_split_the_epoch_without_duplicates_and_pair_up_into_the_single_process_batches() -> None:
    single = list(ResumableShardedSampler(10, batch_size=4, seed=3))
    ranks = [list(ResumableShardedSampler(10, batch_size=2, seed=3, rank=r, world_size=2)) for r in range(2)]
    assert len(set(i for i, _ in ranks[0]) & set(i for i, _ in ranks[1])) == 0
    # Batch s of the single process (batch 4) holds exactly batch s of each rank (batch 2): same keys too.
    for s in range(2):
        assert sorted(single[4 * s: 4 * s + 4]) == sorted(ranks[0][2 * s: 2 * s + 2] + ranks[1][2 * s: 2 * s + 2])


def test_epochs_reshuffle_and_resume_skips_the_trained_batches() -> None:
    sampler = ResumableShardedSampler(12, batch_size=2, seed=0, rank=1, world_size=2)
    sampler.set_epoch(1)
    epoch1 = list(sampler)
    sampler.set_epoch(0)
    assert [i for i, _ in list(sampler)] != [i for i, _ in epoch1]
    sampler.set_epoch(1)
    sampler.resume_at(epoch=1, batches=2)
    assert list(sampler) == epoch1[4:]
    assert list(sampler) == epoch1, "the skip applies to the resumed pass only"


def test_per_sample_generators_draw_the_same_whatever_the_batch() -> None:
    objective = RectifiedFlow(time_sampling="logit_normal")
    keys = torch.tensor([11, 22, 33, 44])
    whole = objective.sample_tau(4, generator=sample_generators(keys, "cpu"))
    halves = torch.cat([objective.sample_tau(2, generator=sample_generators(keys[:2], "cpu")),
                        objective.sample_tau(2, generator=sample_generators(keys[2:], "cpu"))])
    assert torch.equal(whole, halves)
    assert not torch.equal(whole[:2], whole[2:])
