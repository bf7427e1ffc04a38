"""`worldmodel-train data=X` trains with the default experiment for every X in conf/data/, from the command line.

The quickstart's own data settings (1024 clips at 3.3 fps) once sat in conf/experiment/quickstart.yaml and merged
into whatever `data=` a user picked: `data=videos` then died on `num_clips`. The real datasets here are tiny
fabricated trees in the real formats (the reader tests' fixtures), found through the environment variables
conf/data/ documents (NUSCENES_ROOT, ...), as a user's would be.

Each group below is one `worldmodel-train -m data=a,b,...` subprocess (a Hydra multirun: one interpreter start
for several datasets, the slow part of a two-step run), each dataset in its own run folder.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import OmegaConf

from tests.data.nuscenes_fixture import FakeScene, write_nuscenes
from tests.data.test_videos import write_numbered_folder, write_numbered_video
from tests.data.waymo_fixture import FakeSegment, write_v1_segment
from worldmodel.codecs import DCTCodec
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.data.cache import write_latent_cache
from worldmodel.data.errors import DatasetRootError
from worldmodel.data.synthetic import SyntheticDriving
from worldmodel.training.datamodule import check_dataset_roots

BIN = Path(sys.executable).parent
NUM_FRAMES, SIZE = 4, (32, 64)
# Keys every data option has: a two-step run with one validation batch on small clips, no sample videos.
COMMON = [
    "data.batch_size=2", "data.num_workers=0", f"data.clip.size=[{SIZE[0]},{SIZE[1]}]",
    f"data.clip.num_frames={NUM_FRAMES}", "trainer.max_steps=2", "trainer.val_check_interval=2",
    "trainer.limit_val_batches=1", "trainer.log_every_n_steps=1", "trainer.enable_progress_bar=false",
    "trainer.accelerator=cpu", "trainer.devices=1", "sampler.num_steps=2", "callbacks.sample_videos=null",
]
# data options per subprocess, with the overrides only that group's configs have (a pool renders its clips
# up front: 4 of them in this process rather than 1024 in a worker pool).
GROUPS = {
    "procedural": (["synthetic", "synthetic_rig6", "quickstart_world_rig6"], []),
    "pooled": (["synthetic_pool", "quickstart_world"], ["data.train.num_clips=4", "data.train.workers=1"]),
    "real": (["nuscenes", "opendv", "waymo", "videos", "latent_cache", "mixture_nuscenes_opendv"], []),
}
ROOT_VARIABLES = ("NUSCENES_ROOT", "OPENDV_ROOT", "OPENDV_LANGUAGE", "WAYMO_ROOT", "VIDEOS_ROOT", "LATENT_CACHE")
# The real options and the variable a missing folder of each is named by (the mixture: its first member's).
REAL = {"nuscenes": "NUSCENES_ROOT", "opendv": "OPENDV_ROOT", "waymo": "WAYMO_ROOT", "videos": "VIDEOS_ROOT",
        "latent_cache": "LATENT_CACHE", "mixture_nuscenes_opendv": "NUSCENES_ROOT"}
QUICKSTARTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("quickstart*.yaml"))
DATA_OPTIONS = sorted(p.stem for p in (CONF_DIR / "data").glob("*.yaml"))


# ------------------------------------------------------------------------------ fabricated roots
def _nuscenes(root: Path) -> None:
    # scene-0001 is in the official train split, scene-0003 in val; front camera only (the configs' views).
    scenes = [FakeScene(name, seconds=1.0, cameras=("CAM_FRONT",)) for name in ("scene-0001", "scene-0003")]
    write_nuscenes(root, scenes)


def _opendv(root: Path) -> None:
    records = [{"id": i, "videoid": vid, "youtuber": "Road Trips", "split": split, "start_discard": 0.0,
                "end_discard": 0.0, "duration": "0:01", "length": 1}
               for i, (vid, split) in enumerate((("vidtrain", "Train"), ("vidval", "Val")))]
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "OpenDV-YouTube.json").write_text(json.dumps(records))
    write_numbered_folder(root / "full_images" / "Road_Trips" / "vidtrain", range(8), suffix=".jpg")
    write_numbered_folder(root / "val_images" / "Road_Trips" / "vidval", range(8), suffix=".jpg")


def _waymo(root: Path) -> None:
    for split, name in (("training", "1000_000_000_020_000"), ("validation", "2000_000_000_020_000")):
        write_v1_segment(root, split, FakeSegment(name=name, num_frames=8))


def _videos(root: Path) -> None:
    write_numbered_video(root / "drive.mp4", 8, fps=10)
    write_numbered_folder(root / "frames_drive", range(8))


def _latent_cache(root: Path) -> None:
    # Written with the default experiment's codec (dct): a cache only trains the codec it was written with.
    for split in ("train", "val"):
        clips = SyntheticDriving(num_clips=4, num_frames=NUM_FRAMES, size=SIZE, split=split)
        write_latent_cache(clips, DCTCodec(), root / split, shard_size=2, progress=False)


@pytest.fixture(scope="module")
def dataset_roots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment a user with every dataset would have: each variable points at a fabricated tree."""
    base = tmp_path_factory.mktemp("datasets")
    env = {}
    for variable, write in (("NUSCENES_ROOT", _nuscenes), ("OPENDV_ROOT", _opendv), ("WAYMO_ROOT", _waymo),
                            ("VIDEOS_ROOT", _videos), ("LATENT_CACHE", _latent_cache)):
        folder = base / variable.lower()
        write(folder)
        env[variable] = str(folder)
    return env


