"""Charge les fonctions du notebook pour les tester une à une.

Le notebook reste l'unique source du code : on en extrait les imports, les définitions (fonctions,
classes) et les assignations de la cellule `parameters`, sans exécuter le reste. Les tests
fournissent les variables globales dont une fonction a besoin (LABEL_NAMES, llm_tokenizer…).
"""

import ast
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "finetuning-projet.ipynb"


def code_cells(path: Path = NOTEBOOK) -> list[dict]:
    """Cellules de code du notebook."""
    return [
        cell
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]
        if cell["cell_type"] == "code"
    ]


def python_source(cell: dict) -> str:
    """Source d'une cellule sans les lignes magiques IPython (% et !)."""
    lines = "".join(cell["source"]).split("\n")
    return "\n".join(
        line[: len(line) - len(line.lstrip())] + "pass"
        if line.lstrip().startswith(("%", "!"))
        else line
        for line in lines
    )


def is_literal_constant(node: ast.Assign) -> bool:
    """Vrai pour `NOM_EN_MAJUSCULES = <littéral>` (constante du notebook)."""
    names = [target.id for target in node.targets if isinstance(target, ast.Name)]
    if len(names) != len(node.targets) or not all(name.isupper() for name in names):
        return False
    try:
        ast.literal_eval(node.value)
    except ValueError:
        return False
    return True


def notebook_namespace(**overrides) -> dict:
    """Espace de noms avec les imports, paramètres et définitions du notebook, plus `overrides`."""
    namespace = {"__name__": "notebook_under_test", **overrides}
    for cell in code_cells():
        tree = ast.parse(python_source(cell))
        is_parameters = "parameters" in cell.get("metadata", {}).get("tags", [])
        kept = [
            node
            for node in tree.body
            if isinstance(node, ast.Import | ast.ImportFrom | ast.FunctionDef | ast.ClassDef)
            or (isinstance(node, ast.Assign) and (is_parameters or is_literal_constant(node)))
        ]
        exec(compile(ast.Module(body=kept, type_ignores=[]), str(NOTEBOOK), "exec"), namespace)
        namespace.update(overrides)
    return namespace


def cpu_llm_namespace(tokenizer, label_names: list, **overrides) -> dict:
    """Fonctions LLM du notebook réglées comme sur un CPU (fp32), avec ce tokenizer."""
    import torch

    return notebook_namespace(
        CUDA=False,
        USE_BF16=False,
        USE_FP16=False,
        LLM_DTYPE=torch.float32,
        LABEL_NAMES=label_names,
        N_LABELS=len(label_names),
        LABEL_IDS=list(range(len(label_names))),
        LABEL_TO_ID={name: i for i, name in enumerate(label_names)},
        llm_tokenizer=tokenizer,
        **overrides,
    )
