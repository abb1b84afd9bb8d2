"""Doublures pour tester setup_env.py et la cellule d'installation : faux Colab, faux pip, copie du
script.

Le faux pip est un paquet `pip` placé en tête de PYTHONPATH : `python -m pip` le trouve avant le
vrai. Il note chacun de ses appels (arguments et contenu du fichier de contraintes) dans `pip-
calls.jsonl`, puis, selon son mode, échoue, ne fait rien, ou « installe » une distribution
factice (un dossier .dist-info ajouté au PYTHONPATH, que importlib.metadata voit comme un paquet
de plus).
"""

import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETUP_ENV = ROOT / "setup_env.py"

FAKE_PIP = """
import json
import sys
from pathlib import Path

FOLDER = Path(__file__).resolve().parents[1]
MODE = {mode!r}
args = sys.argv[1:]
constraints = Path(args[args.index("-c") + 1]).read_text(encoding="utf-8") if "-c" in args else None
with open(FOLDER / "pip-calls.jsonl", "a", encoding="utf-8") as calls:
    calls.write(json.dumps({{"args": args, "constraints": constraints}}) + "\\n")
if MODE == "fail":
    print("Collecting transformers==5.23.0")
    message = "ERROR: No matching distribution found for transformers==5.23.0 (pip simulé)"
    print(message, file=sys.stderr)
    sys.exit(1)
if MODE == "install":
    info = FOLDER / "paquet_simule-1.0.dist-info"
    info.mkdir(exist_ok=True)
    metadata = "Metadata-Version: 2.1\\nName: paquet-simule\\nVersion: 1.0\\n"
    (info / "METADATA").write_text(metadata, encoding="utf-8")
    print("Successfully installed paquet-simule-1.0")
"""

# Exigences que tout environnement de test satisfait, dont une que son marqueur écarte.
SATISFIED_PINS = (
    'PINS = ["packaging>=20", "nbformat>=5", \'tqdm>=999; platform_system == "Plan9"\']'
)


def make_fakes(folder: Path, pip_mode: str | None = None, colab: bool = False) -> Path:
    """Dossier à mettre en tête de PYTHONPATH : faux pip (fail, noop, install), faux Colab."""
    folder.mkdir(parents=True, exist_ok=True)
    if pip_mode is not None:
        (folder / "pip").mkdir()
        (folder / "pip" / "__init__.py").write_text("", encoding="utf-8")
        (folder / "pip" / "__main__.py").write_text(
            FAKE_PIP.format(mode=pip_mode), encoding="utf-8"
        )
    if colab:
        (folder / "google" / "colab").mkdir(parents=True)  # google reste un paquet-espace de noms
        (folder / "google" / "colab" / "__init__.py").write_text(
            '"""Faux Colab."""\n', encoding="utf-8"
        )
    return folder


def pip_calls(folder: Path) -> list[dict]:
    """Appels reçus par le faux pip, dans l'ordre."""
    path = folder / "pip-calls.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def copy_setup_env(folder: Path, *replacements: tuple[str, str]) -> Path:
    """Copie setup_env.py dans folder, avec des remplacements (regex, texte) de ses constantes."""
    text = SETUP_ENV.read_text(encoding="utf-8")
    for pattern, replacement in replacements:
        text, count = re.subn(
            pattern, lambda _match, new=replacement: new, text, count=1, flags=re.M | re.S
        )
        assert count == 1, f"motif absent de setup_env.py : {pattern}"
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "setup_env.py"
    target.write_text(text, encoding="utf-8")
    return target


def satisfied_pins() -> tuple[str, str]:
    """Remplacement de PINS par des exigences satisfaites ici."""
    return (r"^PINS = \[.*?^\]", SATISFIED_PINS)
