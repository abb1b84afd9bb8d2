"""Installe ou vérifie les dépendances du projet.

python3 setup_env.py          crée .venv à côté de ce script, y installe requirements.txt, le
                              vérifie
python3 setup_env.py --dev    idem avec requirements-dev.txt (tests, papermill, ruff, jupytext)
python3 setup_env.py --check  vérifie l'interpréteur courant, sans rien installer
%run setup_env.py --notebook  cellule du notebook : sur Colab, un seul appel à pip (torch de Colab
                              conservé), puis redémarrage de la session si un paquet a changé
                              (--no-restart : le demander seulement) ; ailleurs, vérifie et affiche

Codes de sortie (hors --notebook) : 0 en ordre, 1 versions à corriger, 2 option inconnue, 3
installation impossible (pip, venv), 4 Python trop ancien. Sous %run, exceptions et SystemExit sont
avalés et les globales du script recopiées dans le notebook : SETUP_ERROR, rempli dès le début, ne
passe à None qu'en fin de réussite, et la cellule lève une erreur s'il ne l'est pas. SETUP_VERSION
change avec ce protocole. Versions : une seule source, PINS et TORCH_REQUIREMENT (requirements.txt
les recopie, un test le vérifie) ; comparaisons par `packaging`, résolution des dépendances par pip.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import os
import signal
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

SETUP_ERROR = (
    "setup_env.py s'est arrêté sur une erreur inattendue (voir le message au-dessus). "
    "Relancez la cellule ; si l'erreur revient, signalez-la avec ce message."
)
SETUP_VERSION = 3

# Versions, en un seul endroit. Pile d'entraînement : versions exactes, testées ensemble.
# Ce que Colab fournit déjà : bornes inférieures, pour ne rien remplacer inutilement.
PINS = [
    "transformers==5.23.0",
    "peft==0.21.2",
    "accelerate==1.15.0",
    'bitsandbytes==0.50.2; platform_system != "Darwin"',
    "datasets==5.2.0",
    # transformers 5.23 et datasets 5.2 acceptent huggingface-hub >=1.31,<3 ; sans plafond, pip
    # prend la 2.x, que gradio et diffusers de Colab refusent.
    "huggingface-hub>=1.31,<2",
    "numpy>=1.26",
    "scipy>=1.11",
    "matplotlib>=3.8",
    "tqdm>=4.66",
    "tabulate>=0.9",
    "scikit-learn>=1.4",
    "pandas>=2.0",
]
# torch figure dans requirements.txt (environnements virtuels) mais n'est jamais installé ni
# modifié sur Colab : la version de Colab est passée à pip comme contrainte.
TORCH_REQUIREMENT = "torch>=2.6"
PYTHON_MIN = (3, 11)  # transformers 5.x

ROOT = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
PIP_TAIL_LINES = 20
EXIT_CHECK, EXIT_INSTALL, EXIT_PYTHON = 1, 3, 4


class SetupFailure(Exception):
    """Échec expliqué à l'utilisateur ; args : (code de sortie, message en français)."""


def require_python() -> None:
    """Refuse un Python plus ancien que PYTHON_MIN."""
    if sys.version_info[:2] < PYTHON_MIN:
        found, needed = ".".join(map(str, sys.version_info[:3])), ".".join(map(str, PYTHON_MIN))
        raise SetupFailure(
            EXIT_PYTHON,
            f"Python {found} est incompatible : transformers 5.x demande Python ≥ {needed}. "
            "Sur Colab, choisissez la version la plus récente de l'environnement d'exécution "
            "(Exécution > Modifier le type d'exécution) ; "
            f"ailleurs, installez Python {needed} ou plus récent.",
        )


