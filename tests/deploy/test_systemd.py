"""deploy/systemd: every timer starts a service that exists, every service runs a command this
app has (with the same environment file), and deploy/env.example names only settings the app
reads."""

import re
import shlex
from pathlib import Path

import pytest

from app.config import Config

from ..conftest import ROOT

UNITS = ROOT / "deploy" / "systemd"
VENV_BIN = "/srv/village-points/.venv/bin/"


def parse(path: Path) -> dict[str, dict[str, list[str]]]:
    """A unit file's sections and keys (a key may repeat, as systemd allows)."""
    sections: dict[str, dict[str, list[str]]] = {}
    current = None
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        m = re.fullmatch(r"\[(\w+)\]", line)
        if m:
            current = sections.setdefault(m.group(1), {})
            continue
        key, sep, value = line.partition("=")
        assert sep and current is not None, f"{path.name}: {raw!r}"
        current.setdefault(key.strip(), []).append(value.strip())
    return sections


def services() -> list[Path]:
    return sorted(UNITS.glob("*.service"))


def test_every_timer_starts_a_service_of_ours_daily():
    timers = sorted(UNITS.glob("*.timer"))
    names = {t.stem for t in timers}
    assert names == {
        "village-points-notices",
        "village-points-backup",
        "village-points-housekeeping",
        "village-points-verify",
    }
    for timer in timers:
        unit = parse(timer)
        assert (UNITS / f"{timer.stem}.service").is_file()
        (calendar,) = unit["Timer"]["OnCalendar"]
        assert re.fullmatch(r"\*-\*-\* \d\d:\d\d", calendar), calendar
        assert unit["Timer"]["Persistent"] == ["true"]  # a missed run (power cut) runs at boot
        assert unit["Install"]["WantedBy"] == ["timers.target"]


@pytest.mark.parametrize("path", services(), ids=lambda p: p.name)
def test_every_service_runs_a_command_the_app_has(path, app):
    unit = parse(path)["Service"]
    assert unit["EnvironmentFile"] == ["/etc/village-points/env"]
    assert unit["WorkingDirectory"] == ["/srv/village-points"]
    assert unit["User"] == ["village-points"]
    commands = unit.get("ExecStartPre", []) + unit["ExecStart"]
    runner = app.test_cli_runner()
    for command in commands:
        argv = shlex.split(command)
        assert argv[0].startswith(VENV_BIN), argv
        tool = argv[0].removeprefix(VENV_BIN)
        if tool == "flask":
            assert argv[1:3] == ["--app", "wsgi"]
            args = [a for a in argv[3:] if not a.startswith("/")]  # paths, not commands
            args = [a for a in args if not a.isdigit() and not a.startswith("--")]
            shown = runner.invoke(args=[*args, "--help"])
            assert shown.exit_code == 0, (command, shown.output)
        else:
            assert tool == "gunicorn" and argv[-1] == "wsgi:app", argv
            assert "127.0.0.1:8000" in argv  # what the nginx upstream names
    if unit["Type"] == ["oneshot"]:
        assert path.with_suffix(".timer").is_file()


def test_env_example_names_only_settings_the_app_reads():
    names = {
        line.partition("=")[0]
        for line in (ROOT / "deploy" / "env.example").read_text().splitlines()
        if line and not line.startswith("#")
    }
    read = set(Config.from_environ("/tmp")) | {"DATABASE_URL", "INSTANCE_PATH", "FLASK_APP"}
    assert names <= read, names - read
    assert {"DATABASE_URL", "SECRET_KEY", "TRUSTED_PROXIES"} <= names


def test_nginx_upstream_is_the_gunicorn_of_the_service():
    nginx = (ROOT / "deploy" / "nginx" / "village-points.conf").read_text()
    assert "server 127.0.0.1:8000;" in nginx
