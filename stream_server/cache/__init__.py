"""Sentence cache: repeated sentences are replayed from Redis instead of synthesized.

spoken_form (normalisation) -> keys (hash + stored key material) -> codec (entry layout) ->
store (Redis, in-process LRU, fault handling) -> source (lookup, in-flight dedupe, replay,
store-after-send) ; embedded_redis and runtime start it all in the app's lifespan.
"""
