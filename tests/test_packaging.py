"""The project's entry points: README commands, CI, Dockerfile, console script."""

import re
import sys
import tomllib
from pathlib import Path

import pytest

from app.paths import REPO


def _dockerfile_instructions():
    text = (REPO / "Dockerfile").read_text()
    joined = re.sub(r"\\\n", " ", text)
    out = []
    for line in joined.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, rest = line.partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def test_dockerfile_installs_the_project_and_serves_the_dashboards():
    ins = _dockerfile_instructions()
    keywords = [k for k, _ in ins]
    assert keywords[0] == "FROM" and re.match(r"python:3\.1[1-3]", ins[0][1])
    copied = {rest.split()[0] for k, rest in ins if k == "COPY"}
    assert {"app", "dashboards", "catalogs", "assets"} <= copied
    runs = " ".join(rest for k, rest in ins if k == "RUN")
    assert "pip install" in runs and "fumarole sample" in runs
    assert ("EXPOSE", "5006") in ins
    cmd = [rest for k, rest in ins if k == "CMD"]
    assert len(cmd) == 1 and '"fumarole", "serve"' in cmd[0]
    # every COPY source exists in the repository
    for k, rest in ins:
        if k == "COPY":
            for src in rest.split()[:-1]:
                assert (REPO / src).exists(), src


def test_readme_starts_with_the_two_commands_and_ci_runs_the_test_one():
    lines = [line.strip() for line in (REPO / "README.md").read_text().splitlines() if line.startswith("    ")]
    assert lines[:2] == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)
    makefile = (REPO / "Makefile").read_text()
    # the test target installs Debian's chromium when it is missing
    assert re.search(r"^test: .*chromium", makefile, re.M)
    assert "apt-get install -y -qq chromium" in makefile


def test_console_script_and_pins_are_declared():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert meta["project"]["name"] == "fumarole"
    assert meta["project"]["scripts"]["fumarole"] == "app.cli:main"
    deps = " ".join(meta["project"]["dependencies"])
    assert "cartopy>=0.24,<0.26" in deps  # the geoviews/cartopy 0.26 trap (FORMATS.md)
    text = (REPO / "pyproject.toml").read_text()
    assert "KeyError: 'lon_0'" in text or "'lon_0'" in text  # the pin says why


