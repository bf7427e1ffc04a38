"""The sampling line the rollout and evaluation commands print."""
from worldmodel.cli.sampling import sampling_line


def test_plain_and_warp_start_lines() -> None:
    assert sampling_line(None, 30, 4.0, 1.0) == "sampling: from pure noise; 30-step schedule, CFG 4, churn 1"
    assert sampling_line(0.4, 5, 4.0, 0.5) == ("sampling: from tau 0.4: each chunk's last frame moved along the "
                                                "commanded path (warp start); 5-step schedule, CFG 4, churn 0.5")
