"""tinysql package."""
