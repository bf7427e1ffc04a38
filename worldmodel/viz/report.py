"""A rollout's report page: the HTML template in the checkout's viz/ folder, filled with string.Template."""
from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from pathlib import Path
from string import Template
from typing import Any

import worldmodel
from worldmodel.files import atomic_write_text

# Templates live at the top of the checkout, beside conf/ (editable install).
TEMPLATE_DIR = Path(worldmodel.__file__).resolve().parent.parent / "viz"
ROLLOUT_TEMPLATE = TEMPLATE_DIR / "rollout_report.html"
STYLESHEET = TEMPLATE_DIR / "report.css"


def fill_template(template: Path, title: str, **fields: str) -> str:
    """A report template with its `$name` fields filled; `$head` gets the title and the shared stylesheet.

    `title` is HTML-escaped text. The stylesheet is inlined so every page stays one self-contained file.
    """
    for path in (template, STYLESHEET):
        if not path.is_file():
            raise FileNotFoundError(f"report file {path} is missing; it ships in the checkout's viz/ folder")
    head = (f'<head>\n<meta charset="utf-8">\n<title>{title}</title>\n<style>\n'
            f'{STYLESHEET.read_text(encoding="utf-8")}</style>\n</head>')
    return Template(template.read_text(encoding="utf-8")).substitute(head=head, title=title, **fields)


def _relative(path: Path, folder: Path) -> str:
    return html.escape(Path(path).resolve().relative_to(folder.resolve()).as_posix(), quote=True)


def _table(rows: Sequence[Mapping[str, Any]]) -> str:
    if not rows:
        return '<p class="none">none</p>'
    columns = list(dict.fromkeys(k for row in rows for k in row))
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(row.get(c)))}</td>" for c in columns) + "</tr>"
                   for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def _video(label: str, path: Path, folder: Path, large: bool) -> str:
    size = "large" if large else "small"
    return (f'<figure><figcaption>{html.escape(label)}</figcaption>'
            f'<video class="{size}" src="{_relative(path, folder)}" controls loop muted autoplay playsinline>'
            f"</video></figure>")


def write_rollout_report(folder: str | Path, title: str, subtitle: str, videos: Sequence[tuple[str, Path]],
                         plot: Path | None = None, sheet: Path | None = None,
                         chunks: Sequence[Mapping[str, Any]] = (), metrics: Mapping[str, Any] | None = None,
                         details: Mapping[str, Any] | None = None, template: Path = ROLLOUT_TEMPLATE) -> Path:
    """Write `folder/report.html`; `videos` are (label, path) pairs of files inside `folder`.

    The first two videos (the mosaic and, with ground truth, the side-by-side) are shown large,
    per-camera videos small. Metrics are scalars (a table); per-frame lists are left to metrics.json.
    """
    folder = Path(folder)
    scalars = {k: v for k, v in (metrics or {}).items() if isinstance(v, (int, float, str)) or v is None}
    page = fill_template(
        template,
        title=html.escape(title),
        subtitle=html.escape(subtitle),
        videos="\n".join(_video(label, path, folder, large=i < 2) for i, (label, path) in enumerate(videos)),
        plot=(f'<img id="action-plan" src="{_relative(plot, folder)}" alt="action plan: speed, heading and '
              f'steering over time">' if plot else '<p class="none">no action plan</p>'),
        sheet=(f'<img id="contact-sheet" src="{_relative(sheet, folder)}" alt="contact sheet">'
               if sheet else '<p class="none">none</p>'),
        chunks=_table([{"chunk": i, **row} for i, row in enumerate(chunks)]),
        metrics=_table([{"metric": k, "value": v} for k, v in scalars.items()]) if scalars
        else '<p class="none">no ground truth, so no metrics</p>',
        details=_table([{"key": k, "value": v} for k, v in (details or {}).items()]),
    )
    return atomic_write_text(folder / "report.html", page)
