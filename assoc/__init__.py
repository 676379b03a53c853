"""assoc: completion-style association and pattern corpora (key-value recall, syntactic patterns, analogies)."""
