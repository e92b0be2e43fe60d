"""Searching: one search step by step and the shipped defaults (``plan``), fusion as pure
functions (``fusion``), the tuned settings file (``settings``) and the result types (``hits``)."""
