"""The experimental shelf: ideas from the video-prediction literature that this project tried and keeps off.

None of them is part of MaskGWM, and none is on by default. Each plugs into the core through one narrow hook
and is switched on by an optional Hydra group, alone or several at once (settings as usual):

    worldmodel-train extension=reference_noise
    worldmodel-train extension=[reference_noise,dynamics_loss] extension.reference_noise.max_level=0.05

    extension        hook                                                what it does
    reference_noise  ObjectiveExtension + the sampler's `model_reference` context-frame noise augmentation
    dynamics_loss    ObjectiveExtension.frame_error                      Vista's dynamics enhancement loss
    warp_prior       ObjectiveExtension.perturb                          training starts from the warped frame
    self_forcing     StepHook.before_loss (worldmodel/training/hooks.py) conditioning on generated frames

docs/FINDINGS.md records what each measured on the quickstart. The core never imports this package; the configs
in conf/extension/ name its classes.
"""
