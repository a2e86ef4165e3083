"""Planning: recipe + rows -> every request, with its seed, output paths and exact cost.

A pure core (`core.plan`) with its parts in their own modules: step ordering (`order`),
row selection (`selection`), parameters (`parameters`), seeds (`seeds`), input images
(`images`), output paths (`outputs`, `paths`), and the tasks of a rerun (`rerun`).
"""

from __future__ import annotations

from .core import plan
from .keys import content_key, image_id
from .model import Plan, Task
from .seeds import MAX_SEED
from .session import DEFAULT_FILE

__all__ = ["DEFAULT_FILE", "MAX_SEED", "Plan", "Task", "content_key", "image_id", "plan"]
