"""The Binder environment (binder/) can run the package and its notebooks.

repo2docker builds the image from binder/requirements.txt and then runs binder/postBuild; nothing
else from pyproject.toml is installed (postBuild uses ``pip install --no-deps``). So every runtime
dependency of pyproject.toml -- the core and the ``widgets`` extra the notebooks use -- must be
pinned in requirements.txt, within pyproject's version range, and every third-party module the
notebooks import must come from a pinned distribution.
"""

from __future__ import annotations

import ast
import json
import os
import re
import sys
from importlib import metadata
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
BINDER = ROOT / "binder"
#: Extras of pyproject.toml that Binder must provide besides the core dependencies.
RUNTIME_EXTRAS = ("widgets",)


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)


def runtime_requirements() -> list[Requirement]:
    project = _pyproject()["project"]
    reqs = [Requirement(r) for r in project["dependencies"]]
    for extra in RUNTIME_EXTRAS:
        reqs += [Requirement(r) for r in project["optional-dependencies"][extra]]
    return [r for r in reqs if r.marker is None or r.marker.evaluate()]


def parse_requirements(text: str) -> tuple[dict[str, Requirement], list[str]]:
    """Pinned requirements by canonical name, and the pip options (index URLs) of the file."""
    pins: dict[str, Requirement] = {}
    options: list[str] = []
    for raw in text.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("-"):
            options.append(line)
            continue
        req = Requirement(line)
        name = canonicalize_name(req.name)
        assert name not in pins, f"{req.name} is listed twice in binder/requirements.txt"
        pins[name] = req
    return pins, options


def exact_version(req: Requirement) -> Version:
    specs = list(req.specifier)
    assert len(specs) == 1 and specs[0].operator == "==" and "*" not in specs[0].version, (
        f"binder/requirements.txt must pin {req.name} exactly (name==version); found {req}"
    )
    return Version(specs[0].version)


@pytest.fixture(scope="module")
def binder_pins():
    return parse_requirements((BINDER / "requirements.txt").read_text())


def test_parse_requirements_reads_pins_and_options():
    pins, options = parse_requirements(
        "# comment\n--extra-index-url https://x/cpu\nNumPy==2.0.1  # why\n\njupyter_bokeh==4.1.0\n"
    )
    assert options == ["--extra-index-url https://x/cpu"]
    assert sorted(pins) == ["jupyter-bokeh", "numpy"]
    assert exact_version(pins["numpy"]) == Version("2.0.1")
    with pytest.raises(AssertionError, match="exactly"):
        exact_version(Requirement("scipy>=1.10"))


def test_every_runtime_dependency_is_pinned_within_its_range(binder_pins):
    pins, _ = binder_pins
    required = runtime_requirements()
    assert {canonicalize_name(r.name) for r in required} >= {"numpy", "torch", "xarray", "ipywidgets", "holoviews"}
    missing = [str(r) for r in required if canonicalize_name(r.name) not in pins]
    assert not missing, f"binder/requirements.txt lacks runtime dependencies of pyproject.toml: {missing}"
    for req in required:
        pinned = exact_version(pins[canonicalize_name(req.name)])
        # A local build tag (2.13.0+cpu) satisfies the same ranges as its public version.
        public = Version(pinned.public)
        assert SpecifierSet(str(req.specifier)).contains(public, prereleases=True), (
            f"binder pins {req.name}=={pinned} but pyproject.toml asks for {req}"
        )


def test_torch_is_a_cpu_build(binder_pins):
    pins, options = binder_pins
    torch_version = exact_version(pins["torch"])
    assert torch_version.local == "cpu", f"pin the CPU wheel (torch=={torch_version.public}+cpu); got {torch_version}"
    assert any(
        o.split()[0] in ("--extra-index-url", "--index-url")
        and o.split()[-1].rstrip("/") == "https://download.pytorch.org/whl/cpu"
        for o in options
    ), "the CPU wheels of torch come from https://download.pytorch.org/whl/cpu; add it as --extra-index-url"


def test_runtime_matches_pyproject_python():
    text = (BINDER / "runtime.txt").read_text().strip()
    m = re.fullmatch(r"python-(\d+\.\d+)", text)
    assert m, f"binder/runtime.txt must read python-X.Y; got {text!r}"
    requires = SpecifierSet(_pyproject()["project"]["requires-python"])
    assert requires.contains(Version(m.group(1) + ".0")), f"Python {m.group(1)} is outside requires-python {requires}"


def _shell_lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip() and not ln.strip().startswith("#")]


def test_postbuild_fails_fast_and_installs_the_package_without_deps():
    post = BINDER / "postBuild"
    text = post.read_text()
    assert text.startswith("#!"), "postBuild needs a shebang line (repo2docker executes it)"
    assert os.access(post, os.X_OK), "postBuild must be executable (git update-index --chmod=+x binder/postBuild)"
    lines = _shell_lines(post)
    assert lines[0] == "set -e", f"postBuild must start with 'set -e'; its first command is {lines[0]!r}"
    installs = [ln for ln in lines if re.match(r"(python\S* -m )?pip install\b", ln)]
    assert installs, "postBuild must pip-install the package"
    words = installs[0].split()
    assert "--no-deps" in words, "dependencies come pinned from requirements.txt; install the package with --no-deps"
    assert words[-2:] == ["-e", "."] or words[-1] == ".", (
        f"postBuild should install this checkout (pip install --no-deps -e .); got {installs[0]!r}"
    )


def test_postbuild_is_executable_in_git():
    # The executable bit must be in the commit, not only in this checkout.
    import subprocess

    try:
        out = subprocess.run(
            ["git", "ls-files", "-s", "binder/postBuild"], cwd=ROOT, capture_output=True, text=True, check=True
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    if not out:
        pytest.skip("binder/postBuild is not committed yet")
    assert out.split()[0] == "100755", f"binder/postBuild is committed as mode {out.split()[0]}; it must be 100755"


def test_jupyterlab_opens_on_the_notebooks():
    text = (BINDER / "postBuild").read_text()
    m = re.search(r"default_url\s*=\s*['\"]/lab/tree/([^'\"]+)['\"]", text)
    assert m, "postBuild should set c.ServerApp.default_url to '/lab/tree/<notebooks folder>'"
    folder = ROOT / m.group(1)
    assert folder.is_dir() and sorted(folder.glob("0*.ipynb")), (
        f"JupyterLab would open on {folder}, which holds no notebooks"
    )


def _notebook_imports(path: Path) -> set[str]:
    nb = json.loads(path.read_text())
    modules: set[str] = set()
    for cell in nb["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython magics and shell escapes are not Python.
        source = "\n".join(ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                modules.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules.add(node.module.split(".")[0])
    return modules


def test_every_module_the_notebooks_import_is_pinned(binder_pins):
    pins, _ = binder_pins
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 4, f"expected the four notebooks in notebooks/; found {[p.name for p in notebooks]}"
    provided = metadata.packages_distributions()
    # Installed by repo2docker itself or by pinned packages' own requirements.
    base = {"ipython", "ipykernel", "jupyterlab", "notebook", "jupyter-server"}
    unpinned = {}
    for nb in notebooks:
        for module in _notebook_imports(nb):
            if module in sys.stdlib_module_names or module == "egu_widgets":
                continue
            dists = {canonicalize_name(d) for d in provided.get(module, [])}
            assert dists, f"{nb.name} imports {module!r}, which no installed distribution provides"
            if not dists & (set(pins) | base):
                unpinned[module] = sorted(dists)
    assert not unpinned, f"modules imported by the notebooks whose distributions Binder does not pin: {unpinned}"
