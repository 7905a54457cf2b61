"""edgekv core: what central and every replica share.

Domain types, limits and validation, the error tree, the storage engine over
rocksdict, the hot-key cache policy, the Cloudflare-compatible REST app, settings,
metrics helpers, the generated protobuf code and the `edgekv` command.
"""

__version__ = "0.1.0"