def check(specs: list[str]) -> list[str]:
    """Compare les exigences aux versions installées, une ligne par paquet ; renvoie les écarts."""
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pip embarque sa propre copie de packaging
        from pip._vendor.packaging.requirements import Requirement
    importlib.invalidate_caches()
    problems = []
    for spec in specs:
        req = Requirement(spec)
        wanted = str(req.specifier) or "toute version"
        if req.marker is not None and not req.marker.evaluate():
            print(f"⏭️ {req.name} : non requis ici ({req.marker})")
            continue
        try:
            version = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            print(f"⬇️ {req.name} : absent (requis {wanted})")
            problems.append(f"{req.name} absent")
            continue
        if req.specifier.contains(version, prereleases=True):
            print(f"✅ {req.name} {version} ({wanted})")
        else:
            print(f"🔁 {req.name} {version} : mauvaise version (requis {wanted})")
            problems.append(f"{req.name} {version} au lieu de {wanted}")
    return problems


def pip_install(python: str, arguments: list[str], what: str) -> list[str]:
    """Lance `python -m pip install` ; renvoie sa sortie, ou lève SetupFailure avec ses
    dernières lignes."""
    command = [python, "-m", "pip", "install", *arguments]
    result = subprocess.run(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace"
    )
    lines = result.stdout.rstrip().splitlines()
    if result.returncode != 0:
        tail = "\n".join(f"    {line}" for line in lines[-PIP_TAIL_LINES:])
        raise SetupFailure(
            EXIT_INSTALL,
            f"pip a échoué (code {result.returncode}) en installant {what}. "
            f"Dernières lignes de pip :\n{tail}\n"
            "Vérifiez la connexion réseau et les versions ci-dessus, puis relancez.",
        )
    return lines


def installed_distributions() -> dict[str, str]:
    """Instantané {nom en minuscules : version} des distributions installées."""
    return {
        (dist.metadata["Name"] or "").lower(): dist.version
        for dist in importlib.metadata.distributions()
    }


def notebook_mode(restart: bool) -> None:
    """Cellule d'installation : installe sur Colab ; ailleurs vérifie et affiche seulement."""
    require_python()
    specs = [*PINS, TORCH_REQUIREMENT]
    if "google.colab" not in sys.modules and "COLAB_RELEASE_TAG" not in os.environ:
        print("Hors Colab : vérification seulement, rien n'est installé.")
        if check(specs):
            print(
                "⚠️ Environnement incomplet : le notebook continue, mais ses résultats peuvent "
                "différer. Dans un terminal, à la racine du projet : python3 setup_env.py --dev, "
                "puis ouvrez ce notebook avec le noyau de .venv."
            )
        else:
            print("✅ Environnement complet.")
        return
    before = installed_distributions()
    torch = before.get("torch")
    print(
        "Colab détecté : installation des versions épinglées "
        f"(torch {torch or 'absent'} de Colab conservé)…"
    )
    sys.stdout.flush()
    with tempfile.TemporaryDirectory() as folder:
        arguments = ["--progress-bar", "off", *PINS]
        if torch:
            constraints = Path(folder) / "torch-colab.txt"
            constraints.write_text(f"torch=={torch}\n", encoding="utf-8")
            arguments += ["-c", str(constraints)]
        lines = pip_install(sys.executable, arguments, "les dépendances du notebook")
    for line in lines:  # ce que pip a changé, et ses avertissements de conflit
        if (
            line.startswith(("Successfully installed", "ERROR", "WARNING"))
            and "pip version" not in line
        ):
            print(line)
    problems = check(specs)
    if problems:
        raise SetupFailure(
            EXIT_CHECK,
            f"après l'installation, versions incorrectes : {' ; '.join(problems)}. "
            "Relancez la cellule ; si l'écart demeure, voyez « Dépannage » dans le README.",
        )
    after = installed_distributions()
    changed = sorted(
        name for name in before.keys() | after.keys() if before.get(name) != after.get(name)
    )
    if not changed:
        print("✅ Rien à installer : toutes les versions étaient déjà les bonnes.")
        return
    print(f"🔁 Paquets modifiés : {', '.join(changed)}.")
    if not restart:
        raise SetupFailure(
            EXIT_CHECK,
            "paquets mis à jour, la session doit redémarrer pour les charger : "
            "Exécution > Redémarrer la session, puis Exécution > Tout exécuter.",
        )
    print(
        "🔄 La session redémarre pour charger ces versions "
        "(Colab signale un plantage : c'est voulu)."
    )
    print(
        "   Relancez ensuite Exécution > Tout exécuter : cette cellule n'installera plus rien.",
        flush=True,
    )
    # le noyau envoie ces lignes au notebook avant d'être arrêté (sinon elles peuvent se perdre)
    time.sleep(2)
    os.kill(os.getpid(), signal.SIGKILL)  # Colab relance alors un noyau neuf


