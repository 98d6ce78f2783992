"""Workflows that chain the layers below: ``demo`` (the main job) and ``refine`` (simulate, label, fine-tune)."""

from .demo import demo, format_stages
from .refine import format_refine_summary, refine

__all__ = ["demo", "format_refine_summary", "format_stages", "refine"]
