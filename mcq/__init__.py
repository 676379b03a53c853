"""mcq package."""
