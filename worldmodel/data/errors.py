"""Dataset errors that name the file and the fix, and the log of what a reader skipped and why."""
from __future__ import annotations

from collections import Counter, defaultdict
from pathlib import Path

from worldmodel.errors import UserInputError


class DatasetError(UserInputError, ValueError):
    """A user error in a dataset (wrong root, missing file): the message names the path and the fix."""


class DatasetRootError(DatasetError):
    """A dataset folder that is not there: the message names the setting that points at it (an environment
    variable of conf/data/ or the reader's `root=`), since a wrong root is nearly always an unset variable."""


def require_root(root: Path, dataset: str, variable: str, holds: str, key: str = "root") -> None:
    """Raise DatasetRootError unless `root` is a folder; `holds` says what the right folder contains."""
    if not root.is_dir():
        raise DatasetRootError(f"{dataset} folder {root} does not exist: set {variable} (or {key}=) to the folder "
                               f"holding {holds}")


class CorruptFileError(DatasetError):
    """A file that cannot be decoded (truncated record, bad JPEG, unreadable video)."""

    def __init__(self, path: str | Path, reason: str, offset: int | None = None) -> None:
        where = f"{path}" + (f" at byte offset {offset}" if offset is not None else "")
        super().__init__(f"{where}: {reason}")
        self.path, self.reason, self.offset = str(path), reason, offset


class SkipLog:
    """Counts what a reader left out (too-short scene, missing camera, corrupt file) with example paths.

    With `strict=True` the first skip raises instead, so a user who expects a complete dataset
    hears about the first problem rather than a count at the end.
    """

    def __init__(self, strict: bool = False, examples: int = 3) -> None:
        self.strict = strict
        self.max_examples = examples
        self.counts: Counter[str] = Counter()
        self.examples: dict[str, list[str]] = defaultdict(list)

    def skip(self, reason: str, item: str | Path, error: Exception | None = None) -> None:
        """Record one skipped item (or raise when strict)."""
        if self.strict:
            if isinstance(error, DatasetError):
                raise error
            raise DatasetError(f"{item}: {reason} (strict=true; set strict=false to skip and count such items)")
        self.counts[reason] += 1
        if len(self.examples[reason]) < self.max_examples:
            self.examples[reason].append(str(item))

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def merge(self, other: SkipLog) -> None:
        """Add another log's counts (e.g. from a data loader worker)."""
        self.counts.update(other.counts)
        for reason, items in other.examples.items():
            room = self.max_examples - len(self.examples[reason])
            self.examples[reason].extend(items[:max(0, room)])

    def as_dict(self) -> dict[str, dict[str, object]]:
        return {r: {"count": n, "examples": list(self.examples[r])} for r, n in self.counts.most_common()}

    def summary(self) -> str:
        """One line per reason: count, reason, first example."""
        if not self.counts:
            return "nothing skipped"
        return "\n".join(f"{n:6d}  {reason}  (e.g. {self.examples[reason][0]})" for reason, n in self.counts.most_common())