def test_dockerfile_runs_as_a_user_with_a_health_check_and_a_read_only_sample():
    ins = _dockerfile_instructions()
    keywords = [k for k, _ in ins]
    users = [rest for k, rest in ins if k == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert keywords.index("USER") < keywords.index("CMD")
    health = [rest for k, rest in ins if k == "HEALTHCHECK"]
    assert len(health) == 1 and "CMD" in health[0] and "http://127.0.0.1:5006/liveness" in health[0]
    runs = " ".join(rest for k, rest in ins if k == "RUN")
    installs = re.findall(r"pip install[^&;]*", runs)
    assert installs and not any(re.search(r"(^|\s)(-e|--editable)(\s|$)", i) for i in installs)
    assert "chmod -R a-w /data/sample" in runs
    env = " ".join(rest for k, rest in ins if k == "ENV")
    assert "FUMAROLE_STATE_DIR=/state" in env and "FUMAROLE_ARCHIVE=/data/sample" in env
    assert any(k == "VOLUME" and "/state" in rest for k, rest in ins)
    cmd = [rest for k, rest in ins if k == "CMD"][0]
    assert '"--address", "0.0.0.0"' in cmd


def test_the_wheel_lists_every_package_and_ships_the_resources():
    meta = tomllib.loads((REPO / "pyproject.toml").read_text())
    setup = meta["tool"]["setuptools"]
    on_disk = {".".join(p.parent.relative_to(REPO).parts) for p in (REPO / "app").rglob("__init__.py")}
    on_disk = {p for p in on_disk if "_resources" not in p}
    missing = on_disk - set(setup["packages"])
    assert not missing, f"packages missing from pyproject.toml: {missing}"
    assert setup["package-dir"] == {"app._resources.assets": "assets", "app._resources.catalogs": "catalogs",
                                    "app._resources.dashboards": "dashboards"}


def test_paths_find_the_resources_of_a_checkout():
    from app import paths

    assert paths.CHECKOUT and paths.RESOURCES == REPO
    assert (paths.DASHBOARDS / "volcplume.py").is_file() and (paths.CATALOGS / "sample.yaml").is_file()
    assert (paths.ASSETS / "gvp_holocene_volcanoes_votw490.csv").is_file()


def test_the_default_catalogue_follows_fumarole_archive(monkeypatch, tmp_path):
    from app.data.catalog import archive_root, open_catalog, product_info

    monkeypatch.setenv("FUMAROLE_ARCHIVE", str(tmp_path / "elsewhere"))
    monkeypatch.delenv("FUMAROLE_CATALOG", raising=False)
    cat = open_catalog()
    assert archive_root(cat) == str(tmp_path / "elsewhere")
    assert product_info(cat, "tropomi_so2").root_url == str(tmp_path / "elsewhere" / "tropomi")
    caliop = product_info(cat, "caliop_l1b").url
    assert caliop == str(tmp_path / "elsewhere" / "caliop/*/*/*/CAL_LID_L1-Standard-V4-*.hdf")
    # another catalogue is read as it is written
    assert archive_root(open_catalog("tiny")) == str(REPO / "data" / "tiny")


def _installed_venv(tmp_path):
    """A virtual environment with a non-editable install of a copy of the repository (uv, from its cache)."""
    import shutil
    import subprocess
    import sys

    uv = shutil.which("uv") or str(REPO / ".venv" / "bin" / "uv")
    if not Path(uv).exists():
        pytest.skip("uv is not installed: see docs/deploy.md for the manual check")
    src = tmp_path / "src"
    src.mkdir()
    for name in ("app", "assets", "catalogs", "dashboards"):
        shutil.copytree(REPO / name, src / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(REPO / name, src / name)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    subprocess.run([uv, "pip", "install", "-q", "-p", str(venv / "bin" / "python"), str(src)], check=True,
                   timeout=600)
    shutil.rmtree(src)  # nothing of the checkout is left to find
    return venv


@pytest.mark.slow
def test_a_non_editable_install_writes_the_sample_and_serves_it(tmp_path):
    import os
    import subprocess
    import urllib.request

    from conftest import _free_port, stop_process, wait_for_http

    venv = _installed_venv(tmp_path)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = dict(os.environ, FUMAROLE_STATE_DIR=str(tmp_path / "state"), FUMAROLE_ARCHIVE=str(tmp_path / "x"),
               BOKEH_LOG_LEVEL="warn")
    env.pop("FUMAROLE_CATALOG", None)
    fumarole = str(venv / "bin" / "fumarole")
    done = subprocess.run([fumarole, "sample", "--resolution", "tiny", "--out", str(tmp_path / "x"), "--products",
                           "tropomi", "--days", "2021-04-12", "--workers", "1"],
                          cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "x").glob("tropomi/2021/04/12/S5P_*.nc"))) == 15
    where = subprocess.run([str(venv / "bin" / "python"), "-c",
                            "import app.paths as p; from app.data.catalog import archive_root, open_catalog; "
                            "print(p.CHECKOUT, p.DASHBOARDS); print(archive_root(open_catalog()))"],
                           cwd=work, env=env, capture_output=True, text=True, check=True).stdout.splitlines()
    assert where[0] == f"False {venv}/lib/python3.{sys.version_info.minor}/site-packages/app/_resources/dashboards"
    assert where[1] == str(tmp_path / "x")
    port = _free_port()
    proc = subprocess.Popen([fumarole, "serve", "--port", str(port), "--no-warm"], cwd=work, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_for_http(f"http://127.0.0.1:{port}/liveness", proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/volcplume", timeout=120) as r:
            assert r.status == 200 and "<html" in r.read().decode().lower()
    finally:
        stop_process(proc, timeout_s=5)
