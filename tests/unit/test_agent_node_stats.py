"""The agent's node statistics: /proc parsing and the percentages the Agents tab shows."""

from __future__ import annotations

from workbay.agent.stats import NodeStats, read_cpu_times, read_meminfo

STAT1 = "cpu  100 0 100 700 100 0 0 0 0 0\ncpu0 1 2 3 4\n"
STAT2 = "cpu  200 0 200 800 100 0 0 0 0 0\n"
MEMINFO = "MemTotal:        1000 kB\nMemFree:          100 kB\nMemAvailable:     250 kB\n"


def test_parsers():
    assert read_cpu_times(STAT1) == (200, 1000)
    assert read_meminfo(MEMINFO) == (750 * 1024, 1000 * 1024)


def test_samples_give_cpu_after_the_second(tmp_path):
    proc = tmp_path / "proc"
    proc.mkdir()
    (proc / "stat").write_text(STAT1)
    (proc / "meminfo").write_text(MEMINFO)
    stats = NodeStats(str(tmp_path), proc=str(proc))
    first = stats.sample()
    assert "cpu_util" not in first and first["mem"]["pct"] == "75" and float(first["disk"]["pct"]) > 0
    (proc / "stat").write_text(STAT2)
    assert stats.sample()["cpu_util"] == {"pct": "66.67"}  # 200 busy of 300 jiffies
