"""Fill saas/locale/ru/LC_MESSAGES/messages.po from a JSON file of {msgid: msgstr} (maintenance aid).

Usage: python scripts/i18n_fill.py translations.json
Run `make messages` first so the catalog holds every msgid.
"""
import json
import sys
from pathlib import Path

from babel.messages.pofile import read_po, write_po

PO = Path(__file__).resolve().parent.parent / "saas/locale/ru/LC_MESSAGES/messages.po"
pairs = json.loads(Path(sys.argv[1]).read_text())
with PO.open("rb") as fh:
    catalog = read_po(fh, locale="ru")
filled = 0
for message in catalog:
    if message.id and isinstance(message.id, str) and message.id in pairs:
        message.string = pairs[message.id]
        message.flags.discard("fuzzy")
        filled += 1
with PO.open("wb") as fh:
    write_po(fh, catalog, width=0, omit_header=False)
missing = [m.id for m in catalog if m.id and not m.string]
print(f"filled {filled}; untranslated {len(missing)}")
for m in missing:
    print("  missing:", repr(m))
