"""The load run's accounting: every 2xx the receiver gave is a message the worker received (200) or
one in the quarantine (202), and the queue's oldest-message age per interval.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import unittest

from tools.checks.load import account_for_2xx, ages_over_time


def receipt(message_id, at, waited):
    return {"function": "webhook-worker", "messageId": message_id, "source": None, "receivedAt": at,
            "waitedSeconds": waited}


class Accounting(unittest.TestCase):
    def test_every_200_is_a_message_received_once_however_often_it_was_received(self):
        receipts = [receipt("a", 1, 0.1), receipt("b", 2, 0.1), receipt("b", 40, 0.2)]
        account = account_for_2xx({"200": 2, "401": 5}, receipts, quarantined=0, redriven=0)
        self.assertTrue(account["accountedFor"])
        self.assertEqual(account["messagesTheWorkerReceived"], 2)

    def test_a_200_without_its_message_is_not_accounted_for(self):
        account = account_for_2xx({"200": 3}, [receipt("a", 1, 0.1), receipt("b", 2, 0.1)], 0, 0)
        self.assertFalse(account["accountedFor"])

    def test_a_202_must_be_in_the_quarantine_and_a_redriven_message_counts_once(self):
        receipts = [receipt("a", 1, 0.1), receipt("a-again-after-redrive", 9, 0.1)]
        self.assertTrue(account_for_2xx({"200": 1, "202": 2}, receipts, quarantined=2, redriven=1)["accountedFor"])
        self.assertFalse(account_for_2xx({"200": 1, "202": 2}, receipts, quarantined=1, redriven=1)["accountedFor"])


class Ages(unittest.TestCase):
    def test_each_interval_keeps_its_count_and_longest_wait(self):
        receipts = [receipt("a", 100.5, 0.2), receipt("b", 104, 1.5), receipt("c", 111, 0.3)]
        self.assertEqual(ages_over_time(receipts, started=100, interval=10), [
            {"fromSecond": 0, "received": 2, "oldestWaitedSeconds": 1.5},
            {"fromSecond": 10, "received": 1, "oldestWaitedSeconds": 0.3},
        ])
