"""The small core every layer may import: the one cache policy and memory budget, locks, the state folder, settings.

Nothing here imports the rest of ``app``.
"""
