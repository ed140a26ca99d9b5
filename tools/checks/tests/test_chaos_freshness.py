"""The chaos report's freshness: from each object's last change in Tripletex to its copy being written,
by what wrote it.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import unittest

from tools.checks import chaos
from tools.checks.chaos import freshness_by_source, parse_rfc3339


class Freshness(unittest.TestCase):
    def test_each_source_gets_its_percentiles_and_objects_without_a_copy_or_a_time_are_left_out(self):
        base = parse_rfc3339("2026-12-01T10:00:00Z")
        truth = [{"companyId": 100, "type": "customer", "id": i, "changedAt": base} for i in range(1, 102)]
        truth.append({"companyId": 100, "type": "customer", "id": 500, "changedAt": None})
        items = {f"default#customer#{i}": {"updatedAt": {"S": f"2026-12-01T10:00:{i % 60:02d}.500000000Z"},
                                           "source": {"S": "webhook"}} for i in range(1, 101)}
        items["default#customer#101"] = {"updatedAt": {"S": "2026-12-01T10:05:00Z"}, "source": {"S": "resync"}}
        items["default#customer#500"] = {"updatedAt": {"S": "2026-12-01T10:00:01Z"}}

        freshness = freshness_by_source(truth, items)

        self.assertEqual(freshness["resync"], {"objects": 1, "p50": 300.0, "p99": 300.0, "max": 300.0})
        webhook = freshness["webhook"]
        self.assertEqual(webhook["objects"], 100)
        self.assertEqual(webhook["max"], 59.5)
        self.assertLess(webhook["p50"], webhook["p99"])

    def test_the_workers_times_read_to_the_nanosecond(self):
        self.assertAlmostEqual(parse_rfc3339("1970-01-01T00:00:01.250000001Z"), 1.250000001, places=6)


if __name__ == "__main__":
    unittest.main()


class AStalledWorkloadFailsAtOnce(unittest.TestCase):
    def driver(self):
        return object.__new__(chaos.Chaos)  # check_workload reads nothing of the stack

    def test_a_workload_that_died_fails_the_run_with_the_simulators_words(self):
        status = {"changes": 2872, "workloadRunning": False,
                  "workloadError": "the workload stopped at 2872 of 30000 changes: ValueError('x')"}
        with self.assertRaises(SystemExit) as stopped:
            self.driver().check_workload(status, (None, 0))
        self.assertIn("stopped at 2872 of 30000", str(stopped.exception))

    def test_a_workload_without_progress_for_a_minute_fails_the_run(self):
        status = {"changes": 100, "workloadRunning": True, "workloadError": None}
        driver = self.driver()
        progress = driver.check_workload(status, (None, 0))
        self.assertEqual(progress[0], 100)
        ago = progress[1] - chaos.Chaos.STALLED_AFTER - 1
        with self.assertRaises(SystemExit) as stopped:
            driver.check_workload(status, (100, ago))
        self.assertIn("made no change for 60 s", str(stopped.exception))
        moving = {**status, "changes": 101}
        self.assertEqual(driver.check_workload(moving, (100, ago))[0], 101)


class ChangedAfterTheLastLook(unittest.TestCase):
    def test_a_delete_dropped_after_the_last_reconciliation_began_is_told_apart_not_counted_wrong(self):
        truth = {"deleted": True, "version": 3, "value": {}, "missedWhileDisabled": False,
                 "lastChangeDropped": True, "changedAt": 1000.0}
        live = {"deleted": {"BOOL": False}, "version": {"N": "3"}, "value": {"S": "{}"}}
        self.assertEqual(chaos.verdict(truth, live, last_look_began=999.0), "changedAfterLastLook")
        self.assertEqual(chaos.verdict(truth, live, last_look_began=1001.0), "resurrected",
                         "deleted before the last look began: the copy is wrong")
        self.assertEqual(chaos.verdict({**truth, "lastChangeDropped": False}, live, last_look_began=999.0),
                         "resurrected", "its webhook came: the copy is wrong")
