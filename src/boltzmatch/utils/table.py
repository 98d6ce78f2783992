"""Plain-text summary tables, printed at the end of every command."""

from __future__ import annotations

from collections.abc import Sequence


def format_value(value) -> str:
    """Numbers with 4 significant digits (scientific when tiny or huge); everything else as str."""
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.4g}"
        return f"{value:.4f}".rstrip("0").rstrip(".") if abs(value) < 1e4 else f"{value:.1f}"
    return str(value)


def format_table(rows: Sequence[Sequence], header: Sequence[str] | None = None, title: str | None = None) -> str:
    """Left-aligned text columns; the first column is the label, the others right-aligned."""
    cells = [[format_value(c) for c in row] for row in rows]
    if header is not None:
        cells.insert(0, list(header))
    if not cells:
        return title or ""
    widths = [max(len(row[i]) for row in cells if i < len(row)) for i in range(max(map(len, cells)))]
    lines = []
    if title:
        lines.append(title)
    for n, row in enumerate(cells):
        parts = [row[0].ljust(widths[0])] + [c.rjust(widths[i + 1]) for i, c in enumerate(row[1:])]
        lines.append("  ".join(parts).rstrip())
        if n == 0 and header is not None:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def markdown_table(rows: Sequence[Sequence], header: Sequence[str]) -> str:
    """A Markdown (GitHub) table: ``header`` then ``rows``, cells formatted as :func:`format_table` does."""
    lines = ["| " + " | ".join(str(h) for h in header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(format_value(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