def _environment(roots: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ROOT_VARIABLES}
    return {**env, **roots, "OMP_NUM_THREADS": "1"}


def _train(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / "worldmodel-train"), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=600)


# ------------------------------------------------------------------------------ the command line
def test_the_groups_cover_every_data_option() -> None:
    covered = sorted(o for options, _ in GROUPS.values() for o in options)
    assert covered == DATA_OPTIONS, "a conf/data/ option not trained from the command line here (add it to GROUPS)"


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_every_data_option_trains_two_steps_from_the_cli(group: str, dataset_roots: dict[str, str],
                                                         tmp_path: Path) -> None:
    options, extra = GROUPS[group]
    sweep = tmp_path / "sweep"
    out = _train("-m", f"data={','.join(options)}", *COMMON, *extra, f"hydra.sweep.dir={sweep}",
                 "hydra.sweep.subdir=${hydra:runtime.choices.data}", cwd=tmp_path, env=_environment(dataset_roots))
    # Every run of the sweep is checked, so a failure names its dataset even where an earlier one failed too.
    failed = [o for o in options if not (sweep / o / "export").is_dir() or not (sweep / o / "checkpoints" /
                                                                                "last.ckpt").is_file()]
    assert out.returncode == 0 and not failed, f"{failed} did not train:\n{out.stderr[-4000:]}"
    for option in options:
        metrics = (sweep / option / "logs" / "csv" / "metrics.csv").read_text()
        assert "train/loss" in metrics and "val/" in metrics, option  # it trained and validated


def test_a_missing_root_fails_before_the_model_is_built_naming_the_variable(tmp_path: Path) -> None:
    missing = tmp_path / "no_nuscenes_here"
    run_dir = tmp_path / "run"
    out = _train("data=nuscenes", *COMMON, f"run_dir={run_dir}", cwd=tmp_path,
                 env=_environment({"NUSCENES_ROOT": str(missing)}))
    assert out.returncode != 0
    assert "NUSCENES_ROOT" in out.stderr and str(missing) in out.stderr, out.stderr[-3000:]
    # No model summary, checkpoint or export: the run stopped at the data, before the model and the trainer.
    assert "Total params" not in out.stdout + out.stderr
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "export").exists()


# ------------------------------------------------------------------------------ in-process: composition and errors
@pytest.mark.parametrize("experiment", QUICKSTARTS)
def test_a_quickstart_experiment_leaves_a_chosen_data_option_as_it_is(experiment: str, tmp_path: Path) -> None:
    """`data=X` with a quickstart experiment is data option X itself: the experiment adds nothing under data."""
    for option in DATA_OPTIONS:
        chosen = compose_config("train", [f"experiment={experiment}", f"data={option}", f"run_dir={tmp_path}"])
        alone = compose_config("train", ["~experiment", f"data={option}", f"run_dir={tmp_path}"])
        assert OmegaConf.to_container(chosen.data) == OmegaConf.to_container(alone.data), (experiment, option)


