"""TLS in front of the local AWS, as AWS answers: a certificate authority made for the run, and one
TLS endpoint per service (AWS gives each service a host of its own, so a function opens one
connection, and does one handshake, per service it calls), each passing the bytes on to moto.

The functions trust the authority through the standard `SSL_CERT_FILE` (shared/aws-adapters/src/sdk.rs)
and reach each service at its `AWS_ENDPOINT_URL_<SERVICE>=https://127.0.0.1:PORT`.
Used by the cold-start bench (`tools/checks/cold_start.py --tls`).
"""

import asyncio
import datetime
import ipaddress
import os
import ssl
import threading

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tools.localstack.loopback import free_port, wait_for_port


def make_authority(directory):
    """A throwaway authority and a certificate for 127.0.0.1 signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    validity = (now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=1))

    def certificate(subject, issuer, public_key, signing_key, extensions):
        builder = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(public_key)
                   .serial_number(x509.random_serial_number()).not_valid_before(validity[0])
                   .not_valid_after(validity[1]))
        for extension, critical in extensions:
            builder = builder.add_extension(extension, critical=critical)
        return builder.sign(signing_key, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tripletex-webhooks local authority")])
    ca = certificate(ca_name, ca_name, ca_key.public_key(), ca_key,
                     [(x509.BasicConstraints(ca=True, path_length=0), True),
                      (x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False, data_encipherment=False,
                                     key_agreement=False, encipher_only=False, decipher_only=False), True),
                      (x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)])
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = certificate(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]), ca_name,
                       key.public_key(), ca_key,
                       [(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False),
                        (x509.BasicConstraints(ca=False, path_length=None), True),
                        (x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), False),
                        (x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False)])
    paths = tuple(os.path.join(directory, name) for name in ("ca.pem", "cert.pem", "key.pem"))
    with open(paths[0], "wb") as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths[1], "wb") as handle:
        handle.write(leaf.public_bytes(serialization.Encoding.PEM))
    with open(paths[2], "wb") as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


class TlsFront:
    """TLS endpoints on free loopback ports, each passing its connections to `upstream_port`, served by
    a thread of their own until `stop()`."""

    def __init__(self, upstream_port, certificate, key, endpoints):
        self.upstream_port = upstream_port
        self.context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.context.load_cert_chain(certificate, key)
        self.ports = [free_port() for _ in range(endpoints)]
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        for port in self.ports:
            asyncio.run_coroutine_threadsafe(self.listen(port), self.loop).result(timeout=10)
            wait_for_port(port, 10)

    async def listen(self, port):
        await asyncio.start_server(self.pass_on, "127.0.0.1", port, ssl=self.context)

    async def pass_on(self, client_reader, client_writer):
        try:
            upstream_reader, upstream_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_writer.close()
            return

        async def pipe(reader, writer):
            try:
                while data := await reader.read(65536):
                    writer.write(data)
                    await writer.drain()
            except (ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        await asyncio.gather(pipe(client_reader, upstream_writer), pipe(upstream_reader, client_writer))

    def stop(self):
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=5)
