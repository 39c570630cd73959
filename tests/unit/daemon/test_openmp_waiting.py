"""How the daemon tells OpenMP to wait (docs/engine.md, "A short spin instead of PASSIVE")."""

from __future__ import annotations

from chatterbox_tray.daemon.__main__ import set_openmp_waiting


def test_linux_gets_a_short_spin_and_other_platforms_passive() -> None:
    linux: dict[str, str] = {}
    set_openmp_waiting(linux, "linux")
    assert linux == {"GOMP_SPINCOUNT": "20000"}
    for platform in ("darwin", "win32"):
        other: dict[str, str] = {}
        set_openmp_waiting(other, platform)
        assert other == {"OMP_WAIT_POLICY": "PASSIVE"}


def test_the_users_own_setting_wins() -> None:
    for env in ({"OMP_WAIT_POLICY": "ACTIVE"}, {"GOMP_SPINCOUNT": "0"}):
        before = dict(env)
        set_openmp_waiting(env, "linux")
        assert env == before
