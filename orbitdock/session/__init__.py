"""One session's state and the rules that change it, shared by the daemon and clients.

``core.SessionCore`` turns backend events into wire events and rows; ``reducer`` applies
wire events to a ``SessionState`` (the daemon and every client mirror run the same one);
``tools`` keeps tool rows, ``approvals`` the approval FIFO, ``row`` the session row's
changed fields, ``display`` names and output tails, ``restart_policy`` the actor's
restart budget, ``life`` the supervisor's view of a session (live, restarting, failed).
"""
