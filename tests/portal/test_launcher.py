"""portal/launcher.py `test`: two pytest parts (parallel, then serial) read as one run by CI."""

import os
import sys

from portal import launcher, supervision

PARALLEL = "========= 1 failed, 700 passed, 3 skipped, 120 deselected, 2 warnings in 150.20s (0:02:30) ========="
SERIAL = "============ 118 passed, 2 skipped, 702 deselected, 1 warning in 95.00s (0:01:35) ============"


def test_the_last_line_adds_up_both_parts_like_a_pytest_summary():
    line = launcher._combined_summary([PARALLEL, SERIAL])
    assert launcher.SUMMARY.match(line)
    assert "1 failed, 818 passed, 5 skipped, 3 warnings in 245.20s (0:04:05)" in line
    assert "deselected" not in line


def test_a_part_that_ran_nothing_leaves_the_other_parts_counts():
    line = launcher._combined_summary([PARALLEL, "================ 822 deselected in 3.10s ================"])
    assert "1 failed, 700 passed, 3 skipped, 2 warnings in 153.30s (0:02:33)" in line


def test_quiet_summaries_without_rules_count_too():
    line = launcher._combined_summary(["1 passed, 22 deselected in 13.80s", "23 deselected in 2.66s"])
    assert "1 passed in 16.46s (0:00:16)" in line


def test_the_run_fails_if_either_part_fails_and_a_part_without_tests_is_no_failure():
    assert launcher._combined_exit_code([0, 0]) == 0
    assert launcher._combined_exit_code([0, 5]) == 0
    assert launcher._combined_exit_code([5, 0]) == 0
    assert launcher._combined_exit_code([1, 0]) == 1
    assert launcher._combined_exit_code([0, 1]) == 1
    assert launcher._combined_exit_code([5, 2]) == 2
    assert launcher._combined_exit_code([5, 5]) == 5


def test_a_callers_own_selection_runs_pytest_once_as_asked():
    assert launcher._chooses_own_selection(["-m", "slow"])
    assert launcher._chooses_own_selection(["-n", "4", "tests/tenants"])
    assert launcher._chooses_own_selection(["-p", "no:xdist"])
    assert not launcher._chooses_own_selection(["tests/tenants", "-x", "-k", "keys"])


def test_a_child_that_keeps_dying_waits_longer_each_time_up_to_30_seconds_and_starts_over_after_a_long_run(tmp_path):
    child = supervision.Child("worker-drill", [sys.executable, "-c", "pass"], log=tmp_path / "drill.log")
    child.start(dict(os.environ))
    child.proc.wait()

    delays = [child.schedule_restart(child.started_at + 1) for _ in range(7)]

    assert delays == [1, 2, 4, 8, 16, 30, 30]
    assert child.schedule_restart(child.started_at + supervision.RESTART_RESET_AFTER) == 1
