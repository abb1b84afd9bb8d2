"""Installe ou vérifie les dépendances du projet (bibliothèque standard uniquement).

Utilisation :
    python3 setup_env.py             crée .venv à côté de ce script et y installe requirements.txt
    python3 setup_env.py --dev       idem, avec requirements-dev.txt (tests, papermill, ruff)
    python3 setup_env.py --check     vérifie l'interpréteur courant, sans rien installer
    %run setup_env.py --notebook     cellule d'installation du notebook : installe seulement sur
                                     Colab (torch de Colab conservé), ailleurs vérifie et affiche ;
                                     si un module déjà importé a changé, redémarre la session Colab
    %run setup_env.py --notebook --no-restart
                                     idem, mais demande seulement de redémarrer

Les versions sont fixées une seule fois, dans PINS ; requirements.txt les reprend à l'identique
(un test le vérifie).
"""

import argparse
import importlib
import importlib.metadata
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import venv
from dataclasses import dataclass
from pathlib import Path

# Versions, en un seul endroit. Pile d'entraînement : versions exactes, testées ensemble.
# Ce que Colab fournit déjà : bornes inférieures seulement, pour ne rien remplacer inutilement.
PINS = [
    "transformers==5.23.0",
    "peft==0.21.2",
    "accelerate==1.15.0",
    'bitsandbytes==0.50.2; platform_system != "Darwin"',
    "datasets==5.2.0",
    "numpy>=1.26",
    "matplotlib>=3.8",
    "tqdm>=4.66",
    "tabulate>=0.9",
    "scikit-learn>=1.4",
    "pandas>=2.0",
]
# torch figure dans requirements.txt (environnements virtuels) mais n'est jamais installé ni
# modifié sur Colab : la version de Colab est passée à pip comme contrainte.
TORCH_REQUIREMENT = "torch>=2.6"
# transformers 5.x exige Python 3.11 ou plus récent.
PYTHON_MIN = (3, 11)

ROOT = Path(__file__).resolve().parent
SCRIPT = Path(__file__).resolve()
PIP_TAIL_LINES = 20

# Nom de distribution -> nom(s) d'import, quand ils diffèrent.
IMPORT_NAMES = {
    "scikit-learn": ("sklearn",),
    "huggingface-hub": ("huggingface_hub",),
    "pyyaml": ("yaml",),
    "pillow": ("PIL",),
    "protobuf": ("google.protobuf",),
}

STATE_OK = "ok"
STATE_MISSING = "missing"
STATE_MISMATCH = "mismatch"
STATE_SKIPPED = "skipped"


# ---------------------------------------------------------------- versions (PEP 440 simplifiée)

_VERSION_RE = re.compile(
    r"^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.]?(?P<pre_l>alpha|beta|preview|pre|rc|a|b|c)[-_.]?(?P<pre_n>\d+)?)?"
    r"(?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d+)?)?"
    r"(?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d+)?)?"
    r"(?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$",
    re.IGNORECASE,
)
_PRE_PHASES = {
    "a": 0,
    "alpha": 0,
    "b": 1,
    "beta": 1,
    "c": 2,
    "rc": 2,
    "pre": 2,
    "preview": 2,
}
_INF = float("inf")


@dataclass(frozen=True)
class Version:
    """Version analysée : époque, numéros, pré/post/dev-release et partie locale."""

    epoch: int
    release: tuple[int, ...]
    pre: tuple[int, int] | None = None
    post: int | None = None
    dev: int | None = None
    local: str | None = None

    def key(self) -> tuple:
        """Clé de tri PEP 440 (la partie locale est ignorée)."""
        release = list(self.release)
        while len(release) > 1 and release[-1] == 0:
            release.pop()
        if self.pre is not None:
            pre: tuple = self.pre
        elif self.dev is not None and self.post is None:
            pre = (-1, 0)
        else:
            pre = (_INF, 0)
        post = -1 if self.post is None else self.post
        dev = _INF if self.dev is None else self.dev
        return (self.epoch, tuple(release), pre, post, dev)


