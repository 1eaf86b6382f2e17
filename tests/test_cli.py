"""The installed entry points: ``vrex-dre`` and ``python -m ...`` work from any folder."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from sim.cli import COMMANDS, main

VENV_BIN = Path(sys.executable).parent


def _run(args, cwd):
    # A clean environment: no PYTHONPATH pointing back at the project.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_module_entry_point_runs_outside_the_project(tmp_path):
    done = _run([sys.executable, "-m", "sim.run", "hcu", "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert "input keys" in done.stdout


def test_console_command_lists_every_subcommand(tmp_path):
    done = _run([str(VENV_BIN / "vrex-dre"), "--help"], tmp_path)
    assert done.returncode == 0, done.stderr
    for name in COMMANDS:
        assert name in done.stdout


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_subcommand_has_help(name, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([name, "--help"])
    assert exit_info.value.code == 0
    assert "usage:" in capsys.readouterr().out


def test_unknown_subcommand_is_an_error(capsys):
    assert main(["frobnicate"]) == 2
    assert "unknown subcommand 'frobnicate'" in capsys.readouterr().err
    assert main([]) == 2
