"""No lost work, tried with the real thing: a real `worldmodel-train` process and a real SIGINT, a used run folder,
a size-limited tmpfs that fills up, and a read-only mount."""
from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from tests.conftest import TINY_RUN
from worldmodel.checkpoint import load_world_model
from worldmodel.config import compose_config
from worldmodel.training.checkpoint_io import checkpoint_problem
from worldmodel.training.train import train

REPO = Path(__file__).resolve().parents[2]
TRAIN = Path(sys.executable).parent / "worldmodel-train"
RUN = [*TINY_RUN, "trainer=cpu", "callbacks.sample_videos.every_n_train_steps=0", "optim.warmup_steps=4",
       "ema.decay=0.9", "logger=csv"]
TOTAL = 8


def _env() -> dict[str, str]:
    # The test-only callbacks live in tests/, which the console script does not have on its path.
    return {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}


def _cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([str(TRAIN), *args], capture_output=True, text=True, cwd=REPO, env=_env(), timeout=timeout)


def _wait_for(flag: Path, proc: subprocess.Popen) -> None:
    """Until the run touches `flag` (FlagAndWaitAtStep): it is then inside the step that the test signals."""
    deadline = time.monotonic() + 240
    while not flag.exists():
        assert proc.poll() is None and time.monotonic() < deadline, f"the run never reached {flag.name}"
        time.sleep(0.05)


def _recorded(path: Path) -> list[str]:
    return path.read_text().splitlines()


def _tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _mount_tmpfs(where: Path, options: str) -> None:
    where.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip()}); CI runs as root and can")


@pytest.fixture
def mounts():
    mounted: list[Path] = []
    yield mounted
    for where in reversed(mounted):
        subprocess.run(["umount", "-l", str(where)], check=False)


