"""Shipped device profiles (TOML), one file per device model."""
