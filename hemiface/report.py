"""A tiny document model rendered twice: Markdown (index.md) and self-contained HTML.

The demo's walk-through is built as a list of blocks (headings, paragraphs, tables,
figures, file lists) so that the Markdown and the HTML say the same thing; the HTML
inlines figures as data URIs so the page works when copied alone.
"""

from __future__ import annotations

import base64
import html
import os
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Heading:
    text: str
    level: int = 2


@dataclass
class Paragraph:
    text: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]


@dataclass
class Figure:
    path: Path
    caption: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class FileList:
    files: list[tuple[str, Path]]  # (what it is, where)


Block = Heading | Paragraph | Table | Figure | Bullets | FileList


@dataclass
class Document:
    title: str
    blocks: list[Block] = field(default_factory=list)

    def add(self, *blocks: Block) -> None:
        self.blocks.extend(blocks)


def _rel(path: Path, base: Path) -> str:
    try:
        return os.path.relpath(Path(path).resolve(), base.resolve())
    except ValueError:  # another drive on Windows
        return str(path)


def _md_cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def to_markdown(doc: Document, base: Path) -> str:
    lines = [f"# {doc.title}", ""]
    for block in doc.blocks:
        if isinstance(block, Heading):
            lines += ["#" * block.level + " " + block.text, ""]
        elif isinstance(block, Paragraph):
            lines += [block.text, ""]
        elif isinstance(block, Table):
            lines.append("| " + " | ".join(_md_cell(h) for h in block.header) + " |")
            lines.append("|" + "---|" * len(block.header))
            lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
            lines.append("")
        elif isinstance(block, Figure):
            lines += [f"![{block.caption}]({_rel(block.path, base)})", "", f"*{block.caption}*", ""]
        elif isinstance(block, Bullets):
            lines += [f"- {item}" for item in block.items] + [""]
        elif isinstance(block, FileList):
            for what, path in block.files:
                mark = "" if Path(path).exists() else " (missing)"
                lines.append(f"- {what}: `{_rel(path, base)}`{mark}")
            lines.append("")
    return "\n".join(lines)


def _image_uri(path: Path) -> str | None:
    suffix = Path(path).suffix.lower().lstrip(".")
    mime = {"png": "image/png", "jpg": "image/jpeg", "jpeg": "image/jpeg"}.get(suffix)
    if mime is None or not Path(path).exists():
        return None
    return f"data:{mime};base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def to_html(doc: Document, base: Path) -> str:
    esc = html.escape
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{esc(doc.title)}</title>",
        "<style>body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;"
        "padding:0 1em;line-height:1.45}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 8px;text-align:left;font-size:0.92em}"
        "th{background:#f0f0f0}img{max-width:100%;border:1px solid #ddd}"
        "figcaption{font-style:italic;color:#444}code{background:#f4f4f4}</style>",
        "</head><body>",
        f"<h1>{esc(doc.title)}</h1>",
    ]
    for block in doc.blocks:
        if isinstance(block, Heading):
            parts.append(f"<h{block.level}>{esc(block.text)}</h{block.level}>")
        elif isinstance(block, Paragraph):
            parts.append(f"<p>{esc(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{esc(str(h))}</th>" for h in block.header)
            body = "".join(
                "<tr>" + "".join(f"<td>{esc(str(c))}</td>" for c in row) + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><tr>{head}</tr>{body}</table>")
        elif isinstance(block, Figure):
            uri = _image_uri(block.path)
            img = f"<img src='{uri}' alt='{esc(block.caption)}'>" if uri else "(figure missing)"
            parts.append(f"<figure>{img}<figcaption>{esc(block.caption)}</figcaption></figure>")
        elif isinstance(block, Bullets):
            parts.append("<ul>" + "".join(f"<li>{esc(i)}</li>" for i in block.items) + "</ul>")
        elif isinstance(block, FileList):
            items = "".join(
                f"<li>{esc(what)}: <code>{esc(_rel(path, base))}</code>"
                + ("" if Path(path).exists() else " (missing)")
                + "</li>"
                for what, path in block.files
            )
            parts.append(f"<ul>{items}</ul>")
    parts.append("</body></html>")
    return "\n".join(parts)


def write_document(doc: Document, folder: Path, stem: str = "index") -> tuple[Path, Path]:
    """Write folder/stem.md and folder/stem.html; returns both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    md_path, html_path = folder / f"{stem}.md", folder / f"{stem}.html"
    md_path.write_text(to_markdown(doc, folder), encoding="utf-8")
    html_path.write_text(to_html(doc, folder), encoding="utf-8")
    return md_path, html_path
