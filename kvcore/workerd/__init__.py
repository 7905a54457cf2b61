"""Workers next to the KV: workerd's `kvNamespace` binding served by edgekv.

- `app`: the KV service protocol workerd speaks to an external service, as an ASGI app
  over the REST `Backend` (same auth, limits and read rules as the REST API);
- `server`: that app on its own listener (`edgekv replica --workerd-addr`), with each
  error's message in the HTTP status line, where workerd reads it;
- `config`: a workerd (capnp) config binding Workers to a replica's listener.
"""
