"""The sampling line the rollout and evaluation commands print."""
from worldmodel.cli.sampling import sampling_line


def test_plain_and_warp_start_lines() -> None:
    assert sampling_line(None, 30, 4.0, 1.0) == "sampling: from pure noise; 30-step schedule, CFG 4, churn 1"
    assert sampling_line(0.4, 5, 4.0, 0.5) == ("sampling: from tau 0.4: each chunk's last frame moved along the "
                                                "commanded path (warp start); 5-step schedule, CFG 4, churn 0.5")
    assert sampling_line(None, 30, 4.0, 1.0, warp_condition=True) == (
        "sampling: from pure noise; the model takes each chunk's last frame moved along the commanded path as an "
        "input (warp-conditioned); 30-step schedule, CFG 4, churn 1")
    assert sampling_line(0.2, 10, 4.0, 1.0, warp_condition=True) == (
        "sampling: from tau 0.2: each chunk's last frame moved along the commanded path (warp start), which the "
        "model also takes as an input (warp-conditioned); 10-step schedule, CFG 4, churn 1")


def test_the_line_says_how_many_evaluations_a_warp_start_leaves():
    assert sampling_line(0.2, 10, 4.0, 1.0, evaluations=2).endswith(
        "10-step schedule (2 model evaluations per chunk below the start), CFG 4, churn 1")
    assert sampling_line(0.05, 10, 4.0, 1.0, evaluations=1).endswith(
        "10-step schedule (1 model evaluation per chunk below the start), CFG 4, churn 1")
    # From pure noise every step is an evaluation, and the line stays as it was.
    assert sampling_line(None, 30, 4.0, 1.0, evaluations=30) == sampling_line(None, 30, 4.0, 1.0)
