"""L5 the process: daemon lifecycle, the callers loop, preflight (every check run would trip
over), sd_notify, the status file and the run lock.
"""
