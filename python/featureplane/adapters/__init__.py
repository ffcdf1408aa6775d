"""Consumers of the feature plane that drive other engines (hftbacktest)."""