# The resolved data sections before the quickstart's data settings moved into conf/data/quickstart_world*.yaml.
QUICKSTART_DATA = {
    "_target_": "worldmodel.training.datamodule.WorldModelDataModule", "batch_size": 8, "num_workers": 0,
    "multiprocessing_context": None,
    "clip": {"num_frames": 8, "fps": 3.3333, "views": "front", "size": [64, 128], "seed": 0},
    "train": {"_target_": "worldmodel.data.pool.ClipPool", "num_clips": 1024, "workers": 2,
              "dataset": {"_target_": "worldmodel.data.synthetic.SyntheticDriving", "num_clips": 1024,
                          "num_frames": 8, "fps": 3.3333, "views": "front", "size": [64, 128], "seed": 0,
                          "split": "train"}},
    "val": {"_target_": "worldmodel.data.synthetic.SyntheticDriving", "num_clips": 16, "num_frames": 8,
            "fps": 3.3333, "views": "front", "size": [64, 128], "seed": 0, "split": "val"},
}
_RIG6 = dict(num_frames=8, fps=3.3333, views="rig6", size=[32, 64], seed=0)
QUICKSTART_MVIEW_DATA = {
    "_target_": "worldmodel.training.datamodule.WorldModelDataModule", "batch_size": 2, "num_workers": 1,
    "multiprocessing_context": None, "clip": dict(_RIG6),
    "train": {"_target_": "worldmodel.data.synthetic.SyntheticDriving", "num_clips": 1024, **_RIG6, "split": "train"},
    "val": {"_target_": "worldmodel.data.synthetic.SyntheticDriving", "num_clips": 16, **_RIG6, "split": "val"},
}


@pytest.mark.parametrize("overrides,expected", [
    ([], QUICKSTART_DATA), (["experiment=quickstart"], QUICKSTART_DATA),
    (["experiment=quickstart_mr"], QUICKSTART_DATA), (["experiment=quickstart_mview"], QUICKSTART_MVIEW_DATA)])
def test_the_quickstart_trains_on_the_same_procedural_world_as_before(overrides: list[str], expected: dict,
                                                                      tmp_path: Path) -> None:
    cfg = compose_config("train", [*overrides, f"run_dir={tmp_path}"])
    assert OmegaConf.to_container(cfg.data, resolve=True) == expected


@pytest.mark.parametrize("option", sorted(REAL))
def test_a_missing_root_is_one_error_naming_the_variable_and_the_key(option: str, tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENDV_LANGUAGE", raising=False)
    for variable in set(REAL.values()) | {"OPENDV_ROOT"}:
        monkeypatch.setenv(variable, str(tmp_path / f"missing_{variable.lower()}"))
    cfg = compose_config("train", ["data=" + option, f"run_dir={tmp_path}"])
    with pytest.raises(DatasetRootError) as info:
        check_dataset_roots(cfg.data)
    message = str(info.value)
    assert REAL[option] in message and "data.train." in message and str(tmp_path / "missing_") in message
    # The readers themselves (what instantiating the config runs) name the variable too, for other callers.
    # Hydra wraps the reader's error; the reader's message (the variable and the key to set) is kept in it.
    with pytest.raises(InstantiationException, match=rf"set {REAL[option]} \(or (root|cache_dir)=\)") as built:
        instantiate(cfg.data.train, _convert_="all")
    cause = built.value.__cause__
    assert isinstance(cause, DatasetRootError) and str(tmp_path / "missing_") in str(cause), repr(cause)


def test_a_key_given_on_the_command_line_is_named_rather_than_the_variable(tmp_path: Path) -> None:
    cfg = compose_config("train", ["data=videos", f"data.train.root={tmp_path}/nope", f"data.val.root={tmp_path}",
                                   f"run_dir={tmp_path}"])
    with pytest.raises(DatasetRootError, match=r"^data\.train\.root: .*nope does not exist; pass data\.train\.root="):
        check_dataset_roots(cfg.data)
    check_dataset_roots(compose_config("train", ["data=videos", f"data.train.root={tmp_path}",
                                                 f"data.val.root={tmp_path}", f"run_dir={tmp_path}"]).data)
