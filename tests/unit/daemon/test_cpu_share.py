"""daemon/sysstats.CpuShare: threads follow what the other programs leave free."""

from __future__ import annotations

from chatterbox_tray.daemon.sysstats import CpuShare


class Counters:
    """A made-up machine: each reading advances the clock a second, with the CPU seconds given."""

    def __init__(self) -> None:
        self.now = self.busy = self.ours = 0.0
        self.others_per_s = 0.0
        self.ours_per_s = 0.0

    def __call__(self) -> tuple[float, float, float]:
        reading = (self.now, self.busy, self.ours)
        self.now += 1.0
        self.ours += self.ours_per_s
        self.busy += self.ours_per_s + self.others_per_s
        return reading


def share(cores: int) -> tuple[CpuShare, Counters]:
    counters = Counters()
    cpu = CpuShare(every_s=0.0, counters=counters)
    cpu.cores = cores
    return cpu, counters


def test_our_own_work_never_counts_against_us() -> None:
    cpu, counters = share(2)
    counters.ours_per_s = 2.0  # both cores ours
    assert [cpu.free_cores() for _ in range(5)] == [2] * 5
    assert cpu.others == 0.0


def test_a_busy_program_takes_a_core_and_gives_it_back_when_it_ends() -> None:
    cpu, counters = share(2)
    counters.ours_per_s, counters.others_per_s = 1.0, 1.0
    seen = [cpu.free_cores() for _ in range(4)]
    assert seen[0] == 2  # one reading is half way (smoothed): not yet
    assert seen[-1] == 1
    counters.others_per_s = 0.0
    assert [cpu.free_cores() for _ in range(4)][-1] == 2


def test_at_least_one_core_whatever_the_others_do() -> None:
    cpu, counters = share(4)
    counters.others_per_s = 16.0  # more than the machine: clamped to its cores
    assert [cpu.free_cores() for _ in range(6)][-1] == 1
    assert cpu.others <= 4.0


def test_the_real_counters_give_a_count_within_the_machine() -> None:
    cpu = CpuShare(every_s=0.0)
    counts = {cpu.free_cores() for _ in range(3)}
    assert counts <= set(range(1, cpu.cores + 1))
