"""Deterministic tokens: the same seed and names always give the same tokens (no uuid4).

nuScenes tables use 32-character hex tokens; the map expansion uses UUID-formatted tokens. Both are MD5 digests of
the seed and a path of names, so a record's token depends only on what the record is, never on generation order.
"""
import hashlib


class TokenFactory:
    """Seeded token maker.

    Args:
        seed (int): dataset seed; different seeds give disjoint token sets.
    """

    def __init__(self, seed: int):
        self.seed = int(seed)
        self._prefix = f'seed={self.seed}'

    def __call__(self, *names) -> str:
        """32 lowercase hex characters for the record identified by ``names`` (any str()-able values)."""
        text = '/'.join((self._prefix, *map(str, names)))
        return hashlib.md5(text.encode('utf-8')).hexdigest()

    def uuid(self, *names) -> str:
        """The same digest formatted as a UUID (8-4-4-4-12), the token form of the map expansion."""
        h = self(*names)
        return f'{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}'