def parse_version(text: str) -> Version:
    """Analyse une version (« 2.8.0+cu126 », « 5.0.0rc1 »…) ; ValueError si illisible."""
    match = _VERSION_RE.match(text or "")
    if match is None:
        raise ValueError(f"version illisible : {text!r}")
    pre = None
    if match["pre_l"]:
        pre = (_PRE_PHASES[match["pre_l"].lower()], int(match["pre_n"] or 0))
    post = None
    if match["post_n1"] is not None:
        post = int(match["post_n1"])
    elif match["post_l"]:
        post = int(match["post_n2"] or 0)
    dev = int(match["dev_n"] or 0) if match["dev_l"] else None
    local = match["local"].lower().replace("-", ".").replace("_", ".") if match["local"] else None
    return Version(
        epoch=int(match["epoch"] or 0),
        release=tuple(int(part) for part in match["release"].split(".")),
        pre=pre,
        post=post,
        dev=dev,
        local=local,
    )


def compare_versions(left: str, right: str) -> int:
    """Renvoie -1, 0 ou 1 selon que left est plus ancienne, égale ou plus récente que right."""
    a, b = parse_version(left).key(), parse_version(right).key()
    return (a > b) - (a < b)


def _release_prefix_matches(version: Version, prefix: tuple[int, ...]) -> bool:
    """Vrai si les premiers numéros de version valent prefix (zéros ajoutés au besoin)."""
    release = version.release + (0,) * max(0, len(prefix) - len(version.release))
    return release[: len(prefix)] == prefix


def _split_specifier(specifier: str) -> list[tuple[str, str]]:
    """Découpe « >=1.0,<2 » en [(">=", "1.0"), ("<", "2")] ; ValueError si mal formé."""
    clauses = []
    for part in specifier.replace(" ", "").split(","):
        if not part:
            continue
        match = re.fullmatch(r"(===|==|!=|<=|>=|~=|<|>)(.+)", part)
        if match is None:
            raise ValueError(f"contrainte de version illisible : {part!r}")
        clauses.append((match[1], match[2]))
    return clauses


def _clause_matches(version_text: str, version: Version, op: str, target: str) -> bool:
    """Teste une seule clause (opérateur, version) sur une version installée."""
    if op == "===":
        return version_text.strip().lower() == target.lower()
    if target.endswith(".*"):
        if op not in ("==", "!="):
            raise ValueError(f"joker interdit avec {op} : {target!r}")
        prefix = parse_version(target[:-2])
        same = version.epoch == prefix.epoch and _release_prefix_matches(version, prefix.release)
        return same if op == "==" else not same
    wanted = parse_version(target)
    a, b = version.key(), wanted.key()
    if op == "~=":
        if len(wanted.release) < 2:
            raise ValueError(f"~= demande au moins deux numéros : {target!r}")
        return a >= b and _release_prefix_matches(version, wanted.release[:-1])
    equal = a == b and (wanted.local is None or version.local == wanted.local)
    results = {
        "==": equal,
        "!=": not equal,
        ">=": a >= b,
        "<=": a <= b,
        ">": a > b,
        "<": a < b,
    }
    return results[op]


def version_satisfies(version_text: str, specifier: str) -> bool:
    """Vrai si la version respecte toutes les clauses (« >=2.6 », « ==0.50.2 »…)."""
    clauses = _split_specifier(specifier)
    try:
        version = parse_version(version_text)
    except ValueError:
        return False
    return all(_clause_matches(version_text, version, op, target) for op, target in clauses)


# ---------------------------------------------------------------- marqueurs d'environnement

_MARKER_TOKEN_RE = re.compile(
    r"""\s*(?:
        (?P<string>'[^']*'|"[^"]*")
      | (?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)
      | (?P<bool>and\b|or\b)
      | (?P<paren>[()])
      | (?P<name>[A-Za-z_][A-Za-z0-9_.]*)
    )""",
    re.VERBOSE,
)


def default_environment() -> dict[str, str]:
    """Valeurs des variables de marqueur pour l'interpréteur courant."""
    return {
        "platform_system": platform.system(),
        "sys_platform": sys.platform,
        "python_version": "{}.{}".format(*sys.version_info[:2]),
        "python_full_version": platform.python_version(),
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "os_name": os.name,
        "implementation_name": sys.implementation.name,
        "platform_python_implementation": platform.python_implementation(),
    }


def _tokenize_marker(marker: str) -> list[tuple[str, str]]:
    """Découpe un marqueur en jetons (genre, texte)."""
    tokens, position = [], 0
    while position < len(marker):
        if marker[position:].strip() == "":
            break
        match = _MARKER_TOKEN_RE.match(marker, position)
        if match is None or match.end() == position:
            raise ValueError(f"marqueur illisible près de {marker[position:]!r}")
        kind = match.lastgroup
        tokens.append((kind, " ".join(match[kind].split())))
        position = match.end()
    return tokens


