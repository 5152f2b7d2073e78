"""orbitdock-load: the load, fault and bad-input tool.

It starts (or attaches to) a daemon, creates direct sessions against the load
model (a ``SimServer`` whose replies are derived from the prompt, so thousands of
turns need no script bookkeeping and a daemon restart leaves nothing stale),
optionally passive sessions written as rollout files, attaches subscriber
*processes* built on ``orbitdock.client.Subscription``, runs a bounded scenario
with faults, and checks at the end that nothing a client saw was lost or
duplicated (against the database and the model's transcript).

Modules: ``cli`` (flags, exit code), ``scenario`` (the run), ``subscribers``
(subscriber/driver processes), ``driver`` (turns and approvals), ``model`` (the
load model process; the daemon itself is ``orbitdock.harness.DaemonProcess``),
``faults`` (kill cycles, slow subscriber), ``fuzz`` (hostile frames), ``passive``
(rollout writer), ``verify`` (the loss check), ``report`` (numbers and tables).
"""
