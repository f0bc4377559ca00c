"""The one exception type the project raises for bad input.

Every message names what is wrong and where (file, record, field or config key), so that the
command line can print it on one line and exit non-zero.
"""


class GeniesError(Exception):
    """Bad input: a malformed file, an unknown name, a missing or corrupt artifact."""