def _compare_marker_values(left: str, op: str, right: str) -> bool:
    """Compare deux valeurs de marqueur : comme des versions si possible, sinon comme du texte."""
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    try:
        parse_version(left)
        return version_satisfies(left, f"{op}{right}")
    except ValueError:
        pass
    text_ops = {
        "==": left == right,
        "===": left == right,
        "!=": left != right,
        "<": left < right,
        "<=": left <= right,
        ">": left > right,
        ">=": left >= right,
    }
    if op not in text_ops:
        raise ValueError(f"opérateur {op!r} inutilisable sur {left!r}")
    return text_ops[op]


class _MarkerParser:
    """Analyseur descendant : or < and < comparaison ou parenthèses."""

    def __init__(self, tokens: list[tuple[str, str]], environment: dict[str, str]):
        self.tokens = tokens
        self.index = 0
        self.environment = environment

    def peek(self) -> tuple[str, str] | None:
        """Jeton courant, ou None à la fin."""
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def take(self, kind: str) -> str:
        """Consomme un jeton du genre attendu."""
        token = self.peek()
        if token is None or token[0] != kind:
            raise ValueError(f"marqueur mal formé : {kind} attendu, trouvé {token}")
        self.index += 1
        return token[1]

    def parse(self) -> bool:
        """Évalue tout le marqueur."""
        value = self.parse_or()
        if self.peek() is not None:
            raise ValueError(f"marqueur mal formé : jeton en trop {self.peek()}")
        return value

    def parse_or(self) -> bool:
        """Évalue une suite de « or »."""
        value = self.parse_and()
        while self.peek() == ("bool", "or"):
            self.index += 1
            right = self.parse_and()
            value = value or right
        return value

    def parse_and(self) -> bool:
        """Évalue une suite de « and »."""
        value = self.parse_atom()
        while self.peek() == ("bool", "and"):
            self.index += 1
            right = self.parse_atom()
            value = value and right
        return value

    def parse_atom(self) -> bool:
        """Évalue une parenthèse ou une comparaison."""
        if self.peek() == ("paren", "("):
            self.index += 1
            value = self.parse_or()
            self.take("paren")
            return value
        left = self.parse_value()
        op = self.take("op")
        right = self.parse_value()
        return _compare_marker_values(left, op, right)

    def parse_value(self) -> str:
        """Lit une chaîne entre guillemets ou une variable d'environnement."""
        token = self.peek()
        if token is not None and token[0] == "string":
            self.index += 1
            return token[1][1:-1]
        name = self.take("name")
        if name not in self.environment:
            raise ValueError(f"variable de marqueur inconnue : {name!r}")
        return self.environment[name]


def evaluate_marker(marker: str | None, environment: dict[str, str] | None = None) -> bool:
    """Évalue un marqueur PEP 508 (platform_system, python_version…, and/or) ; vide = vrai."""
    if not marker or not marker.strip():
        return True
    env = default_environment() if environment is None else environment
    return _MarkerParser(_tokenize_marker(marker), env).parse()


# ---------------------------------------------------------------- exigences

_REQUIREMENT_RE = re.compile(
    r"^\s*(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*"
    r"(?P<extras>\[[^\]]*\])?\s*(?P<spec>[^;]*?)\s*(?:;\s*(?P<marker>.*?))?\s*$"
)


@dataclass(frozen=True)
class Requirement:
    """Une exigence : nom, extras, contrainte de version et marqueur éventuel."""

    name: str
    specifier: str = ""
    marker: str | None = None
    extras: str = ""

    @property
    def key(self) -> str:
        """Nom normalisé (PEP 503)."""
        return normalize_name(self.name)

    @property
    def install_spec(self) -> str:
        """Ce qui est passé à pip (sans le marqueur, déjà évalué)."""
        return f"{self.name}{self.extras}{self.specifier}"


