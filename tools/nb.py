"""Convertit le notebook entre .ipynb et un texte « percent » (cellules `# %%`) pour l'éditer.

    python tools/nb.py split finetuning-projet.ipynb notebook.pct.py   # .ipynb -> texte
    python tools/nb.py join notebook.pct.py finetuning-projet.ipynb    # texte -> .ipynb (sorties vides)

Le texte sert seulement à éditer (il est ignoré par git) : le notebook reste la seule source.
"""

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
    nb_cells = []
    for index, cell in enumerate(cells):
        lines = cell["lines"]
        while lines and not lines[-1].strip():
            lines.pop()
        if cell["kind"] == "markdown":
            lines = [line[2:] if line.startswith("# ") else line.lstrip("#") for line in lines]
        source = "\n".join(lines)
        entry = {
            "cell_type": cell["kind"],
            "id": f"cell-{index:03d}",
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
