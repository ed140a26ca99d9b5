"""The TLS front answers as the service behind it, to a client that trusts the run's authority, and
refuses a handshake to one that does not.

Run: .venv/bin/python -m unittest discover -s tools -t .   (scripts/test does)
"""

import ssl
import tempfile
import unittest
import urllib.error
import urllib.request

import boto3

from tools.localstack.loopback import start_moto
from tools.localstack.tls_front import TlsFront, make_authority


class TlsFrontTest(unittest.TestCase):
    def test_a_client_trusting_the_authority_reaches_moto_and_one_that_does_not_is_refused(self):
        moto, endpoint = start_moto()
        folder = tempfile.TemporaryDirectory()
        front = None
        try:
            authority, certificate, key = make_authority(folder.name)
            front = TlsFront(int(endpoint.rsplit(":", 1)[1]), certificate, key, 2)
            for port in front.ports:
                sqs = boto3.client("sqs", endpoint_url=f"https://127.0.0.1:{port}", region_name="eu-north-1",
                                   aws_access_key_id="local", aws_secret_access_key="local", verify=authority)
                url = sqs.create_queue(QueueName=f"through-{port}")["QueueUrl"]
                self.assertIn(f"through-{port}", url)
            with self.assertRaises(urllib.error.URLError) as refused:
                urllib.request.urlopen(f"https://127.0.0.1:{front.ports[0]}/", context=ssl.create_default_context(),
                                       timeout=10)
            self.assertIsInstance(refused.exception.reason, ssl.SSLCertVerificationError)
        finally:
            if front:
                front.stop()
            moto.terminate()
            moto.wait()
            folder.cleanup()


if __name__ == "__main__":
    unittest.main()
