"""Text helpers shared by every domain: transliteration and slugs for company addresses."""
from __future__ import annotations

import re

TRANSLIT = dict(zip(
    "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
    ["a", "b", "v", "g", "d", "e", "e", "zh", "z", "i", "y", "k", "l", "m", "n", "o", "p", "r", "s", "t", "u",
     "f", "kh", "ts", "ch", "sh", "shch", "", "y", "", "e", "yu", "ya"], strict=True,
))


def slugify(name: str) -> str:
    lowered = "".join(TRANSLIT.get(ch, ch) for ch in name.lower())
    slug = re.sub(r"[^a-z0-9]+", "-", lowered).strip("-")[:40].strip("-")
    return slug or "company"
