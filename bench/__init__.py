"""The benchmark harness behind ``make bench``: the goals service against a bare baseline."""