def test_ctrl_c_keeps_the_running_step_and_resumes_bit_for_bit(tmp_path: Path) -> None:
    straight, interrupted, flag = tmp_path / "straight", tmp_path / "interrupted", tmp_path / "at-step-3"
    record = ["+callbacks.record._target_=tests.training.recorder.LossRecorder"]
    train(compose_config("train", [*RUN, f"run_dir={straight}", f"trainer.max_steps={TOTAL}", *record,
                                   f"+callbacks.record.path={tmp_path / 'straight.txt'}"]))

    # No periodic checkpoint before the signal: whatever is kept, Ctrl-C wrote.
    args = [*RUN, f"run_dir={interrupted}", f"trainer.max_steps={TOTAL}", "callbacks.checkpoint.every_n_train_steps=100",
            "callbacks.export.every_n_train_steps=100", *record, f"+callbacks.record.path={tmp_path / 'resumed.txt'}"]
    proc = subprocess.Popen([str(TRAIN), *args, "+callbacks.pause._target_=tests.training.recorder.FlagAndWaitAtStep",
                             "+callbacks.pause.step=3", f"+callbacks.pause.flag={flag}"],
                            cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(flag, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert "Ctrl-C: finishing this step" in err
    assert "stopped by SIGINT at step 4" in out
    last = interrupted / "checkpoints" / "last.ckpt"
    assert f"resume with:  worldmodel-train ckpt_path={last} run_dir={interrupted}" in out
    assert checkpoint_problem(last) is None
    assert torch.load(last, map_location="cpu", weights_only=True)["global_step"] == 4
    assert load_world_model(interrupted / "export").step == 4

    resumed = _cli(*args, "ckpt_path=last")
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert _recorded(tmp_path / "resumed.txt") == _recorded(tmp_path / "straight.txt")
    assert len(_recorded(tmp_path / "straight.txt")) == TOTAL
    # The resume wrote on into last.ckpt (no last-v1.ckpt) and the metrics of both parts are in one metrics.csv.
    assert sorted(p.name for p in (interrupted / "checkpoints").iterdir()) == ["last.ckpt"]
    a = torch.load(straight / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    b = torch.load(last, map_location="cpu", weights_only=True)
    for name, value in a["state_dict"].items():
        assert torch.equal(value, b["state_dict"][name]), name
    steps = [line.split(",") for line in (interrupted / "logs" / "csv" / "metrics.csv").read_text().splitlines()]
    column = steps[0].index("step")
    logged = {int(row[column]) for row in steps[1:] if row[column]}
    assert min(logged) < 4 < max(logged), "rows from before the interruption were lost"


def test_ctrl_c_from_a_terminal_reaches_loader_workers_too_and_the_step_is_kept(tmp_path: Path) -> None:
    """A terminal signals the whole foreground process group: loader workers must leave Ctrl-C to the trainer."""
    flag, run_dir = tmp_path / "flag", tmp_path / "run"
    proc = subprocess.Popen(
        [str(TRAIN), *RUN, f"run_dir={run_dir}", "trainer.max_steps=50", "data.num_workers=2",
         "callbacks.checkpoint.every_n_train_steps=100", "callbacks.export.every_n_train_steps=100",
         "+callbacks.pause._target_=tests.training.recorder.FlagAndWaitAtStep", "+callbacks.pause.step=2",
         f"+callbacks.pause.flag={flag}"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    _wait_for(flag, proc)
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=240)
    assert proc.returncode == 128 + signal.SIGINT, err[-3000:]
    assert torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["global_step"] == 3
    assert load_world_model(run_dir / "export").step == 3


class _SigintHandler(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> str:
        return str(signal.getsignal(signal.SIGINT))


def test_loader_workers_ignore_ctrl_c() -> None:
    """A worker that died of the terminal's SIGINT would fail a data-bound step before its checkpoint is written."""
    from torch.utils.data import DataLoader

    from worldmodel.training.workers import worker_init

    loader = DataLoader(_SigintHandler(), batch_size=1, num_workers=1, worker_init_fn=worker_init(0))
    assert [batch[0] for batch in loader] == [str(signal.SIG_IGN)] * 2


def test_a_second_ctrl_c_aborts_at_once(tmp_path: Path) -> None:
    flag = tmp_path / "flag"
    proc = subprocess.Popen(
        [str(TRAIN), *RUN, f"run_dir={tmp_path / 'run'}", "trainer.max_steps=50",
         "+callbacks.pause._target_=tests.training.recorder.FlagAndWaitAtStep", "+callbacks.pause.step=1",
         f"+callbacks.pause.flag={flag}", "+callbacks.pause.seconds=60"],
        cwd=REPO, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    _wait_for(flag, proc)
    proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    started = time.monotonic()
    _, err = proc.communicate(timeout=60)
    assert time.monotonic() - started < 30, "the second Ctrl-C did not abort the 60 s step"
    assert proc.returncode != 0 and proc.returncode != 128 + signal.SIGINT
    assert not (tmp_path / "run" / "checkpoints" / "last.ckpt").exists()


def test_a_second_run_into_a_used_run_dir_is_refused_and_changes_nothing(trained_run, tmp_path: Path) -> None:
    before = _tree_digest(trained_run.run_dir)
    refused = _cli(*RUN, f"run_dir={trained_run.run_dir}")
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"run_dir={trained_run.run_dir} already holds a run (checkpoints/, export/" in refused.stderr
    assert "ckpt_path=last" in refused.stderr and "overwrite=true" in refused.stderr
    assert _tree_digest(trained_run.run_dir) == before


def test_overwrite_replaces_the_earlier_run(tmp_path: Path) -> None:
    train(compose_config("train", [*RUN, f"run_dir={tmp_path}", "trainer.max_steps=3",
                                   "callbacks.checkpoint.every_n_train_steps=1"]))
    assert (tmp_path / "checkpoints" / "step0000003.ckpt").is_file()
    result = train(compose_config("train", [*RUN, f"run_dir={tmp_path}", "overwrite=true"]))
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["last.ckpt"]
    assert torch.load(result.last_checkpoint, map_location="cpu", weights_only=True)["global_step"] == 2


def test_a_full_disk_names_the_file_and_keeps_the_last_good_checkpoint(tmp_path: Path, mounts) -> None:
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "size=40m")
    mounts.append(disk)
    run_dir = disk / "run"
    first = _cli(*RUN, f"run_dir={run_dir}", "callbacks.export.every_n_train_steps=0")
    assert first.returncode == 0, first.stderr[-3000:]
    last = run_dir / "checkpoints" / "last.ckpt"
    good = last.read_bytes()
    # Fill the disk but for 64 KiB: Hydra's small files still fit, the next checkpoint does not.
    free = os.statvfs(disk).f_bavail * os.statvfs(disk).f_frsize
    with open(disk / "filler", "wb") as f:
        f.write(b"\0" * max(0, free - 64 * 1024))
    full = _cli(*RUN, f"run_dir={run_dir}", "ckpt_path=last", "trainer.max_steps=4",
                "callbacks.checkpoint.every_n_train_steps=1", "callbacks.export.every_n_train_steps=0")
    assert full.returncode != 0
    message = full.stderr.strip().splitlines()[-1]
    assert "Traceback" not in full.stderr, full.stderr[-3000:]
    assert message.startswith(f"worldmodel-train: could not write {run_dir / 'checkpoints'}/"), message
    assert "no space left on device" in message
    assert f"the last good checkpoint {last} is intact" in message
    assert last.read_bytes() == good and checkpoint_problem(last) is None


def test_a_read_only_run_dir_is_named_before_anything_is_built(tmp_path: Path, mounts) -> None:
    ro = tmp_path / "ro"
    _mount_tmpfs(ro, "size=1m,ro")
    mounts.append(ro)
    refused = _cli(*RUN, f"run_dir={ro / 'run'}", timeout=60)
    assert refused.returncode != 0 and "Traceback" not in refused.stderr
    assert f"run_dir={ro / 'run'} cannot be written to (read-only file system)" in refused.stderr