def normalize_name(name: str) -> str:
    """Normalise un nom de paquet (« Scikit_Learn » -> « scikit-learn »)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_requirement(text: str) -> Requirement:
    """Analyse « nom[extras]contrainte ; marqueur » ; ValueError si mal formé."""
    match = _REQUIREMENT_RE.match(text)
    if match is None:
        raise ValueError(f"exigence illisible : {text!r}")
    spec = match["spec"].strip()
    if spec.startswith("(") and spec.endswith(")"):
        spec = spec[1:-1]
    spec = ",".join(f"{op}{target}" for op, target in _split_specifier(spec))
    marker = match["marker"].strip() if match["marker"] else None
    return Requirement(match["name"], spec, marker or None, match["extras"] or "")


def read_requirements(path: Path) -> list[str]:
    """Lit un fichier requirements (commentaires ôtés, « -r » suivis, autres options ignorées)."""
    specs = []
    for raw in Path(path).read_text(encoding="utf-8").splitlines():
        line = re.sub(r"(^|\s)#.*$", "", raw).strip()
        if not line:
            continue
        if line.startswith(("-r ", "--requirement ")):
            specs.extend(read_requirements(Path(path).parent / line.split(maxsplit=1)[1]))
        elif not line.startswith("-"):
            specs.append(line)
    return specs


# ---------------------------------------------------------------- état de l'environnement


@dataclass(frozen=True)
class PackageStatus:
    """État d'une exigence : ok, manquante, mauvaise version ou non requise ici."""

    requirement: Requirement
    state: str
    installed: str | None = None

    @property
    def needs_install(self) -> bool:
        """Vrai si pip doit l'installer."""
        return self.state in (STATE_MISSING, STATE_MISMATCH)


def is_colab() -> bool:
    """Vrai si le code tourne dans Google Colab."""
    return "google.colab" in sys.modules or "COLAB_RELEASE_TAG" in os.environ


def installed_version(name: str) -> str | None:
    """Version installée d'une distribution, ou None si elle est absente."""
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def check_requirement(spec: str, environment: dict[str, str] | None = None) -> PackageStatus:
    """Compare une exigence à ce qui est installé."""
    requirement = parse_requirement(spec)
    if not evaluate_marker(requirement.marker, environment):
        return PackageStatus(requirement, STATE_SKIPPED)
    version = installed_version(requirement.name)
    if version is None:
        return PackageStatus(requirement, STATE_MISSING)
    if requirement.specifier and not version_satisfies(version, requirement.specifier):
        return PackageStatus(requirement, STATE_MISMATCH, version)
    return PackageStatus(requirement, STATE_OK, version)


def check_all(specs: list[str], environment: dict[str, str] | None = None) -> list[PackageStatus]:
    """Compare toutes les exigences à ce qui est installé."""
    env = default_environment() if environment is None else environment
    return [check_requirement(spec, env) for spec in specs]


def format_status(status: PackageStatus, installing: bool = False) -> str:
    """Une ligne lisible par paquet (✅ / ⬇️ / 🔁 / ⏭️)."""
    req = status.requirement
    wanted = req.specifier or "toute version"
    action = f" → installation de {req.install_spec}" if installing else ""
    if status.state == STATE_OK:
        return f"✅ {req.name} {status.installed} : OK ({wanted})"
    if status.state == STATE_MISSING:
        return f"⬇️ {req.name} : manquant (requis {wanted}){action}"
    if status.state == STATE_MISMATCH:
        return f"🔁 {req.name} {status.installed} : mauvaise version (requis {wanted}){action}"
    return f"⏭️ {req.name} : non requis ici ({req.marker})"


def print_statuses(statuses: list[PackageStatus], installing: bool = False) -> None:
    """Affiche une ligne par paquet."""
    for status in statuses:
        print(format_status(status, installing))


def python_is_recent_enough() -> bool:
    """Vrai si l'interpréteur est assez récent pour transformers 5.x ; sinon l'affiche."""
    if sys.version_info[:2] >= PYTHON_MIN:
        return True
    needed = ".".join(map(str, PYTHON_MIN))
    print(f"⚠️ Python {platform.python_version()} : transformers 5.x demande Python ≥ {needed}.")
    return False


# ---------------------------------------------------------------- pip et redémarrage


def run_command(command: list[str]) -> subprocess.CompletedProcess:
    """Lance une commande ; stdout et stderr sont capturés ensemble."""
    return subprocess.run(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        check=False,
    )


def pip_install_command(python: str, specs: list[str], constraints: Path | None) -> list[str]:
    """Commande pip install -q pour l'interpréteur donné, avec un fichier de contraintes."""
    command = [python, "-m", "pip", "install", "-q", *specs]
    if constraints is not None:
        command += ["-c", str(constraints)]
    return command


def write_torch_constraint(directory: Path) -> Path | None:
    """Écrit « torch==<version installée> » dans un fichier de contraintes ; None sans torch."""
    version = installed_version("torch")
    if version is None:
        return None
    path = Path(directory) / "contraintes-torch.txt"
    path.write_text(f"torch=={version}\n", encoding="utf-8")
    return path


