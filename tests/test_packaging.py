"""The project's entry points: README commands, CI, Dockerfile, console script."""

import re
import tomllib

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
