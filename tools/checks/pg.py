"""psql for the checks: one query against the Postgres mirror's database, its rows as lists of text."""

import subprocess


def psql(url, query):
    result = subprocess.run(["psql", url, "-AtF", "\t", "-c", query], capture_output=True, text=True, timeout=120)
    if result.returncode != 0:
        raise RuntimeError(f"psql: {result.stderr.strip()}")
    return [line.split("\t") for line in result.stdout.splitlines()]
