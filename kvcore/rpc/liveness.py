"""How a replica tells a hung central from a quiet one, in one place for both ends.

TCP keeps a connection to a stopped (SIGSTOP, hung, or partitioned without a reset)
central "up" for minutes, and gRPC keepalive pings are throttled by the server and
easy to misconfigure. So liveness is also checked by the application: central sends
a heartbeat batch (`ChangeBatch.heartbeat`, no changes) on every replication stream
that has been silent for `HEARTBEAT_INTERVAL_S`, and a replica that hears nothing for
`SILENCE_BOUND_S` declares the stream down, cancels it and reconnects. A silent peer is
thus detected within SILENCE_BOUND_S of the last message (issue 12 asks for ~15 s).
The bound leaves room for four missed heartbeats, a stalled event loop or a slow
multi-megabyte batch on a thin link before a healthy stream is dropped.
"""

from __future__ import annotations

HEARTBEAT_INTERVAL_S = 3.0
SILENCE_BOUND_S = 12.0
