"""Convertit le notebook entre .ipynb et un texte « percent » (cellules `# %%`) pour l'éditer.

    python tools/nb.py split finetuning-projet.ipynb notebook.pct.py   # .ipynb -> texte
    python tools/nb.py join notebook.pct.py finetuning-projet.ipynb    # texte -> .ipynb (sorties vides)

Le texte sert seulement à éditer (il est ignoré par git) : le notebook reste la seule source.
"""

import hashlib
import json
import re
import sys

HEADER = re.compile(r"^# %%(?: \[(markdown)\])?(?: tags=(\[.*\]))?\s*$")


def split(ipynb_path: str, text_path: str) -> None:
    """Écrit chaque cellule du notebook dans un fichier texte « percent »."""
    nb = json.load(open(ipynb_path, encoding="utf-8"))
    parts = []
    for cell in nb["cells"]:
        tags = cell.get("metadata", {}).get("tags", [])
        head = "# %%" + (" [markdown]" if cell["cell_type"] == "markdown" else "")
        head += f" tags={json.dumps(tags)}" if tags else ""
        source = "".join(cell["source"])
        if cell["cell_type"] == "markdown":
            source = "\n".join(("# " + line).rstrip() for line in source.split("\n"))
        parts.append(head + "\n" + source + "\n")
    open(text_path, "w", encoding="utf-8").write("\n".join(parts))


def previous_cell_ids(ipynb_path: str) -> dict:
    """Identifiants des cellules du notebook existant, par contenu (pour des diffs git lisibles)."""
    try:
        cells = json.load(open(ipynb_path, encoding="utf-8"))["cells"]
    except (OSError, ValueError):
        return {}
    ids = {}
    for cell in cells:
        ids.setdefault("".join(cell["source"]), []).append(cell["id"])
    return ids


def cell_id(source: str, previous_ids: dict, used: set) -> str:
    """Reprend l'identifiant d'une cellule inchangée, sinon en dérive un du contenu."""
    for candidate in previous_ids.get(source, []):
        if candidate not in used:
            used.add(candidate)
            return candidate
    digest = hashlib.sha1(source.encode("utf-8")).hexdigest()
    candidate, extra = digest[:8], 0
    while candidate in used:
        extra += 1
        candidate = f"{digest[:8]}-{extra}"
    used.add(candidate)
    return candidate


def join(text_path: str, ipynb_path: str) -> None:
    """Reconstruit le notebook (sorties et compteurs vides) depuis le texte « percent »."""
    cells, current = [], None
    for line in open(text_path, encoding="utf-8").read().split("\n"):
        match = HEADER.match(line)
        if match:
            current = {"kind": match.group(1) or "code", "tags": json.loads(match.group(2) or "[]"), "lines": []}
            cells.append(current)
        elif current is not None:
            current["lines"].append(line)
    previous_ids = previous_cell_ids(ipynb_path)
    used = set()
    nb_cells = []
    for cell in cells:
        lines = cell["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        if cell["kind"] == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines)
        entry = {
            "cell_type": cell["kind"],
            "id": cell_id(source, previous_ids, used),
            "metadata": {"tags": cell["tags"]} if cell["tags"] else {},
            "source": source.splitlines(keepends=True),
        }
        if cell["kind"] == "code":
            entry.update(execution_count=None, outputs=[])
        nb_cells.append(entry)
    notebook = {
        "cells": nb_cells,
        "metadata": {
            "accelerator": "GPU",
            "colab": {"provenance": [], "gpuType": "T4"},
            "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
            "language_info": {"name": "python"},
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    with open(ipynb_path, "w", encoding="utf-8") as handle:
        json.dump(notebook, handle, ensure_ascii=False, indent=1)
        handle.write("\n")


if __name__ == "__main__":
    command, source, target = sys.argv[1:4]
    {"split": split, "join": join}[command](source, target)