def report_pip_failure(packages: list[str], output: str, returncode: int) -> None:
    """Explique l'échec de pip : paquets visés et dernières lignes de sa sortie."""
    tail = (output or "").rstrip().splitlines()[-PIP_TAIL_LINES:]
    lines = [
        f"❌ pip a échoué (code {returncode}) en installant : {', '.join(packages)}",
        f"Dernières lignes de la sortie de pip ({len(tail)}) :",
        *(f"    {line}" for line in tail),
        "Vérifiez la connexion réseau et les versions ci-dessus, puis relancez.",
    ]
    print("\n".join(lines), file=sys.stderr, flush=True)


def installed_distributions() -> dict[str, str]:
    """Instantané {nom normalisé: version} de toutes les distributions installées."""
    versions = {}
    for dist in importlib.metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            versions[normalize_name(name)] = dist.version
    return versions


def changed_distributions(before: dict[str, str], after: dict[str, str]) -> set[str]:
    """Distributions ajoutées, retirées ou changées de version entre deux instantanés."""
    return {name for name in before.keys() | after.keys() if before.get(name) != after.get(name)}


def _modules_by_distribution() -> dict[str, set[str]]:
    """{distribution normalisée: noms de modules de premier niveau} d'après les métadonnées."""
    mapping: dict[str, set[str]] = {}
    try:
        packages = importlib.metadata.packages_distributions()
    except (OSError, ValueError, KeyError):  # métadonnées abîmées : IMPORT_NAMES suffit
        return mapping
    for module, dists in packages.items():
        for dist in dists:
            mapping.setdefault(normalize_name(dist), set()).add(module)
    return mapping


def loaded_modules(distributions: set[str]) -> list[str]:
    """Modules déjà importés dans ce processus qui appartiennent à ces distributions."""
    by_dist = _modules_by_distribution()
    loaded = set()
    for dist in map(normalize_name, distributions):
        names = set(IMPORT_NAMES.get(dist, ())) | {dist.replace("-", "_")}
        names |= by_dist.get(dist, set())
        loaded |= {name for name in names if name in sys.modules}
    return sorted(loaded)


def restart_kernel() -> None:
    """Tue le processus du noyau : Colab redémarre alors la session."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.kill(os.getpid(), getattr(signal, "SIGKILL", 9))


def print_restart_instruction(modules: list[str]) -> None:
    """Demande de redémarrer la session après une mise à jour de modules déjà importés."""
    print(
        f"⚠️ Modules déjà importés et modifiés par l'installation : {', '.join(modules)}.\n"
        "   Redémarrez la session : menu « Exécution > Redémarrer la session », puis\n"
        "   « Exécution > Tout exécuter ».",
        flush=True,
    )


# ---------------------------------------------------------------- modes


def install_on_colab(statuses: list[PackageStatus], restart: bool = True) -> int:
    """Installe en un seul appel pip ce qui manque, torch de Colab figé par une contrainte."""
    to_install = [status for status in statuses if status.needs_install]
    if not to_install:
        print("✅ Rien à installer : toutes les dépendances sont déjà là, à la bonne version.")
        return 0
    specs = [status.requirement.install_spec for status in to_install]
    print(f"⏳ Installation de {len(specs)} paquet(s) : {' '.join(specs)}", flush=True)
    before = installed_distributions()
    with tempfile.TemporaryDirectory() as tmp:
        constraints = write_torch_constraint(Path(tmp))
        result = run_command(pip_install_command(sys.executable, specs, constraints))
    if result.returncode != 0:
        report_pip_failure(specs, result.stdout, result.returncode)
        return 1
    importlib.invalidate_caches()
    changed = {status.requirement.key for status in to_install}
    changed |= changed_distributions(before, installed_distributions())
    modules = loaded_modules(changed)
    if not modules:
        print("✅ Installation terminée : inutile de redémarrer la session.")
        return 0
    print_restart_instruction(modules)
    if restart:
        print("🔄 Redémarrage automatique de la session…", flush=True)
        restart_kernel()
    return 0


def print_torch_on_colab() -> None:
    """Affiche la version de torch fournie par Colab, qui n'est jamais modifiée."""
    version = installed_version("torch")
    if version is None:
        print("⚠️ torch absent : installez-le d'abord (il n'est jamais installé par ce script).")
        return
    wanted = parse_requirement(TORCH_REQUIREMENT).specifier
    mark = "✅" if version_satisfies(version, wanted) else f"⚠️ (requis {wanted})"
    print(f"{mark} torch {version} : version de Colab conservée (contrainte pour pip)")


