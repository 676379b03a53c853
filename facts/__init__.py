"""facts: a synthetic knowledge base of invented entities and a factual-recall corpus over it."""
