"""Every YAML in conf/ composes, and every group option instantiates into what its keys say."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra.errors import ConfigCompositionException
from hydra.utils import get_class, instantiate
from omegaconf import OmegaConf

from tests.training.test_data_configs_cli import NUM_FRAMES, SIZE, _latent_cache, _nuscenes, _opendv, _videos, _waymo
from worldmodel.config import CONF_DIR, compose_config
from worldmodel.model.maskgwm import SD3_MODULES, MaskGWM
from worldmodel.training.datamodule import WorldModelDataModule

GROUPS = ["data", "codec", "model", "objective", "sampler", "optim", "trainer", "logger", "callbacks"]
# Options that read local files (a dataset tree, an SD3 folder): built from small fabricated ones in the real
# formats, found through the environment variables the configs read, as a user's would be.
NEEDS_LOCAL_FILES = {("codec", "sd3_vae"), ("data", "videos"), ("data", "opendv"), ("data", "nuscenes"),
                     ("data", "waymo"), ("data", "mixture_nuscenes_opendv"), ("data", "latent_cache")}
# Paper-size models: built on the meta device (every shape, no memory, no init time).
TOO_BIG_FOR_TESTS = {("model", "sd3_medium"), ("model", "base"), ("model", "sd3_medium_mview"),
                     ("model", "base_mview")}
ROOT_VARIABLES = ("NUSCENES_ROOT", "OPENDV_ROOT", "WAYMO_ROOT", "VIDEOS_ROOT", "LATENT_CACHE", "SD3_PATH")
VIEWS = {"front": 1, "rig6": 6}


def _options(group: str) -> list[str]:
    return sorted(p.stem for p in (CONF_DIR / group).glob("*.yaml"))


@pytest.fixture(scope="module")
def local_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Each variable of ROOT_VARIABLES pointing at a fabricated folder (the data CLI tests' trees), and SD3_PATH at
    a pipeline folder whose vae/ is the tiny random AutoencoderKL of conf/codec/tiny_vae.yaml."""
    from diffusers import AutoencoderKL

    base = tmp_path_factory.mktemp("local_files")
    env = {}
    for variable, write in (("NUSCENES_ROOT", _nuscenes), ("OPENDV_ROOT", _opendv), ("WAYMO_ROOT", _waymo),
                            ("VIDEOS_ROOT", _videos), ("LATENT_CACHE", _latent_cache)):
        write(base / variable.lower())
        env[variable] = str(base / variable.lower())
    vae = OmegaConf.to_container(compose_config("train", ["codec=tiny_vae", "run_dir=unused"]).codec.config)
    AutoencoderKL(**{**vae, "scaling_factor": 1.25, "shift_factor": 0.125}).save_pretrained(base / "sd3" / "vae")
    env["SD3_PATH"] = str(base / "sd3")
    return env


