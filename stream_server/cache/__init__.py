"""Sentence cache: repeated sentences are replayed from Redis instead of synthesized.

keys (on the spoken form the session computed, text/spoken_form.py) (hash + stored key material)
-> codec (entry layout) -> store (Redis, in-process LRU, fault handling) -> source (lookup,
in-flight dedupe, replay, store-after-send) ; embedded_redis and runtime start it all in the app's
lifespan.
"""
