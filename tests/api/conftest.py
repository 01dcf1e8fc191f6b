"""The API's tests run against ``served`` (``tests/served.py``): a real server over HTTP on a
store filled by collection from simulated meters, a copy of it for each test module."""
