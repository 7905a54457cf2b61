"""Hot-key cache policy of a replica: pure data structures, no I/O.

`FrequencySketch` counts reads in fixed memory with decay; `HotKeyCache` keeps the
most read keys within a byte budget, admitting by frequency; `NegativeCache`
remembers keys known missing, bounded and with a TTL.
"""

from kvcore.cache.negative import NegativeCache
from kvcore.cache.policy import ENTRY_OVERHEAD_BYTES, HotKeyCache, entry_size
from kvcore.cache.sketch import FrequencySketch

__all__ = ["ENTRY_OVERHEAD_BYTES", "FrequencySketch", "HotKeyCache", "NegativeCache", "entry_size"]
