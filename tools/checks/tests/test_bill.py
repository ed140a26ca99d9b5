"""The bill's arithmetic: DynamoDB's item sizes and write units, the index entry, the batch a batching
window gathers, and each line of a bill from given measurements.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import unittest

from tools.checks import bill


def measured(**changes):
    inputs = dict(receiver_ms=5.2, worker_ms_per_batch=21.0, worker_batch_measured=7, receiver_log_bytes=215,
                  receiver_log_lines=1, worker_log_bytes_per_record=226, worker_log_lines_per_record=1,
                  worker_log_bytes_per_batch=300, worker_log_lines_per_batch=1,
                  item_sizes=[380], index_sizes=[111],
                  template={"ReceiverMemorySize": 128, "WorkerMemorySize": 128, "WorkerBatchSize": 10,
                            "WorkerBatchingWindowSeconds": 1})
    inputs.update(changes)
    return bill.Measured(**inputs)


class ItemSizes(unittest.TestCase):
    def test_names_and_values_count_as_dynamodb_counts_them(self):
        # "pk" (2) + "acme#product#1" (14); "version" (7) + 3 digits (2 + 1); "deleted" (7) + a bool (1)
        item = {"pk": {"S": "acme#product#1"}, "version": {"N": "123"}, "deleted": {"BOOL": False}}
        self.assertEqual(bill.item_size(item), 2 + 14 + 7 + 3 + 7 + 1)

    def test_numbers_count_significant_digits_only(self):
        self.assertEqual(bill.number_size("1000"), 2, "one significant digit")
        self.assertEqual(bill.number_size("-12.5"), 3)
        self.assertEqual(bill.number_size("0"), 2)

    def test_a_map_or_list_adds_three_bytes_and_one_per_element(self):
        value = {"M": {"a": {"S": "xy"}, "b": {"L": [{"N": "1"}, {"NULL": True}]}}}
        list_size = 3 + (1 + 2) + (1 + 1)
        self.assertEqual(bill.value_size(value), 3 + (1 + 1 + 2) + (1 + 1 + list_size))

    def test_a_write_costs_a_unit_per_started_kilobyte(self):
        self.assertEqual([bill.write_units(size) for size in (0, 1024, 1025, 4000)], [1, 1, 2, 4])

    def test_an_index_holds_its_keys_the_table_s_and_what_it_projects(self):
        item = {"pk": {"S": "p"}, "typeKey": {"S": "t"}, "objectId": {"N": "1"}, "version": {"N": "2"},
                "value": {"S": "x" * 2000}}
        entry = bill.index_entry(item, ["pk"], ["typeKey", "objectId"], ["version", "deleted"])
        self.assertEqual(sorted(entry), ["objectId", "pk", "typeKey", "version"])
        self.assertIsNone(bill.index_entry({"pk": {"S": "p"}}, ["pk"], ["typeKey"], []), "not in the index")


class Lines(unittest.TestCase):
    def test_a_batching_window_gathers_what_arrives_while_it_is_open_up_to_the_batch_size(self):
        self.assertAlmostEqual(bill.batch_size(0.4, 1, 10), 1.4)
        self.assertEqual(bill.batch_size(50, 1, 10), 10)
        self.assertEqual(bill.batch_size(0.4, 0, 10), 1)

    def test_a_trickle_pays_each_batch_s_receive_delete_and_call_and_every_webhook_its_writes(self):
        lines = {what.split(" (")[0]: dollars for what, _, _, dollars in bill.lines(measured(), 0.4)}
        self.assertAlmostEqual(lines["SQS SendMessage"], 0.40)
        self.assertAlmostEqual(lines["SQS ReceiveMessage with messages"], 0.40 / 1.4)
        self.assertAlmostEqual(lines["Lambda requests, worker"], 0.20 / 1.4)
        self.assertAlmostEqual(lines["DynamoDB table writes"], 0.625)
        self.assertAlmostEqual(lines["DynamoDB index writes"], 0.625)
        # 215 + 226 bytes and an event's 26 each, and a batch's 300 + 26 over its 1.4 webhooks, at
        # $0.50 a GB.
        self.assertAlmostEqual(lines["CloudWatch Logs"], (215 + 226 + 2 * 26 + (300 + 26) / 1.4) / 1e3 * 0.50)
        # 5.2 ms is billed 6 ms: 6,000 s x 0.125 GB.
        self.assertAlmostEqual(lines["Lambda duration, receiver"], 6_000 * 0.125 * bill.LAMBDA_ARM64_PER_GB_SECOND)

    def test_an_item_over_a_kilobyte_costs_two_units(self):
        lines = {what.split(" (")[0]: dollars for what, _, _, dollars in bill.lines(measured(item_sizes=[1500]), 0.4)}
        self.assertAlmostEqual(lines["DynamoDB table writes"], 2 * 0.625)


if __name__ == "__main__":
    unittest.main()