def check_mode() -> None:
    """Vérifie l'interpréteur courant."""
    require_python()
    print(f"Vérification de {sys.executable}")
    problems = check([*PINS, TORCH_REQUIREMENT])
    if problems:
        raise SetupFailure(EXIT_CHECK, f"à installer ou corriger : {' ; '.join(problems)}.")
    print("✅ Tout est en ordre.")


def venv_mode(dev: bool) -> None:
    """Crée .venv à côté du script si besoin, y installe requirements(-dev).txt, puis le vérifie."""
    require_python()
    venv_dir = ROOT / ".venv"
    python = venv_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    if python.exists():
        print(f"Environnement virtuel existant : {venv_dir}")
    else:
        print(f"Création de l'environnement virtuel : {venv_dir}", flush=True)
        try:
            venv.EnvBuilder(with_pip=True).create(str(venv_dir))
        except (OSError, subprocess.CalledProcessError) as error:
            raise SetupFailure(
                EXIT_INSTALL,
                f"création de {venv_dir} impossible ({error}). Sous Debian ou Ubuntu, installez "
                "le paquet python3-venv ; supprimez le dossier .venv incomplet, puis relancez.",
            ) from error
    requirements = ROOT / ("requirements-dev.txt" if dev else "requirements.txt")
    # torch n'y est borné que par le bas : un torch déjà installé (build CPU de la CI) est gardé.
    print(f"⏳ Installation de {requirements.name} dans {python} (plusieurs minutes)…", flush=True)
    pip_install(str(python), ["-r", str(requirements)], requirements.name)
    result = subprocess.run([str(python), str(SCRIPT), "--check"], check=False)
    if result.returncode != 0:
        raise SetupFailure(
            result.returncode,
            f"{venv_dir} ne satisfait pas les versions demandées (voir au-dessus).",
        )
    print(f"Activez l'environnement : source {venv_dir / 'bin' / 'activate'}")


def main(argv: list[str] | None = None) -> int:
    """Lance le mode demandé ; met SETUP_ERROR à None en cas de succès et renvoie le code de
    sortie."""
    global SETUP_ERROR
    parser = argparse.ArgumentParser(
        prog="setup_env.py", description="Installe ou vérifie les dépendances."
    )
    mode = parser.add_mutually_exclusive_group()
    for option, text in (
        ("--notebook", "cellule du notebook"),
        ("--check", "vérifier"),
        ("--dev", "outils de dev"),
    ):
        mode.add_argument(option, action="store_true", help=text)
    parser.add_argument(
        "--no-restart", action="store_true", help="avec --notebook : demande le redémarrage"
    )
    args = parser.parse_args(argv)
    try:
        if args.notebook:
            notebook_mode(restart=not args.no_restart)
        elif args.check:
            check_mode()
        else:
            venv_mode(dev=args.dev)
    except SetupFailure as failure:
        code, SETUP_ERROR = failure.args
        print(f"❌ {SETUP_ERROR}", file=sys.stderr, flush=True)
        return code
    SETUP_ERROR = None
    return 0


if __name__ == "__main__":
    EXIT_CODE = main()
    # sous %run, SystemExit serait avalé : SETUP_ERROR fait foi
    if "--notebook" not in sys.argv[1:]:
        raise SystemExit(EXIT_CODE)
