"""The front desk: a local web page that names people at the door, paid per call by this process.

The browser never holds a key: it sends pictures to the desk server (app.py), which pays for
each `recall`/`enrol`/`forget` through the same `Client` the CLI uses (payer.py) and keeps
jobs prepaid in the background so a recognition never waits for a transaction.
"""
