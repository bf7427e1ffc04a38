"""Lightning's CSV logger for a run that may be resumed: `metrics.csv` grows, it is never deleted.

Lightning's writer removes an existing metrics.csv when it starts, so resuming a run into its own folder
would lose every row logged before the interruption.
"""
from __future__ import annotations

import csv

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter


class AppendingExperimentWriter(ExperimentWriter):
    """Keeps an existing metrics.csv and starts from its header, so new rows and new columns join the old rows."""

    def _check_log_dir_exists(self) -> None:
        if self._fs.isfile(self.metrics_file_path):
            with self._fs.open(self.metrics_file_path, "r", newline="") as file:
                header = next(csv.reader(file), [])
            self.metrics_keys = list(header)  # the file's column order, which appended rows must keep


class ResumableCSVLogger(CSVLogger):
    """`lightning.pytorch.loggers.CSVLogger` with `AppendingExperimentWriter`."""

    @property
    @rank_zero_experiment
    def experiment(self) -> AppendingExperimentWriter:
        if self._experiment is None:
            self._fs.makedirs(self.root_dir, exist_ok=True)
            self._experiment = AppendingExperimentWriter(log_dir=self.log_dir)
        return self._experiment