def _check_data(option: str, node, built) -> None:
    """The data module of `node`: its readers, batch size and clip settings, and one validation clip's shape."""
    assert isinstance(built, WorldModelDataModule)
    assert built.batch_size == node.batch_size and built.clip == OmegaConf.to_container(node.clip, resolve=True)
    assert isinstance(built.train_set, get_class(node.train._target_))
    assert isinstance(built.val_set, get_class(node.val._target_))
    if option == "mixture_nuscenes_opendv":
        assert len(built.train_set) == node.train.length
    elif "num_clips" not in node.train:  # in-memory pools fill only at setup (thousands of rendered clips)
        assert len(built.train_set) > 0
    clip = built.val_set[0]
    if option == "latent_cache":
        # Latents of the 4-frame 32x64 clips the DCT codec (16 channels, 4x4 blocks) wrote: the cache's shape.
        assert tuple(clip["latents"].shape) == (NUM_FRAMES, 1, 16, SIZE[0] // 4, SIZE[1] // 4)
        return
    height, width = node.clip.size
    assert clip["frames"].shape == (node.clip.num_frames, VIEWS[node.clip.views], height, width, 3)


def _expected_codec(option: str, node, local_files: dict[str, str] | None) -> tuple[int, int]:
    """(latent channels, downsample factor) of a codec option, from its own keys (or its VAE folder's config)."""
    if option == "dct":
        return node.luma + 2 * node.chroma, node.block
    if option == "pixel":
        return 3 * node.factor ** 2, node.factor
    vae = (OmegaConf.load(Path(local_files["SD3_PATH"]) / "vae" / "config.json") if option == "sd3_vae"
           else node.config)
    return vae.latent_channels, 2 ** (len(vae.block_out_channels) - 1)


def _check_model(node, model) -> None:
    """MaskGWM's key sizes against its config: depth, width, patching, text and action inputs, optional parts."""
    assert isinstance(model, MaskGWM)
    inner, p, out = node.num_attention_heads * node.attention_head_dim, node.patch_size, node.out_channels
    assert len(model.transformer_blocks) == len(model.temporal_blocks) == node.num_layers
    assert model.pos_embed.proj.weight.shape == (inner, node.in_channels, p, p)
    assert model.proj_out.weight.shape == (p * p * out, inner)
    assert model.context_embedder.weight.shape == (node.caption_projection_dim, node.joint_attention_dim)
    assert model.null_text.shape == (node.num_null_text_tokens, node.joint_attention_dim)
    assert model.null_pooled.shape == (node.pooled_projection_dim,)
    assert (model.view_blocks is not None) == node.use_view_blocks
    if node.use_view_blocks:
        assert len(model.view_blocks) == node.num_layers
    assert (model.reconstruction is not None) == (model.mask_token is not None) == node.mask_reconstruction
    assert (model.warp_embed is not None) == node.warp_condition
    # The spatial stack is SD3's: as many parameters as diffusers' own SD3 transformer of the same sizes.
    from diffusers import SD3Transformer2DModel

    sd3_keys = ("sample_size", "patch_size", "in_channels", "out_channels", "num_layers", "attention_head_dim",
                "num_attention_heads", "joint_attention_dim", "caption_projection_dim", "pooled_projection_dim",
                "pos_embed_max_size", "qk_norm")
    with torch.device("meta"):
        reference = SD3Transformer2DModel(**{k: node[k] for k in sd3_keys})
    spatial = sum(q.numel() for n, q in model.named_parameters() if n.split(".")[0] in SD3_MODULES)
    assert spatial == sum(q.numel() for q in reference.parameters())


@pytest.mark.parametrize("group,option", [(g, o) for g in GROUPS for o in _options(g)])
def test_group_option_composes_and_instantiates(group: str, option: str, tmp_path: Path,
                                                request: pytest.FixtureRequest,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    files = request.getfixturevalue("local_files") if (group, option) in NEEDS_LOCAL_FILES else None
    for variable in (*ROOT_VARIABLES, "OPENDV_LANGUAGE"):
        monkeypatch.delenv(variable, raising=False)
    for variable, folder in (files or {}).items():
        monkeypatch.setenv(variable, folder)
    # The fabricated trees hold clips of a second at most: 4 frames of every real reader, at the config's size.
    short = ["data.clip.num_frames=4"] if (group, option) in NEEDS_LOCAL_FILES and group == "data" else []
    cfg = compose_config("train", [f"{group}={option}", *short, f"run_dir={tmp_path}"])
    node = cfg[group]
    if group == "optim":
        # MaskGWM section 5 (conf/optim/adamw.yaml): AdamW, lr 5e-5, 1K warm-up, no weight decay; the default
        # experiment (the quickstart) sets its own lr and warm-up, so the option is read without it.
        paper = compose_config("train", [f"{group}={option}", "~experiment", f"run_dir={tmp_path}"])[group]
        assert OmegaConf.to_container(paper) == {"lr": 5e-5, "betas": [0.9, 0.999], "weight_decay": 0.0,
                                                 "warmup_steps": 1000}
    elif group in ("logger", "callbacks"):
        built = {name: instantiate(c) for name, c in node.items() if c is not None}
        assert set(built) == {name for name, c in node.items() if c is not None}
        for name, obj in built.items():
            assert isinstance(obj, get_class(node[name]._target_)), name
            folder = getattr(obj, "save_dir", None) or getattr(obj, "dirpath", None)
            if folder is not None:  # everything a run writes lands in its run_dir
                assert Path(folder).resolve().is_relative_to(tmp_path.resolve()), (name, folder)
    elif group == "trainer":
        if node.accelerator == "gpu" and not torch.cuda.is_available():
            pytest.skip("this trainer option needs a GPU")
        trainer = instantiate(node, logger=False, enable_checkpointing=False)
        assert trainer.max_steps == node.max_steps and trainer.precision == node.precision
        assert trainer.gradient_clip_val == node.gradient_clip_val
        if OmegaConf.is_dict(node.strategy):
            expected = instantiate(node.strategy)
            assert type(trainer.strategy) is type(expected)
    elif group == "data":
        _check_data(option, node, instantiate(node, _convert_="all"))
    elif group == "model":
        if (group, option) in TOO_BIG_FOR_TESTS:
            with torch.device("meta"):
                model = instantiate(node, _convert_="all")
            assert {q.device.type for q in model.parameters()} == {"meta"}
        else:
            model = instantiate(node, _convert_="all")
        _check_model(node, model)
    elif group == "codec":
        codec = instantiate(node, _convert_="all")
        assert isinstance(codec, get_class(node._target_))
        channels, factor = _expected_codec(option, node, files)
        assert (codec.latent_channels, codec.downsample) == (channels, factor)
        if option == "sd3_vae":  # null factors: the loaded VAE config's own (here not SD3's, to tell them apart)
            assert (codec.scaling_factor, codec.shift_factor) == (1.25, 0.125)
        with torch.no_grad():
            latents = codec.encode_video(torch.zeros(1, 1, 1, 3, 32, 64))
        assert tuple(latents.shape) == (1, 1, 1, channels, 32 // factor, 64 // factor)
    else:  # objective, sampler: the object keeps every setting of its config
        built = instantiate(node, _convert_="all")
        assert isinstance(built, get_class(node._target_))
        settings = {k: v for k, v in OmegaConf.to_container(node, resolve=True).items() if k != "_target_"}
        kept = {k: list(v) if isinstance(v, tuple) else v for k in settings if hasattr(built, k)
                for v in [getattr(built, k)]}
        assert kept == {k: settings[k] for k in kept} and kept, (settings, kept)


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml")))
def test_experiment_composes(experiment: str, tmp_path: Path) -> None:
    cfg = compose_config("train", [f"experiment={experiment}", f"run_dir={tmp_path}"])
    # Each experiment names its runs after itself (outputs/<task_name>/...), and every value resolves.
    assert cfg.task_name == experiment
    OmegaConf.to_container(cfg, resolve=True)


def test_rollout_config_composes() -> None:
    cfg = compose_config("rollout", ["checkpoint=/some/export"])
    assert cfg.checkpoint == "/some/export"


def test_unknown_key_fails_at_composition_naming_the_key() -> None:
    with pytest.raises(ConfigCompositionException, match="trainer.max_stepz"):
        compose_config("train", ["trainer.max_stepz=3"])


def test_unknown_group_option_names_the_choices() -> None:
    with pytest.raises(ConfigCompositionException, match="tinny"):
        compose_config("train", ["model=tinny"])
