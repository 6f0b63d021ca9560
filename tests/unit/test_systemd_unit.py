"""The systemd unit of `service install`: a pure function of its inputs."""

from __future__ import annotations

import pytest

from queuectl.services.systemd import UnitInputs, env_text, stop_timeout, unit_name, unit_text


def inputs(**changes: object) -> UnitInputs:
    base = UnitInputs("queuectl-jobs.d", "/srv/app/jobs.d", ["/opt/venv/bin/queuectl"], 30, 5, None, True)
    return base._replace(**changes)


def settings(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)


def test_the_unit_runs_up_on_the_directory_in_the_foreground() -> None:
    s = settings(unit_text(inputs()))
    assert s["ExecStart"] == "/opt/venv/bin/queuectl up /srv/app/jobs.d"
    assert s["WorkingDirectory"] == "/srv/app/jobs.d"
    assert s["Restart"] == "on-failure"
    assert s["KillMode"] == "mixed"
    assert s["WantedBy"] == "default.target"
    assert "EnvironmentFile" not in s and "After" not in s  # no store given; the user manager has no network target


def test_the_stop_timeout_outlasts_stop_grace_and_kill_grace() -> None:
    s = settings(unit_text(inputs(stop_grace=120, kill_grace=7.5)))
    assert int(s["TimeoutStopSec"]) > 127.5
    assert stop_timeout(0, 0) > 0


def test_a_system_unit_waits_for_the_network_and_a_store_comes_from_its_file() -> None:
    s = settings(unit_text(inputs(user=False, env_file="/etc/systemd/system/queuectl-jobs.d.env")))
    assert s["WantedBy"] == "multi-user.target"
    assert s["After"] == "network-online.target"
    assert s["EnvironmentFile"] == "-/etc/systemd/system/queuectl-jobs.d.env"


def test_words_with_blanks_percent_and_dollar_are_quoted_as_systemd_reads_them() -> None:
    unit = inputs(command=["/usr/bin/python3", "-m", "queuectl"], directory="/srv/my $jobs 100%")
    s = settings(unit_text(unit))
    assert s["ExecStart"] == '/usr/bin/python3 -m queuectl up "/srv/my $$jobs 100%%"'
    assert s["WorkingDirectory"] == "/srv/my $jobs 100%%"


@pytest.mark.parametrize(
    ("directory", "name"),
    [
        ("/srv/app/jobs.d", "queuectl-jobs.d"),
        ("/srv/my jobs/", "queuectl-my-jobs"),
        ("/", "queuectl-root"),
        ("/x/été", "queuectl--t-"),
    ],
)
def test_the_unit_name_comes_from_the_directory(directory: str, name: str) -> None:
    assert unit_name(directory) == name


def test_the_environment_file_quotes_the_store() -> None:
    assert env_text('postgresql://u:p"w$@h/db') == 'QUEUECTL_DB="postgresql://u:p\\"w\\$@h/db"\n'
