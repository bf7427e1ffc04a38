"""The one hook through which an experimental idea changes a training step before its loss (self-forcing).

`WorldModelModule.training_step` passes the batch through each hook's `before_loss` in order; a hook may replace
the batch's clips (latents, meta, num_reference) and log through the module. Hooks are built from the config's
`extension` section (worldmodel/experimental/, `extension=<name>`).
"""
from __future__ import annotations

from typing import Any


class StepHook:
    """Base of the training-step extensions; the default leaves the batch as it is."""

    def before_loss(self, module: Any, batch: dict[str, Any]) -> dict[str, Any]:
        """The batch the step's loss is computed on; `module` is the WorldModelModule that runs the step."""
        return batch
