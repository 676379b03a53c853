"""multmath package."""