def notebook_mode(restart: bool = True) -> int:
    """Cellule d'installation : installe sur Colab ; ailleurs vérifie et affiche seulement."""
    if is_colab():
        print("Colab détecté : installation de ce qui manque (torch de Colab inchangé).")
        print_torch_on_colab()
        statuses = check_all(PINS)
        print_statuses(statuses, installing=True)
        return install_on_colab(statuses, restart)
    print("Hors Colab : vérification seulement, rien n'est installé.")
    python_ok = python_is_recent_enough()
    statuses = check_all([*PINS, TORCH_REQUIREMENT])
    print_statuses(statuses)
    if python_ok and not any(status.needs_install for status in statuses):
        print("✅ Environnement complet.")
        return 0
    print(
        "⚠️ Environnement incomplet. Dans un terminal, à la racine du projet, lancez :\n"
        "     python3 setup_env.py --dev\n"
        "   puis ouvrez ce notebook avec le noyau de .venv (ou : pip install -r "
        "requirements.txt dans votre propre environnement)."
    )
    return 0


def check_mode() -> int:
    """Vérifie l'interpréteur courant ; 0 si tout est en ordre, 1 sinon."""
    print(f"Vérification de {sys.executable}")
    python_ok = python_is_recent_enough()
    statuses = check_all([*PINS, TORCH_REQUIREMENT])
    print_statuses(statuses)
    missing = [status.requirement.name for status in statuses if status.needs_install]
    if python_ok and not missing:
        print("✅ Tout est en ordre.")
        return 0
    if missing:
        print(f"❌ À installer ou corriger : {', '.join(missing)}")
    return 1


def venv_python(venv_dir: Path) -> Path:
    """Chemin de l'interpréteur d'un environnement virtuel."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def create_venv(venv_dir: Path) -> None:
    """Crée un environnement virtuel avec pip, par le module venv."""
    venv.EnvBuilder(with_pip=True).create(str(venv_dir))


def shell_mode(dev: bool = False) -> int:
    """Crée .venv à côté du script si besoin, puis y installe requirements(-dev).txt."""
    python_is_recent_enough()
    venv_dir = ROOT / ".venv"
    python = venv_python(venv_dir)
    if python.exists():
        print(f"Environnement virtuel existant : {venv_dir}")
    else:
        print(f"Création de l'environnement virtuel : {venv_dir}", flush=True)
        create_venv(venv_dir)
    requirements = ROOT / ("requirements-dev.txt" if dev else "requirements.txt")
    # torch est laissé à requirements.txt (torch>=2.6). Sur la machine de CI, .ci/run installe
    # d'abord torch==2.13.0 (build CPU) : pip le garde, puisqu'il satisfait déjà la borne.
    print(
        f"⏳ Installation de {requirements.name} dans {python} (plusieurs minutes)…",
        flush=True,
    )
    result = run_command([str(python), "-m", "pip", "install", "-r", str(requirements)])
    if result.returncode != 0:
        report_pip_failure(read_requirements(requirements), result.stdout, result.returncode)
        return 1
    check = run_command([str(python), str(SCRIPT), "--check"])
    print(check.stdout.rstrip())
    if check.returncode == 0:
        print(f"Activez l'environnement : source {venv_dir / 'bin' / 'activate'}")
    return check.returncode


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Lit les options de la ligne de commande."""
    parser = argparse.ArgumentParser(
        prog="setup_env.py",
        description="Installe ou vérifie les dépendances du projet.",
    )
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--notebook",
        action="store_true",
        help="cellule du notebook : installe sur Colab, ailleurs vérifie seulement",
    )
    mode.add_argument(
        "--check",
        action="store_true",
        help="vérifie l'interpréteur courant (code 0 si tout va bien, 1 sinon)",
    )
    parser.add_argument(
        "--dev",
        action="store_true",
        help="installe aussi requirements-dev.txt dans .venv",
    )
    parser.add_argument(
        "--no-restart",
        action="store_true",
        help="avec --notebook sur Colab : ne redémarre pas la session, demande seulement de le faire",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Point d'entrée ; renvoie le code de sortie."""
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.notebook:
        return notebook_mode(restart=not args.no_restart)
    if args.check:
        return check_mode()
    return shell_mode(dev=args.dev)


if __name__ == "__main__":
    raise SystemExit(main())
