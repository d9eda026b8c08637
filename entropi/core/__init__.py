"""L0 core: constants, errors, logs, private files (one atomic write), crypto, percentiles.

Nothing here imports another entropi package.
"""
