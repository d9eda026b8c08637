"""L4 what happens in a window: the controller (state machine), the session (one conversation
from prime to flush), the window transcript, the pause rule, the simulated clock and the
egress rule (what may leave the machine).
"""
