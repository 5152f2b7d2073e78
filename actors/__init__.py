"""The orbitdockd actors: one pykka actor per file, talking only by messages.

Thread ownership (each resource has exactly one owner thread):
- the apsw write connection: the persistence actor's thread (checkpoints use a
  second connection owned by its checkpointer thread);
- the ROUTER and XPUB sockets: the gateway loop thread;
- each actor's inproc PUSH socket to the gateway: that actor's thread;
- the watchdog Observer: the watcher actor (its callbacks only ``tell``);
- a codex app-server's pipes: that process's reader/writer threads in the pool.
"""
